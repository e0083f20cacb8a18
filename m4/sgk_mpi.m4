# sgk_mpi.m4: the MPI compiler, MPI itself, and the launcher for tests and `make run`.

# SGK_PROG_MPICC
# --------------
# Choose the C compiler before AC_PROG_CC does. In order of precedence:
# MPICC; CC when the user set it (a wrapper such as Cray's cc, or a plain compiler
# together with MPI_CFLAGS and MPI_LIBS); DIR/bin/mpicc for --with-mpi=DIR; mpicc on PATH.
AC_DEFUN([SGK_PROG_MPICC],
[AC_BEFORE([$0], [AC_PROG_CC])dnl
AC_ARG_VAR([MPICC], [MPI C compiler wrapper, used as CC (default: mpicc)])
AC_ARG_WITH([mpi],
  [AS_HELP_STRING([--with-mpi=DIR],
    [MPI installation prefix: use DIR/bin/mpicc, or DIR/include and DIR/lib with CC])])
AS_CASE([$with_mpi],
  [no], [AC_MSG_ERROR([--without-mpi was given, but sgk-ensemble cannot be built without MPI])])
AS_IF([test -n "$MPICC"],
  [set dummy $MPICC
   AS_IF([command -v "$[2]" >/dev/null 2>&1], [],
     [AC_MSG_ERROR([MPICC=$MPICC: compiler not found or not executable. Give the path of the MPI C compiler wrapper, for example MPICC=/usr/bin/mpicc.])])
   CC=$MPICC],
  [test -n "$CC"],
  [],
  [test -n "$with_mpi" && test "$with_mpi" != yes],
  [AS_IF([test -x "$with_mpi/bin/mpicc"],
     [MPICC=$with_mpi/bin/mpicc
      CC=$MPICC])],
  [AC_PATH_PROG([MPICC], [mpicc])
   AS_IF([test -z "$MPICC"],
     [AC_MSG_ERROR([mpicc not found on PATH. On Debian or Ubuntu install openmpi-bin libopenmpi-dev (tools/install-deps installs them). Elsewhere load your MPI module, or give MPICC=/path/to/mpicc or --with-mpi=DIR.])])
   CC=$MPICC])
])

# SGK_CHECK_MPI
# -------------
# Check that the compiler builds and links an MPI program, and record whether the MPI
# is Open MPI (sgk_mpi_flavor). MPI_CFLAGS and MPI_LIBS stay empty with a wrapper
# compiler. In the search, the compiler alone comes first, before pkg-config, because
# a wrapper compiler already knows its own MPI.
AC_DEFUN([SGK_CHECK_MPI],
[AC_REQUIRE([AC_PROG_CC])dnl
AC_ARG_VAR([MPI_CFLAGS], [C preprocessor flags for MPI when CC is not a wrapper compiler])
AC_ARG_VAR([MPI_LIBS], [linker flags for MPI when CC is not a wrapper compiler])
# Under --with-mpi=DIR with DIR/bin/mpicc, the wrapper needs no flags.
AS_IF([test -n "$with_mpi" && test "$with_mpi" != yes && test "$CC" = "$with_mpi/bin/mpicc"],
  [with_mpi=])
_SGK_FIND_LIB_CANDIDATES([MPI], [mpi], [ompi-c mpi], [[-lmpi]])
AS_IF([test "$sgk_phase" = search],
  [sgk_candidates="||the compiler $CC alone
$sgk_candidates"])
# The verification adds MPI_CFLAGS and MPI_LIBS to every candidate, as the other
# dependencies need, but here the candidates already contain the user's values.
MPI_CFLAGS=
MPI_LIBS=
_SGK_FIND_LIB_VERIFY([MPI], [MPI], [[#include <mpi.h>]],
  [[MPI_Init(0, 0);
MPI_Finalize();]],
  [MPI_Init], [openmpi-bin libopenmpi-dev], [mpi])
sgk_save_CPPFLAGS=$CPPFLAGS
CPPFLAGS="$MPI_CFLAGS $CPPFLAGS"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>
#ifndef OPEN_MPI
#error not Open MPI
#endif]], [])],
  [sgk_mpi_flavor="Open MPI"],
  [sgk_mpi_flavor="not Open MPI"])
CPPFLAGS=$sgk_save_CPPFLAGS
])

# SGK_PROG_MPIEXEC
# ----------------
# Find the launcher that `make check` and `make run` call as `$MPIEXEC -n K PROGRAM`,
# looking first next to the compiler so that launcher and library match. Sets
# MPIEXEC_RUN_FLAGS, the extra flags of `make run` only: with Open MPI, --oversubscribe
# (the default experiment uses 2 ranks, more than a 1-core machine has slots), and
# --allow-run-as-root when configure runs as root. The test harness gets the same
# permissions from OMPI_* environment variables instead (see Makefile.am).
AC_DEFUN([SGK_PROG_MPIEXEC],
[AC_REQUIRE([SGK_CHECK_MPI])dnl
AC_ARG_VAR([MPIEXEC],
  [MPI launcher for make check and make run, called as $MPIEXEC -n K PROGRAM (default: mpiexec or mpirun next to the compiler, else on PATH)])
set dummy $CC
sgk_cc_path=`command -v "$[2]" 2>/dev/null`
AS_CASE([$sgk_cc_path],
  [*/*], [sgk_mpi_bindir=`AS_DIRNAME(["$sgk_cc_path"])`],
  [sgk_mpi_bindir=])
AC_PATH_PROGS([MPIEXEC], [mpiexec mpirun], [], [$sgk_mpi_bindir$PATH_SEPARATOR$PATH])
AS_IF([test -z "$MPIEXEC"],
  [AC_MSG_WARN([neither mpiexec nor mpirun found: make check will skip the MPI tests and make run will fail. Set MPIEXEC to the launcher, for example MPIEXEC="srun".])])
MPIEXEC_RUN_FLAGS=
AC_MSG_CHECKING([whether $MPIEXEC is Open MPI's launcher])
AS_IF([test -n "$MPIEXEC" && $MPIEXEC --version 2>&1 | grep -e 'Open MPI' -e 'OpenRTE' >/dev/null],
  [AC_MSG_RESULT([yes])
   MPIEXEC_RUN_FLAGS=--oversubscribe
   AS_IF([test "`id -u 2>/dev/null`" = 0],
     [MPIEXEC_RUN_FLAGS="--allow-run-as-root $MPIEXEC_RUN_FLAGS"])],
  [AC_MSG_RESULT([no])])
AC_SUBST([MPIEXEC_RUN_FLAGS])
])
