/* Evaluation set: training points, then test points, then out-of-distribution points. */
#ifndef SGK_DATASET_H
#define SGK_DATASET_H

#include <stddef.h>
#include <mpi.h>
#include "sgk/config.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SGK_SPLIT_TRAIN = 0, SGK_SPLIT_TEST = 1, SGK_SPLIT_OOD = 2 };

typedef struct {
    long n_samples;   /* N = n_train + n_test + n_ood */
    long n_train;
    long n_test;
    long n_ood;
    int n_features;
    int n_outputs;
    double *x;        /* N x n_features, row-major */
    double *y;        /* N x n_outputs, row-major */
    int *split;       /* N entries, SGK_SPLIT_* */
    int *label;       /* N entries: class label of the source, or -1 */
    long *source_index; /* N entries: index in the source file, or -1 (synthetic) */
} sgk_dataset;

/* Build the evaluation set that `config` describes (doc/data.md). Collective over
 * `comm`: rank 0 reads the files and broadcasts, so every rank ends with the same data,
 * or with the same status and error message. Errors in the data are SGK_ERR_DATA and
 * name the file. A missing or unreadable file gives
 * SGK_ERR_DATA (naming the paths tried), running out of memory gives SGK_ERR_IO, and
 * invalid keys give SGK_ERR_USAGE.
 * On failure `data` holds no arrays. */
sgk_status sgk_dataset_load(const sgk_config *config, MPI_Comm comm, sgk_dataset *data);

/* Free the arrays and zero `data`. Calling it on a zeroed or freed set is safe. */
void sgk_dataset_free(sgk_dataset *data);

/* IDX file (the MNIST container format), plain or gzip-compressed. */
typedef struct {
    int type_code;     /* 0x08 unsigned byte, ... */
    int n_dims;
    long dims[4];
    unsigned char *data; /* raw payload, big-endian for multi-byte types */
    size_t n_bytes;
} sgk_idx;

/* Read an IDX file, plain or gzip-compressed. Wrong magic, unknown type codes, 0 or
 * more than 4 dimensions, truncation, a payload shorter or longer than the dimensions
 * declare, empty files and truncated or corrupt gzip streams are SGK_ERR_DATA errors
 * naming the path and the sizes. A file that cannot be opened or read is SGK_ERR_IO.
 * On failure `idx` holds no payload. */
sgk_status sgk_idx_read(const char *path, sgk_idx *idx);

/* Free the payload and zero `idx`. */
void sgk_idx_free(sgk_idx *idx);

#ifdef __cplusplus
}
#endif
#endif
