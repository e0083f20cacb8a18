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

/* Build the evaluation set that `config` describes. Collective over `comm`: rank 0
 * reads the files and broadcasts, so every rank ends with the same data and the
 * same status. Errors in the data are SGK_ERR_DATA and name the file. */
sgk_status sgk_dataset_load(const sgk_config *config, MPI_Comm comm, sgk_dataset *data);

void sgk_dataset_free(sgk_dataset *data);

/* IDX file (the MNIST container format), plain or gzip-compressed. */
typedef struct {
    int type_code;     /* 0x08 unsigned byte, ... */
    int n_dims;
    long dims[4];
    unsigned char *data; /* raw payload, big-endian for multi-byte types */
    size_t n_bytes;
} sgk_idx;

/* Read an IDX file. Wrong magic, truncation, counts larger than the payload and
 * empty files are SGK_ERR_DATA errors naming the path. */
sgk_status sgk_idx_read(const char *path, sgk_idx *idx);

void sgk_idx_free(sgk_idx *idx);

#ifdef __cplusplus
}
#endif
#endif
