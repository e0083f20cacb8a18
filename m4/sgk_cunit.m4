# SGK_CHECK_CUNIT
# ---------------
# Find CUnit, which only the test programs link. Sets CUNIT_CFLAGS and CUNIT_LIBS.
AC_DEFUN([SGK_CHECK_CUNIT],
[SGK_FIND_LIB([CUNIT], [CUnit], [cunit], [cunit], [[-lcunit]],
  [[#include <CUnit/Basic.h>]],
  [[if (CU_initialize_registry() != CUE_SUCCESS) return 1;
CU_cleanup_registry();]],
  [CU_initialize_registry], [libcunit1-dev])
])
