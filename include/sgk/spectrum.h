/* Eigen-decomposition of a distributed symmetric matrix. */
#ifndef SGK_SPECTRUM_H
#define SGK_SPECTRUM_H

#include "sgk/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective. Compute all eigenvalues of the symmetric matrix `a` with PDSYEVD, in
 * descending order, into `eigenvalues` (n entries, bitwise the same on every rank).
 * Only the lower triangle of `a` with the diagonal is read, and PDSYEVD destroys it.
 * This function writes nothing else in `a`, so `a` may be a view of the leading block
 * of a larger matrix (its lld larger than local_rows).
 * When `vectors` is not NULL it receives the orthonormal eigenvectors as columns in
 * the same order, so column k belongs to eigenvalues[k]. It must be a distinct
 * matrix with the same grid, size and block size.
 * A nonzero `info` from ScaLAPACK is SGK_ERR_NUMERIC with its value in the message.
 * Memory per rank: besides `a` and `vectors`, PDSYEVD's workspace of about two more
 * local parts, plus one internal eigenvector matrix when `vectors` is NULL; after the
 * workspace is freed, one scratch local part to reorder the eigenvectors. */
sgk_status sgk_spectrum_eigh(sgk_dmatrix *a, double *eigenvalues, sgk_dmatrix *vectors);

/* Elements per rank that one round of sgk_dmatrix_reverse_columns sends: 2^20
 * doubles, so the send and receive buffers take 8 MiB each at most. Rounds of 2^24
 * made each buffer as large as the whole local part (up to 128 MiB) and were slower:
 * 0.14 s against 0.05 s for n = 8192 on 2 ranks (doc/benchmarks.md, part 6). */
#define SGK_REVERSE_ROUND_ELEMENTS (1L << 20)

/* Collective. Set column n - 1 - j of `target` to column j of `source` for every j.
 * The two must be distinct matrices with the same grid, size and block size.
 * Each round sends at most `round_elements` doubles per rank, but at least one
 * column; 1 <= round_elements <= INT_MAX. */
sgk_status sgk_dmatrix_reverse_columns(const sgk_dmatrix *source, sgk_dmatrix *target,
                                       long round_elements);

/* Collective. Compute the largest k eigenpairs (1 <= k <= n) of the symmetric matrix
 * `a` (lower triangle read, `a` destroyed) in descending order into `eigenvalues`
 * (k entries, bitwise the same on every rank). k < n uses PDSYEVR (src/spectrum_largest.c)
 * and k = n uses sgk_spectrum_eigh. When `vectors` is not NULL, a distinct n x n matrix
 * with the layout of `a`, its columns 0..k-1 receive the orthonormal eigenvectors in
 * the same order and columns k.. are zero: PDSYEVR needs a square eigenvector matrix.
 * Solver failures, including PDSYEVR returning fewer eigenpairs than requested, are
 * SGK_ERR_NUMERIC. */
sgk_status sgk_spectrum_eigh_largest(sgk_dmatrix *a, long k, double *eigenvalues,
                                     sgk_dmatrix *vectors);

#ifdef __cplusplus
}
#endif
#endif
