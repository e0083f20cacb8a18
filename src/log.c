#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>

#include "sgk/log.h"

static int log_rank = 0;
static sgk_log_level log_max_level = SGK_LOG_INFO;
static int live_line_shown = 0;

static const char *level_name(sgk_log_level level)
{
    switch (level) {
    case SGK_LOG_ERROR:
        return "error";
    case SGK_LOG_WARN:
        return "warn";
    case SGK_LOG_INFO:
        return "info";
    case SGK_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

void sgk_log_setup(int rank, sgk_log_level max_level)
{
    log_rank = rank;
    log_max_level = max_level;
}

static void log_write(sgk_log_level level, const char *format, va_list args)
{
    FILE *stream = level <= SGK_LOG_WARN ? stderr : stdout;

    sgk_log_live_end();
    fprintf(stream, "[%s][%d] ", level_name(level), log_rank);
    vfprintf(stream, format, args);
    fputc('\n', stream);
    fflush(stream);
}

void sgk_log(sgk_log_level level, const char *format, ...)
{
    va_list args;

    if (log_rank != 0 || level > log_max_level) return;
    va_start(args, format);
    log_write(level, format, args);
    va_end(args);
}

void sgk_log_any(sgk_log_level level, const char *format, ...)
{
    va_list args;

    if (level > log_max_level) return;
    va_start(args, format);
    log_write(level, format, args);
    va_end(args);
}

void sgk_log_live(const char *format, ...)
{
    va_list args;

    if (log_rank != 0 || log_max_level < SGK_LOG_INFO) return;
    fputs("\r", stdout);
    va_start(args, format);
    vfprintf(stdout, format, args);
    va_end(args);
    fputs("\033[K", stdout); /* clear the rest of the previous, longer line */
    fflush(stdout);
    live_line_shown = 1;
}

void sgk_log_live_end(void)
{
    if (!live_line_shown) return;
    fputc('\n', stdout);
    fflush(stdout);
    live_line_shown = 0;
}

double sgk_seconds(void)
{
    return MPI_Wtime();
}
