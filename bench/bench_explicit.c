/* `make bench`, part 3: one kernel block from layer factors against explicit Jacobians.
 *
 * Usage: sgk-bench-explicit [JACOBIAN_MIB [WIDTH]...]   (default 3072 MiB; 128 512 2048)
 * For each width w, a ReLU MLP 784-w-w-1 (standard parametrization) and m random inputs in
 * [0, 1). The block is the m x m traced kernel of those points, computed twice:
 *   layer factors:  sgk_mlp_tangent_factors, then sgk_tangent_gram(f, f) without an input
 *                   Gram (the block starts from the inputs alone);
 *   explicit:       sgk_mlp_jacobian (m x P), then sgk_tangent_gram_explicit.
 * m is the largest multiple of 16 up to 256 whose Jacobian fits in JACOBIAN_MIB, so the
 * explicit path fits in memory at every width. Each path repeats until it has run for
 * 0.5 s (at least once). The best time of the whole block counts, and the best times of
 * its two parts (the features, then the Gram) give the speedup of each part apart. The two
 * blocks must agree to rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sgk/mlp.h"
#include "sgk/rng.h"
#include "sgk/tangent.h"

enum { INPUTS = 784, MAX_POINTS = 256, POINT_STEP = 16 };
static const double REPEAT_SECONDS = 0.5;

static double now_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const sgk_mlp *net;
    const double *w, *x;
    int m;
    sgk_mlp_work *work;
    sgk_factors *factors;
    double *jacobian;
    double *K;
    double feature_seconds; /* of the last run */
} block_job;

static sgk_status factor_block(block_job *job)
{
    double start = now_seconds();

    memset(job->K, 0, sizeof(double) * (size_t)job->m * job->m);
    sgk_mlp_tangent_factors(job->net, job->w, job->x, job->m, job->work, job->factors, NULL);
    job->feature_seconds = now_seconds() - start;
    return sgk_tangent_gram(job->net, job->factors, job->factors, NULL, 0, 1.0, job->K, job->m);
}

static sgk_status explicit_block(block_job *job)
{
    const sgk_mlp *net = job->net;
    double start = now_seconds();

    memset(job->K, 0, sizeof(double) * (size_t)job->m * job->m);
    sgk_mlp_jacobian(net, job->w, job->x, job->m, job->work, job->jacobian);
    job->feature_seconds = now_seconds() - start;
    sgk_tangent_gram_explicit(job->m, job->m, net->dims[net->n_layers], net->n_params,
                              job->jacobian, job->jacobian, 1.0, job->K, job->m);
    return SGK_OK;
}

/* Best wall times of `run` over repetitions lasting REPEAT_SECONDS: of the whole block
 * (returned; NAN on failure), and apart of its features and of its Gram. */
static double best_time(sgk_status (*run)(block_job *), block_job *job, double *features,
                        double *gram)
{
    double best = INFINITY, start_all = now_seconds();

    *features = *gram = INFINITY;
    do {
        double start = now_seconds();
        if (run(job) != SGK_OK) return NAN;
        double seconds = now_seconds() - start;
        best = fmin(best, seconds);
        *features = fmin(*features, job->feature_seconds);
        *gram = fmin(*gram, seconds - job->feature_seconds);
    } while (now_seconds() - start_all < REPEAT_SECONDS);
    return best;
}

/* Run one width; returns 0, or an exit status after printing why. */
static int run_width(int width, double jacobian_bytes)
{
    int widths[2] = { width, width };
    sgk_mlp net;
    sgk_mlp_work work;
    sgk_factors factors;
    sgk_rng rng;

    if (sgk_mlp_create(&net, INPUTS, widths, 2, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD) != SGK_OK) {
        fprintf(stderr, "sgk-bench-explicit: %s\n", sgk_error_message());
        return 1;
    }
    long fit = (long)(jacobian_bytes / (sizeof(double) * (double)net.n_params));
    int m = (int)(fit < MAX_POINTS ? fit : MAX_POINTS) / POINT_STEP * POINT_STEP;
    if (m < POINT_STEP) {
        fprintf(stderr, "sgk-bench-explicit: the Jacobian of %d points at width %d does not fit "
                "in %.0f MiB; raise the first argument\n", POINT_STEP, width,
                jacobian_bytes / 1048576.0);
        return 1;
    }

    double *w = malloc(sizeof(double) * net.n_params);
    double *x = malloc(sizeof(double) * (size_t)m * INPUTS);
    double *K_factor = malloc(sizeof(double) * (size_t)m * m);
    double *K_explicit = malloc(sizeof(double) * (size_t)m * m);
    double *jacobian = malloc(sizeof(double) * (size_t)m * net.n_params);
    if (!w || !x || !K_factor || !K_explicit || !jacobian
        || sgk_mlp_work_alloc(&net, m, &work) != SGK_OK
        || sgk_factors_alloc(&net, m, &factors) != SGK_OK) {
        fprintf(stderr, "sgk-bench-explicit: out of memory for %d points at width %d "
                "(Jacobian %.0f MiB); lower the first argument\n", m, width,
                8.0 * m * (double)net.n_params / 1048576.0);
        return 4;
    }
    sgk_rng_init(&rng, 1, 0, SGK_RNG_INIT);
    sgk_mlp_init_params(&net, &rng, w);
    for (size_t i = 0; i < (size_t)m * INPUTS; i++) x[i] = sgk_rng_uniform(&rng);
    /* Touch the Jacobian before timing: its first write would otherwise time the kernel
     * mapping gigabytes of fresh pages, which varies from run to run. */
    memset(jacobian, 0, sizeof(double) * (size_t)m * net.n_params);

    block_job job = { &net, w, x, m, &work, &factors, jacobian, K_factor, 0.0 };
    double factor_features, factor_gram, explicit_features, explicit_gram;
    double factor_seconds = best_time(factor_block, &job, &factor_features, &factor_gram);
    job.K = K_explicit;
    double explicit_seconds = best_time(explicit_block, &job, &explicit_features,
                                        &explicit_gram);
    if (isnan(factor_seconds) || isnan(explicit_seconds)) {
        fprintf(stderr, "sgk-bench-explicit: %s\n", sgk_error_message());
        return 1;
    }

    /* Both blocks sum the same products in different orders. Rounding in sums of about P
     * terms stays far below 1e-9 of the largest entry (runs showed 3e-15), so a larger
     * deviation means a wrong block. */
    double largest = 0.0, deviation = 0.0;
    for (size_t i = 0; i < (size_t)m * m; i++) {
        largest = fmax(largest, fabs(K_explicit[i]));
        deviation = fmax(deviation, fabs(K_factor[i] - K_explicit[i]));
    }
    printf("%6d %9ld %5d %8.0f %10.4f %10.3f %8.0fx %8.0fx %8.0fx %8.1e\n", width,
           net.n_params, m, 8.0 * m * (double)net.n_params / 1048576.0, factor_seconds,
           explicit_seconds, explicit_seconds / factor_seconds,
           explicit_features / factor_features, explicit_gram / factor_gram,
           deviation / largest);
    printf("RESULT explicit_points_%d %d\n", width, m);
    printf("RESULT explicit_speedup_%d %.2f\n", width, explicit_seconds / factor_seconds);

    free(w);
    free(x);
    free(K_factor);
    free(K_explicit);
    free(jacobian);
    sgk_mlp_work_free(&work);
    sgk_factors_free(&factors);
    if (deviation > 1e-9 * largest) {
        fprintf(stderr, "sgk-bench-explicit: the two blocks at width %d differ by %.3g of the "
                "largest entry; the timing above compares different results\n", width,
                deviation / largest);
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const int default_widths[] = { 128, 512, 2048 };
    double mib = argc > 1 ? atof(argv[1]) : 3072.0;
    int n_widths = argc > 2 ? argc - 2 : 3;

    if (!(mib > 0.0)) {
        fprintf(stderr, "sgk-bench-explicit: invalid Jacobian budget '%s'; expected MiB > 0\n",
                argv[1]);
        return 1;
    }
    printf("ReLU MLP 784-w-w-1, one m x m block; times are the best of repeated runs\n");
    printf("%6s %9s %5s %8s %10s %10s %9s %9s %9s %8s\n", "", "", "", "", "factors",
           "explicit", "speedup", "speedup", "speedup", "");
    printf("%6s %9s %5s %8s %10s %10s %9s %9s %9s %8s\n", "width", "params", "m", "Jac MiB",
           "block s", "block s", "block", "features", "Gram", "max dev.");
    for (int k = 0; k < n_widths; k++) {
        int width = argc > 2 ? atoi(argv[k + 2]) : default_widths[k];
        if (width < 1) {
            fprintf(stderr, "sgk-bench-explicit: invalid width '%s'; expected an integer >= 1\n",
                    argv[k + 2]);
            return 1;
        }
        int status = run_width(width, mib * 1048576.0);
        if (status != 0) return status;
        fflush(stdout);
    }
    return 0;
}
