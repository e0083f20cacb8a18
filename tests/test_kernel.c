/* Tests of the process grid and the block-cyclic kernel matrix. MPI test for any
 * rank count, checked at 1, 2, 3, 4, 5 and 7 ranks.
 *
 * Partials contain small integers, so every sum over ranks is exact in double and
 * the reduction order cannot change it: the checks compare for equality, and a
 * misplaced entry always shows. */
#include <limits.h>
#include <stdlib.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/kernel.h"

static int world_size;
static int world_rank;

/* Matrix size and block size of one case: n = 1 and 2 leave ranks without a
 * block at 3 or more ranks; n < nb; n not a multiple of nb; n a multiple of nb. */
typedef struct {
    long n;
    int nb;
} matrix_case;

static const matrix_case cases[] = {{1, 4}, {2, 4}, {3, 4}, {10, 4}, {12, 4}, {7, 1}, {9, 2}};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* Grid shapes: the default, one process row, one process column. */
static const int shapes[3][2] = {{0, 0}, {1, -1}, {-1, 1}};

static void shape_of(int s, int *n_prow, int *n_pcol)
{
    *n_prow = shapes[s][0] < 0 ? world_size : shapes[s][0];
    *n_pcol = shapes[s][1] < 0 ? world_size : shapes[s][1];
}

/* Entry (i, j) of rank r's partial: unique per entry, so a transposed or shifted
 * entry changes the sum. */
static double partial_value(int r, long i, long j, long n)
{
    return (double)((r + 1) * (i * n + j + 1) + r * r);
}

static double expected_sum(long i, long j, long n)
{
    double sum = 0.0;

    for (int r = 0; r < world_size; r++) sum += partial_value(r, i, j, n);
    return sum;
}

static double *make_partial(long n)
{
    double *partial = malloc((size_t)(n * n) * sizeof *partial);

    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) partial[i * n + j] = partial_value(world_rank, i, j, n);
    return partial;
}

/* Local entries that differ from factor * expected_sum, found through
 * global_row/col. */
static long count_local_mismatches(const sgk_dmatrix *m, double factor)
{
    long bad = 0;

    for (int b = 0; b < m->local_cols; b++)
        for (int a = 0; a < m->local_rows; a++) {
            long i = sgk_dmatrix_global_row(m, a);
            long j = sgk_dmatrix_global_col(m, b);

            if (m->local[a + (long)b * m->lld] != factor * expected_sum(i, j, m->n)) bad++;
        }
    return bad;
}

/* Entries of the gathered matrix (root only) that differ from factor * expected_sum. */
static long count_gathered_mismatches(const sgk_dmatrix *m, double factor)
{
    long n = m->n;
    double *full = world_rank == 0 ? malloc((size_t)(n * n) * sizeof *full) : NULL;
    long bad = 0;

    CU_ASSERT_EQUAL(sgk_dmatrix_gather(m, 0, full), SGK_OK);
    if (world_rank == 0) {
        for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++)
                if (full[i * n + j] != factor * expected_sum(i, j, n)) bad++;
    }
    free(full);
    return bad;
}

static void test_default_shape_table(void)
{
    static const int table[][2] = {{1, 1},  {2, 1},  {3, 1},  {4, 2},  {5, 1},
                                   {6, 2},  {7, 1},  {8, 2},  {9, 3},  {12, 3},
                                   {16, 4}, {18, 3}, {64, 8}, {96, 8}, {97, 1}};

    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        int rows = 0, cols = 0;

        sgk_grid_default_shape(table[k][0], &rows, &cols);
        CU_ASSERT_EQUAL(rows, table[k][1]);
        CU_ASSERT_EQUAL(cols, table[k][0] / table[k][1]);
    }
}

static void test_grid_row_major_placement(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        int want_rows = 0, want_cols = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        if (n_prow == 0) sgk_grid_default_shape(world_size, &want_rows, &want_cols);
        else want_rows = n_prow, want_cols = n_pcol;
        CU_ASSERT_EQUAL(grid.n_prow, want_rows);
        CU_ASSERT_EQUAL(grid.n_pcol, want_cols);
        CU_ASSERT_EQUAL(grid.n_ranks, world_size);
        CU_ASSERT_EQUAL(grid.rank, world_rank);
        CU_ASSERT_EQUAL(grid.my_prow, world_rank / want_cols);
        CU_ASSERT_EQUAL(grid.my_pcol, world_rank % want_cols);
        sgk_grid_free(&grid);
    }
}

static void test_grid_rejects_wrong_shape(void)
{
    sgk_grid grid;

    CU_ASSERT_EQUAL(sgk_grid_create(MPI_COMM_WORLD, world_size + 1, 1, &grid), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_grid_create(MPI_COMM_WORLD, -1, -world_size, &grid), SGK_ERR_USAGE);
}

static void test_agree_spreads_failure(void)
{
    sgk_grid grid;
    sgk_status local = world_rank == 0 ? SGK_ERR_DATA : SGK_OK;

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL(sgk_grid_agree(&grid, local, "test step"), SGK_ERR_DATA);
    CU_ASSERT_EQUAL(sgk_grid_agree(&grid, SGK_OK, "test step"), SGK_OK);
    sgk_grid_free(&grid);
}

static void test_create_rejects_bad_sizes(void)
{
    sgk_grid grid;
    sgk_dmatrix m;

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL(sgk_dmatrix_create(&grid, 0, 4, &m), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_dmatrix_create(&grid, 5, 0, &m), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_dmatrix_create(&grid, (long)INT_MAX + 1, 4, &m), SGK_ERR_USAGE);
    sgk_grid_free(&grid);
}

/* Local sizes, descriptor and index maps against a scan of all global indices. */
static void test_layout_matches_scan(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            sgk_dmatrix m;
            int row = 0, col = 0;

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, cases[c].n, cases[c].nb, &m),
                                  SGK_OK);
            for (long g = 0; g < m.n; g++) {
                if ((g / m.nb) % grid.n_prow == grid.my_prow) {
                    CU_ASSERT_TRUE(row < m.local_rows &&
                                   sgk_dmatrix_global_row(&m, row) == g);
                    row++;
                }
                if ((g / m.nb) % grid.n_pcol == grid.my_pcol) {
                    CU_ASSERT_TRUE(col < m.local_cols &&
                                   sgk_dmatrix_global_col(&m, col) == g);
                    col++;
                }
            }
            CU_ASSERT_EQUAL(row, m.local_rows);
            CU_ASSERT_EQUAL(col, m.local_cols);
            CU_ASSERT_EQUAL(m.lld, m.local_rows > 1 ? m.local_rows : 1);
            CU_ASSERT_EQUAL(m.desc[8], m.lld);
            CU_ASSERT_EQUAL(m.desc[2], m.n);
            CU_ASSERT_EQUAL(m.desc[5], m.nb);
            CU_ASSERT_TRUE((m.local == NULL) == (m.local_rows * m.local_cols == 0));
            sgk_dmatrix_free(&m);
        }
        sgk_grid_free(&grid);
    }
}

static void test_reduce_add_equals_serial_sum(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            sgk_dmatrix m;
            double *partial = make_partial(cases[c].n);

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, cases[c].n, cases[c].nb, &m),
                                  SGK_OK);
            CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add(&m, partial), SGK_OK);
            CU_ASSERT_EQUAL(count_local_mismatches(&m, 1.0), 0);
            CU_ASSERT_EQUAL(count_gathered_mismatches(&m, 1.0), 0);
            sgk_dmatrix_free(&m);
            free(partial);
        }
        sgk_grid_free(&grid);
    }
}

static void test_reduce_add_accumulates(void)
{
    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            sgk_dmatrix m;
            double *partial = make_partial(cases[c].n);

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, cases[c].n, cases[c].nb, &m),
                                  SGK_OK);
            CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add(&m, partial), SGK_OK);
            CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add(&m, partial), SGK_OK);
            CU_ASSERT_EQUAL(count_local_mismatches(&m, 2.0), 0);
            sgk_dmatrix_free(&m);
            free(partial);
        }
        sgk_grid_free(&grid);
    }
}

/* Panels of 1 row, 3 rows (< nb), 5 rows (rounded down to one block row of 4),
 * 9 rows (two block rows) and the whole matrix. */
static void test_reduce_add_panelled(void)
{
    static const matrix_case panel_cases[] = {{10, 4}, {9, 2}, {13, 1}};
    static const long panel_rows[] = {1, 3, 5, 9, 1000};

    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < 3; c++) {
            long n = panel_cases[c].n;
            double *partial = make_partial(n);

            for (int p = 0; p < 5; p++) {
                sgk_dmatrix m;

                CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, panel_cases[c].nb, &m),
                                      SGK_OK);
                CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add_panels(&m, partial, panel_rows[p] * n),
                                SGK_OK);
                CU_ASSERT_EQUAL(count_local_mismatches(&m, 1.0), 0);
                sgk_dmatrix_free(&m);
            }
            free(partial);
        }
        sgk_grid_free(&grid);
    }
}

static void test_reduce_add_rejects_bad_panel(void)
{
    sgk_grid grid;
    sgk_dmatrix m;
    double *partial = make_partial(6);

    CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, 6, 2, &m), SGK_OK);
    CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add_panels(&m, partial, 5), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add_panels(&m, partial, (long)INT_MAX + 1),
                    SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_dmatrix_reduce_add(&m, NULL), SGK_ERR_USAGE);
    sgk_dmatrix_free(&m);
    sgk_grid_free(&grid);
    free(partial);
}

/* Value stored at global (i, j) by the gather and leading-block tests. */
static double entry_value(long i, long j)
{
    return (double)(i * 1000 + j) + 0.25;
}

static void fill_with_entry_value(sgk_dmatrix *m)
{
    for (int b = 0; b < m->local_cols; b++)
        for (int a = 0; a < m->local_rows; a++)
            m->local[a + (long)b * m->lld] =
                entry_value(sgk_dmatrix_global_row(m, a), sgk_dmatrix_global_col(m, b));
}

/* Gather to the last rank, so that a root other than 0 is exercised. */
static void test_gather_round_trip(void)
{
    int root = world_size - 1;

    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            long n = cases[c].n;
            sgk_dmatrix m;
            double *full = world_rank == root ? calloc((size_t)(n * n), sizeof *full) : NULL;
            long bad = 0;

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, cases[c].nb, &m), SGK_OK);
            fill_with_entry_value(&m);
            CU_ASSERT_EQUAL(sgk_dmatrix_gather(&m, root, full), SGK_OK);
            for (long i = 0; full != NULL && i < n; i++)
                for (long j = 0; j < n; j++)
                    if (full[i * n + j] != entry_value(i, j)) bad++;
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT_EQUAL(sgk_dmatrix_gather(&m, world_size, full), SGK_ERR_USAGE);
            sgk_dmatrix_free(&m);
            free(full);
        }
        sgk_grid_free(&grid);
    }
}

/* Scales are powers of two, so the scaled entries are exact. */
static void test_leading_block_values(void)
{
    static const double scales[] = {0.5, -2.0};

    for (int s = 0; s < 3; s++) {
        int n_prow = 0, n_pcol = 0;
        sgk_grid grid;

        shape_of(s, &n_prow, &n_pcol);
        CU_ASSERT_EQUAL_FATAL(sgk_grid_create(MPI_COMM_WORLD, n_prow, n_pcol, &grid), SGK_OK);
        for (int c = 0; c < N_CASES; c++) {
            long n = cases[c].n;
            long sub_sizes[] = {1, (n + 1) / 2, n};
            sgk_dmatrix m;

            CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, n, cases[c].nb, &m), SGK_OK);
            fill_with_entry_value(&m);
            for (int k = 0; k < 3; k++) {
                long n_sub = sub_sizes[k];
                double scale = scales[k % 2];
                double *full = world_rank == 0 ? malloc((size_t)(n_sub * n_sub) * sizeof *full)
                                               : NULL;
                sgk_dmatrix block;
                long bad = 0;

                CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_leading_block(&m, n_sub, scale, &block),
                                      SGK_OK);
                CU_ASSERT_EQUAL(block.n, n_sub);
                CU_ASSERT_EQUAL(block.nb, m.nb);
                CU_ASSERT_EQUAL(sgk_dmatrix_gather(&block, 0, full), SGK_OK);
                for (long i = 0; full != NULL && i < n_sub; i++)
                    for (long j = 0; j < n_sub; j++)
                        if (full[i * n_sub + j] != scale * entry_value(i, j)) bad++;
                CU_ASSERT_EQUAL(bad, 0);
                sgk_dmatrix_free(&block);
                free(full);
            }
            CU_ASSERT_EQUAL(sgk_dmatrix_leading_block(&m, n + 1, 1.0, &(sgk_dmatrix){0}),
                            SGK_ERR_USAGE);
            sgk_dmatrix_free(&m);
        }
        sgk_grid_free(&grid);
    }
}

int main(int argc, char **argv)
{
    CU_pSuite suite = NULL;
    int failed = 1;

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);

    suite = CU_add_suite("kernel", NULL, NULL);
    CU_add_test(suite, "default shape table", test_default_shape_table);
    CU_add_test(suite, "grid row-major placement", test_grid_row_major_placement);
    CU_add_test(suite, "grid rejects wrong shape", test_grid_rejects_wrong_shape);
    CU_add_test(suite, "agree spreads failure", test_agree_spreads_failure);
    CU_add_test(suite, "create rejects bad sizes", test_create_rejects_bad_sizes);
    CU_add_test(suite, "layout matches scan", test_layout_matches_scan);
    CU_add_test(suite, "reduce_add equals serial sum", test_reduce_add_equals_serial_sum);
    CU_add_test(suite, "reduce_add accumulates", test_reduce_add_accumulates);
    CU_add_test(suite, "reduce_add panelled", test_reduce_add_panelled);
    CU_add_test(suite, "reduce_add rejects bad panel", test_reduce_add_rejects_bad_panel);
    CU_add_test(suite, "gather round trip", test_gather_round_trip);
    CU_add_test(suite, "leading block values", test_leading_block_values);

    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    MPI_Finalize();
    return failed;
}
