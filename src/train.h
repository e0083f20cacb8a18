/* Training of one replica with its checkpoint kernels (private to libsgk). */
#ifndef SGK_TRAIN_H
#define SGK_TRAIN_H

#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/mlp.h"
#include "sgk/status.h"
#include "drift.h"

/* What every replica shares: the data, the network shape and the schedule. */
typedef struct {
    const sgk_config *config;
    const sgk_dataset *data;
    const sgk_mlp *net;
    const double *input_gram;      /* N x N Gram of the inputs, <x_a, x_b> */
    int n_checkpoints;
    const long *checkpoint_step;   /* ascending, first 0, last = steps */
    const double *kernel_weight;   /* omega_c / R: quadrature weight over replicas */
    sgk_drift *drift;              /* this rank's pair accumulator, NULL: no drift bookkeeping */
    long n_probe;                  /* P probe points for the kernel-evolution record */
    const long *probe_index;       /* P evaluation-point indices, ascending */
    const double *probe_input_gram;/* P x P Gram of the probe inputs */
    int path_nodes;                /* Gauss-Legendre nodes along each step for the drift */
} sgk_train_plan;

/* What one replica leaves behind besides its kernel contribution. */
typedef struct {
    double *f;              /* C x N x O outputs at the checkpoints */
    double *loss_train;     /* C */
    double *loss_test;      /* C, NaN without test points */
    double *probe_kernel;   /* C x P x P: tr_o Theta_c on the probe points, unweighted */
    long diverged_step;     /* first step whose loss or outputs were not finite, -1 if none */
    double seconds_train;   /* wall time in optimizer steps */
    double seconds_kernel;  /* wall time in checkpoint kernels */
    double seconds_drift;   /* wall time in per-step drift bookkeeping */
} sgk_replica_record;

/* Train replica `replica` from its own random streams and add
 * kernel_weight[c] * tr_o Theta_c to `kernel` (N x N, row-major) at every checkpoint c,
 * and each step's drift contributions, weighted by 1/R, to plan->drift.
 * A diverged replica stops at the step where it diverged and adds nothing more. */
sgk_status sgk_replica_train(const sgk_train_plan *plan, long replica, double *kernel,
                             sgk_replica_record *record);

#endif
