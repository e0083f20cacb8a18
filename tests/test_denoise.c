/* The denoise task: per-level kernels against closed forms, their sum, the locality
 * profile, and the zero-noise limit against the supervised run of the same regression.
 * Collective: every rank runs every test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/sgk.h"

static sgk_grid grid;
static int rank;

typedef struct {
    sgk_config config;
    sgk_dataset data;
    sgk_results results;
    double *sgk;      /* gathered total kernel, rank 0 */
    double *levels;   /* gathered level kernels, L x N x N, rank 0 */
} run_case;

/* Run `run->config` on `run->data` and gather the kernels to rank 0. */
static sgk_status run_and_gather(run_case *run)
{
    long n = run->data.n_samples;
    sgk_status status = sgk_run_experiment(&run->config, &run->data, &grid, NULL, &run->results);

    if (status != SGK_OK) {
        fprintf(stderr, "run: %s\n", sgk_error_message());
        return status;
    }
    int n_levels = run->results.denoise.n_levels;
    if (rank == 0) {
        run->sgk = malloc(sizeof(double) * n * n);
        run->levels = malloc(sizeof(double) * (n_levels > 0 ? n_levels : 1) * n * n);
    }
    SGK_CHECK(sgk_dmatrix_gather(&run->results.sgk, 0, run->sgk));
    for (int l = 0; l < n_levels; l++)
        SGK_CHECK(sgk_dmatrix_gather(&run->results.denoise.level_kernel[l], 0,
                                     rank == 0 ? run->levels + (size_t)l * n * n : NULL));
    return SGK_OK;
}

/* A denoise run on teacher points (whose targets become the points themselves). */
static sgk_status run_denoise(const char *const *overrides, int count, run_case *run)
{
    memset(run, 0, sizeof *run);
    SGK_CHECK(sgk_test_configure(overrides, count, &run->config));
    SGK_CHECK(sgk_dataset_load(&run->config, grid.comm, &run->data));
    SGK_CHECK(sgk_denoise_targets(&run->data));
    return run_and_gather(run);
}

static void run_free(run_case *run)
{
    free(run->sgk);
    free(run->levels);
    sgk_results_free(&run->results);
    sgk_dataset_free(&run->data);
}

#define ARGS(...)                                                                            \
    (const char *const[]){ __VA_ARGS__ },                                                    \
        (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

static double dot(const double *a, const double *b, int d)
{
    double sum = 0.0;
    for (int k = 0; k < d; k++) sum += a[k] * b[k];
    return sum;
}

/* Time each replica spent on each level before step `before`, mean over replicas: the
 * level of step k is drawn as documented, the first draw of substream k of the
 * SGK_RNG_LEVEL stream. */
static void mean_level_time(const sgk_config *config, long before, double *time)
{
    int n_levels = config->denoise.levels;

    memset(time, 0, sizeof(double) * n_levels);
    for (long r = 0; r < config->ensemble.replicas; r++) {
        sgk_rng rng;
        sgk_rng_init(&rng, config->ensemble.seed, (uint64_t)r, SGK_RNG_LEVEL);
        for (long k = 0; k < before; k++) {
            sgk_rng_seek(&rng, (uint64_t)k);
            time[sgk_rng_below(&rng, (uint64_t)n_levels)] +=
                config->train.lr / (double)config->ensemble.replicas;
        }
    }
}

/* Linear network D(x, sigma) = W (x, sigma) + b: its tangent kernel is
 * (u.u' + 1) I_O whatever the weights, so K^(l)(x, x') = O (x.x' + sigma_l^2 + 1) T_l with
 * T_l the mean time spent on level l. Tolerance 1e-12 relative: the program sums
 * R C L terms of the same closed form, a rounding error of order 1e-15 relative. */
static void test_linear_level_kernels(void)
{
    run_case run;
    sgk_status status = run_denoise(ARGS("data.source=teacher", "data.n_train=14", "data.n_test=5",
                                         "data.teacher_inputs=3", "model.widths=", "train.task=denoise",
                                         "train.lr=0.05", "train.steps=30", "train.batch_size=4",
                                         "ensemble.replicas=3", "kernel.checkpoints=4",
                                         "denoise.levels=3", "denoise.sigma_min=0.1",
                                         "denoise.sigma_max=1", "denoise.locality_bins=5",
                                         "kernel.block_size=4"),
                                    &run);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);

    const sgk_denoise_results *dn = &run.results.denoise;
    int n_levels = 3, d = run.data.n_features, n_outputs = run.data.n_outputs;
    int n_checkpoints = run.results.n_checkpoints;
    long n = run.data.n_samples;
    double time[3];
    mean_level_time(&run.config, run.config.train.steps, time);

    /* The time spent on each level before every checkpoint, counted step by step. */
    for (int c = 0; c < n_checkpoints; c++) {
        double before[3];
        mean_level_time(&run.config, run.results.checkpoint_step[c], before);
        for (int l = 0; l < n_levels; l++)
            CU_ASSERT(fabs(dn->level_time[(size_t)c * n_levels + l] - before[l]) <= 1e-13);
    }

    CU_ASSERT_EQUAL_FATAL(dn->n_levels, n_levels);
    CU_ASSERT_EQUAL(n_outputs, d);
    for (int l = 0; l < n_levels; l++) {
        double sigma = 1.0 * pow(0.1, l / 2.0);
        CU_ASSERT(fabs(dn->noise_level[l] - sigma) <= 1e-15 * sigma);
        double trace = 0.0;
        for (long a = 0; a < n; a++)
            trace += n_outputs * (dot(run.data.x + a * d, run.data.x + a * d, d) + sigma * sigma + 1.0);
        for (int c = 0; c < n_checkpoints; c++)
            CU_ASSERT(fabs(dn->level_trace[(size_t)c * n_levels + l] - trace) <= 1e-12 * trace);
    }
    if (rank == 0) {
        double worst = 0.0, worst_sum = 0.0;
        for (int l = 0; l < n_levels; l++) {
            double sigma = dn->noise_level[l];
            for (long a = 0; a < n; a++)
                for (long b = 0; b < n; b++) {
                    double expected = n_outputs * time[l]
                                      * (dot(run.data.x + a * d, run.data.x + b * d, d)
                                         + sigma * sigma + 1.0);
                    double got = run.levels[((size_t)l * n + a) * n + b];
                    worst = fmax(worst, fabs(got - expected) / fabs(expected));
                }
        }
        /* The total kernel against its own closed form, the time-weighted sum over levels
         * of the level kernels', and against the sum of the stored level kernels. */
        double worst_total = 0.0;
        for (long a = 0; a < n; a++)
            for (long b = 0; b < n; b++) {
                double expected = 0.0, sum = 0.0;
                for (int l = 0; l < n_levels; l++) {
                    double sigma = dn->noise_level[l];
                    expected += n_outputs * time[l]
                                * (dot(run.data.x + a * d, run.data.x + b * d, d) + sigma * sigma + 1.0);
                    sum += run.levels[((size_t)l * n + a) * n + b];
                }
                worst_total = fmax(worst_total, fabs(run.sgk[a * n + b] - expected) / fabs(expected));
                worst_sum = fmax(worst_sum, fabs(sum - run.sgk[a * n + b]) / fabs(run.sgk[a * n + b]));
            }
        printf("\n  largest relative deviation from the closed form: levels %.2e, total %.2e; "
               "of the level sum from the total %.2e\n", worst, worst_total, worst_sum);
        CU_ASSERT(worst <= 1e-12);
        CU_ASSERT(worst_total <= 1e-12);
        /* The total is the sum of the parts, added in level order. */
        CU_ASSERT(worst_sum <= 1e-14);
    }
    run_free(&run);
}

/* The locality profile from the gathered level kernels, binned as documented: bins of
 * width (largest distance) / bins, the last one closed. Tolerance 1e-12 relative: both
 * sides average the same kernel values in different orders. */
static void test_locality_profile(void)
{
    run_case run;
    const int n_bins = 6;
    sgk_status status = run_denoise(ARGS("data.source=teacher", "data.n_train=20", "data.n_test=7",
                                         "data.teacher_inputs=2", "model.widths=6",
                                         "model.activation=tanh", "train.task=denoise",
                                         "train.lr=0.05", "train.steps=20", "train.batch_size=5",
                                         "ensemble.replicas=2", "kernel.checkpoints=3",
                                         "denoise.levels=2", "denoise.sigma_min=0.2",
                                         "denoise.sigma_max=1", "denoise.locality_bins=6",
                                         "kernel.block_size=3"),
                                    &run);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    const sgk_denoise_results *dn = &run.results.denoise;
    CU_ASSERT_EQUAL_FATAL(dn->n_bins, n_bins);
    if (rank == 0) {
        long n = run.data.n_samples;
        int d = run.data.n_features;
        double largest = 0.0;
        for (long a = 0; a < n; a++)
            for (long b = 0; b < n; b++) {
                double r = 0.0;
                for (int k = 0; k < d; k++) {
                    double diff = run.data.x[a * d + k] - run.data.x[b * d + k];
                    r += diff * diff;
                }
                largest = fmax(largest, sqrt(r));
            }
        for (int l = 0; l < dn->n_levels; l++) {
            const double *K = run.levels + (size_t)l * n * n;
            double sum[6] = { 0 }, normalized[6] = { 0 }, count[6] = { 0 };
            for (long a = 0; a < n; a++)
                for (long b = 0; b < n; b++) {
                    if (a == b) continue;
                    double r = 0.0;
                    for (int k = 0; k < d; k++) {
                        double diff = run.data.x[a * d + k] - run.data.x[b * d + k];
                        r += diff * diff;
                    }
                    int bin = (int)(sqrt(r) / (largest / n_bins));
                    if (bin >= n_bins) bin = n_bins - 1;
                    sum[bin] += K[a * n + b];
                    normalized[bin] += K[a * n + b] / sqrt(K[a * n + a] * K[b * n + b]);
                    count[bin] += 1.0;
                }
            for (int bin = 0; bin < n_bins; bin++) {
                CU_ASSERT_EQUAL(dn->bin_count[bin], count[bin]);
                if (count[bin] == 0.0) {
                    CU_ASSERT(isnan(dn->profile[l * n_bins + bin]));
                    continue;
                }
                double mean = sum[bin] / count[bin], cosine = normalized[bin] / count[bin];
                CU_ASSERT(fabs(dn->profile[l * n_bins + bin] - mean) <= 1e-12 * fabs(mean));
                CU_ASSERT(fabs(dn->profile_normalized[l * n_bins + bin] - cosine)
                          <= 1e-12 * fabs(cosine));
                /* Cauchy-Schwarz for a positive semidefinite kernel. */
                CU_ASSERT(fabs(cosine) <= 1.0 + 1e-12);
            }

            /* Half width: the first bin at or below half of the first non-empty one,
             * interpolated from the last non-empty bin before it. */
            const double *profile = dn->profile_normalized + l * n_bins;
            int first = 0;
            while (first < n_bins && count[first] == 0.0) first++;
            double expected = NAN;
            for (int bin = first + 1, previous = first; bin < n_bins; bin++) {
                if (count[bin] == 0.0) continue;
                if (profile[bin] <= 0.5 * profile[first]) {
                    double center0 = (previous + 0.5) * largest / n_bins;
                    double center1 = (bin + 0.5) * largest / n_bins;
                    expected = center0 + (profile[previous] - 0.5 * profile[first])
                                             / (profile[previous] - profile[bin])
                                             * (center1 - center0);
                    break;
                }
                previous = bin;
            }
            if (isnan(expected)) {
                CU_ASSERT(isnan(dn->width[l]));
            } else {
                CU_ASSERT(fabs(dn->width[l] - expected) <= 1e-12 * expected);
            }
            printf("\n  level %d: half width %.4g\n", l, dn->width[l]);
        }
    }
    run_free(&run);
}

/* With one replica, the trace of each assembled K^(l) is sum_c omega^(l)_c tr Theta_c^(l),
 * where the per-checkpoint traces come from level_trace and the weights are recounted here
 * from the level draws. The assembly forms the kernel's diagonal from row and column
 * factor panels, and level_trace from single-point Grams, so this checks one against the
 * other for a nonlinear network. Tolerance 1e-12 relative: both sides sum the same
 * products in different orders. */
static void test_level_trace_consistency(void)
{
    run_case run;
    sgk_status status = run_denoise(ARGS("data.source=teacher", "data.n_train=16", "data.n_test=5",
                                         "data.teacher_inputs=2", "model.widths=7,5",
                                         "model.activation=tanh", "train.task=denoise",
                                         "train.lr=0.05", "train.steps=24", "train.batch_size=4",
                                         "ensemble.replicas=1", "kernel.checkpoints=5",
                                         "denoise.levels=3", "denoise.sigma_min=0.1",
                                         "denoise.sigma_max=1", "kernel.block_size=3"),
                                    &run);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    if (rank == 0) {
        const sgk_denoise_results *dn = &run.results.denoise;
        int n_levels = 3, n_checkpoints = run.results.n_checkpoints;
        long n = run.data.n_samples;
        double interval[5][3] = { { 0 } };
        for (int c = 0; c + 1 < n_checkpoints; c++) {
            double before[3], after[3];
            mean_level_time(&run.config, run.results.checkpoint_step[c], before);
            mean_level_time(&run.config, run.results.checkpoint_step[c + 1], after);
            for (int l = 0; l < n_levels; l++) interval[c][l] = after[l] - before[l];
        }
        for (int l = 0; l < n_levels; l++) {
            double trace = 0.0, expected = 0.0;
            for (long a = 0; a < n; a++) trace += run.levels[((size_t)l * n + a) * n + a];
            for (int c = 0; c < n_checkpoints; c++) {
                double weight = 0.5 * ((c > 0 ? interval[c - 1][l] : 0.0)
                                       + (c + 1 < n_checkpoints ? interval[c][l] : 0.0));
                expected += weight * dn->level_trace[(size_t)c * n_levels + l];
            }
            printf("\n  level %d: trace %.6g, from level_trace %.6g\n", l, trace, expected);
            CU_ASSERT(fabs(trace - expected) <= 1e-12 * fabs(expected));
        }
    }
    run_free(&run);
}

/* One level with zero noise trains D(x, 0) to return x. That is the supervised regression
 * on inputs (x, 0) with targets x, with the same minibatches and initial weights. The two
 * runs must agree to rounding in kernel, outputs and losses. Training takes the same
 * floating-point operations (x + 0 * eps = x exactly), and only the assembly differs (the
 * regression caches its input Gram), so the tolerance is 1e-13 relative. */
static void test_zero_noise_limit(void)
{
    run_case denoise, supervised;
    const double tolerance = 1e-13;
    sgk_status status = run_denoise(ARGS("data.source=teacher", "data.n_train=18", "data.n_test=6",
                                         "data.teacher_inputs=3", "model.widths=8,8",
                                         "model.activation=tanh", "train.task=denoise",
                                         "train.lr=0.05", "train.steps=25", "train.batch_size=4",
                                         "ensemble.replicas=3", "kernel.checkpoints=5",
                                         "denoise.levels=1", "denoise.sigma_min=0",
                                         "denoise.sigma_max=0", "kernel.block_size=4"),
                                    &denoise);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);

    /* The supervised problem: the same points with a zero last input, targets the points. */
    memset(&supervised, 0, sizeof supervised);
    status = sgk_test_configure(ARGS("data.source=teacher", "data.n_train=18", "data.n_test=6",
                            "data.teacher_inputs=3", "model.widths=8,8", "model.activation=tanh",
                            "train.lr=0.05", "train.steps=25", "train.batch_size=4",
                            "ensemble.replicas=3", "kernel.checkpoints=5", "kernel.drift=no",
                            "kernel.block_size=4"),
                       &supervised.config);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    long n = denoise.data.n_samples;
    int d = denoise.data.n_features;
    supervised.data = denoise.data;
    supervised.data.n_features = d + 1;
    supervised.data.x = calloc((size_t)n * (d + 1), sizeof(double));
    supervised.data.y = malloc(sizeof(double) * n * d);
    supervised.data.split = malloc(sizeof(int) * n);
    supervised.data.label = NULL;
    supervised.data.source_index = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(supervised.data.x);
    for (long a = 0; a < n; a++) memcpy(supervised.data.x + a * (d + 1), denoise.data.x + a * d, sizeof(double) * d);
    memcpy(supervised.data.y, denoise.data.x, sizeof(double) * n * d);
    memcpy(supervised.data.split, denoise.data.split, sizeof(int) * n);
    status = run_and_gather(&supervised);
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);

    if (rank == 0) {
        double worst_kernel = 0.0, worst_output = 0.0, worst_loss = 0.0;
        size_t outputs = (size_t)denoise.results.n_checkpoints * n * d;
        for (long v = 0; v < n * n; v++)
            worst_kernel = fmax(worst_kernel, fabs(denoise.sgk[v] - supervised.sgk[v])
                                                  / fmax(1e-300, fabs(supervised.sgk[v])));
        for (size_t v = 0; v < outputs; v++)
            worst_output = fmax(worst_output, fabs(denoise.results.f_mean[v]
                                                   - supervised.results.f_mean[v]));
        for (long v = 0; v < denoise.results.n_replicas * denoise.results.n_checkpoints; v++)
            worst_loss = fmax(worst_loss, fabs(denoise.results.loss_train[v]
                                               - supervised.results.loss_train[v]));
        printf("\n  zero-noise limit: kernel %.2e relative, outputs %.2e, losses %.2e\n",
               worst_kernel, worst_output, worst_loss);
        CU_ASSERT(worst_kernel <= tolerance);
        CU_ASSERT(worst_output <= tolerance);
        CU_ASSERT(worst_loss <= tolerance);
    }
    free(supervised.data.x);
    free(supervised.data.y);
    free(supervised.data.split);
    free(supervised.sgk);
    free(supervised.levels);
    sgk_results_free(&supervised.results);
    run_free(&denoise);
}

/* Rejected settings name the key at fault. */
static void test_invalid_schedules(void)
{
    static const char *const cases[][2] = {
        { "denoise.sigma_min=3", "denoise.sigma_min" },
        { "denoise.sigma_min=0", "denoise.sigma_min = 0" },
        { "train.loss=xent", "train.loss" },
        { "kernel.drift=yes", "kernel.drift" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sgk_config config;
        sgk_config_defaults(&config);
        CU_ASSERT_EQUAL(sgk_config_override(&config, "train.task=denoise"), SGK_OK);
        CU_ASSERT_EQUAL(sgk_config_override(&config, cases[i][0]), SGK_OK);
        CU_ASSERT_EQUAL(sgk_config_validate(&config), SGK_ERR_USAGE);
        CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), cases[i][1]));
        sgk_error_clear();
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
    CU_pSuite suite = CU_add_suite("denoise", NULL, NULL);
    CU_add_test(suite, "linear level kernels", test_linear_level_kernels);
    CU_add_test(suite, "locality profile", test_locality_profile);
    CU_add_test(suite, "level trace consistency", test_level_trace_consistency);
    CU_add_test(suite, "zero noise limit", test_zero_noise_limit);
    CU_add_test(suite, "invalid schedules", test_invalid_schedules);
    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    sgk_grid_free(&grid);
    MPI_Finalize();
    return failed;
}
