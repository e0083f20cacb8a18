/* Per-sample losses l(f, y) and their residuals r = dl/df. */
#ifndef SGK_LOSS_H
#define SGK_LOSS_H

#include "sgk/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean loss over m points (f and y are m x O) and, when r is not NULL, the
 * residual of every point (m x O). MSE: l = |f - y|^2 / 2, r = f - y.
 * Returns NaN or Inf when an output is not finite. */
double sgk_loss_eval(sgk_loss_kind kind, const double *f, const double *y, int m,
                     int n_outputs, double *r);

#ifdef __cplusplus
}
#endif
#endif
