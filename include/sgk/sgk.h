/* libsgk: stochastic gradient kernels of neural-network ensembles. */
#ifndef SGK_SGK_H
#define SGK_SGK_H

#include "sgk/status.h"
#include "sgk/config.h"
#include "sgk/rng.h"
#include "sgk/dataset.h"
#include "sgk/denoise.h"
#include "sgk/mlp.h"
#include "sgk/loss.h"
#include "sgk/tangent.h"
#include "sgk/kernel.h"
#include "sgk/spectrum.h"
#include "sgk/run.h"
#include "sgk/analysis.h"
#include "sgk/evolution.h"
#include "sgk/ncio.h"
#include "sgk/optimizer.h"
#include "sgk/weights.h"
#include "sgk/log.h"

/* Version of the library, "MAJOR.MINOR.PATCH". */
const char *sgk_version(void);

#endif
