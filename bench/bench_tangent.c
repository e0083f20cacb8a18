/* `make bench`, part 2: kernel-assembly rate of sgk_tangent_gram against dgemm.
 *
 * Usage: sgk-bench-tangent [DIMS:N]...   (default 784-512-512-1:2048 784-512-512-1:4096
 *                                          784-256-256-10:2048 784-256-256-10:4096)
 * DIMS are the layer widths from input to output of a ReLU MLP (standard parametrization),
 * N the number of points. For each case the program computes the tangent factors of N
 * random inputs in [0, 1), then times two Grams of those points, both with the input Gram
 * supplied:
 *   general    sgk_tangent_gram(fa, fb) with two distinct factor sets of the same points,
 *              the path src/assemble.c takes for a rank's local block (on one rank, the
 *              whole N x N kernel);
 *   symmetric  sgk_tangent_gram(f, f), which computes the upper triangle only.
 *
 * Flop count: the Gram runs one product per layer factor it uses, the delta factor
 * (width O d_l) of every layer but the output layer, whose traced delta Gram is the
 * constant O, and the activation factor (width d_{l-1}) of every layer but the first,
 * whose product the input Gram replaces. At 2 flops per term, a factor of width
 * k costs 2 N^2 k flops on the general path. The symmetric path forms only the
 * N (N + 1) / 2 entries of the upper triangle, so it costs N (N + 1) k. The element-wise
 * passes that combine the products (about 3 flops per entry and layer, memory-bound) are
 * not counted, so they lower the rate. The reference rate is dgemm at 2048 x 2048 x 2048,
 * measured in the same process just before, with the same BLAS threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "sgk/mlp.h"
#include "sgk/rng.h"
#include "sgk/tangent.h"

enum { REFERENCE_SIZE = 2048, GRAM_REPEATS = 2, CHECKED_ENTRIES = 16 };

typedef struct {
    int dims[SGK_MAX_LAYERS + 1];
    int n_layers;
    int n_points;
} bench_case;

static double now_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Parse "784-512-512-1:2048"; returns 0 on success. */
static int parse_case(const char *text, bench_case *c)
{
    const char *p = text;
    char *end;

    c->n_layers = -1;
    for (;;) {
        long value = strtol(p, &end, 10);
        if (end == p || value < 1 || value > 1000000 || c->n_layers + 1 > SGK_MAX_LAYERS)
            return 1;
        c->dims[++c->n_layers] = (int)value;
        if (*end == ':') break;
        if (*end != '-') return 1;
        p = end + 1;
    }
    long points = strtol(end + 1, &end, 10);
    if (*end != '\0' || points < 1 || points > 1000000 || c->n_layers < 1) return 1;
    c->n_points = (int)points;
    return 0;
}

/* Best dgemm rate in GFLOP/s of three calls at REFERENCE_SIZE, after one untimed call. */
static double reference_gflops(void)
{
    int n = REFERENCE_SIZE;
    size_t count = (size_t)n * n;
    double *a = malloc(sizeof(double) * count), *b = malloc(sizeof(double) * count);
    double *c = malloc(sizeof(double) * count);
    double best = 0.0;

    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return NAN;
    }
    for (size_t i = 0; i < count; i++) {
        a[i] = (double)(i % 97) / 97.0 - 0.5;
        b[i] = (double)(i % 89) / 89.0 - 0.5;
    }
    for (int r = 0; r < 4; r++) {
        double start = now_seconds();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0,
                    c, n);
        double rate = 2.0 * n * (double)n * n / (now_seconds() - start) * 1e-9;
        if (r > 0 && rate > best) best = rate;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* One entry of the traced kernel straight from the factors, by plain dot products: the
 * formula of sgk/tangent.h with <x_i, x_j> for the first layer. */
static double direct_entry(const sgk_mlp *net, const sgk_factors *f, int i, int j)
{
    int n_outputs = net->dims[net->n_layers];
    double total = 0.0;

    for (int l = 1; l <= net->n_layers; l++) {
        int wd = n_outputs * net->dims[l], wa = net->dims[l - 1];
        const double *di = f->delta[l - 1] + (size_t)i * wd, *dj = f->delta[l - 1] + (size_t)j * wd;
        const double *ai = f->act[l - 1] + (size_t)i * wa, *aj = f->act[l - 1] + (size_t)j * wa;
        double dd = 0.0, aa = 0.0;
        double c = net->weight_scale[l - 1], beta = net->bias_scale[l - 1];

        for (int k = 0; k < wd; k++) dd += di[k] * dj[k];
        for (int k = 0; k < wa; k++) aa += ai[k] * aj[k];
        total += dd * (c * c * aa + beta * beta);
    }
    return total;
}

/* Best time of GRAM_REPEATS Grams of fa and fb into the zeroed K; NAN on failure. */
static double time_gram(const sgk_mlp *net, const sgk_factors *fa, const sgk_factors *fb,
                        const double *input_gram, double *K)
{
    int n = fb->m;
    double best = INFINITY;

    for (int r = 0; r < GRAM_REPEATS; r++) {
        memset(K, 0, sizeof(double) * (size_t)n * n);
        double start = now_seconds();
        sgk_status status = sgk_tangent_gram(net, fa, fb, input_gram, n, 1.0, K, n);
        double seconds = now_seconds() - start;
        if (status != SGK_OK) {
            fprintf(stderr, "sgk-bench-tangent: %s\n", sgk_error_message());
            return NAN;
        }
        best = fmin(best, seconds);
    }
    return best;
}

/* Largest relative deviation of CHECKED_ENTRIES sampled entries of K (both triangles) from
 * the direct sum. Each direct entry adds a few thousand products of O(1) terms, so
 * rounding differences stay near 1e-13 relative; 1e-9 only flags a wrong entry. */
static double check_entries(const sgk_mlp *net, const sgk_factors *f, const double *K, int n)
{
    double worst = 0.0;
    sgk_rng rng;

    sgk_rng_init(&rng, 2, 0, SGK_RNG_INIT);
    for (int k = 0; k < CHECKED_ENTRIES; k++) {
        int i = (int)sgk_rng_below(&rng, (uint64_t)n), j = (int)sgk_rng_below(&rng, (uint64_t)n);
        double expected = direct_entry(net, f, i, j);
        worst = fmax(worst, fabs(K[(size_t)i * n + j] - expected) / fmax(fabs(expected), 1e-300));
    }
    return worst;
}

/* Run one case; returns 0, or an exit status after printing why. */
static int run_case(const bench_case *c, double reference)
{
    int n = c->n_points, d0 = c->dims[0];
    sgk_mlp net;
    sgk_mlp_work work;
    sgk_factors factors, copy;
    sgk_rng rng;
    double *w, *x, *input_gram, *K;
    double width_sum = 0.0;

    if (sgk_mlp_create(&net, d0, c->dims + 1, c->n_layers - 1, c->dims[c->n_layers],
                       SGK_ACT_RELU, SGK_PARAM_STANDARD) != SGK_OK) {
        fprintf(stderr, "sgk-bench-tangent: %s\n", sgk_error_message());
        return 1;
    }
    w = malloc(sizeof(double) * net.n_params);
    x = malloc(sizeof(double) * (size_t)n * d0);
    input_gram = malloc(sizeof(double) * (size_t)n * n);
    K = calloc((size_t)n * n, sizeof(double));
    if (!w || !x || !input_gram || !K || sgk_mlp_work_alloc(&net, n, &work) != SGK_OK
        || sgk_factors_alloc(&net, n, &factors) != SGK_OK
        || sgk_factors_alloc(&net, n, &copy) != SGK_OK) {
        fprintf(stderr, "sgk-bench-tangent: out of memory for %d points\n", n);
        return 4;
    }
    sgk_rng_init(&rng, 1, 0, SGK_RNG_INIT);
    sgk_mlp_init_params(&net, &rng, w);
    for (size_t i = 0; i < (size_t)n * d0; i++) x[i] = sgk_rng_uniform(&rng);

    double start = now_seconds();
    sgk_mlp_tangent_factors(&net, w, x, n, &work, &factors, NULL);
    double factor_seconds = now_seconds() - start;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, d0, 1.0, x, d0, 0.0, input_gram, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) input_gram[(size_t)i * n + j] = input_gram[(size_t)j * n + i];

    /* The output layer's delta Gram is the constant O, formed without a product. */
    for (int l = 1; l <= net.n_layers; l++) {
        if (l < net.n_layers) width_sum += (double)net.dims[net.n_layers] * net.dims[l];
        if (l > 1) width_sum += net.dims[l - 1];
    }
    /* The general path gets a second factor set with the same values, as src/assemble.c
     * passes distinct row and column factors even where they hold the same points. */
    for (int l = 0; l < net.n_layers; l++) {
        memcpy(copy.act[l], factors.act[l], sizeof(double) * (size_t)n * net.dims[l]);
        memcpy(copy.delta[l], factors.delta[l],
               sizeof(double) * (size_t)n * net.dims[net.n_layers] * net.dims[l + 1]);
    }
    copy.m = n;

    char name[128];
    int used = 0;
    for (int l = 0; l <= c->n_layers; l++)
        used += snprintf(name + used, sizeof name - (size_t)used, l ? "-%d" : "%d", c->dims[l]);
    double worst_error = 0.0;
    for (int symmetric = 0; symmetric <= 1; symmetric++) {
        double flops = (symmetric ? (double)n * (n + 1.0) : 2.0 * n * (double)n) * width_sum;
        double best = time_gram(&net, symmetric ? &factors : &copy, &factors, input_gram, K);
        if (isnan(best)) return 1;
        worst_error = fmax(worst_error, check_entries(&net, &factors, K, n));
        double gflops = flops / best * 1e-9;
        const char *path = symmetric ? "symmetric" : "general";
        printf("%-18s %6d %-9s %8.2f %9.3f %8.3f %9.2f %8.0f%% %9.1e\n", name, n, path,
               flops * 1e-9, factor_seconds, best, gflops, 100.0 * gflops / reference,
               worst_error);
        printf("RESULT tangent_gflops_%s_%s_%d %.3f\n", path, name, n, gflops);
        printf("RESULT tangent_ratio_%s_%s_%d %.4f\n", path, name, n, gflops / reference);
    }

    free(w);
    free(x);
    free(input_gram);
    free(K);
    sgk_mlp_work_free(&work);
    sgk_factors_free(&factors);
    sgk_factors_free(&copy);
    if (worst_error > 1e-9) {
        fprintf(stderr, "sgk-bench-tangent: Gram entries of %s at N = %d differ from the direct "
                "sum by %.3g relative; the timing above is of a wrong result\n", name, n,
                worst_error);
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const default_cases[] = { "784-512-512-1:2048", "784-512-512-1:4096",
                                                 "784-256-256-10:2048", "784-256-256-10:4096" };
    int n_cases = argc > 1 ? argc - 1 : 4;
    double reference = reference_gflops();

    printf("dgemm reference (N = %d, best of 3) = %.2f GFLOP/s\n", REFERENCE_SIZE, reference);
    printf("RESULT tangent_reference_dgemm_gflops %.3f\n", reference);
    printf("%-18s %6s %-9s %8s %9s %8s %9s %9s %9s\n", "network", "N", "path", "GFLOP",
           "factors s", "Gram s", "GFLOP/s", "of dgemm", "check");
    for (int k = 0; k < n_cases; k++) {
        const char *text = argc > 1 ? argv[k + 1] : default_cases[k];
        bench_case c;

        if (parse_case(text, &c) != 0) {
            fprintf(stderr, "sgk-bench-tangent: invalid case '%s'; expected widths from input to "
                    "output and a point count, such as 784-512-512-1:2048\n", text);
            return 1;
        }
        int status = run_case(&c, reference);
        if (status != 0) return status;
        fflush(stdout);
    }
    return 0;
}
