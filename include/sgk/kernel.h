/* Process grid and the ScaLAPACK 2D block-cyclic kernel matrix. */
#ifndef SGK_KERNEL_H
#define SGK_KERNEL_H

#include <mpi.h>
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* BLACS process grid over a communicator, p_r x p_c with p_r <= p_c as close to
 * square as the rank count allows (prime counts give 1 x p). */
typedef struct {
    MPI_Comm comm;
    int context;      /* BLACS context */
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
void sgk_grid_free(sgk_grid *grid);

/* Collective. Allocate a zeroed n x n block-cyclic matrix. */
sgk_status sgk_dmatrix_create(const sgk_grid *grid, long n, int nb, sgk_dmatrix *matrix);
void sgk_dmatrix_free(sgk_dmatrix *matrix);

/* Collective. matrix += sum over ranks of each rank's `partial`, a full n x n
 * row-major array (every rank passes one; zeros where it has nothing). Ranks
 * that own no block still take part. */
sgk_status sgk_dmatrix_reduce_add(sgk_dmatrix *matrix, const double *partial);

/* Collective. Copy the whole matrix, row-major n x n, to `full` on `root`
 * (other ranks may pass NULL). For tests and small matrices. */
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
