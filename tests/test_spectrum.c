/* Tests of the distributed eigen-solver against serial LAPACK. MPI test for any rank
 * count, checked at 1, 2, 3, 4, 5 and 7 ranks.
 *
 * Tolerances. PDSYEVD and the serial DSYEVD are both backward stable, so each
 * computed eigenvalue is off by about n eps ||A|| (n <= 30 here: below 1e-14
 * ||A||); 1e-12 max|lambda| leaves a margin of 100. An eigenpair's residual
 * ||A v - lambda v|| is of the same order, and 1e-11 ||A|| allows for the extra
 * rounding of the residual's own computation. Divide and conquer keeps the computed
 * eigenvectors orthogonal to O(n eps), so |V^T V - I| <= 1e-12 entrywise. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/kernel.h"
#include "sgk/spectrum.h"

/* Serial LAPACK from OpenBLAS; size_t arguments are gfortran's hidden CHARACTER
 * lengths. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
                    const int *lda, double *w, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

#define EIGENVALUE_TOL 1e-12
#define RESIDUAL_TOL 1e-11
#define ORTHOGONALITY_TOL 1e-12

static int world_size;
static int world_rank;

/* n < nb, n not a multiple of nb (twice), n = 1, and n a multiple of nb. */
static const struct {
    int n;
    int nb;
} cases[] = {{5, 8}, {23, 4}, {30, 7}, {1, 2}, {24, 3}};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* Grid shapes: the default (2 x 2 at 4 ranks), one process row, one process column. */
static const int shapes[3][2] = {{0, 0}, {1, -1}, {-1, 1}};

static void shape_of(int s, int *n_prow, int *n_pcol)
{
    *n_prow = shapes[s][0] < 0 ? world_size : shapes[s][0];
    *n_pcol = shapes[s][1] < 0 ? world_size : shapes[s][1];
}

/* SplitMix64: the same stream on every rank, so every rank builds the same matrix. */
static double uniform_pm1(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return 2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0;
}

static double *random_symmetric(int n, uint64_t seed)
{
    double *a = malloc((size_t)n * n * sizeof *a);

    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform_pm1(&seed);
    return a;
}

/* B B^T with B of size n x rank: positive semidefinite, eigenvalue 0 of
 * multiplicity n - rank. */
static double *random_low_rank_psd(int n, int rank, uint64_t seed)
{
    double *b = malloc((size_t)n * rank * sizeof *b);
    double *a = calloc((size_t)n * n, sizeof *a);

    for (int k = 0; k < n * rank; k++) b[k] = uniform_pm1(&seed);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int k = 0; k < rank; k++) a[i * n + j] += b[i * rank + k] * b[j * rank + k];
    free(b);
    return a;
}

static void fill_from_full(sgk_dmatrix *m, const double *full)
{
    for (int b = 0; b < m->local_cols; b++)
        for (int a = 0; a < m->local_rows; a++)
            m->local[a + (long)b * m->lld] = full[sgk_dmatrix_global_row(m, a) * m->n +
                                                  sgk_dmatrix_global_col(m, b)];
}

/* Ascending eigenvalues of the symmetric n x n `full` by serial DSYEVD. */
static int serial_eigenvalues(int n, const double *full, double *w)
{
    double *a = malloc((size_t)n * n * sizeof *a);
    double work_query = 0.0;
    int iwork_query = 0;
    int lwork = -1, liwork = -1, info = 0;
    double *work = NULL;
    int *iwork = NULL;

    memcpy(a, full, (size_t)n * n * sizeof *a);
    dsyevd_("N", "L", &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    lwork = (int)work_query;
    liwork = iwork_query;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    dsyevd_("N", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(a);
    free(work);
    free(iwork);
    return info;
}

/* Return whether every rank has bitwise the same eigenvalues. */
static int same_on_all_ranks(const double *values, int n)
{
    double *low = malloc((size_t)n * sizeof *low);
    double *high = malloc((size_t)n * sizeof *high);
    int same = 1;

    MPI_Allreduce(values, low, n, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(values, high, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int k = 0; k < n; k++)
        if (low[k] != high[k]) same = 0;
    free(low);
    free(high);
    return same;
}

/* Root-only checks of descending eigenvalues and column eigenvectors `v` (row-major
 * n x n gathered matrix) of `full`. */
static void check_eigenpairs(int n, const double *full, const double *values, const double *v)
{
    double *serial = malloc((size_t)n * sizeof *serial);
    double norm = 0.0;
    double worst_value = 0.0, worst_residual = 0.0, worst_orthogonality = 0.0;

    CU_ASSERT_EQUAL_FATAL(serial_eigenvalues(n, full, serial), 0);
    for (int k = 0; k < n; k++) norm = fmax(norm, fabs(serial[k]));

    for (int k = 0; k < n; k++) {
        double residual = 0.0;

        if (k + 1 < n) CU_ASSERT_TRUE(values[k] >= values[k + 1]);
        worst_value = fmax(worst_value, fabs(values[k] - serial[n - 1 - k]));
        for (int i = 0; i < n; i++) {
            double r = -values[k] * v[i * n + k];

            for (int j = 0; j < n; j++) r += full[i * n + j] * v[j * n + k];
            residual += r * r;
        }
        worst_residual = fmax(worst_residual, sqrt(residual));
        for (int l = 0; l < n; l++) {
            double dot = 0.0;

            for (int i = 0; i < n; i++) dot += v[i * n + k] * v[i * n + l];
            worst_orthogonality = fmax(worst_orthogonality, fabs(dot - (k == l ? 1.0 : 0.0)));
        }
    }
    CU_ASSERT_TRUE(worst_value <= EIGENVALUE_TOL * norm);
    CU_ASSERT_TRUE(worst_residual <= RESIDUAL_TOL * norm);
    CU_ASSERT_TRUE(worst_orthogonality <= ORTHOGONALITY_TOL);
    free(serial);
}

/* Solve `full` on the grid, with and without eigenvectors, and check the results. */
static void solve_and_check(const sgk_grid *grid, int n, int nb, const double *full,
                            double *values_out)
{
    sgk_dmatrix a, vectors;
    double *values = malloc((size_t)n * sizeof *values);
    double *values_only = malloc((size_t)n * sizeof *values_only);
    double *v = world_rank == 0 ? malloc((size_t)n * n * sizeof *v) : NULL;

    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(grid, n, nb, &a), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(grid, n, nb, &vectors), SGK_OK);
    fill_from_full(&a, full);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh(&a, values, &vectors), SGK_OK);
    CU_ASSERT_TRUE(same_on_all_ranks(values, n));
    CU_ASSERT_EQUAL(sgk_dmatrix_gather(&vectors, 0, v), SGK_OK);
    if (world_rank == 0) check_eigenpairs(n, full, values, v);

    /* Without eigenvectors: the same computation, and sgk_grid_create makes BLACS
     * combine in a fixed order, so bitwise the same eigenvalues. */
    fill_from_full(&a, full);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh(&a, values_only, NULL), SGK_OK);
    CU_ASSERT_EQUAL(memcmp(values, values_only, (size_t)n * sizeof *values), 0);

    if (values_out != NULL) memcpy(values_out, values, (size_t)n * sizeof *values);
    sgk_dmatrix_free(&a);
    sgk_dmatrix_free(&vectors);
    free(values);
    free(values_only);
    free(v);
}

static void test_random_symmetric_matches_lapack(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            double *full = random_symmetric(cases[c].n, 1000u + (uint64_t)c);

            solve_and_check(&grid, cases[c].n, cases[c].nb, full, NULL);
            free(full);
        }
        sgk_grid_free(&grid);
    }
}

/* Rank n/2 for n >= 5, so eigenvalue 0 has multiplicity at least 3; the nonzero
 * eigenvalues of B B^T are those of the well-conditioned B^T B, which keeps them
 * far above the rounding level of the zeros. */
static void test_semidefinite_zero_multiplicity(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            int n = cases[c].n;
            int rank = n / 2;
            double *full = NULL;
            double *values = malloc((size_t)n * sizeof *values);

            if (n < 5) {
                free(values);
                continue;
            }
            full = random_low_rank_psd(n, rank, 2000u + (uint64_t)c);
            solve_and_check(&grid, n, cases[c].nb, full, values);
            for (int k = 0; k < rank; k++) CU_ASSERT_TRUE(values[k] > 1e-4 * values[0]);
            for (int k = rank; k < n; k++)
                CU_ASSERT_TRUE(fabs(values[k]) <= EIGENVALUE_TOL * values[0]);
            free(full);
            free(values);
        }
        sgk_grid_free(&grid);
    }
}

/* Value stored at global (i, j) by the column-reversal test. */
static double entry_value(long i, long j)
{
    return (double)(i * 1000 + j) + 0.5;
}

/* Rounds of one column, of a few columns, and the default (one round here). */
static void test_reverse_columns_rounds(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            int n = cases[c].n;
            long rounds[] = {1, 3L * n, SGK_REVERSE_ROUND_ELEMENTS};
            sgk_dmatrix source, target;
            double *full = world_rank == 0 ? malloc((size_t)n * n * sizeof *full) : NULL;

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, cases[c].nb, &source), SGK_OK);
            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, cases[c].nb, &target), SGK_OK);
            for (int b = 0; b < source.local_cols; b++)
                for (int a = 0; a < source.local_rows; a++)
                    source.local[a + (long)b * source.lld] = entry_value(
                        sgk_dmatrix_global_row(&source, a), sgk_dmatrix_global_col(&source, b));
            for (int k = 0; k < 3; k++) {
                long bad = 0;

                /* Clear the previous round size's result, so stale columns show. */
                for (long e = 0; e < (long)target.local_rows * target.local_cols; e++)
                    target.local[e] = 0.0;
                CU_ASSERT_EQUAL(sgk_dmatrix_reverse_columns(&source, &target, rounds[k]),
                                SGK_OK);
                CU_ASSERT_EQUAL(sgk_dmatrix_gather(&target, 0, full), SGK_OK);
                for (int i = 0; full != NULL && i < n; i++)
                    for (int j = 0; j < n; j++)
                        if (full[i * n + j] != entry_value(i, n - 1 - j)) bad++;
                CU_ASSERT_EQUAL(bad, 0);
            }
            CU_ASSERT_EQUAL(sgk_dmatrix_reverse_columns(&source, &target, 0), SGK_ERR_USAGE);
            CU_ASSERT_EQUAL(sgk_dmatrix_reverse_columns(&source, &source, 1), SGK_ERR_USAGE);
            sgk_dmatrix_free(&source);
            sgk_dmatrix_free(&target);
            free(full);
        }
        sgk_grid_free(&grid);
    }
}

/* Value of the entries sgk_spectrum_eigh must not write in the leading-block test:
 * distinct, and not symmetric, so that a solver reading them would fail the check. */
static double outside_value(long i, long j)
{
    return 1000.0 + (double)(i * 97 + j) + 0.25;
}

/* A view of the leading n x n block of an (n + 9) x (n + 9) matrix, whose leading
 * dimension is therefore larger than the view's local rows. The eigenpairs must match
 * LAPACK's, and every entry outside the view's lower triangle must keep its value:
 * the spectrum analysis solves K_n in place in the kernel and relies on both. */
static void test_leading_block_view(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            int n = cases[c].n, nb = cases[c].nb;
            long big_n = n + 9;
            double *full = random_symmetric(n, 2000u + (uint64_t)c);
            double *values = malloc((size_t)n * sizeof *values);
            double *v = world_rank == 0 ? malloc((size_t)n * n * sizeof *v) : NULL;
            sgk_dmatrix big, shape, view, vectors;
            long changed = 0;

            /* The view takes its local sizes and descriptor from an n x n matrix, and
             * the local array and leading dimension (descriptor entry LLD) of `big`. */
            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, big_n, nb, &big), SGK_OK);
            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, nb, &shape), SGK_OK);
            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, nb, &vectors), SGK_OK);
            view = shape;
            view.local = big.local;
            view.lld = big.lld;
            view.desc[8] = big.lld;
            for (int b = 0; b < big.local_cols; b++)
                for (int a = 0; a < big.local_rows; a++) {
                    long i = sgk_dmatrix_global_row(&big, a), j = sgk_dmatrix_global_col(&big, b);

                    big.local[a + (long)b * big.lld] =
                        i < n && j < n && i >= j ? full[i * n + j] : outside_value(i, j);
                }

            CU_ASSERT_EQUAL(sgk_spectrum_eigh(&view, values, &vectors), SGK_OK);
            CU_ASSERT_EQUAL(sgk_dmatrix_gather(&vectors, 0, v), SGK_OK);
            if (world_rank == 0) check_eigenpairs(n, full, values, v);
            for (int b = 0; b < big.local_cols; b++)
                for (int a = 0; a < big.local_rows; a++) {
                    long i = sgk_dmatrix_global_row(&big, a), j = sgk_dmatrix_global_col(&big, b);

                    if (!(i < n && j < n && i >= j)
                        && big.local[a + (long)b * big.lld] != outside_value(i, j))
                        changed++;
                }
            CU_ASSERT_EQUAL(changed, 0);

            sgk_dmatrix_free(&big);
            sgk_dmatrix_free(&shape);
            sgk_dmatrix_free(&vectors);
            free(full);
            free(values);
            free(v);
        }
        sgk_grid_free(&grid);
    }
}

static void test_rejects_mismatched_vectors(void)
{
    sgk_grid grid;
    sgk_dmatrix a, vectors;
    double values[12];

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, 12, 4, &a), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, 12, 3, &vectors), SGK_OK);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh(&a, values, &vectors), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh(&a, NULL, NULL), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_spectrum_eigh(&a, values, &a), SGK_ERR_USAGE);
    sgk_dmatrix_free(&a);
    sgk_dmatrix_free(&vectors);
    sgk_grid_free(&grid);
}

int main(int argc, char **argv)
{
    CU_pSuite suite = NULL;
    int failed = 1;

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);

    suite = CU_add_suite("spectrum", NULL, NULL);
    CU_add_test(suite, "random symmetric matches LAPACK", test_random_symmetric_matches_lapack);
    CU_add_test(suite, "semidefinite zero multiplicity", test_semidefinite_zero_multiplicity);
    CU_add_test(suite, "reverse columns rounds", test_reverse_columns_rounds);
    CU_add_test(suite, "rejects mismatched vectors", test_rejects_mismatched_vectors);
    CU_add_test(suite, "leading block view", test_leading_block_view);

    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    MPI_Finalize();
    return failed;
}
