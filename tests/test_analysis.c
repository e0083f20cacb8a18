/* Tests of the spectrum analysis: the largest-k eigen-solver, target projections,
 * alignments, memory residuals and generalization errors. MPI test for any rank
 * count, checked at 1, 2, 3, 4, 5 and 7 ranks.
 *
 * Kernels are built on rank 0 as full matrices and summed into the block-cyclic
 * layout with sgk_dmatrix_reduce_add (the other ranks add zeros), so no training run
 * is needed. Reference values come from serial LAPACK (dsyevd, dgels, dposv) or
 * direct loops on rank 0's full matrix.
 *
 * Tolerances. Both solvers are backward stable, so computed eigenvalues are off by
 * about n eps |A| (n <= 60: below 2e-14 |A|) and 1e-12 |A| leaves a margin of 50;
 * residuals |A v - lambda v| are of the same order, checked at 1e-11 |A|. Single
 * eigenvectors enter only through well-separated eigenvalues (gaps above 1e-3 |A|,
 * asserted where it matters) and inherit errors of about eps |A| / gap < 1e-12.
 * Energies and memory residuals depend on the span of a cluster, not on single
 * eigenvectors. So 1e-10 is used for target coefficients, energies and memory
 * residuals. Alignments are ratios of sums of at most 60^2 terms, each rounded once:
 * 1e-12 relative. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/analysis.h"
#include "sgk/config.h"
#include "sgk/kernel.h"
#include "sgk/log.h"
#include "sgk/spectrum.h"

/* Serial LAPACK from OpenBLAS, column-major; size_t arguments are gfortran's hidden
 * CHARACTER lengths. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);
extern void dgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
                   const int *lda, double *b, const int *ldb, double *work, const int *lwork,
                   int *info, size_t trans_len);
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, int *info, size_t uplo_len);

#define EIGENVALUE_TOL 1e-12
#define RESIDUAL_TOL 1e-11
#define ORTHOGONALITY_TOL 1e-12
#define DERIVED_TOL 1e-10
#define ALIGNMENT_TOL 1e-12

static int world_size;
static int world_rank;

/* Grid shapes: the default (2 x 2 at 4 ranks), one process row, one process column. */
static const int shapes[3][2] = { { 0, 0 }, { 1, -1 }, { -1, 1 } };
enum { N_SHAPES = 3 };

static void shape_of(int s, int *n_prow, int *n_pcol)
{
    *n_prow = shapes[s][0] < 0 ? world_size : shapes[s][0];
    *n_pcol = shapes[s][1] < 0 ? world_size : shapes[s][1];
}

/* SplitMix64: the same stream on every rank. */
static double uniform_pm1(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return 2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0;
}

static double *random_array(long count, uint64_t seed)
{
    double *values = malloc((size_t)count * sizeof *values);

    for (long i = 0; i < count; i++) values[i] = uniform_pm1(&seed);
    return values;
}

static double *random_symmetric(int n, uint64_t seed)
{
    double *a = malloc((size_t)n * n * sizeof *a);

    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform_pm1(&seed);
    return a;
}

/* Gram matrix of the rows of `features` (count x dim, row-major): the kernel of a
 * linear model, K(x, x') = x . x'. */
static double *gram(const double *features, long count, int dim)
{
    double *k = calloc((size_t)(count * count), sizeof *k);

    for (long a = 0; a < count; a++)
        for (long b = 0; b < count; b++)
            for (int d = 0; d < dim; d++)
                k[a * count + b] += features[a * dim + d] * features[b * dim + d];
    return k;
}

/* Collective. Block-cyclic copy of rank 0's full n x n row-major matrix. */
static void distribute(const sgk_grid *grid, long n, int nb, const double *full,
                       sgk_dmatrix *matrix)
{
    double *partial = calloc((size_t)(n * n), sizeof *partial);

    if (world_rank == 0) memcpy(partial, full, (size_t)(n * n) * sizeof *partial);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(grid, n, nb, matrix), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_reduce_add(matrix, partial), SGK_OK);
    free(partial);
}

/* Ascending eigenvalues and, with vectors != NULL, column-major eigenvectors of the
 * symmetric n x n `full` by serial DSYEVD. */
static int serial_eigh(int n, const double *full, double *w, double *vectors)
{
    double *a = malloc((size_t)n * n * sizeof *a);
    double work_query = 0.0;
    int iwork_query = 0, lwork = -1, liwork = -1, info = 0;
    double *work = NULL;
    int *iwork = NULL;

    memcpy(a, full, (size_t)n * n * sizeof *a);
    dsyevd_("V", "L", &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    lwork = (int)work_query;
    liwork = iwork_query;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    dsyevd_("V", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (vectors != NULL) memcpy(vectors, a, (size_t)n * n * sizeof *a);
    free(a);
    free(work);
    free(iwork);
    return info;
}

/* Whether every rank has bitwise the same `count` values. */
static int same_on_all_ranks(const double *values, int count)
{
    double *low = malloc((size_t)count * sizeof *low);
    double *high = malloc((size_t)count * sizeof *high);
    int same = 1;

    MPI_Allreduce(values, low, count, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(values, high, count, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int i = 0; i < count; i++)
        if (memcmp(&low[i], &high[i], sizeof low[i]) != 0) same = 0;
    free(low);
    free(high);
    return same;
}

/* A data set of n_train, n_test and n_ood points with O outputs and a copy of the
 * given targets (N x O). The analysis does not read the inputs, so they are zero. */
static void make_dataset(sgk_dataset *data, long n_train, long n_test, long n_ood, int outputs,
                         const double *targets)
{
    long n = n_train + n_test + n_ood;

    memset(data, 0, sizeof *data);
    data->n_samples = n;
    data->n_train = n_train;
    data->n_test = n_test;
    data->n_ood = n_ood;
    data->n_features = 1;
    data->n_outputs = outputs;
    data->x = calloc((size_t)n, sizeof *data->x);
    data->y = malloc((size_t)(n * outputs) * sizeof *data->y);
    data->split = malloc((size_t)n * sizeof *data->split);
    memcpy(data->y, targets, (size_t)(n * outputs) * sizeof *data->y);
    for (long i = 0; i < n; i++)
        data->split[i] = i < n_train            ? SGK_SPLIT_TRAIN
                         : i < n_train + n_test ? SGK_SPLIT_TEST
                                                : SGK_SPLIT_OOD;
}

static void make_config(sgk_config *config, long eigenpairs, int nb)
{
    sgk_config_defaults(config);
    config->spectrum.eigenpairs = eigenpairs;
    config->spectrum.tolerance = 1e-10;
    config->spectrum.eigenvectors = 1;
    config->kernel.block_size = nb;
}

/* ---------------------------------------------------------------------------------
 * The largest-k solver against LAPACK. */

/* Root-only checks: the k descending eigenvalues and the first k columns of the
 * gathered n x n row-major `v` are eigenpairs of `full`; columns k.. are zero. */
static void check_largest(int n, int k, const double *full, const double *values, const double *v)
{
    double *serial = malloc((size_t)n * sizeof *serial);
    double norm = 0.0, worst_value = 0.0, worst_residual = 0.0, worst_orthogonality = 0.0;
    long nonzero_beyond_k = 0;

    CU_ASSERT_EQUAL_FATAL(serial_eigh(n, full, serial, NULL), 0);
    for (int j = 0; j < n; j++) norm = fmax(norm, fabs(serial[j]));
    for (int j = 0; j < k; j++) {
        double residual = 0.0;

        if (j + 1 < k) CU_ASSERT_TRUE(values[j] >= values[j + 1]);
        worst_value = fmax(worst_value, fabs(values[j] - serial[n - 1 - j]));
        for (int i = 0; i < n; i++) {
            double r = -values[j] * v[i * n + j];

            for (int l = 0; l < n; l++) r += full[i * n + l] * v[l * n + j];
            residual += r * r;
        }
        worst_residual = fmax(worst_residual, sqrt(residual));
        for (int l = 0; l < k; l++) {
            double dot = 0.0;

            for (int i = 0; i < n; i++) dot += v[i * n + j] * v[i * n + l];
            worst_orthogonality = fmax(worst_orthogonality, fabs(dot - (j == l ? 1.0 : 0.0)));
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = k; j < n; j++)
            if (v[i * n + j] != 0.0) nonzero_beyond_k++;
    CU_ASSERT_TRUE(worst_value <= EIGENVALUE_TOL * norm);
    CU_ASSERT_TRUE(worst_residual <= RESIDUAL_TOL * norm);
    CU_ASSERT_TRUE(worst_orthogonality <= ORTHOGONALITY_TOL);
    CU_ASSERT_EQUAL(nonzero_beyond_k, 0);
    free(serial);
}

/* Cases: n < nb, n not a multiple of nb, and nb = 32 > 18 with k < nb, where
 * PDSYEVR 2.2.1 can skip its back-transformation unless at least nb columns are
 * requested. */
static const struct {
    int n;
    int nb;
} largest_cases[] = { { 5, 8 }, { 23, 4 }, { 30, 7 }, { 60, 32 } };
enum { N_LARGEST_CASES = sizeof largest_cases / sizeof largest_cases[0] };

static void test_largest_matches_lapack(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_LARGEST_CASES; c++) {
            int n = largest_cases[c].n, nb = largest_cases[c].nb;
            int counts[4] = { 1, 2, n - 1, n };
            double *full = random_symmetric(n, 3000u + (uint64_t)c);

            for (int t = 0; t < 4; t++) {
                int k = counts[t];
                double *values = malloc((size_t)k * sizeof *values);
                double *values_only = malloc((size_t)k * sizeof *values_only);
                double *v = world_rank == 0 ? malloc((size_t)n * n * sizeof *v) : NULL;
                sgk_dmatrix a, vectors;

                distribute(&grid, n, nb, full, &a);
                CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, nb, &vectors), SGK_OK);
                CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, k, values, &vectors), SGK_OK);
                CU_ASSERT_TRUE(same_on_all_ranks(values, k));
                CU_ASSERT_EQUAL(sgk_dmatrix_gather(&vectors, 0, v), SGK_OK);
                if (world_rank == 0) check_largest(n, k, full, values, v);
                sgk_dmatrix_free(&a);

                /* Without eigenvectors: the same eigenvalues to rounding. */
                distribute(&grid, n, nb, full, &a);
                CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, k, values_only, NULL), SGK_OK);
                for (int j = 0; j < k; j++)
                    CU_ASSERT_DOUBLE_EQUAL(values_only[j], values[j],
                                           EIGENVALUE_TOL * fabs(values[0]) + 1e-300);
                sgk_dmatrix_free(&a);
                sgk_dmatrix_free(&vectors);
                free(values);
                free(values_only);
                free(v);
            }
            free(full);
        }
        sgk_grid_free(&grid);
    }
}

static void test_largest_rejects_bad_arguments(void)
{
    sgk_grid grid;
    sgk_dmatrix a, other;
    double values[6];

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, 6, 2, &a), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, 6, 3, &other), SGK_OK);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, 0, values, NULL), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, 7, values, NULL), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, 2, NULL, NULL), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, 2, values, &other), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh_largest(&a, 2, values, &a), SGK_ERR_USAGE);
    sgk_dmatrix_free(&a);
    sgk_dmatrix_free(&other);
    sgk_grid_free(&grid);
}

/* ---------------------------------------------------------------------------------
 * A linear model: K(x, x') = x . x'. */

#define LINEAR_N 50   /* training points */
#define LINEAR_DIM 10 /* their features span this many dimensions */

/* Energy of y outside the column space of X (n x dim, row-major), relative to |y|^2,
 * by least squares: DGELS leaves the residual's coordinates in rows dim.. of b. */
static double energy_outside_columns(const double *x, const double *y, int n, int dim)
{
    double *a = malloc((size_t)n * dim * sizeof *a);
    double *b = malloc((size_t)n * sizeof *b);
    double work_query = 0.0, outside = 0.0, total = 0.0;
    int one = 1, lwork = -1, info = 0;
    double *work = NULL;

    for (int i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++) a[i + d * n] = x[i * dim + d];
        b[i] = y[i];
        total += y[i] * y[i];
    }
    dgels_("N", &n, &dim, &one, a, &n, b, &n, &work_query, &lwork, &info, 1);
    lwork = (int)work_query;
    work = malloc((size_t)lwork * sizeof *work);
    dgels_("N", &n, &dim, &one, a, &n, b, &n, work, &lwork, &info, 1);
    CU_ASSERT_EQUAL(info, 0);
    for (int i = dim; i < n; i++) outside += b[i] * b[i];
    free(a);
    free(b);
    free(work);
    return outside / total;
}

/* Local entries of `matrix` that differ from the row-major n x n `full`. */
static long count_changed_entries(const sgk_dmatrix *matrix, const double *full)
{
    long changed = 0;

    for (int b = 0; b < matrix->local_cols; b++)
        for (int a = 0; a < matrix->local_rows; a++)
            if (matrix->local[a + (long)b * matrix->lld]
                != full[sgk_dmatrix_global_row(matrix, a) * matrix->n
                        + sgk_dmatrix_global_col(matrix, b)])
                changed++;
    return changed;
}

/* Collective. Analysis of the Gram kernel of `features` (n_train + n_test + n_ood
 * rows of `dim`) with one output `y`. The analysis solves K_n inside the kernel, so
 * the kernel must come back bitwise unchanged. */
static sgk_status analyze_linear(const sgk_grid *grid, const double *features, int dim,
                                 long n_train, long n_test, long n_ood, const double *y,
                                 long eigenpairs, int nb, sgk_analysis *analysis)
{
    long n = n_train + n_test + n_ood;
    double *k = gram(features, n, dim);
    sgk_dataset data;
    sgk_config config;
    sgk_dmatrix kernel;
    sgk_status status;

    make_dataset(&data, n_train, n_test, n_ood, 1, y);
    make_config(&config, eigenpairs, nb);
    distribute(grid, n, nb, k, &kernel);
    status = sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, analysis);
    CU_ASSERT_EQUAL(count_changed_entries(&kernel, k), 0);
    sgk_dmatrix_free(&kernel);
    sgk_dataset_free(&data);
    free(k);
    return status;
}

/* 50 training points in 10 dimensions: K_n has eigenvalue 0 forty times. */
static void test_null_space_energy_closed_form(void)
{
    double *features = random_array(LINEAR_N * LINEAR_DIM, 41);
    double *y = random_array(LINEAR_N, 42);
    double expected = energy_outside_columns(features, y, LINEAR_N, LINEAR_DIM);
    static const long eigenpairs[3] = { 0, 15, LINEAR_DIM };

    /* Random targets are mostly outside a 10-dimensional space of R^50. */
    CU_ASSERT_TRUE(expected > 0.3);
    for (int s = 0; s < N_SHAPES; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int e = 0; e < 3; e++) {
            sgk_analysis analysis;
            long k = eigenpairs[e] == 0 ? LINEAR_N : eigenpairs[e];

            CU_ASSERT_EQUAL_FATAL(analyze_linear(&grid, features, LINEAR_DIM, LINEAR_N, 0, 0, y,
                                                 eigenpairs[e], 8, &analysis),
                                  SGK_OK);
            CU_ASSERT_EQUAL(analysis.n_eig, k);
            CU_ASSERT_EQUAL(analysis.n_retained, LINEAR_DIM);
            for (long j = 0; j < k; j++) {
                if (j < LINEAR_DIM) {
                    CU_ASSERT_TRUE(analysis.eigenvalues[j] > 1e-3 * analysis.eigenvalues[0]);
                } else {
                    CU_ASSERT_TRUE(fabs(analysis.eigenvalues[j]) <=
                                   EIGENVALUE_TOL * analysis.eigenvalues[0]);
                }
            }
            /* Null-space energy among the computed eigenpairs plus the energy outside
             * them is the energy outside the span of the training features. */
            CU_ASSERT_DOUBLE_EQUAL(analysis.null_space_energy[0] + analysis.remaining_energy[0],
                                   expected, DERIVED_TOL);
            if (k == LINEAR_N) {
                CU_ASSERT_DOUBLE_EQUAL(analysis.null_space_energy[0], expected, DERIVED_TOL);
                CU_ASSERT_DOUBLE_EQUAL(analysis.remaining_energy[0], 0.0, DERIVED_TOL);
            }
            if (k == LINEAR_DIM) CU_ASSERT_EQUAL(analysis.null_space_energy[0], 0.0);
            CU_ASSERT_DOUBLE_EQUAL(analysis.captured_energy[LINEAR_DIM - 1], 1.0 - expected,
                                   DERIVED_TOL);
            CU_ASSERT_TRUE(analysis.eigen_residual <= RESIDUAL_TOL);
            sgk_analysis_free(&analysis);
        }
        sgk_grid_free(&grid);
    }
    free(features);
    free(y);
}

/* Memory residual in the linear model: s(x) = |x_perp|^2 / |x|^2, where x_perp is
 * the part of x orthogonal to the training features. Training features use the
 * first 10 of 12 coordinates. Test points: duplicates of training points (s = 0),
 * combinations of them (s = 0) and points with a component in coordinates 10..11
 * (s known in closed form). Out-of-distribution points: features only in
 * coordinates 10..11 (s = 1), and the zero vector (K(x, x) = 0: NaN). */
static void test_memory_residual_linear_model(void)
{
    enum { DIM = 12, SPAN = 10, N_TRAIN = 30, N_TEST = 6, N_OOD = 3 };
    long n = N_TRAIN + N_TEST + N_OOD;
    double *features = calloc((size_t)n * DIM, sizeof *features);
    double *random = random_array(n * DIM, 77);
    double *y = random_array(n, 78);
    double expected[N_TRAIN + N_TEST + N_OOD];
    static const long eigenpairs[3] = { 0, SPAN, SPAN + 2 };

    for (long a = 0; a < N_TRAIN; a++)
        for (int d = 0; d < SPAN; d++) features[a * DIM + d] = random[a * DIM + d];
    for (long a = 0; a < N_TRAIN; a++) expected[a] = 0.0;
    for (int d = 0; d < DIM; d++) {
        features[(N_TRAIN + 0) * DIM + d] = features[3 * DIM + d];
        features[(N_TRAIN + 1) * DIM + d] = features[17 * DIM + d];
        features[(N_TRAIN + 2) * DIM + d] =
            0.5 * features[1 * DIM + d] - 2.0 * features[9 * DIM + d];
        features[(N_TRAIN + 3) * DIM + d] = features[5 * DIM + d] + (d >= SPAN ? random[d] : 0.0);
        features[(N_TRAIN + 4) * DIM + d] = random[DIM + d];
        features[(N_TRAIN + 5) * DIM + d] = d >= SPAN ? random[2 * DIM + d] : 0.0;
        features[(N_TRAIN + 6) * DIM + d] = d >= SPAN ? 1.0 + d : 0.0;
        features[(N_TRAIN + 7) * DIM + d] = d == DIM - 1 ? 3.0 : 0.0;
        features[(N_TRAIN + 8) * DIM + d] = 0.0;
    }
    /* The training features span the first 10 coordinates, so |x_perp|^2 is the
     * energy in coordinates 10 and 11. */
    for (long a = N_TRAIN; a < n; a++) {
        double outside = 0.0, total = 0.0;

        for (int d = 0; d < DIM; d++) {
            total += features[a * DIM + d] * features[a * DIM + d];
            if (d >= SPAN) outside += features[a * DIM + d] * features[a * DIM + d];
        }
        expected[a] = total > 0.0 ? outside / total : NAN;
    }
    CU_ASSERT_DOUBLE_EQUAL(expected[N_TRAIN + 5], 1.0, 0.0);

    for (int s = 0; s < N_SHAPES; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int e = 0; e < 3; e++) {
            sgk_analysis analysis;

            CU_ASSERT_EQUAL_FATAL(analyze_linear(&grid, features, DIM, N_TRAIN, N_TEST, N_OOD, y,
                                                 eigenpairs[e], 4, &analysis),
                                  SGK_OK);
            CU_ASSERT_EQUAL(analysis.n_retained, SPAN);
            for (long a = 0; a < n; a++) {
                if (isnan(expected[a])) {
                    CU_ASSERT_TRUE(isnan(analysis.memory_residual[a]));
                } else {
                    CU_ASSERT_DOUBLE_EQUAL(analysis.memory_residual[a], expected[a], DERIVED_TOL);
                }
            }
            /* Kernel row zero against every training point: exactly 1. */
            CU_ASSERT_EQUAL(analysis.memory_residual[N_TRAIN + 6], 1.0);
            CU_ASSERT_EQUAL(analysis.memory_residual[N_TRAIN + 7], 1.0);
            CU_ASSERT_TRUE(same_on_all_ranks(analysis.memory_residual, (int)n));
            sgk_analysis_free(&analysis);
        }
        sgk_grid_free(&grid);
    }
    free(features);
    free(random);
    free(y);
}

/* Full-rank K_n: 8 training points in 12 dimensions. Training points have s = 0. */
static void test_memory_residual_full_rank(void)
{
    enum { DIM = 12, N_TRAIN = 8, N_TEST = 4 };
    long n = N_TRAIN + N_TEST;
    double *features = random_array(n * DIM, 91);
    double *y = random_array(n, 92);
    sgk_grid grid;
    sgk_analysis analysis;

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(
        analyze_linear(&grid, features, DIM, N_TRAIN, N_TEST, 0, y, 0, 3, &analysis), SGK_OK);
    CU_ASSERT_EQUAL(analysis.n_retained, N_TRAIN);
    for (long a = 0; a < N_TRAIN; a++)
        CU_ASSERT_DOUBLE_EQUAL(analysis.memory_residual[a], 0.0, DERIVED_TOL);
    /* Random test points in 12 dimensions are not in the 8-dimensional span. */
    for (long a = N_TRAIN; a < n; a++) CU_ASSERT_TRUE(analysis.memory_residual[a] > 1e-3);
    sgk_analysis_free(&analysis);
    sgk_grid_free(&grid);
    free(features);
    free(y);
}

/* ---------------------------------------------------------------------------------
 * Projections, alignments and memory residuals of a full-rank kernel against direct
 * serial formulas. */

#define DIRECT_TRAIN 17
#define DIRECT_TEST 6
#define DIRECT_OOD 2
#define DIRECT_OUTPUTS 3
#define DIRECT_N (DIRECT_TRAIN + DIRECT_TEST + DIRECT_OOD)

/* Serial references computed on rank 0 from the full kernel. */
typedef struct {
    double eigenvalues[DIRECT_TRAIN]; /* of K_n, descending */
    double abs_coeff[DIRECT_TRAIN * DIRECT_OUTPUTS];
    double captured[DIRECT_TRAIN * DIRECT_OUTPUTS];
    double alignment[DIRECT_OUTPUTS];
    double alignment_centered[DIRECT_OUTPUTS];
    double memory_residual[DIRECT_N];
    double effective_rank;
} direct_reference;

/* Alignment y^T A y / (|A|_F |y|^2) of the n x n row-major A. */
static double direct_alignment(const double *a, const double *y, int n)
{
    double quadratic = 0.0, frobenius = 0.0, norm = 0.0;

    for (int i = 0; i < n; i++) {
        norm += y[i] * y[i];
        for (int j = 0; j < n; j++) {
            quadratic += y[i] * a[i * n + j] * y[j];
            frobenius += a[i * n + j] * a[i * n + j];
        }
    }
    return quadratic / (sqrt(frobenius) * norm);
}

static void direct_references(const double *k, const double *y, direct_reference *ref)
{
    enum { N = DIRECT_TRAIN, O = DIRECT_OUTPUTS };
    double kn[N * N], vectors[N * N], ascending[N], h[N * N], hk[N * N], hkh[N * N];
    double column[N], centered[N], system[N * N];
    double sum = 0.0, sum_squares = 0.0;
    int n = N, one = 1, info = 0;

    /* Spectrum and the eigenvectors, descending. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) kn[i * N + j] = k[i * DIRECT_N + j] / N;
    CU_ASSERT_EQUAL_FATAL(serial_eigh(N, kn, ascending, vectors), 0);
    for (int j = 0; j < N; j++) {
        ref->eigenvalues[j] = ascending[N - 1 - j];
        sum += ascending[j];
        sum_squares += ascending[j] * ascending[j];
    }
    /* The tolerance on single target coefficients needs separated eigenvalues. */
    for (int j = 0; j + 1 < N; j++)
        CU_ASSERT_TRUE(ascending[j + 1] - ascending[j] > 1e-3 * ascending[N - 1]);
    ref->effective_rank = sum * sum / sum_squares;

    /* |c_jo| and captured energy; vectors are column-major, column N - 1 - j. */
    for (int o = 0; o < O; o++) {
        double norm = 0.0, captured = 0.0;

        for (int i = 0; i < N; i++) norm += y[i * O + o] * y[i * O + o];
        for (int j = 0; j < N; j++) {
            double dot = 0.0;

            for (int i = 0; i < N; i++) dot += vectors[(N - 1 - j) * N + i] * y[i * O + o];
            ref->abs_coeff[j * O + o] = fabs(dot) / sqrt(norm);
            captured += dot * dot / norm;
            ref->captured[j * O + o] = captured;
        }
    }

    /* Alignments, with H = I - 1 1^T / n formed and multiplied out. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) h[i * N + j] = (i == j ? 1.0 : 0.0) - 1.0 / N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            hk[i * N + j] = 0.0;
            for (int l = 0; l < N; l++) hk[i * N + j] += h[i * N + l] * k[l * DIRECT_N + j];
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            hkh[i * N + j] = 0.0;
            for (int l = 0; l < N; l++) hkh[i * N + j] += hk[i * N + l] * h[l * N + j];
        }
    for (int o = 0; o < O; o++) {
        double mean = 0.0, ktrain[N * N];

        for (int i = 0; i < N; i++) column[i] = y[i * O + o];
        for (int i = 0; i < N; i++) mean += column[i] / N;
        for (int i = 0; i < N; i++) centered[i] = column[i] - mean;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) ktrain[i * N + j] = k[i * DIRECT_N + j];
        ref->alignment[o] = direct_alignment(ktrain, column, N);
        ref->alignment_centered[o] = direct_alignment(hkh, centered, N);
    }

    /* Memory residual with the inverse of the full-rank K_n by Cholesky (DPOSV):
     * s(x) = 1 - k_x^T K_n^{-1} k_x / (n K(x, x)). */
    for (int x = 0; x < DIRECT_N; x++) {
        double quadratic = 0.0;

        memcpy(system, kn, sizeof system);
        for (int i = 0; i < N; i++) column[i] = k[i * DIRECT_N + x];
        dposv_("L", &n, &one, system, &n, column, &n, &info, 1);
        CU_ASSERT_EQUAL(info, 0);
        for (int i = 0; i < N; i++) quadratic += k[i * DIRECT_N + x] * column[i];
        ref->memory_residual[x] = 1.0 - quadratic / (N * k[x * DIRECT_N + x]);
    }
}

/* A positive definite kernel B B^T + 0.5 I from random 25 x 25 B, and random targets
 * with a nonzero mean. */
static void test_projections_match_serial(void)
{
    double *b = random_array(DIRECT_N * DIRECT_N, 501);
    double *k = calloc(DIRECT_N * DIRECT_N, sizeof *k);
    double *y = random_array(DIRECT_N * DIRECT_OUTPUTS, 502);
    direct_reference ref;
    sgk_dataset data;

    for (int i = 0; i < DIRECT_N; i++)
        for (int j = 0; j < DIRECT_N; j++) {
            for (int l = 0; l < DIRECT_N; l++)
                k[i * DIRECT_N + j] += b[i * DIRECT_N + l] * b[j * DIRECT_N + l];
            if (i == j) k[i * DIRECT_N + j] += 0.5;
        }
    for (int i = 0; i < DIRECT_N * DIRECT_OUTPUTS; i++) y[i] += 0.3;
    if (world_rank == 0) direct_references(k, y, &ref);
    make_dataset(&data, DIRECT_TRAIN, DIRECT_TEST, DIRECT_OOD, DIRECT_OUTPUTS, y);

    for (int s = 0; s < N_SHAPES; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;
        sgk_dmatrix kernel;
        sgk_config config;
        sgk_analysis analysis;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        make_config(&config, 0, 4);
        distribute(&grid, DIRECT_N, 4, k, &kernel);
        CU_ASSERT_EQUAL_FATAL(sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, &analysis),
                              SGK_OK);
        CU_ASSERT_TRUE(same_on_all_ranks(analysis.target_coeff, DIRECT_TRAIN * DIRECT_OUTPUTS));
        CU_ASSERT_TRUE(same_on_all_ranks(analysis.alignment, DIRECT_OUTPUTS));
        if (world_rank == 0) {
            double scale = ref.eigenvalues[0];

            CU_ASSERT_EQUAL(analysis.n_retained, DIRECT_TRAIN);
            CU_ASSERT_EQUAL(analysis.n_negative, 0);
            CU_ASSERT_DOUBLE_EQUAL(analysis.effective_rank, ref.effective_rank,
                                   DERIVED_TOL * ref.effective_rank);
            for (int j = 0; j < DIRECT_TRAIN; j++)
                CU_ASSERT_DOUBLE_EQUAL(analysis.eigenvalues[j], ref.eigenvalues[j],
                                       EIGENVALUE_TOL * scale);
            for (int i = 0; i < DIRECT_TRAIN * DIRECT_OUTPUTS; i++) {
                CU_ASSERT_DOUBLE_EQUAL(fabs(analysis.target_coeff[i]), ref.abs_coeff[i],
                                       DERIVED_TOL);
                CU_ASSERT_DOUBLE_EQUAL(analysis.captured_energy[i], ref.captured[i], DERIVED_TOL);
            }
            for (int o = 0; o < DIRECT_OUTPUTS; o++) {
                CU_ASSERT_DOUBLE_EQUAL(
                    analysis.captured_energy[(DIRECT_TRAIN - 1) * DIRECT_OUTPUTS + o], 1.0,
                    DERIVED_TOL);
                CU_ASSERT_DOUBLE_EQUAL(analysis.remaining_energy[o], 0.0, DERIVED_TOL);
                CU_ASSERT_EQUAL(analysis.null_space_energy[o], 0.0);
                CU_ASSERT_DOUBLE_EQUAL(analysis.alignment[o], ref.alignment[o],
                                       ALIGNMENT_TOL * fabs(ref.alignment[o]));
                CU_ASSERT_DOUBLE_EQUAL(analysis.alignment_centered[o], ref.alignment_centered[o],
                                       ALIGNMENT_TOL * fabs(ref.alignment_centered[o]));
            }
            for (int x = 0; x < DIRECT_N; x++)
                CU_ASSERT_DOUBLE_EQUAL(analysis.memory_residual[x], ref.memory_residual[x],
                                       DERIVED_TOL);
        }
        sgk_analysis_free(&analysis);
        sgk_dmatrix_free(&kernel);
        sgk_grid_free(&grid);
    }
    sgk_dataset_free(&data);
    free(b);
    free(k);
    free(y);
}

/* An indefinite matrix: its negative eigenvalues are counted and stored unchanged. */
static void test_negative_eigenvalues_reported(void)
{
    enum { N = 9 };
    double *k = random_symmetric(N, 601);
    double *y = random_array(N, 602);
    double serial[N];
    long expected_negative = 0;
    sgk_grid grid;
    sgk_dmatrix kernel;
    sgk_dataset data;
    sgk_config config;
    sgk_analysis analysis;

    CU_ASSERT_EQUAL_FATAL(serial_eigh(N, k, serial, NULL), 0);
    for (int j = 0; j < N; j++) serial[j] /= N;
    for (int j = 0; j < N; j++)
        if (serial[j] < -1e-10 * serial[N - 1]) expected_negative++;
    CU_ASSERT_TRUE(expected_negative > 0);

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    make_dataset(&data, N, 0, 0, 1, y);
    make_config(&config, 0, 2);
    distribute(&grid, N, 2, k, &kernel);
    CU_ASSERT_EQUAL_FATAL(sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, &analysis),
                          SGK_OK);
    CU_ASSERT_EQUAL(analysis.n_negative, expected_negative);
    CU_ASSERT_DOUBLE_EQUAL(analysis.most_negative, serial[0], EIGENVALUE_TOL * serial[N - 1]);
    CU_ASSERT_DOUBLE_EQUAL(analysis.eigenvalues[N - 1], serial[0], EIGENVALUE_TOL * serial[N - 1]);
    CU_ASSERT_EQUAL(analysis.n_retained, N - expected_negative);
    sgk_analysis_free(&analysis);
    sgk_dmatrix_free(&kernel);
    sgk_dataset_free(&data);
    sgk_grid_free(&grid);
    free(k);
    free(y);
}

static void test_analysis_rejects_bad_inputs(void)
{
    double k[16] = { 2, 1, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
    double y[4] = { 1, -1, 1, -1 };
    sgk_grid grid;
    sgk_dmatrix kernel;
    sgk_dataset data;
    sgk_config config;
    sgk_analysis analysis;

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    distribute(&grid, 4, 2, k, &kernel);
    make_dataset(&data, 3, 1, 0, 1, y);
    make_config(&config, 4, 2);
    CU_ASSERT_EQUAL(sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, &analysis),
                    SGK_ERR_USAGE);
    CU_ASSERT_PTR_NULL(analysis.eigenvalues);
    make_config(&config, 0, 2);
    config.spectrum.tolerance = 1.5;
    CU_ASSERT_EQUAL(sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, &analysis),
                    SGK_ERR_USAGE);
    make_config(&config, 0, 2);
    data.n_samples = 5;
    CU_ASSERT_EQUAL(sgk_analysis_run(&config, &data, &kernel, NULL, NULL, 0, &analysis),
                    SGK_ERR_USAGE);
    data.n_samples = 4;
    sgk_dataset_free(&data);
    sgk_dmatrix_free(&kernel);
    sgk_grid_free(&grid);
}

/* ---------------------------------------------------------------------------------
 * Generalization errors against direct formulas. */

/* Sign targets: 4 training and 5 test points and 1 OOD point, 2 replicas. */
static void test_sign_error_rate(void)
{
    double y[10] = { 1, -1, 1, -1, 1, 1, -1, -1, 1, 0 };
    double f_mean[10] = { 0.5, -0.2, 0.1, 0.3, 0.9, -0.1, -2.0, 0.0, NAN, 7.0 };
    double f_replica[20];
    double expected_point[9];
    double expected_replica[2] = { 0.0, 0.0 };
    sgk_dataset data;
    sgk_generalization g;

    /* Replica 0 is always right on test points, replica 1 always wrong. */
    for (int x = 0; x < 10; x++) {
        f_replica[x] = y[x];
        f_replica[10 + x] = -y[x];
    }
    expected_replica[1] = 1.0;
    /* Wrong sign, zero output and NaN all count as errors. */
    for (int x = 0; x < 9; x++) expected_point[x] = f_mean[x] * y[x] > 0.0 ? 0.0 : 1.0;

    make_dataset(&data, 4, 5, 1, 1, y);
    CU_ASSERT_EQUAL_FATAL(sgk_generalization_compute(&data, f_mean, f_replica, 2, &g), SGK_OK);
    CU_ASSERT_EQUAL(g.kind, SGK_ERROR_SIGN);
    CU_ASSERT_EQUAL(g.n_test, 5);
    for (int x = 0; x < 9; x++) CU_ASSERT_EQUAL(g.point_error[x], expected_point[x]);
    CU_ASSERT_TRUE(isnan(g.point_error[9]));
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_mean, 3.0 / 5.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_replica[0], expected_replica[0], 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_replica[1], expected_replica[1], 1e-15);
    CU_ASSERT_STRING_EQUAL(sgk_error_kind_name(g.kind), "sign error rate");
    sgk_generalization_free(&g);
    sgk_dataset_free(&data);
}

/* One-hot targets with 3 outputs: 2 training and 3 test points. */
static void test_argmax_error_rate(void)
{
    double y[15] = { 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0 };
    double f_mean[15] = { 0.9, 0.1, 0.0, 0.2, 0.3, 0.1,      0.1, 0.2,
                          0.7, 0.2, 0.5, 0.3, 0.0, INFINITY, 0.0 };
    sgk_dataset data;
    sgk_generalization g;

    make_dataset(&data, 2, 3, 0, 3, y);
    CU_ASSERT_EQUAL_FATAL(sgk_generalization_compute(&data, f_mean, NULL, 0, &g), SGK_OK);
    CU_ASSERT_EQUAL(g.kind, SGK_ERROR_ARGMAX);
    CU_ASSERT_PTR_NULL(g.test_error_replica);
    /* Test point 2 predicts its class; point 3 predicts class 1 for class 0, and
     * point 4 has an infinite output: two errors in three. */
    CU_ASSERT_EQUAL(g.point_error[0], 0.0);
    CU_ASSERT_EQUAL(g.point_error[1], 0.0);
    CU_ASSERT_EQUAL(g.point_error[2], 0.0);
    CU_ASSERT_EQUAL(g.point_error[3], 1.0);
    CU_ASSERT_EQUAL(g.point_error[4], 1.0);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_mean, 2.0 / 3.0, 1e-15);
    sgk_generalization_free(&g);
    sgk_dataset_free(&data);
}

/* Regression targets with 2 outputs: mean squared error over outputs and points. */
static void test_mean_squared_error(void)
{
    double y[8] = { 0.5, 1.0, 2.0, -1.0, 0.0, 0.0, 3.0, 1.0 };
    double f_mean[8] = { 0.5, 1.5, 1.0, 0.0, 1.0, 2.0, 3.0, 0.0 };
    double f_replica[16];
    double expected_test = 0.0, expected_replica = 0.0;
    sgk_dataset data;
    sgk_generalization g;

    for (int i = 0; i < 8; i++) {
        f_replica[i] = f_mean[i];
        f_replica[8 + i] = y[i] + 0.25;
    }
    for (int x = 1; x < 4; x++) {
        double point = 0.0;

        for (int o = 0; o < 2; o++)
            point += (f_mean[2 * x + o] - y[2 * x + o]) * (f_mean[2 * x + o] - y[2 * x + o]) / 2.0;
        expected_test += point / 3.0;
    }
    expected_replica = 0.0625;

    make_dataset(&data, 1, 3, 0, 2, y);
    CU_ASSERT_EQUAL_FATAL(sgk_generalization_compute(&data, f_mean, f_replica, 2, &g), SGK_OK);
    CU_ASSERT_EQUAL(g.kind, SGK_ERROR_MSE);
    CU_ASSERT_DOUBLE_EQUAL(g.point_error[0], 0.125, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_mean, expected_test, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_replica[0], expected_test, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.test_error_replica[1], expected_replica, 1e-15);
    sgk_generalization_free(&g);
    sgk_dataset_free(&data);

    /* A one-output target of 0 is not a sign target. */
    make_dataset(&data, 2, 2, 0, 1, (double[]){ 1, 0, -1, 1 });
    CU_ASSERT_EQUAL_FATAL(sgk_generalization_compute(&data, f_mean, NULL, 0, &g), SGK_OK);
    CU_ASSERT_EQUAL(g.kind, SGK_ERROR_MSE);
    sgk_generalization_free(&g);
    sgk_dataset_free(&data);
}

static void test_generalization_without_test_points(void)
{
    double y[2] = { 1, -1 };
    double f[2] = { 1, 1 };
    sgk_dataset data;
    sgk_generalization g;

    make_dataset(&data, 2, 0, 0, 1, y);
    CU_ASSERT_EQUAL_FATAL(sgk_generalization_compute(&data, f, f, 1, &g), SGK_OK);
    CU_ASSERT_EQUAL(g.n_test, 0);
    CU_ASSERT_TRUE(isnan(g.test_error_mean));
    CU_ASSERT_TRUE(isnan(g.test_error_replica[0]));
    sgk_generalization_free(&g);
    CU_ASSERT_EQUAL(sgk_generalization_compute(&data, NULL, NULL, 0, &g), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_generalization_compute(&data, f, f, 0, &g), SGK_ERR_USAGE);
    sgk_dataset_free(&data);
}

/* Pearson correlation against the one-pass textbook formula, and its NaN cases. */
static void test_pearson_correlation(void)
{
    double x[6] = { 0.1, 0.4, 0.35, 0.8, 0.9, 0.2 };
    double y[6] = { 1.0, 0.0, 1.0, 1.0, 1.0, 0.0 };
    double line[4] = { 1, 2, 3, 4 }, twice[4] = { 2, 4, 6, 8 }, constant[4] = { 3, 3, 3, 3 };
    double nan_values[3] = { 1, NAN, 2 };
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, expected;
    int n = 6;

    for (int i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        syy += y[i] * y[i];
        sxy += x[i] * y[i];
    }
    expected = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
    CU_ASSERT_DOUBLE_EQUAL(sgk_pearson_correlation(x, y, n), expected, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sgk_pearson_correlation(line, twice, 4), 1.0, 1e-15);
    CU_ASSERT_TRUE(isnan(sgk_pearson_correlation(line, constant, 4)));
    CU_ASSERT_TRUE(isnan(sgk_pearson_correlation(line, twice, 1)));
    CU_ASSERT_TRUE(isnan(sgk_pearson_correlation(nan_values, line, 3)));
}

/* The whole run with network outputs: the correlation between memory residual and
 * per-point error over the test points, computed here from the returned arrays. */
static void test_analysis_generalization_end_to_end(void)
{
    enum { DIM = 5, N_TRAIN = 12, N_TEST = 7, N_OOD = 2, N = N_TRAIN + N_TEST + N_OOD };
    double *features = random_array(N * DIM, 801);
    double *k = NULL;
    double y[N], f_mean[N], f_replica[2 * N];
    sgk_grid grid;
    sgk_dmatrix kernel;
    sgk_dataset data;
    sgk_config config;
    sgk_analysis analysis;

    /* Training points in 3 of 5 dimensions, so test points have s between 0 and 1. */
    for (int a = 0; a < N_TRAIN; a++) features[a * DIM + 3] = features[a * DIM + 4] = 0.0;
    k = gram(features, N, DIM);
    for (int a = 0; a < N; a++) {
        y[a] = a % 3 == 0 ? -1.0 : 1.0;
        f_mean[a] = features[a * DIM + 3] + 0.1 * y[a];
        f_replica[a] = y[a];
        f_replica[N + a] = -f_mean[a];
    }
    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    make_dataset(&data, N_TRAIN, N_TEST, N_OOD, 1, y);
    make_config(&config, 0, 4);
    config.spectrum.eigenvectors = 0;
    distribute(&grid, N, 4, k, &kernel);
    CU_ASSERT_EQUAL_FATAL(sgk_analysis_run(&config, &data, &kernel, world_rank == 0 ? f_mean : NULL,
                                           world_rank == 0 ? f_replica : NULL, 2, &analysis),
                          SGK_OK);
    CU_ASSERT_EQUAL(analysis.has_generalization, 1);
    CU_ASSERT_EQUAL(analysis.has_vectors, 0);
    CU_ASSERT_PTR_NULL(analysis.vectors.local);
    if (world_rank == 0) {
        sgk_generalization *g = &analysis.generalization;
        double residual[N_TEST], error[N_TEST];

        for (int t = 0; t < N_TEST; t++) {
            residual[t] = analysis.memory_residual[N_TRAIN + t];
            error[t] = g->point_error[N_TRAIN + t];
        }
        CU_ASSERT_EQUAL(g->kind, SGK_ERROR_SIGN);
        CU_ASSERT_EQUAL(g->n_replicas, 2);
        CU_ASSERT_EQUAL(g->test_error_replica[0], 0.0);
        CU_ASSERT_DOUBLE_EQUAL(g->test_error_replica[1] + g->test_error_mean, 1.0, 1e-15);
        if (isnan(analysis.residual_error_correlation)) {
            CU_ASSERT_TRUE(isnan(sgk_pearson_correlation(residual, error, N_TEST)));
        } else {
            CU_ASSERT_DOUBLE_EQUAL(analysis.residual_error_correlation,
                                   sgk_pearson_correlation(residual, error, N_TEST), 0.0);
        }
    }
    sgk_analysis_free(&analysis);
    sgk_dmatrix_free(&kernel);
    sgk_dataset_free(&data);
    sgk_grid_free(&grid);
    free(features);
    free(k);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*function)(void);
    } tests[] = {
        { "largest eigenpairs match LAPACK", test_largest_matches_lapack },
        { "largest rejects bad arguments", test_largest_rejects_bad_arguments },
        { "null-space energy closed form", test_null_space_energy_closed_form },
        { "memory residual linear model", test_memory_residual_linear_model },
        { "memory residual full rank", test_memory_residual_full_rank },
        { "projections match serial", test_projections_match_serial },
        { "negative eigenvalues reported", test_negative_eigenvalues_reported },
        { "analysis rejects bad inputs", test_analysis_rejects_bad_inputs },
        { "sign error rate", test_sign_error_rate },
        { "argmax error rate", test_argmax_error_rate },
        { "mean squared error", test_mean_squared_error },
        { "generalization without test points", test_generalization_without_test_points },
        { "pearson correlation", test_pearson_correlation },
        { "generalization end to end", test_analysis_generalization_end_to_end },
    };
    CU_pSuite suite = NULL;
    int failed = 1;

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    sgk_log_setup(world_rank, SGK_LOG_WARN);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    suite = CU_add_suite("analysis", NULL, NULL);
    for (size_t t = 0; t < sizeof tests / sizeof tests[0]; t++)
        CU_add_test(suite, tests[t].name, tests[t].function);

    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    MPI_Finalize();
    return failed;
}
