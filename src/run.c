/* The experiment driver: schedule, replica training, kernel reduction, spectrum. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/log.h"
#include "sgk/mlp.h"
#include "sgk/run.h"
#include "sgk/spectrum.h"
#include "drift.h"
#include "train.h"

static const char *const phase_names[SGK_N_PHASES] = {
    "data", "train", "kernel", "drift", "reduce", "spectrum", "output"
};

const char *sgk_phase_name(int phase)
{
    return phase >= 0 && phase < SGK_N_PHASES ? phase_names[phase] : "unknown";
}

/* Checkpoint c at step round(c T / (C - 1)), diffusion time t = lr * step, and trapezoid
 * weights in diffusion time, so that sum_c omega_c g(t_c) approximates the integral of g
 * over [0, t_T]. */
static sgk_status make_schedule(const sgk_config *config, sgk_results *results)
{
    int n = config->kernel.checkpoints;
    long steps = config->train.steps;

    results->n_checkpoints = n;
    results->checkpoint_step = malloc(sizeof(long) * n);
    results->checkpoint_time = malloc(sizeof(double) * n);
    results->quadrature_weight = malloc(sizeof(double) * n);
    if (!results->checkpoint_step || !results->checkpoint_time || !results->quadrature_weight)
        return sgk_error(SGK_ERR_IO, "out of memory for %d checkpoints", n);

    for (int c = 0; c < n; c++) {
        results->checkpoint_step[c] = (long)llround((double)c * (double)steps / (double)(n - 1));
        results->checkpoint_time[c] = config->train.lr * (double)results->checkpoint_step[c];
    }
    for (int c = 0; c < n; c++) {
        double left = c > 0 ? results->checkpoint_time[c] - results->checkpoint_time[c - 1] : 0.0;
        double right = c < n - 1 ? results->checkpoint_time[c + 1] - results->checkpoint_time[c] : 0.0;
        results->quadrature_weight[c] = 0.5 * (left + right);
    }
    return SGK_OK;
}

/* Replicas go to ranks in contiguous blocks: rank r trains [first, first + count). */
static void replica_block(long n_replicas, int n_ranks, int rank, long *first, long *count)
{
    long begin = n_replicas * rank / n_ranks;
    long end = n_replicas * (rank + 1) / n_ranks;

    *first = begin;
    *count = end - begin;
}

/* Collective. Ensemble mean and unbiased variance over replicas of n_values numbers per
 * replica (local holds this rank's n_local replicas one after the other), on rank 0, from two
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
        replica_block(n_replicas, n_ranks, r, &first, &count);
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

/* Collective. Report every diverged replica; a diverged replica must not be averaged into
 * the kernel, so the run fails. The message is recorded on rank 0 only, to print once. */
static sgk_status check_divergence(MPI_Comm comm, int rank, long first, long n_local, long n_replicas,
                                   const long *diverged_local)
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
        if (diverged[r] < 0) continue;
        n_diverged++;
        sgk_log(SGK_LOG_ERROR, "replica %ld diverged: loss or outputs not finite at step %ld", r,
                diverged[r]);
    }
    free(diverged);
    free(mine);
    if (n_diverged > 0 && rank != 0) {
        sgk_error_clear();
        return SGK_ERR_NUMERIC;
    }
    if (n_diverged > 0)
        return sgk_error(SGK_ERR_NUMERIC,
                         "%ld of %ld replicas diverged (non-finite loss or outputs); lower "
                         "[train] lr or check the inputs",
                         n_diverged, n_replicas);
    return SGK_OK;
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
        for (int j = 0; j < k; j++) {
            long best = -1;
            for (long i = 0; i < n_train; i++)
                if (norms[i] >= 0.0 && (best < 0 || norms[i] > norms[best])) best = i;
            results->retrieval_index[(size_t)a * k + j] = (int)best;
            results->retrieval_weight[(size_t)a * k + j] = norms[best];
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

sgk_status sgk_run_experiment(const sgk_config *config, const sgk_dataset *data,
                              const sgk_grid *grid, sgk_results *results)
{
    MPI_Comm comm = grid->comm;
    int rank = grid->rank;
    long n_samples = data->n_samples;
    int n_outputs = data->n_outputs;
    long n_replicas = config->ensemble.replicas;
    size_t per_replica;           /* outputs stored per replica: C x N x O */
    size_t per_output;            /* outputs of one checkpoint: N x O */
    size_t per_probe;             /* probe kernels per replica: C x P x P */
    long n_probe;                 /* P */
    double *probe_local = NULL;   /* this rank's replicas' probe kernels */
    double *probe_gram = NULL;    /* P x P Gram of the probe inputs */
    long first, n_local;          /* this rank's replicas */
    sgk_mlp net;
    sgk_train_plan plan;
    sgk_replica_record record;
    double *kernel = NULL;        /* this rank's N x N partial kernel */
    double *input_gram = NULL;    /* <x_a, x_b>, shared by every checkpoint */
    double *kernel_weight = NULL; /* omega_c / R */
    double *f_local = NULL, *loss_train_local = NULL, *loss_test_local = NULL;
    long *diverged_local = NULL;
    int drift_enabled = config->kernel.drift;
    sgk_drift drift;              /* this rank's drift pairs, summed over its replicas */
    sgk_status status = SGK_OK;
    double start;

    /* 1. Network shape, schedule and the replicas of this rank. */
    memset(results, 0, sizeof *results);
    memset(&drift, 0, sizeof drift);
    results->n_replicas = n_replicas;
    status = sgk_mlp_create(&net, data->n_features, config->model.widths, config->model.n_hidden,
                            n_outputs, config->model.activation, config->model.parametrization);
    if (status == SGK_OK) status = make_schedule(config, results);
    status = agree(comm, status);
    if (status != SGK_OK) return status;
    replica_block(n_replicas, grid->n_ranks, rank, &first, &n_local);
    per_replica = (size_t)results->n_checkpoints * n_samples * n_outputs;
    per_output = (size_t)n_samples * n_outputs;
    n_probe = config->kernel.probe < n_samples ? config->kernel.probe : n_samples;
    per_probe = (size_t)results->n_checkpoints * n_probe * n_probe;
    results->n_probe = n_probe;
    sgk_log(SGK_LOG_INFO, "network: %d layers, %ld parameters; %ld replicas on %d ranks",
            net.n_layers, net.n_params, n_replicas, grid->n_ranks);

    /* 2. Buffers. Every rank holds an N x N partial kernel, zero when it trains no replica. */
    kernel = calloc((size_t)n_samples * n_samples, sizeof(double));
    kernel_weight = malloc(sizeof(double) * results->n_checkpoints);
    f_local = malloc(sizeof(double) * (per_replica * n_local + 1));
    loss_train_local = malloc(sizeof(double) * (results->n_checkpoints * n_local + 1));
    loss_test_local = malloc(sizeof(double) * (results->n_checkpoints * n_local + 1));
    diverged_local = malloc(sizeof(long) * (n_local + 1));
    if (n_local > 0) input_gram = malloc(sizeof(double) * (size_t)n_samples * n_samples);
    probe_local = malloc(sizeof(double) * (per_probe * n_local + 1));
    probe_gram = malloc(sizeof(double) * (n_probe * n_probe + 1));
    results->probe_index = malloc(sizeof(long) * (n_probe + 1));
    if (!kernel || !kernel_weight || !f_local || !loss_train_local || !loss_test_local
        || !diverged_local || (n_local > 0 && !input_gram) || !probe_local || !probe_gram
        || !results->probe_index)
        status = sgk_error(SGK_ERR_IO, "out of memory for the kernel of %ld evaluation points",
                           n_samples);
    if (status == SGK_OK && rank == 0) {
        results->loss_train = malloc(sizeof(double) * n_replicas * results->n_checkpoints);
        results->loss_test = malloc(sizeof(double) * n_replicas * results->n_checkpoints);
        results->f_mean = malloc(sizeof(double) * per_replica);
        results->f_var = malloc(sizeof(double) * per_replica);
        results->f_replica_final = malloc(sizeof(double) * per_output * n_replicas);
        results->probe_mean = malloc(sizeof(double) * (per_probe + 1));
        results->probe_var = malloc(sizeof(double) * (per_probe + 1));
        if (!results->loss_train || !results->loss_test || !results->f_mean || !results->f_var
            || !results->f_replica_final || !results->probe_mean || !results->probe_var)
            status = sgk_error(SGK_ERR_IO, "out of memory for the ensemble statistics");
    }
    if (status == SGK_OK)
        status = sgk_dmatrix_create(grid, n_samples, config->kernel.block_size, &results->sgk);
    if (status == SGK_OK && drift_enabled) {
        long batch_size = config->train.batch_size > 0 ? config->train.batch_size : data->n_train;
        status = sgk_drift_alloc(&net, n_samples, data->n_train, (int)batch_size, &drift);
    }
    status = agree(comm, status);
    if (status != SGK_OK) goto done;

    /* 3. Train this rank's replicas. Each adds omega_c / R times its checkpoint kernels. */
    start = sgk_seconds();
    for (int c = 0; c < results->n_checkpoints; c++)
        kernel_weight[c] = results->quadrature_weight[c] / (double)n_replicas;
    if (n_local > 0)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n_samples, data->n_features, 1.0,
                    data->x, data->n_features, 0.0, input_gram, (int)n_samples);
    for (long i = 0; n_local > 0 && i < n_samples; i++)
        for (long j = 0; j < i; j++) input_gram[i * n_samples + j] = input_gram[j * n_samples + i];
    /* Probe points evenly spread over the evaluation set, so they cover every split. */
    for (long p = 0; p < n_probe; p++) results->probe_index[p] = p * n_samples / n_probe;
    for (long p = 0; p < n_probe; p++)
        for (long q = 0; q < n_probe; q++)
            probe_gram[p * n_probe + q] = n_local > 0 ? input_gram[results->probe_index[p] * n_samples
                                                                   + results->probe_index[q]]
                                                      : 0.0;
    plan = (sgk_train_plan){ .config = config,
                             .data = data,
                             .net = &net,
                             .input_gram = input_gram,
                             .n_checkpoints = results->n_checkpoints,
                             .checkpoint_step = results->checkpoint_step,
                             .kernel_weight = kernel_weight,
                             .drift = drift_enabled ? &drift : NULL,
                             .path_nodes = config->kernel.path_nodes,
                             .n_probe = n_probe,
                             .probe_index = results->probe_index,
                             .probe_input_gram = probe_gram };
    for (long r = 0; r < n_local && status == SGK_OK; r++) {
        record.f = f_local + r * per_replica;
        record.loss_train = loss_train_local + r * results->n_checkpoints;
        record.loss_test = loss_test_local + r * results->n_checkpoints;
        record.probe_kernel = probe_local + r * per_probe;
        status = sgk_replica_train(&plan, first + r, kernel, &record);
        diverged_local[r] = record.diverged_step;
        results->phase_seconds[SGK_PHASE_TRAIN] += record.seconds_train;
        results->phase_seconds[SGK_PHASE_KERNEL] += record.seconds_kernel;
        results->phase_seconds[SGK_PHASE_DRIFT] += record.seconds_drift;
        sgk_log_any(SGK_LOG_DEBUG, "replica %ld done: final train loss %.6g, %.2f s training, "
                    "%.2f s kernels", first + r, record.loss_train[results->n_checkpoints - 1],
                    record.seconds_train, record.seconds_kernel);
    }
    sgk_log(SGK_LOG_INFO, "rank 0 trained %ld replicas in %.2f s", n_local, sgk_seconds() - start);
    status = agree(comm, status);
    if (status == SGK_OK) status = check_divergence(comm, rank, first, n_local, n_replicas,
                                                    diverged_local);
    if (status != SGK_OK) goto done;

    /* 4. Reduce the partial kernels into the block-cyclic matrix, and the ensemble statistics to rank 0. */
    start = sgk_seconds();
    status = sgk_dmatrix_reduce_add(&results->sgk, kernel);
    if (status == SGK_OK)
        status = reduce_moments(comm, n_local, n_replicas, per_replica, f_local, results->f_mean,
                                results->f_var, rank);
    if (status == SGK_OK && n_probe > 0)
        status = reduce_moments(comm, n_local, n_replicas, per_probe, probe_local,
                                results->probe_mean, results->probe_var, rank);
    if (status == SGK_OK)
        status = gather_replicas(comm, grid->n_ranks, n_replicas, (size_t)results->n_checkpoints,
                                 loss_train_local, n_local, results->loss_train);
    if (status == SGK_OK)
        status = gather_replicas(comm, grid->n_ranks, n_replicas, (size_t)results->n_checkpoints,
                                 loss_test_local, n_local, results->loss_test);
    /* The final outputs are the last of each replica's C blocks; pack them contiguously. */
    for (long r = 0; status == SGK_OK && r < n_local; r++)
        memmove(f_local + r * per_output, f_local + r * per_replica + per_replica - per_output,
                sizeof(double) * per_output);
    if (status == SGK_OK)
        status = gather_replicas(comm, grid->n_ranks, n_replicas, per_output, f_local, n_local,
                                 results->f_replica_final);
    if (status == SGK_OK && drift_enabled)
        status = reduce_drift_pairs(comm, rank, drift.pair,
                                    (size_t)n_samples * data->n_train * n_outputs);
    results->phase_seconds[SGK_PHASE_REDUCE] = sgk_seconds() - start;
    if (status == SGK_OK && drift_enabled && rank == 0) {
        status = compute_estimates(config, data, drift.pair, results);
        if (status == SGK_OK) log_estimates(data, results);
    }
    results->has_drift = drift_enabled;
    status = agree(comm, status);
    if (status != SGK_OK) goto done;
    free(kernel);
    kernel = NULL;
    sgk_drift_free(&drift);

    /* 5. Spectrum of K_n = K_train / n: training points lead the evaluation set. */
    start = sgk_seconds();
    {
        sgk_dmatrix train_block;
        results->n_eig = data->n_train;
        results->eigenvalues = malloc(sizeof(double) * data->n_train);
        if (!results->eigenvalues)
            status = sgk_error(SGK_ERR_IO, "out of memory for %ld eigenvalues", data->n_train);
        status = agree(comm, status);
        if (status != SGK_OK) goto done;
        status = sgk_dmatrix_leading_block(&results->sgk, data->n_train,
                                           1.0 / (double)data->n_train, &train_block);
        if (status == SGK_OK) {
            status = sgk_spectrum_eigh(&train_block, results->eigenvalues, NULL);
            sgk_dmatrix_free(&train_block);
        }
    }
    results->phase_seconds[SGK_PHASE_SPECTRUM] = sgk_seconds() - start;
    if (status == SGK_OK)
        sgk_log(SGK_LOG_INFO, "spectrum of K_train / n: lambda_1 = %.6g, lambda_n = %.6g",
                results->eigenvalues[0], results->eigenvalues[results->n_eig - 1]);

done:
    free(probe_local);
    free(probe_gram);
    sgk_drift_free(&drift);
    free(kernel);
    free(input_gram);
    free(kernel_weight);
    free(f_local);
    free(loss_train_local);
    free(loss_test_local);
    free(diverged_local);
    return status;
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
    free(results->drift);
    free(results->remainder);
    free(results->kernel_machine);
    free(results->retrieval_index);
    free(results->retrieval_weight);
    free(results->f_replica_final);
    free(results->probe_index);
    free(results->probe_mean);
    free(results->probe_var);
    sgk_dmatrix_free(&results->sgk);
    memset(results, 0, sizeof *results);
}
