# SGK_CHECK_INIH
# --------------
# Find inih, the INI parser that reads run configurations. Sets INIH_CFLAGS and
# INIH_LIBS.
AC_DEFUN([SGK_CHECK_INIH],
[SGK_FIND_LIB([INIH], [inih], [inih], [inih], [[-linih]],
  [[#include <ini.h>]],
  [[return ini_parse("/nonexistent.ini", 0, 0);]],
  [ini_parse], [libinih-dev])
])
