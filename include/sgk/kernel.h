/* Process grid and the ScaLAPACK 2D block-cyclic kernel matrix. */
#ifndef SGK_KERNEL_H
#define SGK_KERNEL_H

#include <mpi.h>
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* BLACS process grid over a communicator, p_r x p_c with p_r <= p_c as close to
 * square as the rank count allows (prime counts give 1 x p). The grid is row-major:
 * rank r of `comm` is process (r / n_pcol, r % n_pcol). */
typedef struct {
    MPI_Comm comm;    /* duplicate of the caller's communicator, errors returned */
    int context;      /* BLACS context */
    int system_handle;/* BLACS system handle of `comm`, released by sgk_grid_free */
    int n_ranks;
    int rank;
    int n_prow, n_pcol;
    int my_prow, my_pcol;
} sgk_grid;

/* Symmetric or general N x N matrix in block-cyclic layout, blocks nb x nb,
 * first block on process (0, 0). Local part column-major, leading dimension lld. */
typedef struct {
    const sgk_grid *grid;
    long n;
    int nb;
    int local_rows, local_cols;
    int lld;
    int desc[9];      /* ScaLAPACK array descriptor */
    double *local;    /* local_rows x local_cols, NULL when empty */
} sgk_dmatrix;

/* Collective. Choose the grid shape and create the BLACS context; n_prow = 0 picks
 * the default shape, otherwise n_prow * n_pcol must equal the rank count. */
sgk_status sgk_grid_create(MPI_Comm comm, int n_prow, int n_pcol, sgk_grid *grid);

/* Collective. Release the BLACS context and the duplicated communicator. */
void sgk_grid_free(sgk_grid *grid);

/* Default grid shape for `n_ranks` processes: n_prow is the largest divisor of
 * n_ranks not above sqrt(n_ranks), and n_pcol = n_ranks / n_prow. */
void sgk_grid_default_shape(int n_ranks, int *n_prow, int *n_pcol);

/* Collective. Combine the status of every rank so that all ranks return the same
 * outcome: a rank that failed keeps its own message and status, and the other ranks
 * return the largest status code with a message naming `operation`. Call it before
 * a collective step that a failed rank would not enter. */
sgk_status sgk_grid_agree(const sgk_grid *grid, sgk_status local, const char *operation);

/* Collective. Allocate a zeroed n x n block-cyclic matrix; 1 <= n <= INT_MAX and
 * nb >= 1, because ScaLAPACK indexes with int. */
sgk_status sgk_dmatrix_create(const sgk_grid *grid, long n, int nb, sgk_dmatrix *matrix);
void sgk_dmatrix_free(sgk_dmatrix *matrix);

/* Collective. matrix += sum over ranks of each rank's `partial`, a full n x n
 * row-major array (every rank passes one; zeros where it has nothing). Ranks
 * that own no block still take part. */
sgk_status sgk_dmatrix_reduce_add(sgk_dmatrix *matrix, const double *partial);

/* Elements of `partial` that one reduce-scatter carries in sgk_dmatrix_reduce_add:
 * 2^24 doubles, so the packing buffer takes 128 MiB per rank at most and every
 * count stays far below INT_MAX, which bounds MPI counts. */
#define SGK_REDUCE_PANEL_ELEMENTS (1L << 24)

/* Collective. sgk_dmatrix_reduce_add with panels of whole rows of at most
 * `panel_elements` elements each (at least one row: panel_elements >= n), one
 * reduce-scatter per panel. Tests use small panels to run the panelled path. */
sgk_status sgk_dmatrix_reduce_add_panels(sgk_dmatrix *matrix, const double *partial,
                                         long panel_elements);

/* Collective. Copy the whole matrix, row-major n x n, to `full` on `root`
 * (other ranks may pass NULL). For tests and small matrices: n^2 must not exceed
 * INT_MAX, the limit of one MPI_Gatherv. */
sgk_status sgk_dmatrix_gather(const sgk_dmatrix *matrix, int root, double *full);

/* Global (row, col) of local entry (i, j), 0-based. */
long sgk_dmatrix_global_row(const sgk_dmatrix *matrix, int i);
long sgk_dmatrix_global_col(const sgk_dmatrix *matrix, int j);

/* Collective. Copy the leading n_sub x n_sub block into a new matrix with the
 * same grid and block size, scaled by `scale`. */
sgk_status sgk_dmatrix_leading_block(const sgk_dmatrix *matrix, long n_sub, double scale,
                                     sgk_dmatrix *block);

#ifdef __cplusplus
}
#endif
#endif
