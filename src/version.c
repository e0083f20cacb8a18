/* Library version, from configure's PACKAGE_VERSION (AC_INIT in configure.ac). */
#include "build-config.h"

#include "sgk/sgk.h"

const char *sgk_version(void)
{
    return PACKAGE_VERSION;
}
