# SGK_PROG_PYTHON_NC
# ------------------
# Find a Python 3 that imports numpy and netCDF4, for tests that read the NetCDF output
# (PYTHON_NC). Optional: when none is found PYTHON_NC stays empty and those tests skip.
# A python3 on PATH (pyenv, conda, a virtualenv) often lacks the Debian packages
# python3-numpy and python3-netcdf4, so /usr/bin/python3 is tried after it.
AC_DEFUN([SGK_PROG_PYTHON_NC],
[AC_ARG_VAR([PYTHON_NC],
  [Python 3 with numpy and netCDF4 for the tests that read NetCDF output; empty skips them])
AC_MSG_CHECKING([for python3 with numpy and netCDF4])
AS_IF([test "${PYTHON_NC+set}" = set],
  [AC_MSG_RESULT([${PYTHON_NC:-none (PYTHON_NC is set empty)}])],
  [PYTHON_NC=
   for sgk_python in `command -v python3 2>/dev/null` /usr/bin/python3; do
     AS_IF([test -x "$sgk_python" && "$sgk_python" -c 'import numpy, netCDF4' >/dev/null 2>&1],
       [PYTHON_NC=$sgk_python
        break])
   done
   AC_MSG_RESULT([${PYTHON_NC:-none; install python3-numpy python3-netcdf4 to run the tests that need it}])])
])
