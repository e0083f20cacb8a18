/* Private interface between the dataset modules: dataset.c (collective loading,
 * out-of-distribution points derived from the training inputs), dataset_idx.c (IDX
 * folders) and dataset_teacher.c (synthetic teacher network). The builders run on
 * one process and fill a dataset that sgk_dataset_alloc sized. */
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

#endif
