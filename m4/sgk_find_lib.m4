# sgk_find_lib.m4: the search that every dependency macro in m4/sgk_*.m4 shares.
#
# A dependency is accepted only when a test program that calls it compiles and links.
# The flags tried come from the first of these sources that the user gave:
#   1. --with-NAME=DIR: DIR/include, and DIR/lib, DIR/lib64 or DIR for the libraries;
#   2. NAME_CFLAGS and/or NAME_LIBS in the environment, used as given;
#   3. otherwise a search: pkg-config modules first, then plain library names.
# Sources 1 and 2 are the user's explicit choice, so when they fail configure stops
# instead of falling back to the search.
#
# Shell variables the macros here share (configure is one shell script):
#   sgk_candidates  newline-separated "CFLAGS|LIBS|ORIGIN" lines, tried in order;
#   sgk_phase       with, env or search: which source produced sgk_candidates;
#   sgk_link_extra  libraries that a caller's test program also needs (for example
#                   ScaLAPACK needs BLAS); the caller sets it before the search.

# _SGK_FIND_LIB_CANDIDATES(VAR, OPTION, PKG-MODULES, LIB-ALTERNATIVES)
# ---------------------------------------------------------------------
# Fill sgk_candidates and sgk_phase for dependency VAR (VAR_CFLAGS, VAR_LIBS) from
# --with-OPTION, the environment, or the pkg-config modules (space-separated) and the
# library alternatives (an m4 list of link flag sets; [[]] for a header-only library).
AC_DEFUN([_SGK_FIND_LIB_CANDIDATES],
[AC_REQUIRE([PKG_PROG_PKG_CONFIG])dnl
sgk_candidates=
sgk_with_value=$with_[]m4_translit([$2], [-], [_])
AS_CASE([$sgk_with_value],
  [no], [AC_MSG_ERROR([--without-$2 was given, but sgk-ensemble cannot be built without it])],
  [""|yes], [],
  [sgk_phase=with
   AS_IF([test ! -d "$sgk_with_value/include"],
     [AC_MSG_ERROR([--with-$2=$sgk_with_value: folder $sgk_with_value/include not found. Give the installation prefix, the folder that contains include/ and lib/.])])
   sgk_alternatives_text="m4_foreach([sgk_alt], [$4], [sgk_alt; ])"
   sgk_alternatives_text=${sgk_alternatives_text%; }
   # Only library folders that hold every library of an alternative count, so that a
   # wrong DIR fails here instead of linking the system's copy unnoticed.
   for sgk_libdir in "$sgk_with_value/lib" "$sgk_with_value/lib64" "$sgk_with_value"; do
m4_foreach([sgk_alt], [$4], [dnl
     sgk_present=yes
     for sgk_flag in sgk_alt; do
       case $sgk_flag in
         -l*) ls "$sgk_libdir/lib${sgk_flag#-l}."* >/dev/null 2>&1 || sgk_present=no ;;
       esac
     done
     AS_IF([test "$sgk_present" = yes],
       [sgk_candidates="$sgk_candidates
-I$sgk_with_value/include|-L$sgk_libdir sgk_alt|--with-$2=$sgk_with_value"])
])dnl
   done
   AS_IF([test -z "$sgk_candidates"],
     [AC_MSG_ERROR([--with-$2=$sgk_with_value: the libraries ($sgk_alternatives_text) are not in $sgk_with_value/lib, $sgk_with_value/lib64 or $sgk_with_value itself. Give the installation prefix of the library.])])])
AS_IF([test -z "$sgk_candidates" && test -n "$$1_CFLAGS$$1_LIBS"],
  [sgk_phase=env
   sgk_candidates="$$1_CFLAGS|$$1_LIBS|$1_CFLAGS and $1_LIBS"])
AS_IF([test -z "$sgk_candidates"],
  [sgk_phase=search
   for sgk_module in $3; do
     AS_IF([test -n "$PKG_CONFIG" && $PKG_CONFIG --exists "$sgk_module"],
       [sgk_candidates="$sgk_candidates
`$PKG_CONFIG --cflags "$sgk_module"`|`$PKG_CONFIG --libs "$sgk_module"`|pkg-config $sgk_module"])
   done
m4_foreach([sgk_alt], [$4], [dnl
   sgk_candidates="$sgk_candidates
|sgk_alt|m4_ifval(sgk_alt, [library names], [default search path])"
])dnl
  ])
])

# _SGK_FIND_LIB_VERIFY(VAR, NAME, PROLOGUE, BODY, WHAT, DEBIAN-PACKAGE, OPTION)
# ---------------------------------------------------------------------------
# Try each line of sgk_candidates with a program made of PROLOGUE and BODY. Keep the
# first that links in VAR_CFLAGS, VAR_LIBS and sgk_VAR_origin (for the summary), or
# stop configure with a message that names NAME, what was tried and the Debian package.
# WHAT names the symbols the program uses, for that message.
AC_DEFUN([_SGK_FIND_LIB_VERIFY],
[AC_MSG_CHECKING([for $2])
sgk_found=no
sgk_tried=
sgk_save_IFS=$IFS
IFS='
'
for sgk_candidate in $sgk_candidates; do
  IFS=$sgk_save_IFS
  sgk_try_cflags=${sgk_candidate%%|*}
  sgk_rest=${sgk_candidate#*|}
  sgk_try_libs=${sgk_rest%%|*}
  sgk_try_origin=${sgk_rest#*|}
  sgk_tried="$sgk_tried${sgk_tried:+; }$sgk_try_origin (`echo $sgk_try_cflags $sgk_try_libs`)"
  sgk_save_CPPFLAGS=$CPPFLAGS
  sgk_save_LIBS=$LIBS
  # The dependency's flags go before the user's CPPFLAGS, as in Makefile.am, and the
  # headers must compile in the language mode of the build (SGK_COMPILER_FLAGS).
  CPPFLAGS="$sgk_try_cflags $MPI_CFLAGS $sgk_std_cflags $CPPFLAGS"
  LIBS="$sgk_try_libs $sgk_link_extra $MPI_LIBS $LIBS"
  AS_ECHO(["$as_me:$LINENO: trying $2 with CFLAGS='$sgk_try_cflags' LIBS='$sgk_try_libs' ($sgk_try_origin)"]) >&AS_MESSAGE_LOG_FD
  AC_LINK_IFELSE([AC_LANG_PROGRAM([$3], [$4])], [sgk_found=yes])
  CPPFLAGS=$sgk_save_CPPFLAGS
  LIBS=$sgk_save_LIBS
  AS_IF([test "$sgk_found" = yes], [break])
done
IFS=$sgk_save_IFS
AS_IF([test "$sgk_found" = yes],
  [$1_CFLAGS=`echo $sgk_try_cflags`
   $1_LIBS=`echo $sgk_try_libs`
   sgk_[]m4_tolower([$1])_origin=$sgk_try_origin
   AC_MSG_RESULT([$sgk_try_origin])],
  [AC_MSG_RESULT([no])
   AS_CASE([$sgk_phase],
     [with], [AC_MSG_ERROR([$2 not found under $sgk_with_value: a program using $5 did not compile and link with any of: $sgk_tried. Check the folder given to --with-$7, or set $1_CFLAGS and $1_LIBS instead. config.log shows the compiler output.])],
     [env], [AC_MSG_ERROR([$2: a program using $5 did not compile and link with $1_CFLAGS='$sgk_try_cflags' and $1_LIBS='$sgk_try_libs'. Correct these variables, or unset both to let configure search. config.log shows the compiler output.])],
     [AC_MSG_ERROR([$2 not found: a program using $5 did not compile and link with any of: $sgk_tried. On Debian or Ubuntu install $6 (tools/install-deps installs it). Elsewhere give --with-$7=DIR, or $1_CFLAGS and $1_LIBS. config.log shows the compiler output.])])])
])

# SGK_FIND_LIB(VAR, NAME, OPTION, PKG-MODULES, LIB-ALTERNATIVES, PROLOGUE, BODY, WHAT,
#              DEBIAN-PACKAGE)
# -------------------------------------------------------------------------------------
# Declare --with-OPTION, VAR_CFLAGS and VAR_LIBS, then search as described at the top.
# Set sgk_link_extra first when the test program needs other libraries.
AC_DEFUN([SGK_FIND_LIB],
[AC_ARG_WITH([$3],
  [AS_HELP_STRING([--with-$3=DIR], [$2 installation prefix (DIR/include, DIR/lib)])])
AC_ARG_VAR([$1_CFLAGS], [C preprocessor flags for $2; skips the search])
AC_ARG_VAR([$1_LIBS], [linker flags for $2; skips the search])
_SGK_FIND_LIB_CANDIDATES([$1], [$3], [$4], [$5])
_SGK_FIND_LIB_VERIFY([$1], [$2], [$6], [$7], [$8], [$9], [$3])
sgk_link_extra=
])
