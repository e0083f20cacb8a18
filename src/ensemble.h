/* The replicas of one rank and their training, with snapshots and the divergence policy
 * (private to libsgk). */
#ifndef SGK_ENSEMBLE_H
#define SGK_ENSEMBLE_H

#include <mpi.h>
#include <stdint.h>

#include "control.h"
#include "train.h"

typedef struct {
    /* Shared by every rank. */
    const sgk_train_plan *plan;
    MPI_Comm comm;
    int rank;
    int n_ranks;
    long first;                 /* first replica of this rank */
    long n_local;               /* replicas of this rank, a contiguous block */
    size_t per_replica;         /* outputs stored per replica: C x N x O */
    size_t per_probe;           /* probe kernels per replica: C x P x P */
    int drop_diverged;          /* [train] on_divergence = drop */

    /* This rank's drift sums over its accepted replicas. */
    sgk_drift drift;            /* pair accumulator; drift.pair is NULL when drift is off */
    /* The current replica's own drift under the drop policy, added to the above only when
     * the replica finishes without diverging (pair NULL under the stop policy). */
    sgk_drift replica_drift;

    /* Per replica of this rank. */
    double *f_local;            /* n_local x C x N x O */
    double *loss_train_local;   /* n_local x C */
    double *loss_test_local;    /* n_local x C */
    double *probe_local;        /* n_local x C x P x P */
    double *weights_local;      /* n_local x C x n_params: parameters at the checkpoints */
    double *precond_local;      /* n_local x C x n_params: the optimizer's preconditioner at
                                 * the checkpoints (Adam, RMSProp), or NULL */
    long *diverged_local;       /* n_local: first non-finite step, or -1 */
    double seconds[3];          /* wall time in training steps, checkpoint kernels, drift */

    double *first_weights;      /* replica 0's final parameters (rank 0 when requested), or NULL */

    /* Position. */
    long replicas_done;         /* local replicas finished (accepted or dropped) */
    int has_current;            /* `current` is a replica in training */
    sgk_replica current;
    sgk_replica_record record;  /* points into the per-replica arrays of `current` */

    /* Snapshots. */
    const char *snapshot_folder;/* NULL: no snapshots */
    const char *config_ini;
    uint64_t data_hash;
    long generation;            /* of the last snapshot written or read */
    sgk_control control;
    int stopped;                /* a signal stopped the training after a snapshot */
    int aborted;                /* a replica diverged under the stop policy */
} sgk_ensemble;

/* Allocate the buffers of this rank's replicas; zeroed sums. */
sgk_status sgk_ensemble_create(sgk_ensemble *ensemble, const sgk_train_plan *plan, MPI_Comm comm,
                               int drift_enabled, int drop_diverged);
void sgk_ensemble_free(sgk_ensemble *ensemble);

/* Collective. Load the state of snapshot generation `generation` in `folder`. */
sgk_status sgk_ensemble_restore(sgk_ensemble *ensemble, const char *folder, long generation);

/* Collective. Train every remaining replica of every rank. Returns with ensemble->stopped
 * set when a signal arrived (a snapshot was written) and with ensemble->aborted set when a
 * replica diverged under the stop policy. */
sgk_status sgk_ensemble_train(sgk_ensemble *ensemble, double snapshot_minutes, int progress);

/* Collective. Write the ensemble's state as the next snapshot generation (requires a
 * snapshot folder). */
sgk_status sgk_ensemble_snapshot(sgk_ensemble *ensemble);

/* Replicas go to ranks in contiguous blocks: rank r trains [first, first + count). */
void sgk_replica_block(long n_replicas, int n_ranks, int rank, long *first, long *count);

/* The rank that trains `replica`. */
int sgk_replica_owner(long n_replicas, int n_ranks, long replica);

#endif
