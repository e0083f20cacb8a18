/* Training of one replica (private to libsgk). */
#ifndef SGK_TRAIN_H
#define SGK_TRAIN_H

#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/mlp.h"
#include "sgk/status.h"
#include "sgk/optimizer.h"
#include "sgk/rng.h"
#include "drift.h"

/* What every replica shares: the data, the network shape and the schedule. */
typedef struct {
    const sgk_config *config;
    const sgk_dataset *data;
    const sgk_mlp *net;
    int n_checkpoints;
    const long *checkpoint_step;   /* ascending, first 0, last = steps */
    const double *initial_weights; /* shared initial parameters ([model] init_file), or NULL */
    long n_probe;                  /* P probe points for the kernel-evolution record */
    const long *probe_index;       /* P evaluation-point indices, ascending */
    const double *probe_x;         /* P x d_0 inputs of the probe points */
    const double *probe_input_gram;/* P x P Gram of the probe inputs */
    int path_nodes;                /* Gauss-Legendre nodes along each step for the drift */
    const struct sgk_gan_plan *gan;/* [train] task = gan: the discriminator and the real
                                    * samples (gan.h); NULL for the other tasks */
} sgk_train_plan;

/* Parameters in one replica's state: the network's, or the generator's followed by the
 * discriminator's in GAN mode. Checkpoint parameters and snapshots store this many. */
long sgk_train_plan_params(const sgk_train_plan *plan);

/* What one replica leaves behind besides its drift. */
typedef struct {
    double *f;              /* C x N x O outputs at the checkpoints */
    double *loss_train;     /* C */
    double *loss_test;      /* C, NaN without test points */
    double *probe_kernel;   /* C x P x P: tr_o Theta_c on the probe points, unweighted */
    double *weights;        /* C x P_params: parameters at the checkpoints */
    double *preconditioner; /* C x P_params: the optimizer's diagonal preconditioner P_k of the
                             * step taken at each checkpoint (the last step's for the final
                             * one), or NULL for optimizers without one */
    long diverged_step;     /* first step whose loss or outputs were not finite, -1 if none */
    double seconds_train;   /* wall time in optimizer steps */
    double seconds_kernel;  /* wall time at checkpoints (outputs, probe kernel) */
    double seconds_drift;   /* wall time in per-step drift bookkeeping */
} sgk_replica_record;

/* Buffers of one replica's training, allocated once. */
typedef struct {
    double *w;          /* parameters */
    double *w_start;    /* parameters at the start of the step, for path nodes */
    double *w_node;     /* parameters at a path node w_k + s dw_k */
    double *grad;       /* sum_i J_i^T r_i over the minibatch, then its mean */
    double *dw;         /* w_{k+1} - w_k */
    double *xb, *yb;    /* minibatch inputs and targets */
    double *fb, *rb;    /* minibatch outputs and residuals */
    long *batch;        /* minibatch indices into the training points */
    long *scratch;      /* population for sampling, n_train entries */
    sgk_mlp_work batch_work;
    sgk_mlp_work eval_work;
    sgk_factors factors;
    sgk_mlp_work probe_work;
    sgk_factors probe_factors; /* factors of the probe points at a checkpoint */
    int factors_current; /* factors hold the evaluation points at the current w */
} sgk_replica_buffers;

/* One replica in training: its position, parameters, optimizer state and random streams.
 * The initial-weight stream is used once at the start, and the batch and noise streams
 * are positioned by step, so `step`, `next_checkpoint`, the parameters and the optimizer
 * state are all a restart needs. */
typedef struct {
    long replica;
    long step;              /* next step to take */
    int next_checkpoint;    /* next checkpoint index to take */
    long batch_size;        /* B */
    sgk_replica_buffers b;
    sgk_optimizer optimizer;
    sgk_rng batch_rng;
    sgk_rng noise_rng;
} sgk_replica;

/* Called at the top of every step with the replica; a nonzero return pauses training
 * there (the hook has written whatever it needs to resume). */
typedef int (*sgk_step_hook)(void *context, const sgk_replica *rep);

/* Allocate the replica's buffers and set its initial parameters at step 0. */
sgk_status sgk_replica_start(const sgk_train_plan *plan, long replica, sgk_replica *rep);
void sgk_replica_free(sgk_replica *rep);

/* Mark every checkpoint of the record as not yet taken. */
void sgk_replica_record_reset(const sgk_train_plan *plan, sgk_replica_record *record);

/* Train from the replica's current step to the end, recording outputs, parameters and
 * probe kernels at every checkpoint and adding each step's drift contributions, weighted
 * by 1/R, to `drift` (NULL: no drift bookkeeping). Stops early when the replica diverges
 * (record->diverged_step) or the hook pauses it (*paused = 1). */
sgk_status sgk_replica_run(const sgk_train_plan *plan, sgk_replica *rep, sgk_drift *drift,
                           sgk_replica_record *record, sgk_step_hook hook, void *context,
                           int *paused);

#endif
