/* Training of a rank's block of replicas: the order of work, snapshots for restarts, and
 * what happens to a replica that diverges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensemble.h"
#include "sgk/log.h"
#include "snapshot.h"

/* Most blocks a snapshot has: see snapshot_blocks. */
#define MAX_BLOCKS 24

void sgk_replica_block(long n_replicas, int n_ranks, int rank, long *first, long *count)
{
    long begin = n_replicas * rank / n_ranks;
    long end = n_replicas * (rank + 1) / n_ranks;

    *first = begin;
    *count = end - begin;
}

int sgk_replica_owner(long n_replicas, int n_ranks, long replica)
{
    for (int rank = 0; rank < n_ranks; rank++) {
        long first, count;
        sgk_replica_block(n_replicas, n_ranks, rank, &first, &count);
        if (replica >= first && replica < first + count) return rank;
    }
    return 0;
}

sgk_status sgk_ensemble_create(sgk_ensemble *ensemble, const sgk_train_plan *plan, MPI_Comm comm,
                               int drift_enabled, int drop_diverged)
{
    const sgk_dataset *data = plan->data;
    long n_samples = data->n_samples;
    int n_checkpoints = plan->n_checkpoints;
    long batch_size = plan->config->train.batch_size > 0 ? plan->config->train.batch_size
                                                         : data->n_train;
    sgk_status status = SGK_OK;

    memset(ensemble, 0, sizeof *ensemble);
    ensemble->plan = plan;
    ensemble->comm = comm;
    MPI_Comm_rank(comm, &ensemble->rank);
    MPI_Comm_size(comm, &ensemble->n_ranks);
    sgk_replica_block(plan->config->ensemble.replicas, ensemble->n_ranks, ensemble->rank,
                      &ensemble->first, &ensemble->n_local);
    ensemble->per_replica = (size_t)n_checkpoints * n_samples * data->n_outputs;
    ensemble->per_probe = (size_t)n_checkpoints * plan->n_probe * plan->n_probe;
    ensemble->drop_diverged = drop_diverged;

    long n_local = ensemble->n_local;
    size_t n_params = (size_t)sgk_train_plan_params(plan);
    ensemble->weights_local = calloc((size_t)n_checkpoints * n_params * n_local + 1, sizeof(double));
    if (sgk_optimizer_preconditions(plan->config->train.optimizer)) {
        ensemble->precond_local = calloc((size_t)n_checkpoints * n_params * n_local + 1,
                                         sizeof(double));
        if (!ensemble->precond_local) status = sgk_error(SGK_ERR_IO, "out of memory for the "
                                                         "checkpoint preconditioners");
    }
    ensemble->f_local = calloc(ensemble->per_replica * n_local + 1, sizeof(double));
    ensemble->loss_train_local = calloc((size_t)n_checkpoints * n_local + 1, sizeof(double));
    ensemble->loss_test_local = calloc((size_t)n_checkpoints * n_local + 1, sizeof(double));
    ensemble->probe_local = calloc(ensemble->per_probe * n_local + 1, sizeof(double));
    ensemble->diverged_local = malloc(sizeof(long) * (n_local + 1));
    if (!ensemble->weights_local || !ensemble->f_local || !ensemble->loss_train_local
        || !ensemble->loss_test_local || !ensemble->probe_local || !ensemble->diverged_local)
        status = sgk_error(SGK_ERR_IO, "out of memory for the replica records of %ld evaluation "
                           "points", n_samples);
    for (long r = 0; r <= n_local && ensemble->diverged_local; r++) ensemble->diverged_local[r] = -1;
    if (status == SGK_OK && drift_enabled)
        status = sgk_drift_alloc(plan->net, n_samples, data->n_train, (int)batch_size,
                                 &ensemble->drift);
    if (status == SGK_OK && drift_enabled && drop_diverged && n_local > 0)
        status = sgk_drift_alloc(plan->net, n_samples, data->n_train, (int)batch_size,
                                 &ensemble->replica_drift);
    if (status != SGK_OK) sgk_ensemble_free(ensemble);
    return status;
}

void sgk_ensemble_free(sgk_ensemble *ensemble)
{
    if (ensemble->has_current) sgk_replica_free(&ensemble->current);
    free(ensemble->weights_local);
    free(ensemble->precond_local);
    free(ensemble->f_local);
    free(ensemble->loss_train_local);
    free(ensemble->loss_test_local);
    free(ensemble->probe_local);
    free(ensemble->diverged_local);
    free(ensemble->first_weights);
    sgk_drift_free(&ensemble->drift);
    sgk_drift_free(&ensemble->replica_drift);
    memset(ensemble, 0, sizeof *ensemble);
}

/* Point the record at the per-replica arrays of local replica r. */
static void attach_record(sgk_ensemble *ensemble, long r)
{
    int n_checkpoints = ensemble->plan->n_checkpoints;
    long n_params = sgk_train_plan_params(ensemble->plan);

    ensemble->record.f = ensemble->f_local + r * ensemble->per_replica;
    ensemble->record.loss_train = ensemble->loss_train_local + r * n_checkpoints;
    ensemble->record.loss_test = ensemble->loss_test_local + r * n_checkpoints;
    ensemble->record.probe_kernel = ensemble->probe_local + r * ensemble->per_probe;
    ensemble->record.weights = ensemble->weights_local + (size_t)r * n_checkpoints * n_params;
    ensemble->record.preconditioner =
        ensemble->precond_local
            ? ensemble->precond_local + (size_t)r * n_checkpoints * n_params
            : NULL;
}

/* Scalars of the position, stored as one block. */
enum { POS_REPLICAS_DONE, POS_HAS_CURRENT, POS_STEP, POS_NEXT_CHECKPOINT, POS_OPTIMIZER_STEP,
       POS_SIZE };

/* The named arrays that make up this rank's state. The same list serves writing and
 * reading, so the two cannot disagree; a block absent in this configuration has 0 bytes. */
static int snapshot_blocks(sgk_ensemble *ensemble, long *position, double *record_seconds,
                           sgk_snapshot_block *blocks)
{
    const sgk_train_plan *plan = ensemble->plan;
    long n_samples = plan->data->n_samples;
    size_t pair_bytes = ensemble->drift.pair
                        ? sizeof(double) * (size_t)n_samples * plan->data->n_train
                              * plan->data->n_outputs
                        : 0;
    size_t params_bytes = sizeof(double) * sgk_train_plan_params(plan);
    long n_local = ensemble->n_local;
    int n_checkpoints = plan->n_checkpoints;
    sgk_replica *rep = &ensemble->current;
    int n = 0;

    blocks[n++] = (sgk_snapshot_block){ "position", position, sizeof(long) * POS_SIZE };
    blocks[n++] = (sgk_snapshot_block){ "seconds", ensemble->seconds, sizeof ensemble->seconds };
    blocks[n++] = (sgk_snapshot_block){ "record_seconds", record_seconds, sizeof(double) * 3 };
    blocks[n++] = (sgk_snapshot_block){ "checkpoint_weights", ensemble->weights_local,
                                        params_bytes * n_checkpoints * n_local };
    blocks[n++] = (sgk_snapshot_block){ "drift_pairs", ensemble->drift.pair, pair_bytes };
    blocks[n++] = (sgk_snapshot_block){ "outputs", ensemble->f_local,
                                        sizeof(double) * ensemble->per_replica * n_local };
    blocks[n++] = (sgk_snapshot_block){ "loss_train", ensemble->loss_train_local,
                                        sizeof(double) * n_checkpoints * n_local };
    blocks[n++] = (sgk_snapshot_block){ "loss_test", ensemble->loss_test_local,
                                        sizeof(double) * n_checkpoints * n_local };
    blocks[n++] = (sgk_snapshot_block){ "probe_kernels", ensemble->probe_local,
                                        sizeof(double) * ensemble->per_probe * n_local };
    blocks[n++] = (sgk_snapshot_block){ "diverged", ensemble->diverged_local,
                                        sizeof(long) * n_local };
    blocks[n++] = (sgk_snapshot_block){ "replica_drift_pairs", ensemble->replica_drift.pair,
                                        ensemble->replica_drift.pair ? pair_bytes : 0 };
    blocks[n++] = (sgk_snapshot_block){ "checkpoint_preconditioners", ensemble->precond_local,
                                        ensemble->precond_local
                                            ? params_bytes * n_checkpoints * n_local : 0 };
    blocks[n++] = (sgk_snapshot_block){ "preconditioner", rep->optimizer.preconditioner,
                                        ensemble->has_current && rep->optimizer.preconditioner
                                            ? params_bytes : 0 };
    blocks[n++] = (sgk_snapshot_block){ "first_weights", ensemble->first_weights,
                                        ensemble->first_weights ? params_bytes : 0 };
    blocks[n++] = (sgk_snapshot_block){ "weights", rep->b.w,
                                        ensemble->has_current ? params_bytes : 0 };
    blocks[n++] = (sgk_snapshot_block){ "velocity", rep->optimizer.velocity,
                                        ensemble->has_current && rep->optimizer.velocity
                                            ? params_bytes : 0 };
    blocks[n++] = (sgk_snapshot_block){ "second_moment", rep->optimizer.second_moment,
                                        ensemble->has_current && rep->optimizer.second_moment
                                            ? params_bytes : 0 };
    return n;
}

/* Collective. Write this rank's state as the next snapshot generation. */
static sgk_status write_snapshot(sgk_ensemble *ensemble)
{
    sgk_snapshot_block blocks[MAX_BLOCKS];
    long position[POS_SIZE] = { 0 };
    double record_seconds[3] = { 0 };
    sgk_replica *rep = &ensemble->current;
    double start = sgk_seconds();

    position[POS_REPLICAS_DONE] = ensemble->replicas_done;
    position[POS_HAS_CURRENT] = ensemble->has_current;
    if (ensemble->has_current) {
        position[POS_STEP] = rep->step;
        position[POS_NEXT_CHECKPOINT] = rep->next_checkpoint;
        position[POS_OPTIMIZER_STEP] = rep->optimizer.step;
        record_seconds[0] = ensemble->record.seconds_train;
        record_seconds[1] = ensemble->record.seconds_kernel;
        record_seconds[2] = ensemble->record.seconds_drift;
    }
    int n_blocks = snapshot_blocks(ensemble, position, record_seconds, blocks);
    sgk_status status = sgk_snapshot_write(ensemble->comm, ensemble->snapshot_folder,
                                           ensemble->generation + 1, ensemble->config_ini,
                                           ensemble->data_hash, blocks, n_blocks);
    if (status != SGK_OK) return status;
    ensemble->generation++;
    sgk_control_snapshot_done(&ensemble->control);
    sgk_log(SGK_LOG_INFO, "snapshot %ld written to %s in %.2f s", ensemble->generation,
            ensemble->snapshot_folder, sgk_seconds() - start);
    return SGK_OK;
}

sgk_status sgk_ensemble_snapshot(sgk_ensemble *ensemble)
{
    return write_snapshot(ensemble);
}

sgk_status sgk_ensemble_restore(sgk_ensemble *ensemble, const char *folder, long generation)
{
    const sgk_train_plan *plan = ensemble->plan;
    sgk_snapshot_block blocks[MAX_BLOCKS];
    long position[POS_SIZE];
    double record_seconds[3];
    sgk_status status = SGK_OK;
    int n_blocks;

    /* 1. The position first: whether a replica was in training decides which blocks
     *    follow and their sizes. */
    ensemble->has_current = 0;
    n_blocks = snapshot_blocks(ensemble, position, record_seconds, blocks);
    status = sgk_snapshot_read_blocks(folder, generation, ensemble->rank, blocks, 1, 1);
    if (status == SGK_OK && (position[POS_REPLICAS_DONE] < 0
                             || position[POS_REPLICAS_DONE] > ensemble->n_local
                             || (position[POS_HAS_CURRENT]
                                 && position[POS_REPLICAS_DONE] >= ensemble->n_local)))
        status = sgk_error(SGK_ERR_USAGE, "snapshot in '%s' is inconsistent for rank %d", folder,
                           ensemble->rank);
    if (status == SGK_OK && position[POS_HAS_CURRENT]) {
        status = sgk_replica_start(plan, ensemble->first + position[POS_REPLICAS_DONE],
                                   &ensemble->current);
        ensemble->has_current = status == SGK_OK;
    }
    if (status == SGK_OK) {
        n_blocks = snapshot_blocks(ensemble, position, record_seconds, blocks);
        status = sgk_snapshot_read_blocks(folder, generation, ensemble->rank, blocks, n_blocks, 0);
    }

    /* 2. Rebuild the replica in training at its stored position. */
    if (status == SGK_OK) {
        ensemble->replicas_done = position[POS_REPLICAS_DONE];
        if (ensemble->has_current) {
            sgk_replica *rep = &ensemble->current;
            long replica = ensemble->first + ensemble->replicas_done;
            /* The parameters and moments were read into rep's buffers, and the random
             * streams are positioned by step: the position completes the state. */
            (void)replica;
            rep->step = position[POS_STEP];
            rep->next_checkpoint = (int)position[POS_NEXT_CHECKPOINT];
            rep->optimizer.step = position[POS_OPTIMIZER_STEP];
            attach_record(ensemble, ensemble->replicas_done);
            ensemble->record.diverged_step = -1;
            ensemble->record.seconds_train = record_seconds[0];
            ensemble->record.seconds_kernel = record_seconds[1];
            ensemble->record.seconds_drift = record_seconds[2];
        }
        ensemble->generation = generation;
    }
    int local = (int)status, worst = 0;
    MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, ensemble->comm);
    if (worst != SGK_OK && local == SGK_OK) sgk_error_clear();
    return (sgk_status)worst;
}

/* State the step hook needs. */
typedef struct {
    sgk_ensemble *ensemble;
    sgk_status status;          /* of a snapshot written inside the hook */
} hook_context;

static long steps_done(const sgk_ensemble *ensemble)
{
    long steps = ensemble->replicas_done * ensemble->plan->config->train.steps;
    if (ensemble->has_current) steps += ensemble->current.step;
    return steps;
}

/* Poll the control rounds at the top of every step; snapshot or pause as they decide. */
static int on_step(void *context, const sgk_replica *rep)
{
    hook_context *hook = context;
    sgk_ensemble *ensemble = hook->ensemble;
    sgk_action action;

    (void)rep;
    action = sgk_control_poll(&ensemble->control, steps_done(ensemble), 0, 0);
    if (action == SGK_ACTION_ABORT) {
        ensemble->aborted = 1;
        return 1;
    }
    if ((action == SGK_ACTION_SNAPSHOT || action == SGK_ACTION_STOP)
        && ensemble->snapshot_folder != NULL) {
        hook->status = write_snapshot(ensemble);
        if (hook->status != SGK_OK) return 1;
    }
    if (action == SGK_ACTION_STOP) {
        ensemble->stopped = 1;
        return 1;
    }
    return 0;
}

static void add_into(double *total, const double *part, size_t count)
{
    for (size_t i = 0; i < count; i++) total[i] += part[i];
}

/* The current replica has finished or diverged: accept its sums or drop them. */
static void finish_replica(sgk_ensemble *ensemble)
{
    const sgk_train_plan *plan = ensemble->plan;
    long n_samples = plan->data->n_samples;
    size_t pair_count = (size_t)n_samples * plan->data->n_train * plan->data->n_outputs;
    long r = ensemble->replicas_done;
    sgk_replica_record *record = &ensemble->record;

    ensemble->diverged_local[r] = record->diverged_step;
    if (ensemble->first_weights != NULL && ensemble->current.replica == 0
        && record->diverged_step < 0)
        memcpy(ensemble->first_weights, ensemble->current.b.w,
               sizeof(double) * sgk_train_plan_params(plan));
    ensemble->seconds[0] += record->seconds_train;
    ensemble->seconds[1] += record->seconds_kernel;
    ensemble->seconds[2] += record->seconds_drift;
    if (ensemble->replica_drift.pair != NULL) {
        if (record->diverged_step < 0)
            add_into(ensemble->drift.pair, ensemble->replica_drift.pair, pair_count);
        memset(ensemble->replica_drift.pair, 0, sizeof(double) * pair_count);
    }
    if (record->diverged_step >= 0)
        sgk_log_any(SGK_LOG_WARN, "replica %ld diverged at step %ld (loss or outputs not finite)%s",
                    ensemble->current.replica, record->diverged_step,
                    ensemble->drop_diverged ? "; it is dropped from the ensemble" : "");
    sgk_log_any(SGK_LOG_DEBUG, "replica %ld done: %.2f s training, %.2f s kernels, %.2f s drift",
                ensemble->current.replica, record->seconds_train, record->seconds_kernel,
                record->seconds_drift);
    sgk_replica_free(&ensemble->current);
    ensemble->has_current = 0;
    ensemble->replicas_done++;
}

sgk_status sgk_ensemble_train(sgk_ensemble *ensemble, double snapshot_minutes, int progress)
{
    const sgk_train_plan *plan = ensemble->plan;
    long steps_total = plan->config->ensemble.replicas * plan->config->train.steps;
    hook_context hook = { ensemble, SGK_OK };
    sgk_status status = SGK_OK;
    int diverged_stop = 0;

    sgk_control_init(&ensemble->control, ensemble->comm, steps_total,
                     ensemble->snapshot_folder ? snapshot_minutes : 0.0, progress);

    /* 1. This rank's replicas in order, resuming the one in training after a restart. */
    while (ensemble->replicas_done < ensemble->n_local && status == SGK_OK) {
        int paused = 0;
        if (!ensemble->has_current) {
            status = sgk_replica_start(plan, ensemble->first + ensemble->replicas_done,
                                       &ensemble->current);
            if (status != SGK_OK) break;
            ensemble->has_current = 1;
            attach_record(ensemble, ensemble->replicas_done);
            sgk_replica_record_reset(plan, &ensemble->record);
        }
        sgk_drift *drift = NULL;
        if (ensemble->drift.pair) drift = ensemble->replica_drift.pair ? &ensemble->replica_drift
                                                                      : &ensemble->drift;
        status = sgk_replica_run(plan, &ensemble->current, drift, &ensemble->record, on_step,
                                 &hook, &paused);
        if (status == SGK_OK) status = hook.status;
        if (status != SGK_OK || paused) break;
        int diverged = ensemble->record.diverged_step >= 0;
        finish_replica(ensemble);
        if (diverged && !ensemble->drop_diverged) {
            diverged_stop = 1;
            break;
        }
    }

    /* 2. Wait for the other ranks, still answering the control rounds (snapshots, stop).
     *    A rank that failed asks every rank to abort, so that none waits for it. A failed
     *    snapshot fails on every rank at once, since the write agrees on its status. */
    if (status != SGK_OK && hook.status != SGK_OK) ensemble->aborted = 1;
    while (!ensemble->stopped && !ensemble->aborted) {
        sgk_action action = sgk_control_wait(&ensemble->control, steps_done(ensemble),
                                             diverged_stop || status != SGK_OK);
        if (action == SGK_ACTION_FINISHED) break;
        if (action == SGK_ACTION_ABORT) {
            ensemble->aborted = 1;
            break;
        }
        if (ensemble->snapshot_folder != NULL) {
            sgk_status written = write_snapshot(ensemble);
            if (written != SGK_OK) {
                status = written;
                ensemble->aborted = 1;
                break;
            }
        }
        if (action == SGK_ACTION_STOP) ensemble->stopped = 1;
    }
    sgk_control_finish(&ensemble->control);
    return status;
}
