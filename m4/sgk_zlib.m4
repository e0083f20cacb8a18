# SGK_CHECK_ZLIB
# --------------
# Find zlib, which reads gzip-compressed IDX files. Sets ZLIB_CFLAGS and ZLIB_LIBS.
AC_DEFUN([SGK_CHECK_ZLIB],
[SGK_FIND_LIB([ZLIB], [zlib], [zlib], [zlib], [[-lz]],
  [[#include <zlib.h>]],
  [[gzFile file = gzopen("/nonexistent.gz", "rb");
if (file) gzclose(file);
return zlibVersion()[0] == '\0';]],
  [gzopen and zlibVersion], [zlib1g-dev])
])
