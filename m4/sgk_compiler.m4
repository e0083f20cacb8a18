# sgk_compiler.m4: language standard, warnings and optional sanitizers.

# _SGK_ADD_CFLAG(FLAG, VARIABLE)
# ------------------------------
# Append FLAG to VARIABLE when the compiler accepts it without a warning.
AC_DEFUN([_SGK_ADD_CFLAG],
[AC_MSG_CHECKING([whether $CC accepts $1])
sgk_save_CFLAGS=$CFLAGS
CFLAGS="$CFLAGS -Werror $1"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
  [AC_MSG_RESULT([yes])
   $2="$$2 $1"],
  [AC_MSG_RESULT([no])])
CFLAGS=$sgk_save_CFLAGS
])

# SGK_COMPILER_FLAGS
# ------------------
# Set SGK_CFLAGS (AM_CFLAGS) and SGK_LDFLAGS (AM_LDFLAGS). The code is ISO C11 plus
# POSIX.1-2008, so -std=c11 is required, and Makefile.am adds -D_POSIX_C_SOURCE=200809L.
# --enable-werror turns warnings into errors, for CI. --enable-sanitizers builds with
# AddressSanitizer and UndefinedBehaviorSanitizer.
AC_DEFUN([SGK_COMPILER_FLAGS],
[AC_REQUIRE([AC_PROG_CC])dnl
SGK_CFLAGS=
SGK_LDFLAGS=
_SGK_ADD_CFLAG([-std=c11], [SGK_CFLAGS])
AS_CASE([" $SGK_CFLAGS "],
  [*" -std=c11 "*], [],
  [AC_MSG_ERROR([$CC does not accept -std=c11; sgk-ensemble needs a C11 compiler. Give MPICC a wrapper around GCC or Clang.])])
_SGK_ADD_CFLAG([-Wall], [SGK_CFLAGS])
_SGK_ADD_CFLAG([-Wextra], [SGK_CFLAGS])

AC_ARG_ENABLE([werror],
  [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])])
AS_IF([test "x$enable_werror" = xyes], [SGK_CFLAGS="$SGK_CFLAGS -Werror"])

AC_ARG_ENABLE([sanitizers],
  [AS_HELP_STRING([--enable-sanitizers],
    [build with AddressSanitizer and UndefinedBehaviorSanitizer])])
AS_IF([test "x$enable_sanitizers" = xyes],
  [sgk_sanitizer_flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
   AC_MSG_CHECKING([whether $CC links with $sgk_sanitizer_flags])
   sgk_save_CFLAGS=$CFLAGS
   sgk_save_LDFLAGS=$LDFLAGS
   CFLAGS="$CFLAGS $sgk_sanitizer_flags"
   LDFLAGS="$LDFLAGS $sgk_sanitizer_flags"
   AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
     [AC_MSG_RESULT([yes])],
     [AC_MSG_RESULT([no])
      AC_MSG_ERROR([--enable-sanitizers: $CC cannot link with $sgk_sanitizer_flags. On Debian install the compiler's libasan and libubsan (part of gcc).])])
   CFLAGS=$sgk_save_CFLAGS
   LDFLAGS=$sgk_save_LDFLAGS
   SGK_CFLAGS="$SGK_CFLAGS $sgk_sanitizer_flags"
   SGK_LDFLAGS="$SGK_LDFLAGS $sgk_sanitizer_flags"])
SGK_CFLAGS=`echo $SGK_CFLAGS`
# The language mode alone, for the dependency checks in sgk_find_lib.m4.
sgk_std_cflags="-std=c11 -D_POSIX_C_SOURCE=200809L"
SGK_LDFLAGS=`echo $SGK_LDFLAGS`
AC_SUBST([SGK_CFLAGS])
AC_SUBST([SGK_LDFLAGS])
])
