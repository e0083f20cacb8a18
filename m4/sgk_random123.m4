# SGK_CHECK_RANDOM123
# -------------------
# Find the Random123 headers (header-only, no pkg-config module on Debian) and check
# that Philox compiles with this compiler and C11. Sets RANDOM123_CFLAGS, and
# RANDOM123_LIBS stays empty unless the user sets it.
AC_DEFUN([SGK_CHECK_RANDOM123],
[SGK_FIND_LIB([RANDOM123], [Random123], [random123], [], [[]],
  [[#include <Random123/philox.h>]],
  [[philox4x32_ctr_t counter = {{0, 1, 2, 3}};
philox4x32_key_t key = {{4, 5}};
philox4x32_ctr_t bits = philox4x32(counter, key);
return (int)(bits.v[0] & 1u);]],
  [philox4x32 from <Random123/philox.h>], [librandom123-dev])
])
