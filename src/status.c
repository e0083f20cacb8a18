/* Error messages recorded per process. Every libsgk call runs on the thread that
 * called MPI_Init, so one buffer per process suffices. */
#include <stdarg.h>
#include <stdio.h>

#include "sgk/status.h"

static char last_message[2048];

sgk_status sgk_error(sgk_status status, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vsnprintf(last_message, sizeof last_message, format, args);
    va_end(args);
    return status;
}

const char *sgk_error_message(void)
{
    return last_message;
}

void sgk_error_clear(void)
{
    last_message[0] = '\0';
}

const char *sgk_status_name(sgk_status status)
{
    switch (status) {
    case SGK_OK:
        return "success";
    case SGK_ERR_USAGE:
        return "configuration error";
    case SGK_ERR_DATA:
        return "input data error";
    case SGK_ERR_NUMERIC:
        return "numerical failure";
    case SGK_ERR_IO:
        return "I/O error";
    }
    return "unknown error";
}
