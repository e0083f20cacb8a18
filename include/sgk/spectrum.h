/* Eigen-decomposition of a distributed symmetric matrix. */
#ifndef SGK_SPECTRUM_H
#define SGK_SPECTRUM_H

#include "sgk/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective. All eigenvalues of the symmetric matrix `a` (destroyed) with
 * PDSYEVD, in descending order, into `eigenvalues` (n entries, on every rank).
 * When `vectors` is not NULL it receives the eigenvectors as columns in the same
 * order (it must be created with the same grid, size and block size). A nonzero
 * `info` from ScaLAPACK is SGK_ERR_NUMERIC with its value in the message. */
sgk_status sgk_spectrum_eigh(sgk_dmatrix *a, double *eigenvalues, sgk_dmatrix *vectors);

#ifdef __cplusplus
}
#endif
#endif
