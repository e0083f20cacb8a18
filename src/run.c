/* The experiment driver: schedule, replica training, kernel reduction, spectrum. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/log.h"
#include "sgk/mlp.h"
#include "sgk/run.h"
#include "sgk/spectrum.h"
#include "assemble.h"
#include "denoise_run.h"
#include "drift.h"
#include "ensemble.h"
#include "gan.h"
#include "train.h"

static const char *const phase_names[SGK_N_PHASES] = {
    "data", "train", "kernel", "drift", "reduce", "spectrum", "output"
};

const char *sgk_phase_name(int phase)
{
    return phase >= 0 && phase < SGK_N_PHASES ? phase_names[phase] : "unknown";
}

/* Checkpoint c at step round(c T / (C - 1)), diffusion time t = eta_eff * step, and trapezoid
 * weights in diffusion time, so that sum_c omega_c g(t_c) approximates the integral of g
 * over [0, t_T]. eta_eff is the learning rate, divided by 1 - momentum for heavy-ball
 * momentum: the same effective step through which the drift attributes each update. */
/* Diffusion time per step: eta, or eta / (1 - mu) for heavy-ball momentum. */
static double step_time(const sgk_config *config)
{
    return config->train.optimizer == SGK_OPT_MOMENTUM
               ? config->train.lr / (1.0 - config->train.momentum)
               : config->train.lr;
}

static sgk_status make_schedule(const sgk_config *config, sgk_results *results)
{
    int n = config->kernel.checkpoints;
    long steps = config->train.steps;
    double effective_lr = step_time(config);

    results->n_checkpoints = n;
    results->checkpoint_step = malloc(sizeof(long) * n);
    results->checkpoint_time = malloc(sizeof(double) * n);
    results->quadrature_weight = malloc(sizeof(double) * n);
    if (!results->checkpoint_step || !results->checkpoint_time || !results->quadrature_weight)
        return sgk_error(SGK_ERR_IO, "out of memory for %d checkpoints", n);

    for (int c = 0; c < n; c++) {
        results->checkpoint_step[c] = (long)llround((double)c * (double)steps / (double)(n - 1));
        results->checkpoint_time[c] = effective_lr * (double)results->checkpoint_step[c];
    }
    for (int c = 0; c < n; c++) {
        double left = c > 0 ? results->checkpoint_time[c] - results->checkpoint_time[c - 1] : 0.0;
        double right = c < n - 1 ? results->checkpoint_time[c + 1] - results->checkpoint_time[c] : 0.0;
        results->quadrature_weight[c] = 0.5 * (left + right);
    }
    return SGK_OK;
}

/* Collective. Ensemble mean and unbiased variance over replicas of n_values numbers per
 * replica (local contains this rank's n_local replicas one after the other), on rank 0, from two
 * reductions: the sum, then the sum of squared deviations from the mean. */
static sgk_status reduce_moments(MPI_Comm comm, long n_local, long n_replicas, size_t n_values,
                                 const double *f_local, double *mean_out, double *var_out,
                                 int rank)
{
    double *sum = calloc(n_values, sizeof(double));
    double *mean = malloc(sizeof(double) * n_values);
    sgk_status status = SGK_OK;

    if (!sum || !mean) {
        status = sgk_error(SGK_ERR_IO, "out of memory for the ensemble moments (%zu values)",
                           n_values);
        goto done;
    }
    for (long r = 0; r < n_local; r++)
        for (size_t v = 0; v < n_values; v++) sum[v] += f_local[r * n_values + v];
    if (MPI_Allreduce(sum, mean, (int)n_values, MPI_DOUBLE, MPI_SUM, comm) != MPI_SUCCESS) {
        status = sgk_error(SGK_ERR_IO, "MPI_Allreduce of the ensemble means failed");
        goto done;
    }
    for (size_t v = 0; v < n_values; v++) mean[v] /= (double)n_replicas;

    memset(sum, 0, sizeof(double) * n_values);
    for (long r = 0; r < n_local; r++)
        for (size_t v = 0; v < n_values; v++) {
            double deviation = f_local[r * n_values + v] - mean[v];
            sum[v] += deviation * deviation;
        }
    if (MPI_Reduce(sum, rank == 0 ? var_out : NULL, (int)n_values, MPI_DOUBLE, MPI_SUM, 0,
                   comm) != MPI_SUCCESS) {
        status = sgk_error(SGK_ERR_IO, "MPI_Reduce of the ensemble variances failed");
        goto done;
    }
    if (rank == 0) {
        for (size_t v = 0; v < n_values; v++)
            var_out[v] = n_replicas > 1 ? var_out[v] / (double)(n_replicas - 1) : NAN;
        memcpy(mean_out, mean, sizeof(double) * n_values);
    }
done:
    free(sum);
    free(mean);
    return status;
}

/* Collective. Gather every replica's `per_replica` values to rank 0 in replica order. */
static sgk_status gather_replicas(MPI_Comm comm, int n_ranks, long n_replicas, size_t per_replica,
                                  const double *local, long n_local, double *all)
{
    int *counts = malloc(sizeof(int) * n_ranks);
    int *offsets = malloc(sizeof(int) * n_ranks);
    sgk_status status = SGK_OK;

    if (!counts || !offsets) {
        free(counts);
        free(offsets);
        return sgk_error(SGK_ERR_IO, "out of memory for %d ranks", n_ranks);
    }
    for (int r = 0; r < n_ranks; r++) {
        long first, count;
        sgk_replica_block(n_replicas, n_ranks, r, &first, &count);
        counts[r] = (int)(count * per_replica);
        offsets[r] = (int)(first * per_replica);
    }
    if (MPI_Gatherv(local, (int)(n_local * per_replica), MPI_DOUBLE, all, counts, offsets,
                    MPI_DOUBLE, 0, comm) != MPI_SUCCESS)
        status = sgk_error(SGK_ERR_IO, "MPI_Gatherv of per-replica values failed");
    free(counts);
    free(offsets);
    return status;
}

/* Collective. Agree on the worst status of all ranks, so that every rank leaves
 * together. Ranks that did not fail keep an empty message, so only the failing
 * ranks print theirs. */
static sgk_status agree(MPI_Comm comm, sgk_status status)
{
    int local = (int)status, worst = 0;

    if (MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return sgk_error(SGK_ERR_IO, "MPI_Allreduce of the run status failed");
    if (worst != SGK_OK && local == SGK_OK) sgk_error_clear();
    return (sgk_status)worst;
}

/* Collective. Report every diverged replica with its step, mark it in `dropped`, and count
 * the accepted ones. The run fails when all replicas diverged, or any did and `strict` (the
 * stop policy) is set. The message is recorded on rank 0 only, to print once. */
static sgk_status check_divergence(MPI_Comm comm, int rank, long first, long n_local,
                                   long n_replicas, const long *diverged_local, int strict,
                                   int *dropped, long *n_accepted)
{
    long *diverged = malloc(sizeof(long) * n_replicas);
    long *mine = malloc(sizeof(long) * n_replicas);
    long n_diverged = 0;

    if (!diverged || !mine) {
        free(diverged);
        free(mine);
        return sgk_error(SGK_ERR_IO, "out of memory for %ld replica flags", n_replicas);
    }
    for (long r = 0; r < n_replicas; r++) mine[r] = -1;
    for (long r = 0; r < n_local; r++) mine[first + r] = diverged_local[r];
    MPI_Allreduce(mine, diverged, (int)n_replicas, MPI_LONG, MPI_MAX, comm);
    for (long r = 0; r < n_replicas; r++) {
        dropped[r] = diverged[r] >= 0;
        if (diverged[r] < 0) continue;
        n_diverged++;
        sgk_log(strict ? SGK_LOG_ERROR : SGK_LOG_WARN,
                "replica %ld diverged: loss or outputs not finite at step %ld%s", r, diverged[r],
                strict ? "" : "; dropped from the ensemble");
    }
    free(diverged);
    free(mine);
    *n_accepted = n_replicas - n_diverged;
    if (n_diverged == 0 || (!strict && n_diverged < n_replicas)) return SGK_OK;
    if (rank != 0) {
        sgk_error_clear();
        return SGK_ERR_NUMERIC;
    }
    if (n_diverged == n_replicas)
        return sgk_error(SGK_ERR_NUMERIC, "all %ld replicas diverged (non-finite loss or outputs); "
                         "lower [train] lr or check the inputs", n_replicas);
    return sgk_error(SGK_ERR_NUMERIC,
                     "%ld of %ld replicas diverged (non-finite loss or outputs) and [train] "
                     "on_divergence = stop; lower [train] lr, or set on_divergence = drop to "
                     "continue without them",
                     n_diverged, n_replicas);
}

/* Collective. Sum the drift pairs of every rank on rank 0 in slices that fit an int count. */
static sgk_status reduce_drift_pairs(MPI_Comm comm, int rank, double *pair, size_t count)
{
    const size_t slice = (size_t)1 << 26;

    for (size_t offset = 0; offset < count; offset += slice) {
        int n = (int)(count - offset < slice ? count - offset : slice);
        void *send = rank == 0 ? MPI_IN_PLACE : (void *)(pair + offset);
        if (MPI_Reduce(send, pair + offset, n, MPI_DOUBLE, MPI_SUM, 0, comm) != MPI_SUCCESS)
            return sgk_error(SGK_ERR_IO, "MPI_Reduce of the drift pairs failed");
    }
    return SGK_OK;
}

/* Rank 0. drift = -sum_i D(x, x_i), remainder = E f_T - E f_0 - drift, kernel machine =
 * E f_0 + drift, and each point's training points by decreasing |D(x, x_i)|. */
static sgk_status compute_estimates(const sgk_config *config, const sgk_dataset *data,
                                    const double *pair, sgk_results *results)
{
    long n_samples = data->n_samples, n_train = data->n_train;
    int n_outputs = data->n_outputs;
    int k = config->output.retrieval < n_train ? config->output.retrieval : (int)n_train;
    const double *f_first = results->f_mean;
    const double *f_last = results->f_mean
                           + (size_t)(results->n_checkpoints - 1) * n_samples * n_outputs;
    double *norms = malloc(sizeof(double) * n_train);

    results->retrieval_length = k;
    results->drift = malloc(sizeof(double) * n_samples * n_outputs);
    results->remainder = malloc(sizeof(double) * n_samples * n_outputs);
    results->kernel_machine = malloc(sizeof(double) * n_samples * n_outputs);
    results->retrieval_index = malloc(sizeof(int) * (n_samples * k + 1));
    results->retrieval_weight = malloc(sizeof(double) * (n_samples * k + 1));
    if (!norms || !results->drift || !results->remainder || !results->kernel_machine
        || !results->retrieval_index || !results->retrieval_weight) {
        free(norms);
        return sgk_error(SGK_ERR_IO, "out of memory for the drift estimates");
    }
    for (long a = 0; a < n_samples; a++) {
        const double *row = pair + (size_t)a * n_train * n_outputs;

        for (int o = 0; o < n_outputs; o++) {
            double sum = 0.0;
            for (long i = 0; i < n_train; i++) sum += row[i * n_outputs + o];
            size_t v = (size_t)a * n_outputs + o;
            results->drift[v] = -sum;
            results->kernel_machine[v] = f_first[v] + results->drift[v];
            results->remainder[v] = f_last[v] - f_first[v] - results->drift[v];
        }

        /* Top k by partial selection: k is small (tens), n up to tens of thousands. */
        for (long i = 0; i < n_train; i++) {
            double squares = 0.0;
            for (int o = 0; o < n_outputs; o++) squares += row[i * n_outputs + o] * row[i * n_outputs + o];
            norms[i] = sqrt(squares);
        }
        /* NaN norms (an overflowed contribution) rank below every number. */
        for (long i = 0; i < n_train; i++)
            if (isnan(norms[i])) norms[i] = -0.5;
        for (int j = 0; j < k; j++) {
            long best = -1;
            for (long i = 0; i < n_train; i++)
                if (norms[i] > -1.0 && (best < 0 || norms[i] > norms[best])) best = i;
            results->retrieval_index[(size_t)a * k + j] = (int)best;
            results->retrieval_weight[(size_t)a * k + j] = norms[best] < 0.0 ? NAN : norms[best];
            norms[best] = -1.0;
        }
    }
    free(norms);
    return SGK_OK;
}

/* Rank 0. Log the size of the remainder against the drift: how well the kernel-machine
 * form explains the trained ensemble. */
static void log_estimates(const sgk_dataset *data, const sgk_results *results)
{
    int n_outputs = data->n_outputs;
    double drift2 = 0.0, remainder2 = 0.0, km2 = 0.0, worst = 0.0;
    const double *f_last = results->f_mean
                           + (size_t)(results->n_checkpoints - 1) * data->n_samples * n_outputs;
    long count = 0;

    for (long a = 0; a < data->n_samples; a++) {
        if (data->split[a] != SGK_SPLIT_TEST) continue;
        for (int o = 0; o < n_outputs; o++) {
            size_t v = (size_t)a * n_outputs + o;
            drift2 += results->drift[v] * results->drift[v];
            remainder2 += results->remainder[v] * results->remainder[v];
            double gap = f_last[v] - results->kernel_machine[v];
            km2 += gap * gap;
            if (fabs(results->remainder[v]) > worst) worst = fabs(results->remainder[v]);
            count++;
        }
    }
    if (count == 0) return;
    sgk_log(SGK_LOG_INFO, "test points (root mean square): |drift| = %.6g, |remainder| = %.6g, "
            "|E f_T - kernel_machine| = %.6g, max |remainder| = %.3g",
            sqrt(drift2 / count), sqrt(remainder2 / count), sqrt(km2 / count), worst);
}

/* Buffers the driver owns besides the ensemble's. */
typedef struct {
    sgk_mlp net;
    double *probe_x;            /* P x d_0 inputs of the probe points */
    double *probe_gram;         /* P x P, <x_p, x_q> */
    sgk_gan_plan gan;           /* GAN mode: discriminator and real samples */
} run_buffers;

static void run_buffers_free(run_buffers *buffers)
{
    free(buffers->probe_x);
    free(buffers->probe_gram);
}

/* Allocate the results kept on every rank and the rank-0 statistics. */
static sgk_status allocate_results(const sgk_config *config, const sgk_dataset *data,
                                   const sgk_grid *grid, sgk_results *results)
{
    long n_replicas = config->ensemble.replicas;
    size_t per_output = (size_t)data->n_samples * data->n_outputs;
    size_t per_replica = (size_t)results->n_checkpoints * per_output;
    size_t per_probe = (size_t)results->n_checkpoints * results->n_probe * results->n_probe;

    results->probe_index = malloc(sizeof(long) * (results->n_probe + 1));
    results->replica_dropped = calloc((size_t)n_replicas, sizeof(int));
    if (!results->probe_index || !results->replica_dropped)
        return sgk_error(SGK_ERR_IO, "out of memory for the probe set");
    if (grid->rank == 0) {
        results->loss_train = malloc(sizeof(double) * n_replicas * results->n_checkpoints);
        results->loss_test = malloc(sizeof(double) * n_replicas * results->n_checkpoints);
        results->f_mean = malloc(sizeof(double) * per_replica);
        results->f_var = malloc(sizeof(double) * per_replica);
        results->f_replica_final = malloc(sizeof(double) * per_output * n_replicas);
        results->probe_mean = malloc(sizeof(double) * (per_probe + 1));
        results->probe_var = malloc(sizeof(double) * (per_probe + 1));
        if (!results->loss_train || !results->loss_test || !results->f_mean || !results->f_var
            || !results->f_replica_final || !results->probe_mean || !results->probe_var)
            return sgk_error(SGK_ERR_IO, "out of memory for the ensemble statistics");
    }
    return sgk_dmatrix_create(grid, data->n_samples, config->kernel.block_size, &results->sgk);
}

/* The probe inputs and their Gram, and the plan every replica of this rank shares. */
static sgk_status prepare_plan(const sgk_config *config, const sgk_dataset *data,
                               const sgk_results *results, run_buffers *buffers,
                               sgk_train_plan *plan)
{
    long n_probe = results->n_probe;
    int d = data->n_features;

    buffers->probe_x = calloc((size_t)n_probe * d + 1, sizeof(double));
    buffers->probe_gram = calloc((size_t)n_probe * n_probe + 1, sizeof(double));
    if (!buffers->probe_x || !buffers->probe_gram)
        return sgk_error(SGK_ERR_IO, "out of memory for the %ld probe points", n_probe);
    for (long p = 0; p < n_probe; p++)
        memcpy(buffers->probe_x + p * d, data->x + results->probe_index[p] * d,
               sizeof(double) * d);
    if (n_probe > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_probe, (int)n_probe, d, 1.0,
                    buffers->probe_x, d, buffers->probe_x, d, 0.0, buffers->probe_gram,
                    (int)n_probe);
    *plan = (sgk_train_plan){ .config = config,
                              .data = data,
                              .net = &buffers->net,
                              .n_checkpoints = results->n_checkpoints,
                              .checkpoint_step = results->checkpoint_step,
                              .path_nodes = config->kernel.path_nodes,
                              .n_probe = n_probe,
                              .probe_index = results->probe_index,
                              .probe_x = buffers->probe_x,
                              .probe_input_gram = buffers->probe_gram,
                              .initial_weights = NULL };
    return SGK_OK;
}

/* Move the accepted replicas' values (per_replica each) to the front, in order. */
static long compact_accepted(double *values, size_t per_replica, const long *diverged, long count)
{
    long kept = 0;

    for (long r = 0; r < count; r++) {
        if (diverged[r] >= 0) continue;
        if (kept != r) memmove(values + kept * per_replica, values + r * per_replica,
                               sizeof(double) * per_replica);
        kept++;
    }
    return kept;
}

/* Collective. Reduce the rank sums and per-replica records of the trained ensemble into
 * the results: outputs, probe kernels, losses, drift. Dropped replicas are left out and the
 * sums rescaled from R to the accepted count. */
static sgk_status reduce_ensemble(const sgk_config *config, const sgk_dataset *data,
                                  const sgk_grid *grid, sgk_ensemble *ensemble, long n_accepted,
                                  sgk_results *results)
{
    MPI_Comm comm = grid->comm;
    int rank = grid->rank;
    long n_samples = data->n_samples, n_replicas = config->ensemble.replicas;
    size_t per_output = (size_t)n_samples * data->n_outputs;
    size_t pair_count = (size_t)n_samples * data->n_train * data->n_outputs;
    sgk_status status;

    /* 1. Drift sums were weighted by 1/R; with dropped replicas the mean is over the
     *    accepted ones. The kernel, assembled separately, is weighted by 1/R' directly. */
    if (n_accepted < n_replicas) {
        double scale = (double)n_replicas / (double)n_accepted;
        for (size_t i = 0; ensemble->drift.pair && i < pair_count; i++)
            ensemble->drift.pair[i] *= scale;
    }
    status = SGK_OK;

    /* 2. Losses and final outputs of every replica, dropped ones included (NaN after their
     *    divergence), in replica order on rank 0. */
    if (status == SGK_OK)
        status = gather_replicas(comm, grid->n_ranks, n_replicas, (size_t)results->n_checkpoints,
                                 ensemble->loss_train_local, ensemble->n_local, results->loss_train);
    if (status == SGK_OK)
        status = gather_replicas(comm, grid->n_ranks, n_replicas, (size_t)results->n_checkpoints,
                                 ensemble->loss_test_local, ensemble->n_local, results->loss_test);
    {
        double *final = malloc(sizeof(double) * (per_output * ensemble->n_local + 1));
        if (!final) status = sgk_error(SGK_ERR_IO, "out of memory for the final outputs");
        for (long r = 0; final && r < ensemble->n_local; r++)
            memcpy(final + r * per_output,
                   ensemble->f_local + (r + 1) * ensemble->per_replica - per_output,
                   sizeof(double) * per_output);
        status = agree(comm, status);
        if (status == SGK_OK)
            status = gather_replicas(comm, grid->n_ranks, n_replicas, per_output, final,
                                     ensemble->n_local, results->f_replica_final);
        free(final);
    }

    /* 3. Moments over the accepted replicas only. */
    long kept = compact_accepted(ensemble->f_local, ensemble->per_replica,
                                 ensemble->diverged_local, ensemble->n_local);
    compact_accepted(ensemble->probe_local, ensemble->per_probe, ensemble->diverged_local,
                     ensemble->n_local);
    if (status == SGK_OK)
        status = reduce_moments(comm, kept, n_accepted, ensemble->per_replica, ensemble->f_local,
                                results->f_mean, results->f_var, rank);
    if (status == SGK_OK && results->n_probe > 0)
        status = reduce_moments(comm, kept, n_accepted, ensemble->per_probe, ensemble->probe_local,
                                results->probe_mean, results->probe_var, rank);

    /* 4. Drift pairs, summed on rank 0, and the estimates made from them. */
    if (status == SGK_OK && ensemble->drift.pair)
        status = reduce_drift_pairs(comm, rank, ensemble->drift.pair, pair_count);
    if (status == SGK_OK && ensemble->drift.pair && rank == 0) {
        status = compute_estimates(config, data, ensemble->drift.pair, results);
        if (status == SGK_OK) log_estimates(data, results);
    }
    results->has_drift = ensemble->drift.pair != NULL;
    return agree(comm, status);
}

/* Collective. Move replica 0's final parameters from the rank that trained it to rank 0
 * (results->final_weights), or leave it NULL when replica 0 diverged. */
static sgk_status collect_first_weights(const sgk_grid *grid, sgk_ensemble *ensemble,
                                        long n_params, sgk_results *results)
{
    int owner = sgk_replica_owner(ensemble->plan->config->ensemble.replicas, grid->n_ranks, 0);
    int accepted = 0;

    if (grid->rank == owner) accepted = ensemble->diverged_local[0] < 0;
    MPI_Bcast(&accepted, 1, MPI_INT, owner, grid->comm);
    if (!accepted) return SGK_OK;
    if (owner == 0) {
        if (grid->rank == 0) {
            results->final_weights = ensemble->first_weights;
            ensemble->first_weights = NULL;
        }
        return SGK_OK;
    }
    if (grid->rank == owner)
        MPI_Send(ensemble->first_weights, (int)n_params, MPI_DOUBLE, 0, 0, grid->comm);
    if (grid->rank == 0) {
        results->final_weights = malloc(sizeof(double) * n_params);
        if (!results->final_weights)
            return sgk_error(SGK_ERR_IO, "out of memory for replica 0's weights");
        MPI_Recv(results->final_weights, (int)n_params, MPI_DOUBLE, owner, 0, grid->comm,
                 MPI_STATUS_IGNORE);
    }
    return SGK_OK;
}

/* Collective. Spectrum, target analysis, memory residuals and generalization of the
 * kernel; dropped replicas get NaN test errors. */
static sgk_status analyse(const sgk_config *config, const sgk_dataset *data,
                          const sgk_grid *grid, sgk_results *results)
{
    size_t last = (size_t)(results->n_checkpoints - 1) * data->n_samples * data->n_outputs;
    sgk_status status;

    status = sgk_analysis_run(config, data, &results->sgk,
                              grid->rank == 0 ? results->f_mean + last : NULL,
                              grid->rank == 0 ? results->f_replica_final : NULL,
                              results->n_replicas, &results->analysis);
    if (status != SGK_OK || grid->rank != 0) return status;
    sgk_generalization *g = &results->analysis.generalization;
    for (long r = 0; g->test_error_replica && r < results->n_replicas; r++)
        if (results->replica_dropped[r]) g->test_error_replica[r] = NAN;
    return SGK_OK;
}

/* Rank 0. Kernel-evolution metrics of the ensemble-mean probe kernels. */
static sgk_status evolve(const sgk_dataset *data, sgk_results *results)
{
    long n_probe = results->n_probe;
    int n_outputs = data->n_outputs;
    double *y_probe = malloc(sizeof(double) * (n_probe * n_outputs + 1));
    sgk_status status;

    if (!y_probe) return sgk_error(SGK_ERR_IO, "out of memory for the probe targets");
    for (long p = 0; p < n_probe; p++)
        memcpy(y_probe + p * n_outputs, data->y + results->probe_index[p] * n_outputs,
               sizeof(double) * n_outputs);
    status = sgk_evolution_compute(results->n_checkpoints, n_probe, n_outputs, results->probe_mean,
                                   results->probe_var, y_probe, results->checkpoint_time,
                                   n_probe < 10 ? (int)n_probe : 10, &results->evolution);
    free(y_probe);
    if (status != SGK_OK) return status;
    results->has_evolution = 1;
    int c = results->n_checkpoints - 1;
    sgk_log(SGK_LOG_INFO, "probe kernel, last checkpoint: trace %.6g, distance to step 0 %.4g, "
            "alignment %.4g, effective rank %.4g, replica spread %.4g",
            results->evolution.trace[c], results->evolution.distance[c],
            results->evolution.alignment[c], results->evolution.effective_rank[c],
            results->evolution.spread[c]);
    return SGK_OK;
}

/* The loss must fit the targets: logistic needs one output with targets -1 or +1, and
 * softmax cross-entropy needs one-hot rows. Every rank has the same data, so every rank
 * reaches the same verdict. */
static sgk_status check_targets(const sgk_config *config, const sgk_dataset *data)
{
    int n_outputs = data->n_outputs;

    for (long i = 0; i < data->n_train + data->n_test; i++) {
        const double *y = data->y + (size_t)i * n_outputs;
        if (config->train.loss == SGK_LOSS_LOGISTIC) {
            if (n_outputs != 1 || (y[0] != 1.0 && y[0] != -1.0))
                return sgk_error(SGK_ERR_DATA, "[train] loss = logistic needs one output with "
                                 "targets -1 or +1, but point %ld has %d output(s), first target "
                                 "%g; use two classes of a labelled source, or loss = mse", i,
                                 n_outputs, y[0]);
        } else if (config->train.loss == SGK_LOSS_XENT) {
            double sum = 0.0;
            int valid = n_outputs >= 2;
            for (int o = 0; o < n_outputs; o++) {
                valid = valid && (y[o] == 0.0 || y[o] == 1.0);
                sum += y[o];
            }
            if (!valid || sum != 1.0)
                return sgk_error(SGK_ERR_DATA, "[train] loss = xent needs one-hot targets with "
                                 "at least two outputs, but point %ld is not one-hot; use a "
                                 "labelled source, or loss = mse", i);
        }
    }
    return SGK_OK;
}

sgk_status sgk_run_experiment(const sgk_config *config, const sgk_dataset *given,
                              const sgk_grid *grid, const sgk_run_options *options,
                              sgk_results *results)
{
    /* The denoise task's network also takes the noise level: its evaluation points carry
     * sigma_min as their last input. */
    sgk_dataset conditioned;
    const sgk_dataset *data = given;
    static const sgk_run_options no_options = { 0 };
    MPI_Comm comm = grid->comm;
    long n_samples = data->n_samples;
    long n_replicas = config->ensemble.replicas;
    long n_accepted = config->ensemble.replicas;
    run_buffers buffers;
    sgk_train_plan plan;
    sgk_ensemble ensemble;
    sgk_status status;
    double start;

    /* 1. Network shape, schedule, probe set and result buffers. */
    if (options == NULL) options = &no_options;
    memset(results, 0, sizeof *results);
    status = check_targets(config, data);
    /* A GAN replica's parameters are a generator and a discriminator; neither option
     * describes the pair. */
    if (status == SGK_OK && config->train.task == SGK_TASK_GAN
        && (options->initial_weights != NULL || options->keep_first_weights))
        status = sgk_error(SGK_ERR_USAGE, "train.task = gan takes no shared initial weights "
                           "and returns no final weights: leave initial_weights NULL and "
                           "keep_first_weights 0 in the run options");
    if (status != SGK_OK) {
        if (grid->rank != 0) sgk_error_clear();
        return status;
    }
    memset(&buffers, 0, sizeof buffers);
    memset(&ensemble, 0, sizeof ensemble);
    memset(&conditioned, 0, sizeof conditioned);
    if (config->train.task == SGK_TASK_DENOISE) {
        status = sgk_denoise_condition_data(config, given, &conditioned);
        status = agree(comm, status);
        if (status != SGK_OK) return status;
        data = &conditioned;
    }
    /* GAN mode (gan.c): the evaluation set becomes the latent points and the data source
     * provides the real samples. It has no probe kernels. */
    if (config->train.task == SGK_TASK_GAN) {
        status = sgk_gan_results_prepare(config, given, grid->rank, &results->gan);
        status = agree(comm, status);
        if (status != SGK_OK) goto done;
        data = &results->gan.latent;
        n_samples = data->n_samples;
        if (config->kernel.probe > 0)
            sgk_log(SGK_LOG_INFO, "GAN mode keeps no probe kernels, so [kernel] probe = %ld "
                    "is not used", config->kernel.probe);
        if (config->gan.grid > 0 && results->gan.n_grid == 0)
            sgk_log(SGK_LOG_INFO, "the discriminator field needs 2-D data, so [gan] grid = %d "
                    "is not used for %d-dimensional data", config->gan.grid, given->n_features);
    }
    results->n_replicas = n_replicas;
    results->n_probe = config->kernel.probe < n_samples ? config->kernel.probe : n_samples;
    if (results->gan.enabled) results->n_probe = 0;
    status = sgk_run_network(config, given, &buffers.net);
    if (status == SGK_OK) status = make_schedule(config, results);
    if (status == SGK_OK) status = allocate_results(config, data, grid, results);
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    /* Probe points evenly spread over the evaluation set, so they cover every split. */
    for (long p = 0; p < results->n_probe; p++)
        results->probe_index[p] = p * n_samples / results->n_probe;

    /* 2. This rank's replicas, their plan, and a restored state when restarting. */
    status = prepare_plan(config, data, results, &buffers, &plan);
    plan.initial_weights = options->initial_weights;
    if (status == SGK_OK && results->gan.enabled) {
        status = sgk_gan_plan_create(config, given, &buffers.net, &buffers.gan);
        plan.gan = &buffers.gan;
        if (status == SGK_OK)
            sgk_log(SGK_LOG_INFO, "GAN: generator %ld and discriminator %ld parameters, %ld "
                    "real samples, %ld latent points", buffers.net.n_params,
                    buffers.gan.disc.n_params, given->n_train, n_samples);
        if (status == SGK_OK && sgk_optimizer_preconditions(config->train.optimizer))
            sgk_log(SGK_LOG_INFO, "GAN: the generator kernel includes the diagonal "
                    "preconditioner of [train] optimizer = %s through explicit seeded "
                    "gradients, at N P_G operations per point and checkpoint",
                    config->train.optimizer == SGK_OPT_ADAM ? "adam" : "rmsprop");
    }
    if (status == SGK_OK)
        status = sgk_ensemble_create(&ensemble, &plan, comm, sgk_config_drift(config),
                                     config->train.on_divergence == SGK_DIVERGENCE_DROP);
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    if (options->keep_first_weights && ensemble.first == 0 && ensemble.n_local > 0) {
        ensemble.first_weights = calloc((size_t)buffers.net.n_params, sizeof(double));
        if (!ensemble.first_weights)
            status = sgk_error(SGK_ERR_IO, "out of memory for replica 0's weights");
    }
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    ensemble.snapshot_folder = options->snapshot_folder;
    ensemble.config_ini = options->config_ini;
    ensemble.data_hash = options->data_hash;
    sgk_log(SGK_LOG_INFO, "network: %d layers, %ld parameters; %ld replicas on %d ranks",
            buffers.net.n_layers, buffers.net.n_params, n_replicas, grid->n_ranks);
    if (options->restart_generation > 0) {
        status = sgk_ensemble_restore(&ensemble, options->snapshot_folder,
                                      options->restart_generation);
        if (status != SGK_OK) goto done;
        sgk_log(SGK_LOG_INFO, "resumed from snapshot %ld in %s", options->restart_generation,
                options->snapshot_folder);
    }

    /* 3. Train. Each replica records its parameters at every checkpoint. */
    start = sgk_seconds();
    status = sgk_ensemble_train(&ensemble, config->output.checkpoint_every, options->progress);
    results->phase_seconds[SGK_PHASE_TRAIN] = ensemble.seconds[0];
    results->phase_seconds[SGK_PHASE_KERNEL] = ensemble.seconds[1];
    results->phase_seconds[SGK_PHASE_DRIFT] = ensemble.seconds[2];
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    if (ensemble.stopped) {
        results->interrupted = 1;
        sgk_log(SGK_LOG_WARN, "training stopped by a signal after %.1f s; resume with --restart %s",
                sgk_seconds() - start, options->snapshot_folder ? options->snapshot_folder : "?");
        goto done;
    }
    sgk_log(SGK_LOG_INFO, "training finished in %.2f s", sgk_seconds() - start);

    /* 4. Which replicas diverged: all of them, or any under the stop policy, fail the run. */
    status = check_divergence(comm, grid->rank, ensemble.first, ensemble.n_local, n_replicas,
                              ensemble.diverged_local, !ensemble.drop_diverged,
                              results->replica_dropped, &n_accepted);
    if (status != SGK_OK) goto done;

    /* 5. The kernel, (1/R') sum_r sum_c omega_c Theta_{r,c}, straight into its blocks. */
    {
        double seconds = 0.0;
        int stopped = 0;
        if (config->train.task == SGK_TASK_DENOISE)
            status = sgk_denoise_assemble(&ensemble, grid, results->replica_dropped, n_accepted,
                                          results, step_time(config), &results->sgk,
                                          &results->denoise, &seconds, &stopped);
        else if (plan.gan != NULL)
            status = sgk_gan_kernel_assemble(&ensemble, grid, results->replica_dropped,
                                             results->quadrature_weight, 1.0 / (double)n_accepted,
                                             &results->sgk, &seconds, &stopped);
        else
            status = sgk_kernel_assemble(&ensemble, grid, results->replica_dropped,
                                         results->quadrature_weight, 1.0 / (double)n_accepted,
                                         &results->sgk, &seconds, &stopped);
        results->phase_seconds[SGK_PHASE_KERNEL] += seconds;
        if (status == SGK_OK && stopped) {
            status = sgk_ensemble_snapshot(&ensemble);
            if (status == SGK_OK) {
                results->interrupted = 1;
                sgk_log(SGK_LOG_WARN, "kernel assembly stopped by a signal; the trained ensemble "
                        "is in the snapshot");
            }
            goto done;
        }
    }
    if (status != SGK_OK) goto done;

    /* 6. The rank-0 statistics. */
    start = sgk_seconds();
    status = reduce_ensemble(config, data, grid, &ensemble, n_accepted, results);
    if (status == SGK_OK && plan.gan != NULL)
        status = sgk_gan_field(&ensemble, grid, results->replica_dropped, n_accepted,
                               &results->gan);
    results->phase_seconds[SGK_PHASE_REDUCE] = sgk_seconds() - start;
    if (status != SGK_OK) goto done;
    if (options->keep_first_weights)
        status = collect_first_weights(grid, &ensemble, buffers.net.n_params, results);
    if (status != SGK_OK) goto done;
    sgk_ensemble_free(&ensemble);

    /* 7. Kernel evolution on rank 0, then the spectrum and what follows from it. */
    if (grid->rank == 0 && results->n_probe > 0) status = evolve(data, results);
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    {
        /* The output file's layout must be known on every rank. */
        int shape[2] = { results->has_evolution, results->evolution.n_top };
        MPI_Bcast(shape, 2, MPI_INT, 0, comm);
        results->has_evolution = shape[0];
        results->evolution.n_top = shape[1];
    }
    start = sgk_seconds();
    status = analyse(config, data, grid, results);
    if (status == SGK_OK && config->train.task == SGK_TASK_DENOISE)
        status = sgk_denoise_analyse(config, data, results->analysis.n_eig, &results->denoise);
    results->phase_seconds[SGK_PHASE_SPECTRUM] = sgk_seconds() - start;

done:
    sgk_ensemble_free(&ensemble);
    run_buffers_free(&buffers);
    free(conditioned.x);
    return status;
}

sgk_status sgk_run_network(const sgk_config *config, const sgk_dataset *data, sgk_mlp *net)
{
    int inputs = data->n_features, outputs = data->n_outputs;

    if (config->train.task == SGK_TASK_DENOISE) inputs++;
    if (config->train.task == SGK_TASK_GAN) {
        inputs = config->gan.latent_dim;
        outputs = data->n_features;
    }
    return sgk_mlp_create(net, inputs, config->model.widths, config->model.n_hidden, outputs,
                          config->model.activation, config->model.parametrization);
}

void sgk_results_free(sgk_results *results)
{
    free(results->checkpoint_step);
    free(results->checkpoint_time);
    free(results->quadrature_weight);
    free(results->loss_train);
    free(results->loss_test);
    free(results->f_mean);
    free(results->f_var);
    free(results->eigenvalues);
    sgk_analysis_free(&results->analysis);
    sgk_evolution_free(&results->evolution);
    sgk_denoise_results_free(&results->denoise);
    free(results->drift);
    free(results->remainder);
    free(results->kernel_machine);
    free(results->retrieval_index);
    free(results->retrieval_weight);
    free(results->f_replica_final);
    free(results->probe_index);
    free(results->probe_mean);
    free(results->probe_var);
    free(results->replica_dropped);
    free(results->final_weights);
    sgk_gan_results_free(&results->gan);
    sgk_dmatrix_free(&results->sgk);
    memset(results, 0, sizeof *results);
}
