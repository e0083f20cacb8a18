/* Eigen-decomposition of the distributed kernel with ScaLAPACK's divide and conquer
 * solver PDSYEVD, reordered to descending eigenvalues. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "sgk/spectrum.h"

/* Fortran routines of Debian's ScaLAPACK (no C header ships). Integers are 32-bit
 * (LP64 build); the trailing size_t arguments are gfortran's hidden CHARACTER
 * lengths. */
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
                     const int *ia, const int *ja, const int *desca, double *w, double *z,
                     const int *iz, const int *jz, const int *descz, double *work,
                     const int *lwork, int *iwork, const int *liwork, int *info,
                     size_t jobz_len, size_t uplo_len);

/* Stand-in for the local array of a process that owns no entry. */
static double empty_local;

static const char *const pdsyevd_argument[] = {
    "", "JOBZ", "UPLO", "N", "A", "IA", "JA", "DESCA", "W", "Z", "IZ", "JZ",
    "DESCZ", "WORK", "LWORK", "IWORK", "LIWORK", "INFO"};

static const char *const descriptor_entry[] = {
    "", "DTYPE", "CTXT", "M", "N", "MB", "NB", "RSRC", "CSRC", "LLD"};

static sgk_status mpi_check(int rc, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (rc == MPI_SUCCESS) return SGK_OK;
    MPI_Error_string(rc, text, &length);
    return sgk_error(SGK_ERR_IO, "%s failed: %s", call, text);
}

static double *local_or_empty(const sgk_dmatrix *matrix)
{
    return matrix->local != NULL ? matrix->local : &empty_local;
}

static int owner(long g, int nb, int np)
{
    return (int)((g / nb) % np);
}

static long local_index(long g, int nb, int np)
{
    return (g / ((long)nb * np)) * nb + g % nb;
}

static long max_long(long a, long b)
{
    return a > b ? a : b;
}

/* Translate a negative PDSYEVD INFO: -i names scalar argument i, -(100 i + j)
 * names entry j of array argument i. */
static sgk_status illegal_argument(int info, const char *stage)
{
    int code = -info;
    int argument = code >= 100 ? code / 100 : code;
    int entry = code >= 100 ? code % 100 : 0;
    const char *name = argument >= 1 && argument <= 17 ? pdsyevd_argument[argument] : "?";

    if (entry == 0)
        return sgk_error(SGK_ERR_NUMERIC, "PDSYEVD %s rejected argument %d (%s), INFO = %d",
                         stage, argument, name, info);
    if ((argument == 7 || argument == 12) && entry <= 9)
        return sgk_error(SGK_ERR_NUMERIC,
                         "PDSYEVD %s rejected descriptor entry %s of argument %d (%s), INFO = %d",
                         stage, descriptor_entry[entry], argument, name, info);
    return sgk_error(SGK_ERR_NUMERIC,
                     "PDSYEVD %s rejected entry %d of argument %d (%s), INFO = %d", stage,
                     entry, argument, name, info);
}

/* WORK length for PDSYEVD. Its own query is not always enough in ScaLAPACK 2.2.1,
 * which beyond the first 2n entries passes WORK on to
 * - PDSTEDC, documented as 6n + 2 np nq, but its merge step PDLAED1 lays out two
 *   max(np, 1) x nq matrices, so a process that owns no row overran a WORK of the
 *   documented size (n = 23, nb = 4 on a 7 x 1 grid, found with valgrind);
 * - PDLASRT, which needs max(n, np (nb + nq)), more than PDSTEDC requests when nb
 *   is large against nq;
 * - PDORMTR, which needs max(nb (nb - 1) / 2, (mp + nq) nb) + nb^2 with
 *   mp <= np + nb, as it starts at row 2, and reports a short WORK only on stderr.
 * So every rank sizes WORK with the local sizes of process (0, 0), the largest of
 * the grid (np0 >= 1, nq0 >= 1), and takes the largest of the four lengths. */
static long workspace_length(long query, long n, long nb, long np0, long nq0)
{
    long merge = 6 * n + 2 * np0 * nq0;
    long sort = max_long(n, np0 * (nb + nq0));
    long back_transform = max_long(nb * (nb - 1) / 2, (np0 + nb + nq0) * nb) + nb * nb;

    return max_long(query, 2 * n + max_long(merge, max_long(sort, back_transform)));
}

/* Check that `second` is distinct from `first` and has its layout: same grid, size
 * and block size. `function` prefixes the message. */
static sgk_status check_same_layout(const sgk_dmatrix *first, const sgk_dmatrix *second,
                                    const char *function)
{
    if (first == second)
        return sgk_error(SGK_ERR_USAGE, "%s: both matrix arguments are the same matrix; pass "
                                        "two distinct matrices", function);
    if (second->grid != first->grid || second->n != first->n || second->nb != first->nb)
        return sgk_error(SGK_ERR_USAGE,
                         "%s: second matrix (n = %ld, nb = %d) does not match the first (n = "
                         "%ld, nb = %d); create both with the same grid, size and block size",
                         function, second->n, second->nb, first->n, first->nb);
    /* The eigenvector matrix is copied as one block of local_rows x local_cols. */
    if (second->lld != (second->local_rows > 1 ? second->local_rows : 1))
        return sgk_error(SGK_ERR_USAGE, "%s: the second matrix has leading dimension %d but %d "
                         "local rows; pass a whole matrix, not a view", function, second->lld,
                         second->local_rows);
    return SGK_OK;
}

/* Columns stay in their process row, so every message goes between ranks of one
 * process row. Each round moves `width` source columns; all ranks compute the same
 * rounds, so they enter the same number of MPI_Alltoallv calls. */
sgk_status sgk_dmatrix_reverse_columns(const sgk_dmatrix *source, sgk_dmatrix *target,
                                       long round_elements)
{
    const sgk_grid *grid = source->grid;
    long n = source->n;
    int nb = source->nb;
    long rows = source->local_rows;
    int n_int = (int)n;
    int zero = 0;
    long max_rows = numroc_(&n_int, &nb, &zero, &zero, &grid->n_prow);
    long width = max_long(1, round_elements / max_long(1, max_rows));
    long round_cols = width < source->local_cols ? width : source->local_cols;
    size_t buffer_count = (size_t)max_long(1, rows * round_cols);
    size_t n_ranks = (size_t)grid->n_ranks;
    int *send_counts = malloc(n_ranks * sizeof *send_counts);
    int *send_displs = malloc(n_ranks * sizeof *send_displs);
    int *recv_counts = malloc(n_ranks * sizeof *recv_counts);
    int *recv_displs = malloc(n_ranks * sizeof *recv_displs);
    long *cursor = malloc(n_ranks * sizeof *cursor);
    double *send = malloc(buffer_count * sizeof *send);
    double *receive = malloc(buffer_count * sizeof *receive);
    int row_base = grid->my_prow * grid->n_pcol;
    sgk_status status = check_same_layout(source, target, "sgk_dmatrix_reverse_columns");

    if (status == SGK_OK && (round_elements < 1 || round_elements > INT_MAX))
        status = sgk_error(SGK_ERR_USAGE,
                           "column-reversal round of %ld elements is out of range: it must be "
                           "between 1 and INT_MAX = %d",
                           round_elements, INT_MAX);
    if (status == SGK_OK && (!send_counts || !send_displs || !recv_counts || !recv_displs || !cursor || !send ||
        !receive))
        status = sgk_error(SGK_ERR_IO, "out of memory: reversing eigenvector columns needs "
                                       "%zu bytes", 2 * buffer_count * sizeof(double));
    status = sgk_grid_agree(grid, status, "reversing the eigenvector columns");

    for (long first = 0; status == SGK_OK && first < n; first += width) {
        long last = first + width < n ? first + width : n;

        /* 1. Count the columns of this round that go to and come from each rank. */
        memset(send_counts, 0, n_ranks * sizeof *send_counts);
        memset(recv_counts, 0, n_ranks * sizeof *recv_counts);
        for (long j = first; j < last; j++) {
            int from = owner(j, nb, grid->n_pcol);
            int to = owner(n - 1 - j, nb, grid->n_pcol);

            if (from == grid->my_pcol) send_counts[row_base + to] += (int)rows;
            if (to == grid->my_pcol) recv_counts[row_base + from] += (int)rows;
        }
        send_displs[0] = 0;
        recv_displs[0] = 0;
        for (int r = 1; r < grid->n_ranks; r++) {
            send_displs[r] = send_displs[r - 1] + send_counts[r - 1];
            recv_displs[r] = recv_displs[r - 1] + recv_counts[r - 1];
        }

        /* 2. Pack own columns in increasing global order for each destination. */
        for (int r = 0; r < grid->n_ranks; r++) cursor[r] = send_displs[r];
        for (long j = first; j < last && rows > 0; j++) {
            int to = row_base + owner(n - 1 - j, nb, grid->n_pcol);

            if (owner(j, nb, grid->n_pcol) != grid->my_pcol) continue;
            memcpy(send + cursor[to], source->local + local_index(j, nb, grid->n_pcol) *
                                                          source->lld,
                   (size_t)rows * sizeof *send);
            cursor[to] += rows;
        }
        status = mpi_check(MPI_Alltoallv(send, send_counts, send_displs, MPI_DOUBLE, receive,
                                         recv_counts, recv_displs, MPI_DOUBLE, grid->comm),
                           "MPI_Alltoallv of eigenvector columns");

        /* 3. Unpack in the same global order, into the mirrored column. */
        for (int r = 0; r < grid->n_ranks; r++) cursor[r] = recv_displs[r];
        for (long j = first; status == SGK_OK && j < last && rows > 0; j++) {
            int from = row_base + owner(j, nb, grid->n_pcol);
            long mirror = n - 1 - j;

            if (owner(mirror, nb, grid->n_pcol) != grid->my_pcol) continue;
            memcpy(target->local + local_index(mirror, nb, grid->n_pcol) * target->lld,
                   receive + cursor[from], (size_t)rows * sizeof *receive);
            cursor[from] += rows;
        }
    }
    free(send_counts);
    free(send_displs);
    free(recv_counts);
    free(recv_displs);
    free(cursor);
    free(send);
    free(receive);
    return status;
}

/* Collective. Combine INFO over the grid: in PDSTEDC's serial path (n <= nb) only
 * process (0, 0) learns of a failure. Negative values win, as they mean misuse. */
static sgk_status combine_info(const sgk_grid *grid, int info, int *combined)
{
    int low = 0, high = 0;

    SGK_CHECK(mpi_check(MPI_Allreduce(&info, &low, 1, MPI_INT, MPI_MIN, grid->comm),
                        "MPI_Allreduce of PDSYEVD's INFO"));
    SGK_CHECK(mpi_check(MPI_Allreduce(&info, &high, 1, MPI_INT, MPI_MAX, grid->comm),
                        "MPI_Allreduce of PDSYEVD's INFO"));
    *combined = low < 0 ? low : high;
    return SGK_OK;
}

sgk_status sgk_spectrum_eigh(sgk_dmatrix *a, double *eigenvalues, sgk_dmatrix *vectors)
{
    const sgk_grid *grid = a->grid;
    int n = (int)a->n;
    int one = 1;
    int info = 0;
    int lwork = -1;
    int liwork = 1;
    int iwork_query = 0;
    double work_query = 0.0;
    long needed = 0;
    sgk_dmatrix internal;
    sgk_dmatrix *z = vectors;
    double *ascending = NULL;
    double *work = NULL;
    int *iwork = NULL;
    sgk_status status = SGK_OK;

    /* 1. Arguments. PDSYEVD always computes eigenvectors, so it needs a Z matrix
     *    even when the caller wants none. */
    memset(&internal, 0, sizeof internal);
    if (eigenvalues == NULL)
        return sgk_error(SGK_ERR_USAGE, "sgk_spectrum_eigh: the eigenvalue array (n = %d "
                                        "entries) is missing on rank %d", n, grid->rank);
    if (vectors != NULL) SGK_CHECK(check_same_layout(a, vectors, "sgk_spectrum_eigh"));
    if (vectors == NULL) {
        SGK_CHECK(sgk_dmatrix_create(grid, a->n, a->nb, &internal));
        z = &internal;
    }

    /* 2. Workspace query (LWORK = -1). PDSYEVD treats only LWORK = -1 as a query and
     *    still writes the needed LIWORK into IWORK(1), so IWORK needs one entry. */
    pdsyevd_("V", "L", &n, local_or_empty(a), &one, &one, a->desc, eigenvalues,
             local_or_empty(z), &one, &one, z->desc, &work_query, &lwork, &iwork_query,
             &liwork, &info, 1, 1);
    if (info < 0) status = illegal_argument(info, "workspace query");
    if (status == SGK_OK) {
        int zero = 0;
        long np0 = numroc_(&n, &a->nb, &zero, &zero, &grid->n_prow);
        long nq0 = numroc_(&n, &a->nb, &zero, &zero, &grid->n_pcol);

        needed = workspace_length((long)work_query, n, a->nb, np0, nq0);
        if (needed > INT_MAX)
            status = sgk_error(SGK_ERR_USAGE,
                               "PDSYEVD needs %ld workspace entries on rank %d, above its "
                               "32-bit limit %d: use more MPI ranks for n = %d",
                               needed, grid->rank, INT_MAX, n);
    }
    if (status == SGK_OK) {
        lwork = (int)needed;
        liwork = (int)max_long(iwork_query, 7L * n + 8L * grid->n_pcol + 2);
        work = malloc((size_t)lwork * sizeof *work);
        iwork = malloc((size_t)liwork * sizeof *iwork);
        ascending = malloc((size_t)n * sizeof *ascending);
        if (!work || !iwork || !ascending)
            status = sgk_error(SGK_ERR_IO, "out of memory: PDSYEVD workspace of %d doubles "
                                           "and %d ints on rank %d", lwork, liwork, grid->rank);
    }
    status = sgk_grid_agree(grid, status, "the PDSYEVD workspace query");

    /* 3. Solve; eigenvalues come out ascending. */
    if (status == SGK_OK) {
        info = 0;
        pdsyevd_("V", "L", &n, local_or_empty(a), &one, &one, a->desc, ascending,
                 local_or_empty(z), &one, &one, z->desc, work, &lwork, iwork, &liwork, &info,
                 1, 1);
        status = combine_info(grid, info, &info);
    }
    if (status == SGK_OK && info < 0) status = illegal_argument(info, "solve");
    if (status == SGK_OK && info > 0)
        status = sgk_error(SGK_ERR_NUMERIC,
                           "PDSYEVD failed to converge: eigenvalue %d of %d not computed, "
                           "working on the submatrix of global rows and columns %d "
                           "(INFO = %d); check the kernel for NaN or Inf entries",
                           info / (n + 1), n, info % (n + 1), info);

    /* 4. Take process (0, 0)'s eigenvalues everywhere: for n <= nb only that
     *    process runs the tridiagonal solver, and PDSYEVD assumes but never checks
     *    that the other processes agree. Then reverse them to descending order. */
    if (status == SGK_OK)
        status = mpi_check(MPI_Bcast(ascending, n, MPI_DOUBLE, 0, grid->comm),
                           "MPI_Bcast of the eigenvalues");
    for (int k = 0; status == SGK_OK && k < n; k++) eigenvalues[k] = ascending[n - 1 - k];

    /* 5. Reverse the eigenvector columns to match. PDSYEVD wrote them into `vectors`,
     *    so copy them to a scratch matrix of the same layout and reverse them back.
     *    `a` cannot serve as the scratch: its strict upper triangle must survive, and
     *    it may be a view into a larger matrix. The workspace, about two local parts,
     *    goes first, so that the scratch and the reversal's buffers stay below the
     *    solver's peak. */
    free(work);
    free(iwork);
    work = NULL;
    iwork = NULL;
    if (status == SGK_OK && vectors != NULL) {
        sgk_dmatrix scratch;

        status = sgk_dmatrix_create(grid, a->n, a->nb, &scratch);
        if (status == SGK_OK) {
            size_t count = (size_t)scratch.local_rows * (size_t)scratch.local_cols;

            if (count > 0) memcpy(scratch.local, vectors->local, count * sizeof *scratch.local);
            status = sgk_dmatrix_reverse_columns(&scratch, vectors, SGK_REVERSE_ROUND_ELEMENTS);
            sgk_dmatrix_free(&scratch);
        }
    }

    free(work);
    free(iwork);
    free(ascending);
    sgk_dmatrix_free(&internal);
    return status;
}
