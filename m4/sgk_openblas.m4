# SGK_CHECK_OPENBLAS
# ------------------
# Find OpenBLAS: CBLAS (cblas.h, cblas_dgemm) and the LAPACK it bundles (dsyevd_).
# Sets OPENBLAS_CFLAGS and OPENBLAS_LIBS. Debian keeps cblas.h in a folder per
# threading variant, which only pkg-config reports.
AC_DEFUN([SGK_CHECK_OPENBLAS],
[SGK_FIND_LIB([OPENBLAS], [OpenBLAS], [openblas], [openblas],
  [[-lopenblas], [-lopenblas -llapack]],
  [[#include <cblas.h>
/* LAPACK has no C header here; a declaration without arguments suffices to link. */
char dsyevd_(void);]],
  [[double a[1] = {1.0}, b[1] = {2.0}, c[1] = {0.0};
cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0, a, 1, b, 1, 0.0, c, 1);
return dsyevd_() + (int)c[0];]],
  [cblas_dgemm and dsyevd_], [libopenblas-dev])
])
