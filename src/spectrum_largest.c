/* The largest k eigenpairs of a distributed symmetric matrix with ScaLAPACK's MRRR
 * solver PDSYEVR.
 *
 * PDSYEVR returns the selected eigenpairs in ascending order. It runs on -A with
 * RANGE = 'I', IL = 1, so the smallest eigenvalues of -A, which are the negated
 * largest of A, come out first: descending order for A, with no column permutation
 * of the block-cyclic eigenvector matrix. Negation is exact in floating point. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "sgk/spectrum.h"

/* Fortran routines of Debian's ScaLAPACK 2.2.1, declared here because no C header
 * ships. Integers are 32-bit (LP64 build), and the trailing size_t arguments are
 * gfortran's hidden CHARACTER lengths. */
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void pdsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                     const int *ia, const int *ja, const int *desca, const double *vl,
                     const double *vu, const int *il, const int *iu, int *m, int *nz, double *w,
                     double *z, const int *iz, const int *jz, const int *descz, double *work,
                     const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
                     size_t range_len, size_t uplo_len);

/* Stand-in for the local array of a process that owns no entry. */
static double empty_local;

static const char *const pdsyevr_argument[] = { "",     "JOBZ",  "RANGE", "UPLO",   "N",
                                                "A",    "IA",    "JA",    "DESCA",  "VL",
                                                "VU",   "IL",    "IU",    "M",      "NZ",
                                                "W",    "Z",     "IZ",    "JZ",     "DESCZ",
                                                "WORK", "LWORK", "IWORK", "LIWORK", "INFO" };

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

static long max_long(long a, long b)
{
    return a > b ? a : b;
}

/* Translate a negative INFO: -i names scalar argument i, -(100 i + j) entry j of
 * array argument i. PDSYEVR 2.2.1 checks DESCZ as if it were argument 21, so its
 * entries come back as -(2100 + j) while -21 alone means LWORK. */
static sgk_status illegal_argument(int info, const char *stage)
{
    int code = -info;
    int argument = code >= 100 ? code / 100 : code;
    int entry = code >= 100 ? code % 100 : 0;
    const char *name = argument >= 1 && argument <= 24 ? pdsyevr_argument[argument] : "?";

    if (entry == 0)
        return sgk_error(SGK_ERR_NUMERIC, "PDSYEVR %s rejected argument %d (%s), INFO = %d", stage,
                         argument, name, info);
    if (argument == 21) name = "DESCZ";
    return sgk_error(SGK_ERR_NUMERIC, "PDSYEVR %s rejected entry %d of argument %s, INFO = %d",
                     stage, entry, name, info);
}

/* Check `vectors` against `a`: distinct, same grid, size and block size. */
static sgk_status check_vectors(const sgk_dmatrix *a, const sgk_dmatrix *vectors)
{
    if (vectors == a)
        return sgk_error(SGK_ERR_USAGE, "sgk_spectrum_eigh_largest: the eigenvector matrix is "
                                        "the input matrix; pass a distinct matrix");
    if (vectors->grid != a->grid || vectors->n != a->n || vectors->nb != a->nb)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_spectrum_eigh_largest: eigenvector matrix (n = %ld, nb = %d) does "
                         "not match the input matrix (n = %ld, nb = %d); create it with the same "
                         "grid, size and block size",
                         vectors->n, vectors->nb, a->n, a->nb);
    return SGK_OK;
}

/* Eigenpairs to request from PDSYEVR for the largest k with eigenvectors. PDSYEVR
 * 2.2.1 hands its back-transformation PDORMTR a fixed WORK of
 * max(18 n, np0 mq0 + 2 nb^2) entries, where mq0 is process column 0's share of the
 * requested columns, whatever LWORK the caller gives. PDORMTR needs about
 * (np + nq) nb + nb^2, so with fewer than nb requested columns and nb > 18 it
 * rejects its WORK, prints a message on stderr and skips the back-transformation,
 * while PDSYEVR still returns INFO = 0 with eigenvectors of the tridiagonal matrix
 * (seen for n = 300, nb = 64, k = 1 at 1 to 4 ranks). Requesting at least
 * min(nb, n) columns gives mq0 >= nb, and then np0 mq0 + 2 nb^2 covers PDORMTR's
 * need because (np0 - nb)(mq0 - nb) >= 0. */
static int request_count(int n, int nb, int k)
{
    int floor = nb < n ? nb : n;

    return k > floor ? k : floor;
}

/* WORK length: the larger of PDSYEVR's own query and its documented minimum
 * 2 + 5 n + max(18 nn, np0 mq0 + 2 nb^2) + (2 + ceil(neig / p)) nn with nn =
 * max(n, nb, 2). The minimum matters if a later ScaLAPACK returns a smaller query. */
static long workspace_length(long query, int want_vectors, long n, long nb, long np0, long mq0,
                             long neig, long n_procs)
{
    long nn = max_long(n, max_long(nb, 2));
    long minimum;

    if (want_vectors)
        minimum = 2 + 5 * n + max_long(18 * nn, np0 * mq0 + 2 * nb * nb) +
                  (2 + (neig + n_procs - 1) / n_procs) * nn;
    else
        minimum = 2 + 5 * n + max_long(12 * nn, nb * (np0 + 1));
    return max_long(query, minimum);
}

/* Collective. Combine INFO, M and NZ over the grid so that every rank gets the
 * worst outcome: negative INFO wins, and M and NZ are their minimum. */
static sgk_status combine_outcome(const sgk_grid *grid, int info, int m, int nz, int *info_all,
                                  int *m_all, int *nz_all)
{
    int low[3] = { info, m, nz };
    int high[3] = { info, m, nz };
    int low_all[3], high_all[3];

    SGK_CHECK(mpi_check(MPI_Allreduce(low, low_all, 3, MPI_INT, MPI_MIN, grid->comm),
                        "MPI_Allreduce of PDSYEVR's INFO"));
    SGK_CHECK(mpi_check(MPI_Allreduce(high, high_all, 3, MPI_INT, MPI_MAX, grid->comm),
                        "MPI_Allreduce of PDSYEVR's INFO"));
    *info_all = low_all[0] < 0 ? low_all[0] : high_all[0];
    *m_all = low_all[1];
    *nz_all = low_all[2];
    return SGK_OK;
}

/* Set every local entry of columns first.. of `matrix` to zero. */
static void zero_columns_from(sgk_dmatrix *matrix, long first)
{
    for (int j = 0; j < matrix->local_cols; j++) {
        if (sgk_dmatrix_global_col(matrix, j) < first) continue;
        memset(matrix->local + (size_t)j * matrix->lld, 0,
               (size_t)matrix->local_rows * sizeof *matrix->local);
    }
}

sgk_status sgk_spectrum_eigh_largest(sgk_dmatrix *a, long k, double *eigenvalues,
                                     sgk_dmatrix *vectors)
{
    const sgk_grid *grid = a->grid;
    int n = (int)a->n;
    int one = 1, zero = 0;
    int want_vectors = vectors != NULL;
    int request = 0;
    int info = 0, m = -1, nz = -1;
    int lwork = -1, liwork = -1;
    int iwork_query = 0;
    double work_query = 0.0;
    double bound = 0.0;            /* VL and VU, not referenced with RANGE = 'I' */
    double *negated_values = NULL; /* eigenvalues of -A, ascending */
    double *work = NULL;
    int *iwork = NULL;
    long needed = 0;
    size_t count = (size_t)a->local_rows * (size_t)a->local_cols;
    sgk_status status = SGK_OK;

    /* 1. Arguments. All of them are the same on every rank, so every rank returns
     *    here together. k = n goes to PDSYEVD, which is faster for all eigenpairs. */
    if (eigenvalues == NULL)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_spectrum_eigh_largest: the eigenvalue array (k = "
                         "%ld entries) is missing on rank %d",
                         k, grid->rank);
    if (k < 1 || k > a->n)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_spectrum_eigh_largest: k = %ld eigenpairs is out of range for an "
                         "n = %ld matrix; it must be between 1 and n",
                         k, a->n);
    if (want_vectors) SGK_CHECK(check_vectors(a, vectors));
    if (k == a->n) return sgk_spectrum_eigh(a, eigenvalues, vectors);

    /* 2. Negate A, so the largest eigenvalues of A are the first of -A. */
    for (size_t e = 0; e < count; e++) a->local[e] = -a->local[e];
    request = want_vectors ? request_count(n, a->nb, (int)k) : (int)k;

    /* 3. Workspace query (LWORK = LIWORK = -1), then allocation. W needs n entries
     *    even though only `request` are computed. */
    negated_values = malloc((size_t)n * sizeof *negated_values);
    if (negated_values == NULL)
        status = sgk_error(SGK_ERR_IO, "out of memory: %d eigenvalues on rank %d", n, grid->rank);
    status = sgk_grid_agree(grid, status, "sgk_spectrum_eigh_largest");
    if (status != SGK_OK) {
        free(negated_values);
        return status;
    }
    pdsyevr_(want_vectors ? "V" : "N", "I", "L", &n, local_or_empty(a), &one, &one, a->desc, &bound,
             &bound, &one, &request, &m, &nz, negated_values,
             want_vectors ? local_or_empty(vectors) : &empty_local, &one, &one,
             want_vectors ? vectors->desc : a->desc, &work_query, &lwork, &iwork_query, &liwork,
             &info, 1, 1, 1);
    if (info < 0) status = illegal_argument(info, "workspace query");
    if (status == SGK_OK) {
        int n_procs = grid->n_prow * grid->n_pcol;
        int nn = (int)max_long(n, max_long(a->nb, 2));
        long np0 = numroc_(&nn, &a->nb, &zero, &zero, &grid->n_prow);
        int columns = (int)max_long(request, max_long(a->nb, 2));
        long mq0 = numroc_(&columns, &a->nb, &zero, &zero, &grid->n_pcol);
        long nnp = max_long(n, max_long(n_procs + 1, 4));

        needed =
            workspace_length((long)work_query, want_vectors, n, a->nb, np0, mq0, request, n_procs);
        if (needed > INT_MAX)
            status = sgk_error(SGK_ERR_USAGE,
                               "PDSYEVR needs %ld workspace entries on rank %d, above its 32-bit "
                               "limit %d: use more MPI ranks or fewer [spectrum] eigenpairs for "
                               "n = %d",
                               needed, grid->rank, INT_MAX, n);
        liwork = (int)max_long(iwork_query, (want_vectors ? 12 : 10) * nnp + 2L * n);
    }
    if (status == SGK_OK) {
        lwork = (int)needed;
        work = malloc((size_t)lwork * sizeof *work);
        iwork = malloc((size_t)liwork * sizeof *iwork);
        if (!work || !iwork)
            status = sgk_error(SGK_ERR_IO,
                               "out of memory: PDSYEVR workspace of %d doubles and "
                               "%d ints on rank %d",
                               lwork, liwork, grid->rank);
    }
    status = sgk_grid_agree(grid, status, "the PDSYEVR workspace query");

    /* 4. Solve. PDSYEVR defines no positive INFO, and a failure inside it (MRRR or
     *    the back-transformation) only prints on stderr and returns early, so M and
     *    NZ are checked as well: they start at -1 and must come back as `request`. */
    if (status == SGK_OK) {
        info = 0;
        m = nz = -1;
        pdsyevr_(want_vectors ? "V" : "N", "I", "L", &n, local_or_empty(a), &one, &one, a->desc,
                 &bound, &bound, &one, &request, &m, &nz, negated_values,
                 want_vectors ? local_or_empty(vectors) : &empty_local, &one, &one,
                 want_vectors ? vectors->desc : a->desc, work, &lwork, iwork, &liwork, &info, 1, 1,
                 1);
        if (!want_vectors) nz = request; /* NZ is not referenced for JOBZ = 'N' */
        status = combine_outcome(grid, info, m, nz, &info, &m, &nz);
    }
    if (status == SGK_OK && info < 0) status = illegal_argument(info, "solve");
    if (status == SGK_OK && info > 0)
        status = sgk_error(SGK_ERR_NUMERIC,
                           "PDSYEVR returned INFO = %d, which ScaLAPACK does not document; the "
                           "eigenpairs of the n = %d matrix are not usable",
                           info, n);
    if (status == SGK_OK && (m != request || nz != request))
        status = sgk_error(SGK_ERR_NUMERIC,
                           "PDSYEVR computed %d eigenvalues and %d eigenvectors of the %d "
                           "requested for an n = %d matrix: an internal step failed (ScaLAPACK "
                           "printed which on stderr); check the kernel for NaN or Inf entries, "
                           "or set [spectrum] eigenpairs = all",
                           m, nz, request, n);

    /* 5. Process (0, 0)'s eigenvalues everywhere, as in sgk_spectrum_eigh, so every
     *    rank has bitwise the same values, negated back to those of A. */
    if (status == SGK_OK)
        status = mpi_check(MPI_Bcast(negated_values, request, MPI_DOUBLE, 0, grid->comm),
                           "MPI_Bcast of the eigenvalues");
    for (long j = 0; status == SGK_OK && j < k; j++) eigenvalues[j] = -negated_values[j];
    if (status == SGK_OK && want_vectors) zero_columns_from(vectors, k);

    free(work);
    free(iwork);
    free(negated_values);
    return status;
}
