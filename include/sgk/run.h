/* One experiment: train the ensemble, assemble the stochastic gradient kernel,
 * solve its spectrum and collect what the output file stores. */
#ifndef SGK_RUN_H
#define SGK_RUN_H

#include <mpi.h>
#include "sgk/analysis.h"
#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/denoise.h"
#include "sgk/evolution.h"
#include "sgk/kernel.h"
#include "sgk/mlp.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SGK_PHASE_DATA, SGK_PHASE_TRAIN, SGK_PHASE_KERNEL, SGK_PHASE_DRIFT, SGK_PHASE_REDUCE,
       SGK_PHASE_SPECTRUM, SGK_PHASE_OUTPUT, SGK_N_PHASES };

/* What a GAN run ([train] task = gan) adds to the results; zeroed for the other tasks. */
typedef struct {
    int enabled;              /* the run was a GAN run and the fields below are set */
    sgk_dataset latent;       /* every rank: the evaluation set, latent points z_a (x), all
                               * of them training points; y is zero and not written */
    long n_real;              /* real samples: the data source's training points */
    double *real_x;           /* rank 0: n_real x O real samples */
    long n_grid;              /* points of the discriminator field, grid^2; 0 without one */
    double *disc_grid;        /* rank 0: n_grid x 2 lattice points */
    double *disc_value;       /* rank 0: n_grid, mean of D over the accepted replicas */
    double *disc_gradient;    /* rank 0: n_grid x 2, mean of grad_x D */
} sgk_gan_results;

typedef struct {
    int n_checkpoints;        /* C */
    long *checkpoint_step;    /* C entries */
    double *checkpoint_time;  /* C entries: diffusion time sum_{k < step} eta_k */
    double *quadrature_weight;/* C entries: trapezoid weights in diffusion time */
    long n_replicas;          /* R */
    /* Rank 0 only (NULL elsewhere): */
    double *loss_train;       /* R x C */
    double *loss_test;        /* R x C; NaN when there are no test points */
    double *f_mean;           /* C x N x O */
    double *f_var;            /* C x N x O, unbiased over replicas (NaN when R = 1) */
    double *f_replica_final;  /* R x N x O: every replica's outputs at the last checkpoint */
    long n_probe;             /* P = min([kernel] probe, N) */
    long *probe_index;        /* P evaluation-point indices, evenly spread (every rank) */
    double *probe_mean;       /* C x P x P: ensemble-mean tr_o Theta_c on the probe points */
    double *probe_var;        /* C x P x P: its unbiased variance over replicas (NaN when R = 1) */
    int interrupted;          /* a signal stopped the training; nothing else is set */
    double *final_weights;    /* replica 0's final parameters (rank 0, when requested) */
    int *replica_dropped;     /* R flags: the replica diverged and is left out (every rank) */
    int has_drift;            /* the drift bookkeeping ran; the arrays below are set */
    double *drift;            /* N x O: -sum_i D(x, x_i), the kernel-machine correction */
    double *remainder;        /* N x O: E f_T - E f_0 - drift, measured */
    double *kernel_machine;   /* N x O: E f_0 + drift */
    int retrieval_length;     /* k = min([output] retrieval, n) */
    int *retrieval_index;     /* N x k: training indices by decreasing |D(x, x_i)| */
    double *retrieval_weight; /* N x k: |D(x, x_i)|, Euclidean norm over outputs */
    /* Every rank: */
    sgk_dmatrix sgk;          /* N x N, traced over outputs */
    long n_eig;               /* eigenvalues written by sgk_output_write without an analysis; */
    double *eigenvalues;      /* sgk_run_experiment leaves them empty and fills `analysis` */
    sgk_analysis analysis;    /* spectrum, target analysis, memory residuals, generalization */
    int has_evolution;        /* `evolution` was computed (rank 0) */
    sgk_evolution evolution;  /* rank 0: metrics of probe_mean per checkpoint */
    sgk_denoise_results denoise; /* per-level kernels of the denoise task (n_levels 0 otherwise) */
    double phase_seconds[SGK_N_PHASES];
    sgk_gan_results gan;      /* GAN mode only */
} sgk_results;

/* How a run is driven, beyond its configuration. */
typedef struct {
    const char *snapshot_folder;   /* snapshots for restarts go here; NULL: none */
    long restart_generation;       /* resume from this snapshot generation; 0: start fresh */
    const char *config_ini;        /* resolved configuration, stored with snapshots */
    unsigned long long data_hash;  /* fingerprint of the evaluation set, stored with snapshots */
    int progress;                  /* rank 0 reports progress */
    const double *initial_weights; /* parameters every replica starts from, or NULL */
    int keep_first_weights;        /* return replica 0's final parameters in the results */
} sgk_run_options;

/* Collective. Train every replica, reduce the kernel and solve the spectrum. `options`
 * may be NULL: no snapshots, no progress. When a signal stops the training, the run
 * writes a snapshot (if it has a folder) and returns SGK_OK with results->interrupted. */
sgk_status sgk_run_experiment(const sgk_config *config, const sgk_dataset *data,
                              const sgk_grid *grid, const sgk_run_options *options,
                              sgk_results *results);

/* The network a run of `config` on the loaded evaluation set `data` trains: the [model]
 * MLP from the data's features (and the noise level, for the denoise task) to its outputs. */
sgk_status sgk_run_network(const sgk_config *config, const sgk_dataset *data, sgk_mlp *net);

void sgk_results_free(sgk_results *results);

/* Names of the phases, as stored in the output's timing attributes. */
const char *sgk_phase_name(int phase);

#ifdef __cplusplus
}
#endif
#endif
