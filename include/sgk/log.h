/* Levelled, rank-tagged log lines: "[level][rank] message". */
#ifndef SGK_LOG_H
#define SGK_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SGK_LOG_ERROR = 0,
    SGK_LOG_WARN = 1,
    SGK_LOG_INFO = 2,
    SGK_LOG_DEBUG = 3
} sgk_log_level;

/* Set this process's rank and the most detailed level printed. */
void sgk_log_setup(int rank, sgk_log_level max_level);

/* Print from rank 0 only: summaries and progress. Errors and warnings go to
 * stderr, the rest to stdout. */
void sgk_log(sgk_log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Print from whichever rank calls: events that only one rank sees. */
void sgk_log_any(sgk_log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Rewrite the live status line on stdout (rank 0 only, no level tag): for progress on a
 * terminal. The next log line first ends it. */
void sgk_log_live(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* End the live status line, if one is shown. */
void sgk_log_live_end(void);

/* Wall-clock seconds from an arbitrary origin (MPI_Wtime). */
double sgk_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
