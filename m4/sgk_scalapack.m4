# SGK_CHECK_SCALAPACK
# -------------------
# Find ScaLAPACK with its BLACS: pdsyevd_, numroc_ and Cblacs_gridinit. Sets
# SCALAPACK_CFLAGS and SCALAPACK_LIBS. Expand after SGK_CHECK_OPENBLAS and
# SGK_CHECK_MPI, because ScaLAPACK needs BLAS, LAPACK and the same MPI to link.
AC_DEFUN([SGK_CHECK_SCALAPACK],
[AC_REQUIRE([SGK_CHECK_OPENBLAS])dnl
AC_REQUIRE([SGK_CHECK_MPI])dnl
sgk_link_extra=$OPENBLAS_LIBS
SGK_FIND_LIB([SCALAPACK], [ScaLAPACK], [scalapack], [scalapack-openmpi scalapack],
  [[-lscalapack-openmpi], [-lscalapack]],
  [[/* ScaLAPACK installs no C header; declarations without arguments suffice to link. */
char pdsyevd_(void);
char numroc_(void);
char Cblacs_gridinit(void);]],
  [[return pdsyevd_() + numroc_() + Cblacs_gridinit();]],
  [pdsyevd_, numroc_ and Cblacs_gridinit], [libscalapack-openmpi-dev])
])
