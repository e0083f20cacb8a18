/* Private interface between the dataset modules: dataset.c (collective loading,
 * out-of-distribution points derived from the training inputs), dataset_idx.c (IDX
 * folders), dataset_teacher.c (synthetic teacher network), dataset_synthetic.c
 * (moons and gaussian-mixture point clouds in the plane), dataset_netcdf.c and
 * dataset_csv.c (one file of points). The builders run on one process and fill a
 * dataset that sgk_dataset_alloc sized. */
#ifndef SGK_DATASET_INTERNAL_H
#define SGK_DATASET_INTERNAL_H

#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/status.h"

/* Substreams of the SGK_RNG_DATA stream of [data] seed (replica 0). Separate
 * substreams keep the training draws unchanged when n_test or n_ood change. */
enum {
    SGK_DATA_SUBSTREAM_TRAIN = 0, /* which training examples are chosen */
    SGK_DATA_SUBSTREAM_TEST = 1,  /* which test examples are chosen */
    SGK_DATA_SUBSTREAM_OOD = 2,   /* which examples ood = classes or shift chooses */
    SGK_DATA_SUBSTREAM_NOISE = 3  /* inputs of ood = noise */
};

/* Allocate every array of `data` for n_train + n_test + n_ood points, set the
 * split of each row and set every label and source index to -1. */
sgk_status sgk_dataset_alloc(sgk_dataset *data, long n_train, long n_test, long n_ood,
                             int n_features, int n_outputs);

/* Number of out-of-distribution points the configuration requests: 0 when
 * [data] ood = none, whatever the value of [data] n_ood. */
long sgk_dataset_ood_count(const sgk_config *config);

/* Build the evaluation set of source fashion-mnist or idx: every row except those
 * of ood = noise, and ood = shift rows before their shift. */
sgk_status sgk_dataset_build_idx(const sgk_config *config, sgk_dataset *data);

/* Build the evaluation set of source teacher, with the same exceptions. */
sgk_status sgk_dataset_build_teacher(const sgk_config *config, sgk_dataset *data);

/* Build the evaluation set of source moons or gaussian-mixture, with the same
 * exceptions. */
sgk_status sgk_dataset_build_synthetic(const sgk_config *config, sgk_dataset *data);

/* Where a file source (netcdf, csv) takes the ood rows of the evaluation set from. */
typedef enum {
    SGK_FILE_OOD_NONE,  /* none in the file: no ood rows, or ood = noise rows filled later */
    SGK_FILE_OOD_TEST,  /* the test points after the first n_test (ood = shift, shifted later) */
    SGK_FILE_OOD_SPLIT  /* the first points of split 2 (netcdf files with a split variable) */
} sgk_file_ood;

/* Points a file source takes, in file order. */
typedef struct {
    long n_train;
    long n_test;
    long n_ood;              /* ood rows of the evaluation set, whatever their origin */
    sgk_file_ood ood_origin;
} sgk_file_request;

/* Write the counts of `request` as "data.n_train = 3, data.n_test = 2, ..." for
 * the messages about files with too few points. */
void sgk_file_request_describe(const sgk_file_request *request, char *text, size_t size);

/* Build the evaluation set from the NetCDF file `path`: variables x(sample, feature),
 * y(sample, output) and the optional split(sample). Rows from the file are checked
 * finite; rows of ood = noise stay 0. */
sgk_status sgk_dataset_read_netcdf(const char *path, const sgk_file_request *request,
                                   sgk_dataset *data);

/* Build the evaluation set from the CSV file `path`: one point per row, the features
 * and then one target. SGK_FILE_OOD_SPLIT is rejected, because CSV has no splits. */
sgk_status sgk_dataset_read_csv(const char *path, const sgk_file_request *request,
                                sgk_dataset *data);

#endif
