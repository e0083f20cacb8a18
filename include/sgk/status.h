/* Error vocabulary shared by every libsgk function. */
#ifndef SGK_STATUS_H
#define SGK_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes double as the program's exit status, which job scripts test. */
typedef enum {
    SGK_OK = 0,
    SGK_ERR_USAGE = 1,   /* bad command line or configuration */
    SGK_ERR_DATA = 2,    /* bad input data */
    SGK_ERR_NUMERIC = 3, /* all replicas diverged, eigen-solver failure */
    SGK_ERR_IO = 4       /* cannot read or write a file; out of memory */
} sgk_status;

/* Record an error message for the calling process and return `status`.
 * The message should name the file, key or value at fault and what is accepted. */
sgk_status sgk_error(sgk_status status, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Message of the last error recorded by this process, or "" when none. */
const char *sgk_error_message(void);

/* Forget the recorded message. */
void sgk_error_clear(void);

/* Short name of a status code ("configuration error", ...). */
const char *sgk_status_name(sgk_status status);

/* Propagate a non-OK status to the caller. */
#define SGK_CHECK(call)                                                        \
    do {                                                                       \
        sgk_status sgk_check_status_ = (call);                                 \
        if (sgk_check_status_ != SGK_OK) return sgk_check_status_;            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
