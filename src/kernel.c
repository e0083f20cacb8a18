/* BLACS process grid and the 2D block-cyclic kernel matrix.
 *
 * Layout: global entry (i, j), 0-based, lives on process row (i / nb) % n_prow and
 * process column (j / nb) % n_pcol, the first block on process (0, 0). A process
 * stores its entries column-major with leading dimension lld = max(1, local_rows).
 * The BLACS grid is row-major, so rank r of the grid communicator is process
 * (r / n_pcol, r % n_pcol). sgk_grid_create checks this placement. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "sgk/kernel.h"

/* Debian's ScaLAPACK ships no C header. These are the C BLACS entry points and the
 * Fortran tool routines; Fortran integers are 32-bit int (LP64 build), and the
 * trailing size_t arguments are the hidden CHARACTER lengths of gfortran. */
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cfree_blacs_system_handle(int handle);
extern void Cblacs_gridinit(int *context, const char *order, int n_prow, int n_pcol);
extern void Cblacs_gridinfo(int context, int *n_prow, int *n_pcol, int *my_prow,
                            int *my_pcol);
extern void Cblacs_gridexit(int context);
extern void Cblacs_set(int context, int what, const int *value);
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
                      const int *irsrc, const int *icsrc, const int *context,
                      const int *lld, int *info);
extern void pdlacpy_(const char *uplo, const int *m, const int *n, const double *a,
                     const int *ia, const int *ja, const int *desca, double *b,
                     const int *ib, const int *jb, const int *descb, size_t uplo_len);

/* BLACS_SET codes (BLACS reference, Bdef.h). By default BLACS combines (global
 * sums and maxima inside ScaLAPACK) may add in an order that depends on message
 * timing, so repeated PDSYEVD calls on the same input differed in the last bits
 * at 3 and 4 ranks. Repeatable topologies fix the order; coherent topologies give
 * every process the same combined value. */
enum { BLACS_TOPOLOGIES_REPEATABLE = 15, BLACS_TOPOLOGIES_COHERENT = 16 };
static const int blacs_true = 1;

/* Stand-in for the local array of a process that owns no entry: Fortran routines
 * take its address but never read or write it. */
static double empty_local;

static sgk_status mpi_check(int rc, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (rc == MPI_SUCCESS) return SGK_OK;
    MPI_Error_string(rc, text, &length);
    return sgk_error(SGK_ERR_IO, "%s failed: %s", call, text);
}

static sgk_status out_of_memory(const char *what, size_t bytes)
{
    return sgk_error(SGK_ERR_IO, "out of memory: %s needs %zu bytes", what, bytes);
}

/* Number of indices in [0, g) that process p of np owns, blocks of nb, first block
 * on process 0: numroc_ in long arithmetic. */
static long owned_count(long g, int nb, int p, int np)
{
    long full_blocks = g / nb;
    long count = (full_blocks / np) * nb;
    long extra_blocks = full_blocks % np;

    if (p < extra_blocks)
        count += nb;
    else if (p == extra_blocks)
        count += g % nb;
    return count;
}

/* Local index of global index g on the process that owns it. */
static long local_index(long g, int nb, int np)
{
    return (g / ((long)nb * np)) * nb + g % nb;
}

static int owner(long g, int nb, int np)
{
    return (int)((g / nb) % np);
}

static double *local_or_empty(const sgk_dmatrix *matrix)
{
    return matrix->local != NULL ? matrix->local : &empty_local;
}

void sgk_grid_default_shape(int n_ranks, int *n_prow, int *n_pcol)
{
    int rows = 1;

    for (int d = 1; (long)d * d <= n_ranks; d++)
        if (n_ranks % d == 0) rows = d;
    *n_prow = rows;
    *n_pcol = n_ranks / rows;
}

sgk_status sgk_grid_agree(const sgk_grid *grid, sgk_status local, const char *operation)
{
    int mine = (int)local;
    int worst = 0;
    int rc = MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, grid->comm);

    if (rc != MPI_SUCCESS) return mpi_check(rc, "MPI_Allreduce of the status");
    if (local != SGK_OK) return local;
    if (worst == SGK_OK) return SGK_OK;
    return sgk_error((sgk_status)worst,
                     "%s failed on another rank of the grid; that rank's message names the cause",
                     operation);
}

sgk_status sgk_grid_create(MPI_Comm comm, int n_prow, int n_pcol, sgk_grid *grid)
{
    int n_ranks = 0;
    int rank = 0;
    int blacs_prow = -1, blacs_pcol = -1;
    int placed_ok = 0;
    int all_placed_ok = 0;
    sgk_status status = SGK_OK;

    memset(grid, 0, sizeof *grid);
    grid->comm = MPI_COMM_NULL;
    grid->context = -1;
    SGK_CHECK(mpi_check(MPI_Comm_size(comm, &n_ranks), "MPI_Comm_size"));
    SGK_CHECK(mpi_check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank"));

    /* 1. Choose the shape. Every rank passes the same arguments, so every rank
     *    takes the same branch and no collective is left half-entered. */
    if (n_prow == 0) {
        sgk_grid_default_shape(n_ranks, &n_prow, &n_pcol);
    } else if (n_prow < 0 || n_pcol <= 0 || (long)n_prow * n_pcol != n_ranks) {
        return sgk_error(SGK_ERR_USAGE,
                         "process grid %d x %d does not match %d MPI ranks: n_prow * n_pcol "
                         "must equal the rank count, or pass n_prow = 0 for the default shape",
                         n_prow, n_pcol, n_ranks);
    }

    /* 2. Duplicate the communicator so that our collectives never match messages
     *    of the caller, and hand it to BLACS. */
    SGK_CHECK(mpi_check(MPI_Comm_dup(comm, &grid->comm), "MPI_Comm_dup"));
    grid->system_handle = Csys2blacs_handle(grid->comm);
    grid->context = grid->system_handle;
    Cblacs_gridinit(&grid->context, "Row", n_prow, n_pcol);
    Cblacs_set(grid->context, BLACS_TOPOLOGIES_REPEATABLE, &blacs_true);
    Cblacs_set(grid->context, BLACS_TOPOLOGIES_COHERENT, &blacs_true);

    /* 3. BLACS creates its own communicators from ours inside gridinit, and they
     *    keep the fatal error handler because ours changes only now: BLACS never
     *    checks MPI return codes, while our wrappers do. */
    status = mpi_check(MPI_Comm_set_errhandler(grid->comm, MPI_ERRORS_RETURN),
                       "MPI_Comm_set_errhandler");
    if (status != SGK_OK) {
        sgk_grid_free(grid);
        return status;
    }
    Cblacs_gridinfo(grid->context, &grid->n_prow, &grid->n_pcol, &blacs_prow, &blacs_pcol);
    grid->n_ranks = n_ranks;
    grid->rank = rank;
    grid->my_prow = blacs_prow;
    grid->my_pcol = blacs_pcol;

    /* 4. The reduction maps ranks to processes by the row-major formula. */
    placed_ok = grid->n_prow == n_prow && grid->n_pcol == n_pcol &&
                blacs_prow == rank / n_pcol && blacs_pcol == rank % n_pcol;
    status = mpi_check(MPI_Allreduce(&placed_ok, &all_placed_ok, 1, MPI_INT, MPI_LAND,
                                     grid->comm),
                       "MPI_Allreduce of the grid placement");
    if (status != SGK_OK) {
        sgk_grid_free(grid);
        return status;
    }
    if (!all_placed_ok) {
        sgk_grid_free(grid);
        return sgk_error(SGK_ERR_IO,
                         "BLACS placed rank %d at process (%d, %d) of a %d x %d grid; the "
                         "row-major grid needs (%d, %d) on every rank",
                         rank, blacs_prow, blacs_pcol, n_prow, n_pcol, rank / n_pcol,
                         rank % n_pcol);
    }
    return SGK_OK;
}

void sgk_grid_free(sgk_grid *grid)
{
    if (grid->context >= 0) Cblacs_gridexit(grid->context);
    if (grid->comm != MPI_COMM_NULL) {
        Cfree_blacs_system_handle(grid->system_handle);
        MPI_Comm_free(&grid->comm);
    }
    grid->context = -1;
    grid->comm = MPI_COMM_NULL;
}

sgk_status sgk_dmatrix_create(const sgk_grid *grid, long n, int nb, sgk_dmatrix *matrix)
{
    int n_int = 0;
    int zero = 0;
    int info = 0;
    size_t count = 0;
    sgk_status status = SGK_OK;

    memset(matrix, 0, sizeof *matrix);
    matrix->grid = grid;
    if (n < 1 || n > INT_MAX)
        return sgk_error(SGK_ERR_USAGE,
                         "matrix size n = %ld is out of range: ScaLAPACK accepts 1 to %d", n,
                         INT_MAX);
    if (nb < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "block size %d is invalid ([kernel] block_size): it must be >= 1", nb);

    n_int = (int)n;
    matrix->n = n;
    matrix->nb = nb;
    matrix->local_rows = numroc_(&n_int, &nb, &grid->my_prow, &zero, &grid->n_prow);
    matrix->local_cols = numroc_(&n_int, &nb, &grid->my_pcol, &zero, &grid->n_pcol);
    matrix->lld = matrix->local_rows > 1 ? matrix->local_rows : 1;
    descinit_(matrix->desc, &n_int, &n_int, &nb, &nb, &zero, &zero, &grid->context,
              &matrix->lld, &info);
    if (info != 0)
        status = sgk_error(SGK_ERR_USAGE,
                           "DESCINIT rejected argument %d for an n = %ld, nb = %d matrix on a "
                           "%d x %d grid",
                           -info, n, nb, grid->n_prow, grid->n_pcol);

    count = (size_t)matrix->local_rows * (size_t)matrix->local_cols;
    if (status == SGK_OK && count > 0) {
        matrix->local = calloc(count, sizeof(double));
        if (matrix->local == NULL)
            status = out_of_memory("the local part of the block-cyclic matrix",
                                   count * sizeof(double));
    }
    status = sgk_grid_agree(grid, status, "sgk_dmatrix_create");
    if (status != SGK_OK) sgk_dmatrix_free(matrix);
    return status;
}

void sgk_dmatrix_free(sgk_dmatrix *matrix)
{
    free(matrix->local);
    matrix->local = NULL;
    matrix->local_rows = 0;
    matrix->local_cols = 0;
}

long sgk_dmatrix_global_row(const sgk_dmatrix *matrix, int i)
{
    const sgk_grid *grid = matrix->grid;

    return ((long)(i / matrix->nb) * grid->n_prow + grid->my_prow) * matrix->nb +
           i % matrix->nb;
}

long sgk_dmatrix_global_col(const sgk_dmatrix *matrix, int j)
{
    const sgk_grid *grid = matrix->grid;

    return ((long)(j / matrix->nb) * grid->n_pcol + grid->my_pcol) * matrix->nb +
           j % matrix->nb;
}

/* Where each rank's piece of one panel of rows [row_begin, row_end) goes in the
 * reduce-scatter buffer. Rank r's piece contains its rows of the panel times all its
 * columns, column-major with leading dimension panel_rows[r / n_pcol]. */
typedef struct {
    long *panel_rows;   /* n_prow entries: rows of the panel each process row owns */
    int *counts;        /* n_ranks entries: elements each rank receives */
    long *offsets;      /* n_ranks entries: start of each rank's piece */
    int *col_pcol;      /* n entries: process column of every global column */
    long *col_local;    /* n entries: local column index of every global column */
    double *send;       /* packed panel */
    double *receive;    /* this rank's piece of the panel */
} reduce_plan;

static void reduce_plan_free(reduce_plan *plan)
{
    free(plan->panel_rows);
    free(plan->counts);
    free(plan->offsets);
    free(plan->col_pcol);
    free(plan->col_local);
    free(plan->send);
    free(plan->receive);
}

static sgk_status reduce_plan_alloc(const sgk_dmatrix *matrix, long rows_per_panel,
                                    reduce_plan *plan)
{
    const sgk_grid *grid = matrix->grid;
    long n = matrix->n;
    long my_rows_max = rows_per_panel < matrix->local_rows ? rows_per_panel
                                                           : matrix->local_rows;
    size_t receive_count = (size_t)my_rows_max * (size_t)matrix->local_cols;

    memset(plan, 0, sizeof *plan);
    plan->panel_rows = malloc((size_t)grid->n_prow * sizeof *plan->panel_rows);
    plan->counts = malloc((size_t)grid->n_ranks * sizeof *plan->counts);
    plan->offsets = malloc((size_t)grid->n_ranks * sizeof *plan->offsets);
    plan->col_pcol = malloc((size_t)n * sizeof *plan->col_pcol);
    plan->col_local = malloc((size_t)n * sizeof *plan->col_local);
    plan->send = malloc((size_t)rows_per_panel * (size_t)n * sizeof *plan->send);
    plan->receive = malloc((receive_count > 0 ? receive_count : 1) * sizeof *plan->receive);
    if (!plan->panel_rows || !plan->counts || !plan->offsets || !plan->col_pcol ||
        !plan->col_local || !plan->send || !plan->receive)
        return out_of_memory("the reduce-scatter buffers of a panel",
                             (size_t)rows_per_panel * (size_t)n * sizeof(double));

    for (long j = 0; j < n; j++) {
        plan->col_pcol[j] = owner(j, matrix->nb, grid->n_pcol);
        plan->col_local[j] = local_index(j, matrix->nb, grid->n_pcol);
    }
    return SGK_OK;
}

/* Fill counts and offsets for the panel [row_begin, row_end). */
static void reduce_plan_panel(const sgk_dmatrix *matrix, long row_begin, long row_end,
                              reduce_plan *plan)
{
    const sgk_grid *grid = matrix->grid;
    long offset = 0;

    for (int prow = 0; prow < grid->n_prow; prow++)
        plan->panel_rows[prow] = owned_count(row_end, matrix->nb, prow, grid->n_prow) -
                                 owned_count(row_begin, matrix->nb, prow, grid->n_prow);
    for (int r = 0; r < grid->n_ranks; r++) {
        int prow = r / grid->n_pcol;
        int pcol = r % grid->n_pcol;
        long cols = owned_count(matrix->n, matrix->nb, pcol, grid->n_pcol);

        plan->counts[r] = (int)(plan->panel_rows[prow] * cols);
        plan->offsets[r] = offset;
        offset += plan->counts[r];
    }
}

/* Copy rows [row_begin, row_end) of the row-major `partial` into per-owner order. */
static void reduce_plan_pack(const sgk_dmatrix *matrix, const double *partial,
                             long row_begin, long row_end, reduce_plan *plan)
{
    const sgk_grid *grid = matrix->grid;
    long n = matrix->n;

    for (long i = row_begin; i < row_end; i++) {
        int prow = owner(i, matrix->nb, grid->n_prow);
        long row_in_panel = local_index(i, matrix->nb, grid->n_prow) -
                            owned_count(row_begin, matrix->nb, prow, grid->n_prow);
        long ld = plan->panel_rows[prow];
        const long *offset_of_pcol = plan->offsets + (long)prow * grid->n_pcol;
        const double *source = partial + (size_t)i * (size_t)n;

        for (long j = 0; j < n; j++)
            plan->send[offset_of_pcol[plan->col_pcol[j]] + row_in_panel +
                       plan->col_local[j] * ld] = source[j];
    }
}

sgk_status sgk_dmatrix_reduce_add(sgk_dmatrix *matrix, const double *partial)
{
    return sgk_dmatrix_reduce_add_panels(matrix, partial, SGK_REDUCE_PANEL_ELEMENTS);
}

sgk_status sgk_dmatrix_reduce_add_panels(sgk_dmatrix *matrix, const double *partial,
                                         long panel_elements)
{
    const sgk_grid *grid = matrix->grid;
    long n = matrix->n;
    long rows_per_panel = 0;
    reduce_plan plan;
    sgk_status status = SGK_OK;

    /* 1. Panel height: whole rows, at most panel_elements elements, so every count
     *    and the sum of the counts fit in an int. Whole block rows when they fit. */
    if (panel_elements < n || panel_elements > INT_MAX)
        return sgk_error(SGK_ERR_USAGE,
                         "reduce-scatter panel of %ld elements is out of range for n = %ld: "
                         "it must hold one row (>= n) and at most INT_MAX = %d elements",
                         panel_elements, n, INT_MAX);
    rows_per_panel = panel_elements / n;
    if (rows_per_panel >= matrix->nb) rows_per_panel -= rows_per_panel % matrix->nb;
    if (rows_per_panel > n) rows_per_panel = n;

    /* 2. Buffers and the column map, shared by every panel. A rank that cannot
     *    allocate makes every rank return before the first reduce-scatter. */
    if (partial == NULL)
        status = sgk_error(SGK_ERR_USAGE,
                           "sgk_dmatrix_reduce_add: every rank must pass an n x n partial "
                           "array (n = %ld), zeros where it has nothing",
                           n);
    if (status == SGK_OK) status = reduce_plan_alloc(matrix, rows_per_panel, &plan);
    else memset(&plan, 0, sizeof plan);
    status = sgk_grid_agree(grid, status, "sgk_dmatrix_reduce_add");

    /* 3. One reduce-scatter per panel; every rank computes the same panels, so all
     *    ranks enter the same number of collectives, including ranks with count 0. */
    for (long row_begin = 0; status == SGK_OK && row_begin < n; row_begin += rows_per_panel) {
        long row_end = row_begin + rows_per_panel < n ? row_begin + rows_per_panel : n;
        long my_rows = 0;
        long first_local_row = 0;
        int rc = MPI_SUCCESS;

        reduce_plan_panel(matrix, row_begin, row_end, &plan);
        reduce_plan_pack(matrix, partial, row_begin, row_end, &plan);
        rc = MPI_Reduce_scatter(plan.send, plan.receive, plan.counts, MPI_DOUBLE, MPI_SUM,
                                grid->comm);
        status = mpi_check(rc, "MPI_Reduce_scatter of a kernel panel");
        if (status != SGK_OK) break;

        /* 4. Add (not overwrite) this rank's piece into its column-major local part. */
        my_rows = plan.panel_rows[grid->my_prow];
        first_local_row = owned_count(row_begin, matrix->nb, grid->my_prow, grid->n_prow);
        for (long b = 0; my_rows > 0 && b < matrix->local_cols; b++) {
            double *target = matrix->local + first_local_row + b * matrix->lld;
            const double *piece = plan.receive + b * my_rows;

            for (long a = 0; a < my_rows; a++) target[a] += piece[a];
        }
    }
    reduce_plan_free(&plan);
    return status;
}

sgk_status sgk_dmatrix_gather(const sgk_dmatrix *matrix, int root, double *full)
{
    const sgk_grid *grid = matrix->grid;
    long n = matrix->n;
    int my_count = matrix->local_rows * matrix->local_cols;
    int *counts = NULL;
    int *displs = NULL;
    double *pieces = NULL;
    sgk_status status = SGK_OK;

    /* 1. Check sizes and allocate the root's receive buffers. */
    if (root < 0 || root >= grid->n_ranks)
        return sgk_error(SGK_ERR_USAGE, "gather root %d is not a rank of the %d-rank grid",
                         root, grid->n_ranks);
    if (n * n > INT_MAX)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_dmatrix_gather handles n^2 <= INT_MAX elements, n = %ld is "
                         "too large; write the matrix in parallel instead",
                         n);
    if (grid->rank == root) {
        if (full == NULL)
            status = sgk_error(SGK_ERR_USAGE, "sgk_dmatrix_gather: the root rank %d passed "
                                              "no output array", root);
        counts = malloc((size_t)grid->n_ranks * sizeof *counts);
        displs = malloc((size_t)grid->n_ranks * sizeof *displs);
        pieces = malloc((size_t)(n * n) * sizeof *pieces);
        if (status == SGK_OK && (!counts || !displs || !pieces))
            status = out_of_memory("gathering the matrix", (size_t)(n * n) * sizeof(double));
        for (int r = 0; status == SGK_OK && r < grid->n_ranks; r++) {
            counts[r] = (int)(owned_count(n, matrix->nb, r / grid->n_pcol, grid->n_prow) *
                              owned_count(n, matrix->nb, r % grid->n_pcol, grid->n_pcol));
            displs[r] = r == 0 ? 0 : displs[r - 1] + counts[r - 1];
        }
    }
    status = sgk_grid_agree(grid, status, "sgk_dmatrix_gather");

    /* 2. Collect every rank's local part; lld equals local_rows whenever the part
     *    is not empty, so it is contiguous. */
    if (status == SGK_OK)
        status = mpi_check(MPI_Gatherv(local_or_empty(matrix), my_count, MPI_DOUBLE, pieces,
                                       counts, displs, MPI_DOUBLE, root, grid->comm),
                           "MPI_Gatherv of the block-cyclic matrix");

    /* 3. Place every entry at its global (row, column), row-major. */
    for (int r = 0; status == SGK_OK && grid->rank == root && r < grid->n_ranks; r++) {
        int prow = r / grid->n_pcol;
        int pcol = r % grid->n_pcol;
        long rows = owned_count(n, matrix->nb, prow, grid->n_prow);
        long cols = owned_count(n, matrix->nb, pcol, grid->n_pcol);
        const double *piece = pieces + displs[r];

        for (long b = 0; b < cols; b++) {
            long j = ((b / matrix->nb) * grid->n_pcol + pcol) * matrix->nb + b % matrix->nb;

            for (long a = 0; a < rows; a++) {
                long i = ((a / matrix->nb) * grid->n_prow + prow) * matrix->nb +
                         a % matrix->nb;

                full[i * n + j] = piece[a + b * rows];
            }
        }
    }
    free(counts);
    free(displs);
    free(pieces);
    return status;
}

sgk_status sgk_dmatrix_leading_block(const sgk_dmatrix *matrix, long n_sub, double scale,
                                     sgk_dmatrix *block)
{
    int n_int = (int)n_sub;
    int one = 1;

    if (n_sub < 1 || n_sub > matrix->n)
        return sgk_error(SGK_ERR_USAGE,
                         "leading block of size %ld is out of range for an n = %ld matrix: "
                         "it must be between 1 and n",
                         n_sub, matrix->n);
    SGK_CHECK(sgk_dmatrix_create(matrix->grid, n_sub, matrix->nb, block));

    /* Both matrices start at process (0, 0) with the same block size, so PDLACPY
     * copies locally without communication. It has no INFO argument. */
    pdlacpy_("A", &n_int, &n_int, local_or_empty(matrix), &one, &one, matrix->desc,
             local_or_empty(block), &one, &one, block->desc, 1);
    for (long b = 0; b < block->local_cols; b++)
        for (long a = 0; a < block->local_rows; a++) block->local[a + b * block->lld] *= scale;
    return SGK_OK;
}
