/* Sources fashion-mnist and idx: a folder with the four files of the MNIST layout,
 * each plain or gzip-compressed. Training points come from the train files, test
 * points and ood = classes or shift points from the t10k files. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"
#include "sgk/rng.h"

enum {
    IDX_UBYTE = 0x08,
    N_LABEL_VALUES = 256,                /* labels are unsigned bytes */
    PATH_BYTES = SGK_PATH_LEN + 64,      /* folder, '/', file name and ".gz" */
    LIST_TEXT_BYTES = 1024,
};

static const char TRAIN_IMAGES[] = "train-images-idx3-ubyte";
static const char TRAIN_LABELS[] = "train-labels-idx1-ubyte";
static const char TEST_IMAGES[] = "t10k-images-idx3-ubyte";
static const char TEST_LABELS[] = "t10k-labels-idx1-ubyte";

/* One images file and its labels file. */
typedef struct {
    sgk_idx images;
    sgk_idx labels;
    char images_path[PATH_BYTES];
    char labels_path[PATH_BYTES];
    long count;      /* examples in both files */
    int n_features;  /* rows x columns of each image */
} labelled_images;

/* A class list and, for every label value, its position in the list or -1. */
typedef struct {
    int classes[SGK_MAX_CLASSES];
    int n_classes;
    int position[N_LABEL_VALUES];
    int one_hot;   /* one output per class even for two classes (softmax cross-entropy) */
} class_list;

/* Set `path` to folder/name.gz when that file exists, else to folder/name. The
 * compressed file wins because the data sets are distributed in that form. */
static sgk_status find_file(const char *folder, const char *name, char *path)
{
    struct stat info;

    int n = snprintf(path, PATH_BYTES, "%s/%s.gz", folder, name);
    if (n < 0 || n >= PATH_BYTES)
        return sgk_error(SGK_ERR_USAGE, "data.path = '%s' is too long; paths have at most "
                         "%d bytes", folder, SGK_PATH_LEN - 1);
    if (stat(path, &info) == 0)
        return SGK_OK;

    snprintf(path, PATH_BYTES, "%s/%s", folder, name);
    if (stat(path, &info) == 0)
        return SGK_OK;

    return sgk_error(SGK_ERR_DATA, "data file not found: neither '%s.gz' nor '%s' exists; set "
                     "data.path to the folder with %s, %s, %s and %s (each plain or .gz)",
                     path, path, TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS);
}

static sgk_status check_pair(labelled_images *pair)
{
    const sgk_idx *images = &pair->images;
    const sgk_idx *labels = &pair->labels;

    if (images->type_code != IDX_UBYTE || images->n_dims != 3)
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has type code 0x%02X and %d dimensions; "
                         "images must be unsigned bytes (0x08) with 3 dimensions (count x "
                         "rows x columns)", pair->images_path, images->type_code, images->n_dims);
    if (labels->type_code != IDX_UBYTE || labels->n_dims != 1)
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has type code 0x%02X and %d dimensions; "
                         "labels must be unsigned bytes (0x08) with 1 dimension",
                         pair->labels_path, labels->type_code, labels->n_dims);
    if (images->dims[0] != labels->dims[0])
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has %ld images but '%s' has %ld labels; "
                         "the counts must match", pair->images_path, images->dims[0],
                         pair->labels_path, labels->dims[0]);

    long features = images->dims[1] * images->dims[2];
    if (features < 1 || features > INT_MAX)
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has images of %ld x %ld pixels; the "
                         "pixel count must be between 1 and %d", pair->images_path,
                         images->dims[1], images->dims[2], INT_MAX);

    pair->count = images->dims[0];
    pair->n_features = (int)features;
    return SGK_OK;
}

static sgk_status read_pair(const char *folder, const char *images_name,
                            const char *labels_name, labelled_images *pair)
{
    SGK_CHECK(find_file(folder, images_name, pair->images_path));
    SGK_CHECK(find_file(folder, labels_name, pair->labels_path));
    SGK_CHECK(sgk_idx_read(pair->images_path, &pair->images));
    SGK_CHECK(sgk_idx_read(pair->labels_path, &pair->labels));
    return check_pair(pair);
}

static void free_pair(labelled_images *pair)
{
    sgk_idx_free(&pair->images);
    sgk_idx_free(&pair->labels);
}

/* Check that every listed class can occur in a label file. */
static sgk_status check_class_range(const int *classes, int n_classes, const char *key)
{
    for (int k = 0; k < n_classes; k++) {
        if (classes[k] < 0 || classes[k] >= N_LABEL_VALUES)
            return sgk_error(SGK_ERR_USAGE, "data.%s contains class %d; IDX labels are "
                             "unsigned bytes, 0 to 255", key, classes[k]);
    }
    return SGK_OK;
}

/* Take the configured class list, or every label of the training file in ascending
 * order when [data] classes is empty. */
static sgk_status resolve_classes(const sgk_config *config, const labelled_images *train,
                                  class_list *list)
{
    for (int v = 0; v < N_LABEL_VALUES; v++)
        list->position[v] = -1;
    list->n_classes = 0;
    list->one_hot = config->train.loss == SGK_LOSS_XENT;

    if (config->data.n_classes > 0) {
        SGK_CHECK(check_class_range(config->data.classes, config->data.n_classes, "classes"));
        for (int k = 0; k < config->data.n_classes; k++) {
            int c = config->data.classes[k];
            if (list->position[c] >= 0)
                return sgk_error(SGK_ERR_USAGE, "data.classes lists class %d twice; list "
                                 "each class once", c);
            list->position[c] = k;
            list->classes[k] = c;
        }
        list->n_classes = config->data.n_classes;
    } else {
        int present[N_LABEL_VALUES] = {0};
        for (long i = 0; i < train->count; i++)
            present[train->labels.data[i]] = 1;
        for (int v = 0; v < N_LABEL_VALUES; v++) {
            if (!present[v])
                continue;
            if (list->n_classes == SGK_MAX_CLASSES)
                return sgk_error(SGK_ERR_DATA, "IDX file '%s' has more than %d distinct "
                                 "labels; list the classes to use in data.classes",
                                 train->labels_path, SGK_MAX_CLASSES);
            list->position[v] = list->n_classes;
            list->classes[list->n_classes++] = v;
        }
    }

    if (list->n_classes < 2)
        return sgk_error(SGK_ERR_USAGE, "data.classes selects %d class%s from '%s'; a "
                         "classification set needs at least 2", list->n_classes,
                         list->n_classes == 1 ? "" : "es", train->labels_path);
    return SGK_OK;
}

/* Indices, in file order, of the examples whose label is a member and that
 * `excluded` (NULL, or one flag per example) does not flag. */
static long collect_candidates(const labelled_images *pair, const int *member,
                               const unsigned char *excluded, long *candidates)
{
    long n = 0;

    for (long i = 0; i < pair->count; i++) {
        if (member[pair->labels.data[i]] >= 0 && !(excluded && excluded[i]))
            candidates[n++] = i;
    }
    return n;
}

/* Text "class 0: 6000, class 1: 6000" with the example count of each listed class. */
static void format_class_counts(const labelled_images *pair, const int *classes,
                                int n_classes, char *text, size_t size)
{
    long counts[N_LABEL_VALUES] = {0};
    size_t used = 0;

    for (long i = 0; i < pair->count; i++)
        counts[pair->labels.data[i]]++;
    text[0] = '\0';
    for (int k = 0; k < n_classes && used < size; k++) {
        int n = snprintf(text + used, size - used, "%sclass %d: %ld", k ? ", " : "",
                         classes[k], counts[classes[k]]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int compare_long(const void *a, const void *b)
{
    long left = *(const long *)a;
    long right = *(const long *)b;
    return (left > right) - (left < right);
}

/* Choose `count` of the candidates uniformly without replacement and store them in
 * ascending file order. */
static sgk_status choose(const long *candidates, long n_candidates, long count,
                         uint64_t seed, uint64_t substream, long *chosen)
{
    long *scratch = malloc((size_t)(n_candidates > 0 ? n_candidates : 1) * sizeof *scratch);
    sgk_rng rng;

    if (!scratch)
        return sgk_error(SGK_ERR_IO, "out of memory for %ld candidate examples", n_candidates);
    sgk_rng_init(&rng, seed, 0, SGK_RNG_DATA);
    sgk_rng_seek(&rng, substream);
    sgk_rng_sample(&rng, n_candidates, count, scratch, chosen);
    free(scratch);

    /* The candidates are in file order, so sorted positions give sorted indices. */
    qsort(chosen, (size_t)count, sizeof *chosen, compare_long);
    for (long k = 0; k < count; k++)
        chosen[k] = candidates[chosen[k]];
    return SGK_OK;
}

/* Draw `count` examples of the member classes from `pair`, skipping `excluded` ones.
 * `key` names the configuration key in the error for too few examples. */
static sgk_status draw_examples(const sgk_config *config, const labelled_images *pair,
                                const int *member, const int *classes, int n_classes,
                                const unsigned char *excluded, long count, const char *key,
                                uint64_t substream, long *chosen)
{
    long *candidates = malloc((size_t)(pair->count > 0 ? pair->count : 1) * sizeof *candidates);
    if (!candidates)
        return sgk_error(SGK_ERR_IO, "out of memory for the %ld examples of '%s'", pair->count,
                         pair->labels_path);

    long available = collect_candidates(pair, member, excluded, candidates);
    if (count > available) {
        char counts[LIST_TEXT_BYTES];
        format_class_counts(pair, classes, n_classes, counts, sizeof counts);
        free(candidates);
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has %ld usable examples (%s%s), fewer than "
                         "data.%s = %ld; lower data.%s to at most %ld or add classes",
                         pair->labels_path, available, counts,
                         excluded ? "; examples drawn as test points are not reused" : "",
                         key, count, key, available);
    }

    sgk_status status = choose(candidates, available, count, config->data.seed, substream,
                               chosen);
    free(candidates);
    return status;
}

/* Two classes give one output, -1 for the first listed class and +1 for the second;
 * more classes give a one-hot vector in list order. */
static void write_target(double *y, const class_list *list, int label)
{
    int position = list->position[label];

    if (list->n_classes == 2 && !list->one_hot) {
        y[0] = position == 0 ? -1.0 : 1.0;
        return;
    }
    for (int k = 0; k < list->n_classes; k++)
        y[k] = k == position ? 1.0 : 0.0;
}

/* Copy the examples `indices` of `pair` into the rows from `first_row` on, with
 * x = pixel / 255. Targets are the class targets when `with_target`, else they stay 0. */
static void fill_rows(sgk_dataset *data, long first_row, const labelled_images *pair,
                      const long *indices, long count, const class_list *list,
                      int with_target)
{
    int d = data->n_features;

    for (long k = 0; k < count; k++) {
        long row = first_row + k;
        long index = indices[k];
        const unsigned char *pixels = pair->images.data + (size_t)index * (size_t)d;
        int label = pair->labels.data[index];

        for (int j = 0; j < d; j++)
            data->x[row * d + j] = pixels[j] / 255.0;
        if (with_target)
            write_target(data->y + row * data->n_outputs, list, label);
        data->label[row] = label;
        data->source_index[row] = index;
    }
}

/* Everything one build holds, freed together. */
typedef struct {
    labelled_images train;
    labelled_images test;
    class_list list;
    int ood_member[N_LABEL_VALUES]; /* 0 for the ood = classes labels, else -1 */
    long *train_indices;
    long *test_indices;
    long *ood_indices;
    unsigned char *is_test;         /* per test-file example: drawn as a test point */
} idx_build;

static void free_build(idx_build *build)
{
    free_pair(&build->train);
    free_pair(&build->test);
    free(build->train_indices);
    free(build->test_indices);
    free(build->ood_indices);
    free(build->is_test);
    free(build);
}

static sgk_status read_files(const sgk_config *config, int need_test, idx_build *build)
{
    const char *folder = config->data.path;

    if (folder[0] == '\0')
        return sgk_error(SGK_ERR_USAGE, "data.path is empty; set it to the folder with %s, "
                         "%s, %s and %s (each plain or .gz)", TRAIN_IMAGES, TRAIN_LABELS,
                         TEST_IMAGES, TEST_LABELS);
    SGK_CHECK(read_pair(folder, TRAIN_IMAGES, TRAIN_LABELS, &build->train));
    if (!need_test)
        return SGK_OK;

    SGK_CHECK(read_pair(folder, TEST_IMAGES, TEST_LABELS, &build->test));
    if (build->test.n_features != build->train.n_features)
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' has images of %ld x %ld pixels but '%s' "
                         "has %ld x %ld; training and test images must have the same size",
                         build->train.images_path, build->train.images.dims[1],
                         build->train.images.dims[2], build->test.images_path,
                         build->test.images.dims[1], build->test.images.dims[2]);
    return SGK_OK;
}

static sgk_status alloc_indices(long count, long **indices)
{
    *indices = malloc((size_t)(count > 0 ? count : 1) * sizeof **indices);
    if (!*indices)
        return sgk_error(SGK_ERR_IO, "out of memory for %ld example indices", count);
    return SGK_OK;
}

/* Choose the ood = classes or ood = shift examples from the test file. Neither
 * reuses an example already drawn as a test point. */
static sgk_status draw_ood(const sgk_config *config, long n_ood, idx_build *build)
{
    const labelled_images *test = &build->test;

    build->is_test = calloc((size_t)(test->count > 0 ? test->count : 1), 1);
    if (!build->is_test)
        return sgk_error(SGK_ERR_IO, "out of memory for %ld flags", test->count);
    for (long k = 0; k < config->data.n_test; k++)
        build->is_test[build->test_indices[k]] = 1;
    SGK_CHECK(alloc_indices(n_ood, &build->ood_indices));

    if (config->data.ood == SGK_OOD_SHIFT)
        return draw_examples(config, test, build->list.position, build->list.classes,
                             build->list.n_classes, build->is_test, n_ood, "n_ood",
                             SGK_DATA_SUBSTREAM_OOD, build->ood_indices);

    const int *classes = config->data.ood_classes;
    int n_classes = config->data.n_ood_classes;
    if (n_classes < 1)
        return sgk_error(SGK_ERR_USAGE, "data.ood = classes: lists no class; give at least "
                         "one, e.g. ood = classes:7,9");
    SGK_CHECK(check_class_range(classes, n_classes, "ood"));
    for (int v = 0; v < N_LABEL_VALUES; v++)
        build->ood_member[v] = -1;
    for (int k = 0; k < n_classes; k++)
        build->ood_member[classes[k]] = 0;
    return draw_examples(config, test, build->ood_member, classes, n_classes, build->is_test,
                         n_ood, "n_ood", SGK_DATA_SUBSTREAM_OOD, build->ood_indices);
}

/* Steps of sgk_dataset_build_idx; `build` is freed by the caller. */
static sgk_status build_idx(const sgk_config *config, idx_build *build, sgk_dataset *data)
{
    long n_train = config->data.n_train;
    long n_test = config->data.n_test;
    long n_ood = sgk_dataset_ood_count(config);
    int ood_from_test = n_ood > 0 && (config->data.ood == SGK_OOD_CLASSES ||
                                      config->data.ood == SGK_OOD_SHIFT);

    /* 1. Read the files; the t10k pair only when test or ood points come from it. */
    SGK_CHECK(read_files(config, n_test > 0 || ood_from_test, build));
    SGK_CHECK(resolve_classes(config, &build->train, &build->list));

    /* 2. Choose training, test and ood examples, each from its own substream. */
    SGK_CHECK(alloc_indices(n_train, &build->train_indices));
    SGK_CHECK(draw_examples(config, &build->train, build->list.position, build->list.classes,
                            build->list.n_classes, NULL, n_train, "n_train",
                            SGK_DATA_SUBSTREAM_TRAIN, build->train_indices));
    SGK_CHECK(alloc_indices(n_test, &build->test_indices));
    if (n_test > 0)
        SGK_CHECK(draw_examples(config, &build->test, build->list.position,
                                build->list.classes, build->list.n_classes, NULL, n_test,
                                "n_test", SGK_DATA_SUBSTREAM_TEST, build->test_indices));
    if (ood_from_test)
        SGK_CHECK(draw_ood(config, n_ood, build));

    /* 3. Copy pixels, targets and labels. ood = noise rows stay for the caller. */
    int n_outputs = build->list.n_classes == 2 && !build->list.one_hot ? 1 : build->list.n_classes;
    SGK_CHECK(sgk_dataset_alloc(data, n_train, n_test, n_ood, build->train.n_features,
                                n_outputs));
    fill_rows(data, 0, &build->train, build->train_indices, n_train, &build->list, 1);
    fill_rows(data, n_train, &build->test, build->test_indices, n_test, &build->list, 1);
    if (ood_from_test)
        fill_rows(data, n_train + n_test, &build->test, build->ood_indices, n_ood, &build->list,
                  config->data.ood == SGK_OOD_SHIFT);
    return SGK_OK;
}

sgk_status sgk_dataset_build_idx(const sgk_config *config, sgk_dataset *data)
{
    idx_build *build = calloc(1, sizeof *build);

    memset(data, 0, sizeof *data);
    if (!build)
        return sgk_error(SGK_ERR_IO, "out of memory for %zu bytes of IDX bookkeeping",
                         sizeof *build);

    sgk_status status = build_idx(config, build, data);
    free_build(build);
    if (status != SGK_OK)
        sgk_dataset_free(data);
    return status;
}
