# SGK_CHECK_NETCDF
# ----------------
# Find NetCDF-C built with parallel NetCDF-4 (MPI-IO through HDF5): netcdf.h,
# netcdf_par.h and nc_create_par. Sets NETCDF_CFLAGS and NETCDF_LIBS.
#
# Debian's libnetcdf-mpi-dev installs its headers in /usr/lib/<multiarch>/netcdf/mpi/include,
# but `pkg-config netcdf-mpi` reports only /usr/include, where the serial netcdf.h of
# libnetcdf-dev may also sit. So the search adds candidates with each folder that holds
# netcdf_par.h placed first in NETCDF_CFLAGS: the folder pkg-config's prefix and libdir
# point to, and the Debian/Ubuntu location for the compiler's multiarch triplet.
# The test program rejects a netcdf.h without parallel NetCDF-4, so a serial header
# that comes first fails the check instead of the build.
AC_DEFUN([SGK_CHECK_NETCDF],
[AC_REQUIRE([SGK_CHECK_MPI])dnl
AC_ARG_WITH([netcdf],
  [AS_HELP_STRING([--with-netcdf=DIR],
    [parallel NetCDF-4 installation prefix (DIR/include, DIR/lib)])])
AC_ARG_VAR([NETCDF_CFLAGS], [C preprocessor flags for parallel NetCDF-4; skips the search])
AC_ARG_VAR([NETCDF_LIBS], [linker flags for parallel NetCDF-4; skips the search])
_SGK_FIND_LIB_CANDIDATES([NETCDF], [netcdf], [netcdf-mpi netcdf],
  [[-lnetcdf_mpi], [-lnetcdf]])
AS_IF([test "$sgk_phase" = search],
  [# 1. Folders that may hold the parallel headers.
   sgk_netcdf_guesses=
   for sgk_module in netcdf-mpi netcdf; do
     AS_IF([test -n "$PKG_CONFIG" && $PKG_CONFIG --exists "$sgk_module"],
       [sgk_netcdf_guesses="$sgk_netcdf_guesses `$PKG_CONFIG --variable=prefix "$sgk_module"`/include `$PKG_CONFIG --variable=libdir "$sgk_module"`/netcdf/mpi/include"])
   done
   sgk_multiarch=`$CC -print-multiarch 2>/dev/null`
   AS_IF([test -n "$sgk_multiarch"],
     [sgk_netcdf_guesses="$sgk_netcdf_guesses /usr/lib/$sgk_multiarch/netcdf/mpi/include"])

   # 2. Keep those that exist and hold netcdf_par.h, once each.
   sgk_netcdf_par_dirs=
   for sgk_dir in $sgk_netcdf_guesses; do
     sgk_dir=`echo "$sgk_dir" | sed 's|//*|/|g'`
     test -f "$sgk_dir/netcdf_par.h" || continue
     AS_CASE([" $sgk_netcdf_par_dirs "],
       [*" $sgk_dir "*], [],
       [sgk_netcdf_par_dirs="$sgk_netcdf_par_dirs $sgk_dir"])
   done

   # 3. After each candidate, the same candidate with each of those folders first.
   sgk_netcdf_candidates=
   sgk_save_IFS=$IFS
   IFS='
'
   for sgk_candidate in $sgk_candidates; do
     IFS=$sgk_save_IFS
     sgk_netcdf_candidates="$sgk_netcdf_candidates
$sgk_candidate"
     for sgk_dir in $sgk_netcdf_par_dirs; do
       sgk_netcdf_candidates="$sgk_netcdf_candidates
-I$sgk_dir $sgk_candidate, headers from $sgk_dir"
     done
   done
   IFS=$sgk_save_IFS
   sgk_candidates=$sgk_netcdf_candidates])
_SGK_FIND_LIB_VERIFY([NETCDF], [parallel NetCDF-4],
  [[#include <mpi.h>
#include <netcdf.h>
#include <netcdf_par.h>
#include <netcdf_meta.h>
/* NC_HAS_PARALLEL4 (parallel HDF5) exists from NetCDF-C 4.6.2; older releases only
 * have NC_HAS_PARALLEL, which a PnetCDF-only build also sets. */
#if defined(NC_HAS_PARALLEL4)
#  if !NC_HAS_PARALLEL4
#    error "netcdf.h found first comes from a NetCDF built without parallel NetCDF-4"
#  endif
#elif !defined(NC_HAS_PARALLEL) || !NC_HAS_PARALLEL
#  error "netcdf.h found first comes from a NetCDF built without parallel I/O"
#endif]],
  [[int ncid;
return nc_create_par("conftest.nc", NC_NETCDF4 | NC_CLOBBER, MPI_COMM_WORLD, MPI_INFO_NULL,
                     &ncid);]],
  [nc_create_par from a parallel netcdf.h and netcdf_par.h], [libnetcdf-mpi-dev], [netcdf])
])
