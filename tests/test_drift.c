/* Drift, remainder and kernel-machine bookkeeping of whole runs, checked against closed
 * forms and an independent simulation. Collective: every rank runs every test. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/sgk.h"

static sgk_grid grid;
static int rank;

/* A teacher-data run described by overrides on top of the defaults. */
typedef struct {
    sgk_config config;
    sgk_dataset data;
    sgk_results results;
    double *sgk;   /* gathered kernel, rank 0 */
} run_case;

static sgk_status run_with(const char *const *overrides, int count, run_case *run)
{
    sgk_status status;

    memset(run, 0, sizeof *run);
    status = sgk_test_configure(overrides, count, &run->config);
    if (status != SGK_OK) return status;
    status = sgk_dataset_load(&run->config, grid.comm, &run->data);
    if (status != SGK_OK) return status;
    status = sgk_run_experiment(&run->config, &run->data, &grid, NULL, &run->results);
    if (status != SGK_OK) {
        if (sgk_error_message()[0] != '\0') fprintf(stderr, "run: %s\n", sgk_error_message());
        return status;
    }
    long n = run->data.n_samples;
    run->sgk = rank == 0 ? malloc(sizeof(double) * n * n) : NULL;
    return sgk_dmatrix_gather(&run->results.sgk, 0, run->sgk);
}

static void run_free(run_case *run)
{
    free(run->sgk);
    sgk_results_free(&run->results);
    sgk_dataset_free(&run->data);
}

#define RUN(run, ...)                                                                        \
    run_with((const char *const[]){ __VA_ARGS__ },                                           \
             (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)), run)

static const double *final_mean(const run_case *run)
{
    return run->results.f_mean
           + (size_t)(run->results.n_checkpoints - 1) * run->data.n_samples * run->data.n_outputs;
}

static double rms_remainder(const run_case *run)
{
    double sum = 0.0;
    long count = run->data.n_samples * run->data.n_outputs;

    for (long v = 0; v < count; v++) sum += run->results.remainder[v] * run->results.remainder[v];
    return sqrt(sum / count);
}

/* Linear model f = w.x + b: the tangent kernel is x.x' + 1 at every step, so the SGK is
 * t_T (x.x' + 1), the drift pairs follow from the residuals along the path, and the
 * remainder is zero: a linear model moves exactly along its gradient. The test repeats
 * the SGD path with its own arithmetic (sharing only the random streams) and compares.
 * Tolerance 1e-12 relative: both sides sum the same O(steps * batch) terms in different
 * orders, a rounding error of order 1e-14 relative. */
static void test_linear_closed_form(void)
{
    run_case run;
    const long steps = 30, batch = 4, replicas = 3;
    const double lr = 0.05;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=12", "data.n_test=6",
                            "data.teacher_inputs=4", "model.widths=", "train.lr=0.05",
                            "train.batch_size=4", "train.steps=30", "ensemble.replicas=3",
                            "kernel.checkpoints=4", "kernel.block_size=4", "kernel.drift=yes",
                            "output.retrieval=3");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank != 0) {
        run_free(&run);
        return;
    }

    const sgk_dataset *data = &run.data;
    long n = data->n_samples, n_train = data->n_train;
    int d = data->n_features;
    double t_final = lr * steps, kernel_scale = 0.0, kernel_error = 0.0;

    /* 1. SGK = t_T (x.x' + 1). */
    for (long a = 0; a < n; a++)
        for (long b = 0; b < n; b++) {
            double dot = 1.0;
            for (int k = 0; k < d; k++) dot += data->x[a * d + k] * data->x[b * d + k];
            kernel_scale = fmax(kernel_scale, fabs(t_final * dot));
            kernel_error = fmax(kernel_error, fabs(run.sgk[a * n + b] - t_final * dot));
        }
    CU_ASSERT(kernel_error <= 1e-12 * kernel_scale);

    /* 2. Independent SGD path per replica, accumulating D(x_a, x_i) / R. */
    sgk_mlp net;
    int widths[1] = { 0 };
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&net, d, widths, 0, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD),
                          SGK_OK);
    double *pair = calloc((size_t)n * n_train, sizeof(double));
    double *w = malloc(sizeof(double) * net.n_params);
    double *residual = malloc(sizeof(double) * batch);
    long *chosen = malloc(sizeof(long) * batch), *scratch = malloc(sizeof(long) * n_train);
    for (long r = 0; r < replicas; r++) {
        sgk_rng init_rng, batch_rng;
        sgk_rng_init(&init_rng, run.config.ensemble.seed, (uint64_t)r, SGK_RNG_INIT);
        sgk_rng_init(&batch_rng, run.config.ensemble.seed, (uint64_t)r, SGK_RNG_BATCH);
        sgk_mlp_init_params(&net, &init_rng, w);
        for (long step = 0; step < steps; step++) {
            sgk_rng_seek(&batch_rng, (uint64_t)step);
            sgk_rng_sample(&batch_rng, n_train, batch, scratch, chosen);
            for (long j = 0; j < batch; j++) {
                const double *x = data->x + chosen[j] * d;
                double f = w[d];
                for (int k = 0; k < d; k++) f += w[k] * x[k];
                residual[j] = f - data->y[chosen[j]];
            }
            for (long a = 0; a < n; a++)
                for (long j = 0; j < batch; j++) {
                    double dot = 1.0;
                    for (int k = 0; k < d; k++) dot += data->x[a * d + k] * data->x[chosen[j] * d + k];
                    pair[a * n_train + chosen[j]] += lr / batch * dot * residual[j] / replicas;
                }
            for (long j = 0; j < batch; j++) {
                for (int k = 0; k < d; k++) w[k] -= lr / batch * residual[j] * data->x[chosen[j] * d + k];
                w[d] -= lr / batch * residual[j];
            }
        }
    }

    /* 3. drift = -sum_i D, the largest |D| leads the retrieval list, remainder ~ 0. */
    double drift_scale = 0.0, drift_error = 0.0, remainder_max = 0.0, retrieval_error = 0.0;
    for (long a = 0; a < n; a++) {
        double sum = 0.0, largest = 0.0;
        for (long i = 0; i < n_train; i++) {
            sum += pair[a * n_train + i];
            largest = fmax(largest, fabs(pair[a * n_train + i]));
        }
        drift_scale = fmax(drift_scale, fabs(sum));
        drift_error = fmax(drift_error, fabs(run.results.drift[a] + sum));
        remainder_max = fmax(remainder_max, fabs(run.results.remainder[a]));
        retrieval_error = fmax(retrieval_error,
                               fabs(run.results.retrieval_weight[a * 3] - largest));
        long top = run.results.retrieval_index[a * 3];
        CU_ASSERT(fabs(fabs(pair[a * n_train + top]) - largest) <= 1e-12 * largest);
        CU_ASSERT(run.results.retrieval_weight[a * 3] >= run.results.retrieval_weight[a * 3 + 1]);
        CU_ASSERT(run.results.retrieval_weight[a * 3 + 1] >= run.results.retrieval_weight[a * 3 + 2]);
        CU_ASSERT(fabs(run.results.kernel_machine[a] - (run.results.f_mean[a] + run.results.drift[a]))
                  <= 1e-14 * fmax(1.0, fabs(run.results.kernel_machine[a])));
    }
    CU_ASSERT(drift_scale > 0.0);
    CU_ASSERT(drift_error <= 1e-12 * drift_scale);
    CU_ASSERT(retrieval_error <= 1e-12 * drift_scale);
    CU_ASSERT(remainder_max <= 1e-12 * drift_scale);

    free(pair);
    free(w);
    free(residual);
    free(chosen);
    free(scratch);
    run_free(&run);
}

/* RMSProp on a linear model, full batch: the kernel is the preconditioned tangent kernel
 * x . P x' + P_bias of each replica's step at each checkpoint, weighted by omega_c / R.
 * The test repeats the RMSProp path with its own arithmetic (sharing only the initial
 * weights) and compares with 1e-12 relative: both sides add the same few hundred terms
 * in different orders. */
static void test_preconditioned_kernel(void)
{
    run_case run;
    const long steps = 12, replicas = 2;
    const double lr = 0.01, beta2 = 0.9, epsilon = 1e-8;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=10", "data.n_test=4",
                            "data.teacher_inputs=3", "model.widths=", "train.optimizer=rmsprop",
                            "train.lr=0.01", "train.beta2=0.9", "train.epsilon=1e-8",
                            "train.batch_size=full", "train.steps=12", "ensemble.replicas=2",
                            "kernel.checkpoints=4", "kernel.block_size=4", "kernel.probe=0");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank != 0) {
        run_free(&run);
        return;
    }

    const sgk_dataset *data = &run.data;
    long n = data->n_samples, n_train = data->n_train;
    int d = data->n_features, n_checkpoints = run.results.n_checkpoints;
    sgk_mlp net;
    int widths[1] = { 0 };
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&net, d, widths, 0, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD),
                          SGK_OK);
    double *expected = calloc((size_t)n * n, sizeof(double));
    double w[8], v[8], g[8], precond[8];

    for (long r = 0; r < replicas; r++) {
        sgk_rng init_rng;
        int c = 0;
        sgk_rng_init(&init_rng, run.config.ensemble.seed, (uint64_t)r, SGK_RNG_INIT);
        sgk_mlp_init_params(&net, &init_rng, w);
        for (int p = 0; p <= d; p++) v[p] = 0.0;
        for (long step = 0; step <= steps; step++) {
            int at_checkpoint = c < n_checkpoints && run.results.checkpoint_step[c] == step;
            if (step < steps) {
                /* Mean gradient of |f - y|^2 / 2 over all training points, then RMSProp. */
                for (int p = 0; p <= d; p++) g[p] = 0.0;
                for (long i = 0; i < n_train; i++) {
                    double f = w[d];
                    for (int k = 0; k < d; k++) f += w[k] * data->x[i * d + k];
                    double residual = f - data->y[i];
                    for (int k = 0; k < d; k++) g[k] += residual * data->x[i * d + k] / n_train;
                    g[d] += residual / n_train;
                }
                for (int p = 0; p <= d; p++) {
                    v[p] = beta2 * v[p] + (1.0 - beta2) * g[p] * g[p];
                    precond[p] = 1.0 / (sqrt(v[p]) + epsilon);
                    w[p] -= lr * g[p] * precond[p];
                }
            }
            /* The checkpoint's kernel uses the preconditioner of its step (the last one's
             * at the end). */
            if (at_checkpoint) {
                double weight = run.results.quadrature_weight[c] / replicas;
                for (long a = 0; a < n; a++)
                    for (long b = 0; b < n; b++) {
                        double value = precond[d];
                        for (int k = 0; k < d; k++)
                            value += data->x[a * d + k] * precond[k] * data->x[b * d + k];
                        expected[a * n + b] += weight * value;
                    }
                c++;
            }
        }
    }
    double scale = 0.0, error = 0.0;
    for (long i = 0; i < n * n; i++) {
        scale = fmax(scale, fabs(expected[i]));
        error = fmax(error, fabs(run.sgk[i] - expected[i]));
    }
    CU_ASSERT(scale > 0.0);
    CU_ASSERT(error <= 1e-12 * scale);
    free(expected);
    run_free(&run);
}

/* Exact mode: with 4 Gauss-Legendre nodes the path-averaged Jacobian integrates a smooth
 * (tanh) network's output change along each step to rounding, so the remainder falls to
 * about 1e-15 of the output change; 1e-10 leaves a wide margin for the quadrature error
 * of order (step length)^8. */
static void test_exact_path_nodes(void)
{
    run_case run;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=20", "data.n_test=10",
                            "data.teacher_inputs=5", "model.widths=8,8", "model.activation=tanh",
                            "train.lr=0.05", "train.batch_size=5", "train.steps=40",
                            "ensemble.replicas=3", "kernel.checkpoints=3", "kernel.block_size=8",
                            "kernel.drift=yes", "kernel.path_nodes=4");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank == 0) {
        const double *f_last = final_mean(&run);
        for (long v = 0; v < run.data.n_samples * run.data.n_outputs; v++) {
            double change = fabs(f_last[v] - run.results.f_mean[v]);
            CU_ASSERT(change > 0.0);
            CU_ASSERT(fabs(run.results.remainder[v]) <= 1e-10 * change);
        }
    }
    run_free(&run);
}

/* First order: the remainder is the curvature term, O(lr) in total over a fixed diffusion
 * time, so halving the learning rate and doubling the steps roughly halves it. Full batch
 * keeps both runs on the same gradient flow, so only the step size changes. */
static void test_first_order_rate(void)
{
    run_case coarse, fine;
    sgk_status status = RUN(&coarse, "data.source=teacher", "data.n_train=20", "data.n_test=10",
                            "data.teacher_inputs=5", "model.widths=8,8", "model.activation=tanh",
                            "train.lr=0.04", "train.batch_size=full", "train.steps=100",
                            "ensemble.replicas=2", "kernel.checkpoints=3", "kernel.drift=yes");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    status = RUN(&fine, "data.source=teacher", "data.n_train=20", "data.n_test=10",
                 "data.teacher_inputs=5", "model.widths=8,8", "model.activation=tanh",
                 "train.lr=0.02", "train.batch_size=full", "train.steps=200",
                 "ensemble.replicas=2", "kernel.checkpoints=3", "kernel.drift=yes");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank == 0) {
        double ratio = rms_remainder(&coarse) / rms_remainder(&fine);
        printf("\n  first-order remainder ratio (lr 0.04 / lr 0.02) = %.4f\n", ratio);
        CU_ASSERT(ratio >= 1.6 && ratio <= 2.4);
    }
    run_free(&coarse);
    run_free(&fine);
}

/* Full-batch gradient descent from one shared initialization: every replica follows the
 * same deterministic path. Their losses are then bitwise equal, and the variance is zero
 * up to the rounding of the mean (R equal values summed and divided by R can differ from
 * the value by an ulp), so it is bounded by (4 eps |mean|)^2. */
static void test_full_batch_identical(void)
{
    run_case run;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=16", "data.n_test=8",
                            "model.widths=6", "train.lr=0.05", "train.batch_size=full",
                            "train.steps=20", "ensemble.replicas=3", "ensemble.vary=batch",
                            "kernel.checkpoints=3", "kernel.drift=yes");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank == 0) {
        int n_checkpoints = run.results.n_checkpoints;
        size_t count = (size_t)n_checkpoints * run.data.n_samples * run.data.n_outputs;
        for (size_t v = 0; v < count; v++) {
            double bound = 4.0 * DBL_EPSILON * fabs(run.results.f_mean[v]);
            CU_ASSERT(run.results.f_var[v] <= bound * bound);
        }
        for (long r = 1; r < run.results.n_replicas; r++)
            for (int c = 0; c < n_checkpoints; c++)
                CU_ASSERT_EQUAL(run.results.loss_train[r * n_checkpoints + c],
                                run.results.loss_train[c]);
    }
    run_free(&run);
}

/* A learning rate far beyond stability makes the outputs overflow: the run must fail
 * with the numerical-failure status instead of averaging the replica in. */
static void test_divergence_reported(void)
{
    run_case run;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=16", "data.n_test=8",
                            "model.widths=6", "train.lr=1e6", "train.steps=50",
                            "train.batch_size=4", "ensemble.replicas=2", "kernel.checkpoints=3");
    CU_ASSERT_EQUAL(status, SGK_ERR_NUMERIC);
    run_free(&run);
}

/* Under the drop policy a replica whose minibatches hit an outlier overflows and is left
 * out: the run succeeds, marks it, and averages over the others only. The outlier
 * (inputs 1e60) keeps every output, kernel entry and their squares finite until a
 * replica takes a gradient step on it, after which its weights are of order 1e118 and
 * its squared residuals overflow. Which
 * replicas draw the outlier depends only on the Philox streams, so the split between
 * dropped and kept replicas is the same on every machine. */
static void test_drop_policy(void)
{
    char folder[] = "/tmp/sgk-test-drop.XXXXXX", csv[64], source[96];
    run_case run;
    sgk_status status;

    if (rank == 0) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(folder));
        snprintf(csv, sizeof csv, "%s/points.csv", folder);
        FILE *file = fopen(csv, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(file);
        for (int i = 0; i < 45; i++) {
            if (i == 17) fprintf(file, "1e60,1e60,1\n");
            else fprintf(file, "%g,%g,%g\n", 0.1 * (i % 7) - 0.3, 0.05 * (i % 11) - 0.2,
                         0.01 * i - 0.2);
        }
        fclose(file);
    }
    MPI_Bcast(folder, sizeof folder, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(csv, sizeof csv, "%s/points.csv", folder);
    snprintf(source, sizeof source, "data.path=%s", csv);

    status = RUN(&run, "data.source=csv", source, "data.n_train=40", "data.n_test=5",
                 "model.widths=8", "train.lr=0.01", "train.batch_size=1", "train.steps=10",
                 "ensemble.replicas=16", "kernel.checkpoints=2", "kernel.probe=0",
                 "train.on_divergence=drop");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank == 0) {
        long n_values = run.data.n_samples * run.data.n_outputs, kept = 0;
        const double *f_last = final_mean(&run);
        int n_checkpoints = run.results.n_checkpoints;

        for (long r = 0; r < run.results.n_replicas; r++) {
            double final_loss = run.results.loss_train[r * n_checkpoints + n_checkpoints - 1];
            /* A dropped replica stops before its last checkpoint, whose loss then stays NaN,
             * or diverges at it with a non-finite loss. */
            CU_ASSERT_EQUAL(run.results.replica_dropped[r] != 0, !isfinite(final_loss));
            kept += run.results.replica_dropped[r] == 0;
        }
        printf("\n  %ld of %ld replicas kept\n", kept, run.results.n_replicas);
        CU_ASSERT(kept > 0 && kept < run.results.n_replicas);

        /* The ensemble mean is the mean of the kept replicas' own final outputs. Both sum
         * the same values in replica order, so they agree to a few ulps. */
        for (long v = 0; v < n_values; v++) {
            double sum = 0.0;
            for (long r = 0; r < run.results.n_replicas; r++)
                if (!run.results.replica_dropped[r]) sum += run.results.f_replica_final[r * n_values + v];
            double mean = sum / (double)kept;
            CU_ASSERT(fabs(f_last[v] - mean) <= 1e-12 * fmax(1.0, fabs(mean)));
        }
    }
    run_free(&run);

    /* The same run under the stop policy fails with the numerical status. */
    status = RUN(&run, "data.source=csv", source, "data.n_train=40", "data.n_test=5",
                 "model.widths=8", "train.lr=0.01", "train.batch_size=1", "train.steps=10",
                 "ensemble.replicas=16", "kernel.checkpoints=2", "kernel.probe=0");
    CU_ASSERT_EQUAL(status, SGK_ERR_NUMERIC);
    run_free(&run);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        unlink(csv);
        rmdir(folder);
    }
}

int main(int argc, char **argv)
{
    int failed;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid) != SGK_OK) {
        fprintf(stderr, "grid: %s\n", sgk_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    sgk_log_setup(rank, SGK_LOG_WARN);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("drift", NULL, NULL);
    CU_add_test(suite, "linear model closed form", test_linear_closed_form);
    CU_add_test(suite, "exact path nodes", test_exact_path_nodes);
    CU_add_test(suite, "preconditioned kernel", test_preconditioned_kernel);
    CU_add_test(suite, "first order rate", test_first_order_rate);
    CU_add_test(suite, "full batch identical replicas", test_full_batch_identical);
    CU_add_test(suite, "divergence reported", test_divergence_reported);
    CU_add_test(suite, "drop policy", test_drop_policy);
    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    sgk_grid_free(&grid);
    MPI_Finalize();
    return failed;
}
