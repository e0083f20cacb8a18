/* `make bench`, part 1: the machine's BLAS and its dgemm rate on one core.
 *
 * Usage: sgk-bench-dgemm [N]...   (default 512 1024 1536 2048)
 * Prints the OpenBLAS build and core, then one line per size with the best and mean rate
 * over repetitions of C = A B on N x N row-major matrices. The rate counts 2 N^3 flops per
 * product (one multiply and one add per term). Run it with OPENBLAS_NUM_THREADS=1: the
 * rank-per-core layout of sgk-ensemble gives each rank one BLAS thread. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

/* Repetitions run until this much wall time has passed (at least MIN_REPEATS), so small
 * sizes are not timed from one call. */
static const double MIN_SECONDS = 1.0;
enum { MIN_REPEATS = 3 };

static double now_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Fill with values in [-1, 1) from a fixed linear congruential sequence: the rate does not
 * depend on the values, only NaN or denormals would change it, and these avoid both. */
static void fill(double *a, size_t count, unsigned long long seed)
{
    unsigned long long state = seed;

    for (size_t i = 0; i < count; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        a[i] = (double)(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
}

/* Time C = A B at size n; returns 0 on success, 1 when memory is short. */
static int measure(int n, double *best_gflops, double *mean_gflops, int *repeats)
{
    size_t count = (size_t)n * n;
    double *a = malloc(sizeof(double) * count);
    double *b = malloc(sizeof(double) * count);
    double *c = malloc(sizeof(double) * count);
    double flops = 2.0 * (double)n * n * n;
    double best = 0.0, total = 0.0, start_all;
    int done = 0;

    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 1;
    }
    fill(a, count, 1);
    fill(b, count, 2);
    /* One untimed call: OpenBLAS allocates its buffers and the pages get touched. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);

    start_all = now_seconds();
    while (done < MIN_REPEATS || now_seconds() - start_all < MIN_SECONDS) {
        double start = now_seconds();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0,
                    c, n);
        double seconds = now_seconds() - start;
        double rate = flops / seconds * 1e-9;
        if (rate > best) best = rate;
        total += seconds;
        done++;
    }
    *best_gflops = best;
    *mean_gflops = flops * done / total * 1e-9;
    *repeats = done;
    free(a);
    free(b);
    free(c);
    return 0;
}

int main(int argc, char **argv)
{
    static const int default_sizes[] = { 512, 1024, 1536, 2048 };
    int n_sizes = argc > 1 ? argc - 1 : (int)(sizeof default_sizes / sizeof default_sizes[0]);
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    const char *coretype = getenv("OPENBLAS_CORETYPE");

    printf("openblas_config = %s\n", openblas_get_config());
    printf("openblas_corename = %s\n", openblas_get_corename());
    printf("openblas_threads = %d (OPENBLAS_NUM_THREADS=%s, OPENBLAS_CORETYPE=%s)\n",
           openblas_get_num_threads(), threads ? threads : "unset",
           coretype ? coretype : "unset");
    printf("%6s %12s %12s %8s\n", "N", "best GF/s", "mean GF/s", "repeats");
    for (int k = 0; k < n_sizes; k++) {
        int n = argc > 1 ? atoi(argv[k + 1]) : default_sizes[k];
        double best, mean;
        int repeats;

        if (n < 1) {
            fprintf(stderr, "sgk-bench-dgemm: invalid size '%s'; sizes are integers >= 1\n",
                    argv[k + 1]);
            return 1;
        }
        if (measure(n, &best, &mean, &repeats) != 0) {
            fprintf(stderr, "sgk-bench-dgemm: out of memory for three %d x %d matrices\n", n, n);
            return 4;
        }
        printf("%6d %12.2f %12.2f %8d\n", n, best, mean, repeats);
        printf("RESULT dgemm_gflops_%d %.3f\n", n, best);
    }
    return 0;
}
