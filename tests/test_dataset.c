/* Tests of sgk_dataset_load on small IDX folders that the test writes, on the
 * teacher source and, when installed, on Fashion-MNIST.
 *
 * Runs on any number of ranks (mpirun -n 1 to 4): rank 0 writes the files, every
 * rank loads and checks, and each load also checks that all ranks got the same
 * status, message and arrays. The exit status is nonzero on every rank when any
 * rank had a failed assertion. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <mpi.h>
#include <zlib.h>

#include "sgk/dataset.h"

/* Statistical checks accept deviations up to 6 standard errors. The draws are
 * deterministic, so they pass or fail the same way on every run. */
#define N_SIGMA 6.0

enum {
    ROWS = 8,
    COLS = 8,
    FEATURES = ROWS * COLS,
    N_TRAIN_FILE = 30,  /* label of example i is i % 3 */
    N_TEST_FILE = 18,
    FASHION_FEATURES = 784,
};

static const char FASHION_MNIST[] = "/usr/share/datasets/fashion-mnist";

static int rank;
static char folder[256] = "/tmp/sgk-test-dataset-XXXXXX"; /* complete IDX set */
static char subfolders[3][320];                          /* see make_folders */
enum { EMPTY_FOLDER, TRAIN_ONLY_FOLDER, BAD_LABELS_FOLDER };

static int train_pixel(long i, int j)
{
    return (int)((7 * i + 3 * j) % 256);
}

static int test_pixel(long i, int j)
{
    return (int)((200 + 5 * i + j) % 256);
}

/* ---- writing the files (rank 0) ---- */

static void big_endian(unsigned char *out, unsigned value)
{
    out[0] = (unsigned char)(value >> 24);
    out[1] = (unsigned char)(value >> 16);
    out[2] = (unsigned char)(value >> 8);
    out[3] = (unsigned char)value;
}

/* Write an unsigned-byte IDX file, gzip-compressed when the name ends in ".gz". */
static int write_idx(const char *dir, const char *name, int n_dims, const unsigned *dims,
                     const unsigned char *payload, size_t n_bytes)
{
    unsigned char header[4 + 4 * 4] = {0, 0, 0x08, (unsigned char)n_dims};
    char path[512];

    for (int i = 0; i < n_dims; i++)
        big_endian(header + 4 + 4 * i, dims[i]);
    snprintf(path, sizeof path, "%s/%s", dir, name);

    gzFile file = gzopen(path, strstr(name, ".gz") ? "wb" : "wbT");
    if (!file)
        return -1;
    int ok = gzwrite(file, header, 4 + 4 * (unsigned)n_dims) == 4 + 4 * n_dims &&
             gzwrite(file, payload, (unsigned)n_bytes) == (int)n_bytes;
    return gzclose(file) == Z_OK && ok ? 0 : -1;
}

static int write_images(const char *dir, const char *name, long count,
                        int (*pixel)(long, int))
{
    unsigned dims[3] = {(unsigned)count, ROWS, COLS};
    unsigned char *payload = malloc((size_t)count * FEATURES);
    if (!payload)
        return -1;
    for (long i = 0; i < count; i++)
        for (int j = 0; j < FEATURES; j++)
            payload[i * FEATURES + j] = (unsigned char)pixel(i, j);
    int result = write_idx(dir, name, 3, dims, payload, (size_t)count * FEATURES);
    free(payload);
    return result;
}

/* Labels i % 3, or all `constant` when constant >= 0. */
static int write_labels(const char *dir, const char *name, long count, int constant)
{
    unsigned dims[1] = {(unsigned)count};
    unsigned char payload[64];
    for (long i = 0; i < count; i++)
        payload[i] = (unsigned char)(constant >= 0 ? constant : i % 3);
    return write_idx(dir, name, 1, dims, payload, (size_t)count);
}

/* The complete folder has gzip train files and plain t10k files. It also has a
 * plain train-labels file of all zeros, which the loader must ignore because the
 * .gz version exists. */
static int make_folders(void)
{
    int failed = 0;

    failed |= write_images(folder, "train-images-idx3-ubyte.gz", N_TRAIN_FILE, train_pixel);
    failed |= write_labels(folder, "train-labels-idx1-ubyte.gz", N_TRAIN_FILE, -1);
    failed |= write_labels(folder, "train-labels-idx1-ubyte", N_TRAIN_FILE, 0);
    failed |= write_images(folder, "t10k-images-idx3-ubyte", N_TEST_FILE, test_pixel);
    failed |= write_labels(folder, "t10k-labels-idx1-ubyte", N_TEST_FILE, -1);

    const char *names[3] = {"empty", "train-only", "bad-labels"};
    for (int k = 0; k < 3; k++) {
        snprintf(subfolders[k], sizeof subfolders[k], "%s/%s", folder, names[k]);
        failed |= mkdir(subfolders[k], 0700);
    }

    const char *train_only = subfolders[TRAIN_ONLY_FOLDER];
    failed |= write_images(train_only, "train-images-idx3-ubyte", N_TRAIN_FILE, train_pixel);
    failed |= write_labels(train_only, "train-labels-idx1-ubyte", N_TRAIN_FILE, -1);

    /* Labels stored as a 2-D array, which the loader must reject. */
    const char *bad = subfolders[BAD_LABELS_FOLDER];
    unsigned dims[2] = {N_TRAIN_FILE, 1};
    unsigned char labels[N_TRAIN_FILE] = {0};
    failed |= write_images(bad, "train-images-idx3-ubyte", N_TRAIN_FILE, train_pixel);
    failed |= write_idx(bad, "train-labels-idx1-ubyte", 2, dims, labels, N_TRAIN_FILE);
    return failed ? -1 : 0;
}

static void remove_folders(void)
{
    static const char *const files[] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-only/train-images-idx3-ubyte",
        "train-only/train-labels-idx1-ubyte", "bad-labels/train-images-idx3-ubyte",
        "bad-labels/train-labels-idx1-ubyte"};
    char path[512];

    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", folder, files[k]);
        unlink(path);
    }
    for (int k = 0; k < 3; k++)
        rmdir(subfolders[k]);
    rmdir(folder);
}

/* ---- loading and agreement across ranks ---- */

static void base_config(sgk_config *config, sgk_source source, const char *path)
{
    memset(config, 0, sizeof *config);
    config->data.source = source;
    snprintf(config->data.path, sizeof config->data.path, "%s", path);
    config->data.classes[0] = 0;
    config->data.classes[1] = 2;
    config->data.n_classes = 2;
    config->data.n_train = 6;
    config->data.n_test = 4;
    config->data.ood = SGK_OOD_NONE;
    config->data.seed = 1;
    config->data.teacher_inputs = 5;
    config->data.teacher_width = 7;
    config->data.teacher_noise = 0.1;
}

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t k = 0; k < n; k++)
        hash = (hash ^ p[k]) * 0x100000001b3ULL;
    return hash;
}

/* Hash of the status, the message on failure, and every array on success. */
static uint64_t load_fingerprint(sgk_status status, const sgk_dataset *data)
{
    uint64_t hash = fnv1a(0xcbf29ce484222325ULL, &status, sizeof status);
    if (status != SGK_OK)
        return fnv1a(hash, sgk_error_message(), strlen(sgk_error_message()));

    size_t n = (size_t)data->n_samples;
    long sizes[6] = {data->n_samples, data->n_train, data->n_test, data->n_ood,
                     data->n_features, data->n_outputs};
    hash = fnv1a(hash, sizes, sizeof sizes);
    hash = fnv1a(hash, data->x, n * (size_t)data->n_features * sizeof(double));
    hash = fnv1a(hash, data->y, n * (size_t)data->n_outputs * sizeof(double));
    hash = fnv1a(hash, data->split, n * sizeof(int));
    hash = fnv1a(hash, data->label, n * sizeof(int));
    return fnv1a(hash, data->source_index, n * sizeof(long));
}

/* Collective. Load, and check that every rank got what rank 0 got. */
static sgk_status load(const sgk_config *config, sgk_dataset *data)
{
    sgk_error_clear();
    sgk_status status = sgk_dataset_load(config, MPI_COMM_WORLD, data);

    uint64_t mine = load_fingerprint(status, data);
    uint64_t root = mine;
    MPI_Bcast(&root, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    int differs = root != mine;
    int any_differs = 0;
    MPI_Allreduce(&differs, &any_differs, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(any_differs, 0);
    return status;
}

static int contains(const char *text, const char *fragment)
{
    int found = strstr(text, fragment) != NULL;
    if (!found && rank == 0)
        fprintf(stderr, "\n    message lacks '%s': %s\n", fragment, text);
    return found;
}

/* ---- checks shared by several tests ---- */

static int count_x_mismatches(const sgk_dataset *data, long row, int (*pixel)(long, int),
                              double offset)
{
    int mismatches = 0;
    for (int j = 0; j < FEATURES; j++) {
        double expected = pixel(data->source_index[row], j) / 255.0 + offset;
        /* The shift is added to pixel / 255 once, so only its own rounding differs. */
        if (fabs(data->x[row * FEATURES + j] - expected) > 1e-12)
            mismatches++;
    }
    return mismatches;
}

/* Rows [first, first + count) must come from file indices in strictly ascending
 * order, each within [0, file_count), carrying the file's label i % 3. */
static void check_rows_from_file(const sgk_dataset *data, long first, long count,
                                 long file_count, int split)
{
    for (long row = first; row < first + count; row++) {
        long index = data->source_index[row];
        CU_ASSERT_EQUAL(data->split[row], split);
        CU_ASSERT(index >= 0 && index < file_count);
        CU_ASSERT_EQUAL(data->label[row], index % 3);
        if (row > first)
            CU_ASSERT(index > data->source_index[row - 1]);
    }
}

/* Count the ood rows whose source index is also a test row's index. */
static int count_reused_test_points(const sgk_dataset *data)
{
    int reused = 0;
    for (long o = data->n_train + data->n_test; o < data->n_samples; o++)
        for (long t = data->n_train; t < data->n_train + data->n_test; t++)
            if (data->source_index[o] == data->source_index[t])
                reused++;
    return reused;
}

static double pooled_training_std(const sgk_dataset *data)
{
    long count = data->n_train * data->n_features;
    double sum = 0.0;
    double squares = 0.0;

    for (long k = 0; k < count; k++)
        sum += data->x[k];
    double mean = sum / count;
    for (long k = 0; k < count; k++)
        squares += (data->x[k] - mean) * (data->x[k] - mean);
    return sqrt(squares / count);
}

/* ---- tests ---- */

static void test_two_classes_targets(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, 10);
    CU_ASSERT_EQUAL(data.n_train, 6);
    CU_ASSERT_EQUAL(data.n_test, 4);
    CU_ASSERT_EQUAL(data.n_ood, 0);
    CU_ASSERT_EQUAL(data.n_features, FEATURES);
    CU_ASSERT_EQUAL(data.n_outputs, 1);
    check_rows_from_file(&data, 0, 6, N_TRAIN_FILE, SGK_SPLIT_TRAIN);
    check_rows_from_file(&data, 6, 4, N_TEST_FILE, SGK_SPLIT_TEST);

    for (long row = 0; row < data.n_samples; row++) {
        int label = data.label[row];
        CU_ASSERT(label == 0 || label == 2);
        CU_ASSERT_EQUAL(data.y[row], label == 0 ? -1.0 : 1.0);
        CU_ASSERT_EQUAL(count_x_mismatches(&data, row, row < 6 ? train_pixel : test_pixel, 0.0),
                        0);
    }
    sgk_dataset_free(&data);
}

static void test_one_hot_targets(void)
{
    const int classes[3] = {2, 0, 1};
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_FASHION_MNIST, folder);
    memcpy(config.data.classes, classes, sizeof classes);
    config.data.n_classes = 3;
    config.data.n_train = 12;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_outputs, 3);
    check_rows_from_file(&data, 0, 12, N_TRAIN_FILE, SGK_SPLIT_TRAIN);
    for (long row = 0; row < data.n_samples; row++)
        for (int k = 0; k < 3; k++)
            CU_ASSERT_EQUAL(data.y[row * 3 + k], classes[k] == data.label[row] ? 1.0 : 0.0);
    sgk_dataset_free(&data);
}

/* An empty class list takes every label of the train file, in ascending order. */
static void test_every_class(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_classes = 0;
    config.data.n_train = N_TRAIN_FILE;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_outputs, 3);
    for (long row = 0; row < data.n_train; row++) {
        CU_ASSERT_EQUAL(data.source_index[row], row);
        CU_ASSERT_EQUAL(data.y[row * 3 + data.label[row]], 1.0);
    }
    sgk_dataset_free(&data);
}

static void test_seed_determinism(void)
{
    sgk_config config;
    sgk_dataset first;
    sgk_dataset again;
    sgk_dataset other;

    base_config(&config, SGK_SOURCE_IDX, folder);
    CU_ASSERT_EQUAL(load(&config, &first), SGK_OK);
    CU_ASSERT_EQUAL(load(&config, &again), SGK_OK);
    config.data.seed = 2;
    CU_ASSERT_EQUAL(load(&config, &other), SGK_OK);

    if (first.x && again.x && other.x) {
        size_t n = (size_t)first.n_samples;
        CU_ASSERT_EQUAL(memcmp(first.x, again.x, n * FEATURES * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(first.source_index, again.source_index, n * sizeof(long)), 0);
        /* 6 of 20 training candidates: another seed repeats the choice with
         * probability 1 / C(20, 6), about 2.6e-5. */
        CU_ASSERT_NOT_EQUAL(memcmp(first.source_index, other.source_index, 6 * sizeof(long)), 0);
    }
    sgk_dataset_free(&first);
    sgk_dataset_free(&again);
    sgk_dataset_free(&other);
}

static void test_too_many_requested(void)
{
    sgk_config config;
    sgk_dataset data;

    /* Classes 0 and 2 have 20 of the 30 training examples. */
    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_train = 21;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "train-labels-idx1-ubyte.gz"));
    CU_ASSERT(contains(sgk_error_message(), "at most 20"));
    CU_ASSERT_PTR_NULL(data.x);

    /* ... and 12 of the 18 test examples. */
    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_test = 13;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "t10k-labels-idx1-ubyte"));
    CU_ASSERT(contains(sgk_error_message(), "at most 12"));
}

static void test_missing_files(void)
{
    char expected[512];
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, subfolders[EMPTY_FOLDER]);
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    snprintf(expected, sizeof expected, "%s/train-images-idx3-ubyte",
             subfolders[EMPTY_FOLDER]);
    CU_ASSERT(contains(sgk_error_message(), expected));

    /* The t10k files are needed only for test or ood points. */
    base_config(&config, SGK_SOURCE_IDX, subfolders[TRAIN_ONLY_FOLDER]);
    config.data.n_test = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    sgk_dataset_free(&data);

    config.data.n_test = 1;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    snprintf(expected, sizeof expected, "%s/t10k-images-idx3-ubyte",
             subfolders[TRAIN_ONLY_FOLDER]);
    CU_ASSERT(contains(sgk_error_message(), expected));
}

static void test_invalid_label_file(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, subfolders[BAD_LABELS_FOLDER]);
    config.data.n_test = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "bad-labels/train-labels-idx1-ubyte"));
    CU_ASSERT(contains(sgk_error_message(), "1 dimension"));
}

static void test_invalid_class_lists(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.classes[1] = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "twice"));

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.classes[1] = 300;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "300"));

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_classes = 1;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "at least 2"));
}

static void test_ood_classes(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.classes[1] = 1;
    config.data.ood = SGK_OOD_CLASSES;
    config.data.ood_classes[0] = 2;
    config.data.n_ood_classes = 1;
    config.data.n_ood = 5;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, 15);
    CU_ASSERT_EQUAL(data.n_ood, 5);
    CU_ASSERT_EQUAL(data.n_outputs, 1);
    check_rows_from_file(&data, 10, 5, N_TEST_FILE, SGK_SPLIT_OOD);
    for (long row = 10; row < 15; row++) {
        CU_ASSERT_EQUAL(data.label[row], 2);
        CU_ASSERT_EQUAL(data.y[row], 0.0);
        CU_ASSERT_EQUAL(count_x_mismatches(&data, row, test_pixel, 0.0), 0);
    }
    sgk_dataset_free(&data);

    /* An ood class that is also a test class draws no test point twice: class 1
     * has 6 test examples, so with 4 test points of classes 0, 1 at least 2 remain. */
    config.data.ood_classes[0] = 1;
    config.data.n_ood = 2;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (data.x)
        CU_ASSERT_EQUAL(count_reused_test_points(&data), 0);
    sgk_dataset_free(&data);

    config.data.n_ood = 7;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "n_ood = 7"));
}

static void test_ood_noise(void)
{
    enum { N_OOD = 4000 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_train = 20;
    config.data.ood = SGK_OOD_NOISE;
    config.data.n_ood = N_OOD;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, 24 + N_OOD);
    long first = data.n_train + data.n_test;
    int bad_rows = 0;
    for (long row = first; row < data.n_samples; row++) {
        if (data.split[row] != SGK_SPLIT_OOD || data.label[row] != -1 ||
            data.source_index[row] != -1 || data.y[row] != 0.0)
            bad_rows++;
    }
    CU_ASSERT_EQUAL(bad_rows, 0);

    /* Per feature, the ood sample mean must be within 6 standard errors of the
     * training mean, sigma / sqrt(n), and the ood sample variance within 6 of
     * the training variance, sigma^2 sqrt(2 / (n - 1)) for Gaussian draws. */
    for (int j = 0; j < FEATURES; j += 9) {
        double train_mean = 0.0, train_var = 0.0, ood_mean = 0.0, ood_var = 0.0;
        for (long i = 0; i < data.n_train; i++)
            train_mean += data.x[i * FEATURES + j] / data.n_train;
        for (long i = 0; i < data.n_train; i++)
            train_var += pow(data.x[i * FEATURES + j] - train_mean, 2) / data.n_train;
        for (long i = first; i < data.n_samples; i++)
            ood_mean += data.x[i * FEATURES + j] / N_OOD;
        for (long i = first; i < data.n_samples; i++)
            ood_var += pow(data.x[i * FEATURES + j] - ood_mean, 2) / (N_OOD - 1);

        CU_ASSERT(fabs(ood_mean - train_mean) < N_SIGMA * sqrt(train_var / N_OOD));
        CU_ASSERT(fabs(ood_var - train_var) < N_SIGMA * train_var * sqrt(2.0 / (N_OOD - 1)));
    }
    sgk_dataset_free(&data);
}

static void test_ood_shift(void)
{
    const double scale = 2.5;
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = scale;
    config.data.n_ood = 6;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, 16);
    check_rows_from_file(&data, 10, 6, N_TEST_FILE, SGK_SPLIT_OOD);
    CU_ASSERT_EQUAL(count_reused_test_points(&data), 0);

    double offset = scale * pooled_training_std(&data);
    CU_ASSERT(offset > 0.0);
    for (long row = 10; row < 16; row++) {
        int label = data.label[row];
        CU_ASSERT(label == 0 || label == 2);
        CU_ASSERT_EQUAL(data.y[row], label == 0 ? -1.0 : 1.0);
        CU_ASSERT_EQUAL(count_x_mismatches(&data, row, test_pixel, offset), 0);
    }
    sgk_dataset_free(&data);

    /* Classes 0 and 2 have 12 test examples; 4 are test points. */
    config.data.n_ood = 9;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "at most 8"));
}

static void test_ood_none_ignores_count(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_IDX, folder);
    config.data.n_ood = 5;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    CU_ASSERT_EQUAL(data.n_ood, 0);
    CU_ASSERT_EQUAL(data.n_samples, 10);
    sgk_dataset_free(&data);
}

static void test_teacher_shapes(void)
{
    enum { N_TRAIN = 400 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_TEACHER, "");
    config.data.n_train = N_TRAIN;
    config.data.n_test = 20;
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = 1.0;
    config.data.n_ood = 10;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, N_TRAIN + 30);
    CU_ASSERT_EQUAL(data.n_features, 5);
    CU_ASSERT_EQUAL(data.n_outputs, 1);
    int bad_rows = 0;
    for (long row = 0; row < data.n_samples; row++) {
        if (data.label[row] != -1 || data.source_index[row] != -1 || !isfinite(data.y[row]))
            bad_rows++;
    }
    CU_ASSERT_EQUAL(bad_rows, 0);
    CU_ASSERT_EQUAL(data.split[N_TRAIN - 1], SGK_SPLIT_TRAIN);
    CU_ASSERT_EQUAL(data.split[N_TRAIN], SGK_SPLIT_TEST);
    CU_ASSERT_EQUAL(data.split[N_TRAIN + 20], SGK_SPLIT_OOD);

    /* |x|^2 of N(0, I_d) / sqrt(d) has mean 1 and variance 2 / d. */
    double norm_sum = 0.0;
    for (long i = 0; i < N_TRAIN; i++)
        for (int j = 0; j < 5; j++)
            norm_sum += data.x[i * 5 + j] * data.x[i * 5 + j];
    CU_ASSERT(fabs(norm_sum / N_TRAIN - 1.0) < N_SIGMA * sqrt(2.0 / 5 / N_TRAIN));
    sgk_dataset_free(&data);
}

/* Same seed gives the same set, another seed another; the noise level changes
 * y by teacher_noise * N(0, 1) and leaves x unchanged. */
static void test_teacher_determinism(void)
{
    enum { N_TRAIN = 2000 };
    sgk_config config;
    sgk_dataset first;
    sgk_dataset again;
    sgk_dataset other_seed;
    sgk_dataset noiseless;

    base_config(&config, SGK_SOURCE_TEACHER, "");
    config.data.n_train = N_TRAIN;
    CU_ASSERT_EQUAL(load(&config, &first), SGK_OK);
    CU_ASSERT_EQUAL(load(&config, &again), SGK_OK);
    config.data.teacher_noise = 0.0;
    CU_ASSERT_EQUAL(load(&config, &noiseless), SGK_OK);
    config.data.teacher_noise = 0.1;
    config.data.seed = 7;
    CU_ASSERT_EQUAL(load(&config, &other_seed), SGK_OK);

    if (first.x && again.x && other_seed.x && noiseless.x) {
        size_t n = (size_t)first.n_samples;
        CU_ASSERT_EQUAL(memcmp(first.x, again.x, n * 5 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(first.y, again.y, n * sizeof(double)), 0);
        CU_ASSERT_NOT_EQUAL(memcmp(first.x, other_seed.x, n * 5 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(first.x, noiseless.x, n * 5 * sizeof(double)), 0);

        /* y - y_noiseless = 0.1 z: mean within 6 standard errors of 0 and
         * variance within 6 of 0.01. */
        double sum = 0.0, squares = 0.0;
        for (long i = 0; i < N_TRAIN; i++) {
            double difference = first.y[i] - noiseless.y[i];
            sum += difference;
            squares += difference * difference;
        }
        CU_ASSERT(fabs(sum / N_TRAIN) < N_SIGMA * 0.1 / sqrt((double)N_TRAIN));
        CU_ASSERT(fabs(squares / N_TRAIN - 0.01) < N_SIGMA * 0.01 * sqrt(2.0 / N_TRAIN));
    }
    sgk_dataset_free(&first);
    sgk_dataset_free(&again);
    sgk_dataset_free(&other_seed);
    sgk_dataset_free(&noiseless);
}

static void test_teacher_rejects_ood_classes(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_TEACHER, "");
    config.data.ood = SGK_OOD_CLASSES;
    config.data.ood_classes[0] = 1;
    config.data.n_ood_classes = 1;
    config.data.n_ood = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "teacher"));

    base_config(&config, SGK_SOURCE_TEACHER, "");
    config.data.teacher_width = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "teacher_width"));
}

/* The file sources report a missing file as bad input data, naming the path. */
static void test_missing_source_files(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_NETCDF, "/nonexistent/points.nc");
    CU_ASSERT_NOT_EQUAL(load(&config, &data), SGK_OK);
    CU_ASSERT(contains(sgk_error_message(), "/nonexistent/points.nc"));

    base_config(&config, SGK_SOURCE_CSV, "/nonexistent/points.csv");
    CU_ASSERT_NOT_EQUAL(load(&config, &data), SGK_OK);
    CU_ASSERT(contains(sgk_error_message(), "/nonexistent/points.csv"));
}

static void test_fashion_mnist(void)
{
    char path[512];
    struct stat info;
    int present = 0;
    sgk_config config;
    sgk_dataset data;

    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", FASHION_MNIST);
    if (rank == 0)
        present = stat(path, &info) == 0;
    MPI_Bcast(&present, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!present) {
        if (rank == 0)
            printf("\n    note: %s not found, Fashion-MNIST case skipped\n", path);
        return;
    }

    base_config(&config, SGK_SOURCE_FASHION_MNIST, FASHION_MNIST);
    config.data.classes[1] = 1;
    config.data.n_train = 100;
    config.data.n_test = 50;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x)
        return;

    CU_ASSERT_EQUAL(data.n_samples, 150);
    CU_ASSERT_EQUAL(data.n_features, FASHION_FEATURES);
    CU_ASSERT_EQUAL(data.n_outputs, 1);
    int out_of_range = 0;
    double x_max = 0.0;
    for (long k = 0; k < data.n_samples * FASHION_FEATURES; k++) {
        if (!(data.x[k] >= 0.0 && data.x[k] <= 1.0))
            out_of_range++;
        if (data.x[k] > x_max)
            x_max = data.x[k];
    }
    CU_ASSERT_EQUAL(out_of_range, 0);
    CU_ASSERT(x_max > 0.5); /* pixels really are scaled by 1/255, not by 1/255^2 */
    for (long row = 0; row < data.n_samples; row++) {
        CU_ASSERT(data.label[row] == 0 || data.label[row] == 1);
        CU_ASSERT_EQUAL(data.y[row], data.label[row] == 0 ? -1.0 : 1.0);
    }
    sgk_dataset_free(&data);
}

int main(int argc, char **argv)
{
    int failed_setup = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);

    if (rank == 0)
        failed_setup = !mkdtemp(folder) || make_folders() != 0;
    MPI_Bcast(&failed_setup, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(folder, sizeof folder, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(subfolders, sizeof subfolders, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (failed_setup) {
        if (rank == 0)
            fprintf(stderr, "test_dataset: cannot write the test files under /tmp\n");
        MPI_Finalize();
        return 1;
    }

    unsigned failures = 1;
    if (CU_initialize_registry() == CUE_SUCCESS) {
        CU_pSuite suite = CU_add_suite("dataset", NULL, NULL);
        if (suite &&
            CU_add_test(suite, "two classes targets", test_two_classes_targets) &&
            CU_add_test(suite, "one-hot targets", test_one_hot_targets) &&
            CU_add_test(suite, "every class", test_every_class) &&
            CU_add_test(suite, "seed determinism", test_seed_determinism) &&
            CU_add_test(suite, "too many requested", test_too_many_requested) &&
            CU_add_test(suite, "missing files", test_missing_files) &&
            CU_add_test(suite, "invalid label file", test_invalid_label_file) &&
            CU_add_test(suite, "invalid class lists", test_invalid_class_lists) &&
            CU_add_test(suite, "ood classes", test_ood_classes) &&
            CU_add_test(suite, "ood noise", test_ood_noise) &&
            CU_add_test(suite, "ood shift", test_ood_shift) &&
            CU_add_test(suite, "ood none ignores count", test_ood_none_ignores_count) &&
            CU_add_test(suite, "teacher shapes", test_teacher_shapes) &&
            CU_add_test(suite, "teacher determinism", test_teacher_determinism) &&
            CU_add_test(suite, "teacher rejects ood classes", test_teacher_rejects_ood_classes) &&
            CU_add_test(suite, "missing source files", test_missing_source_files) &&
            CU_add_test(suite, "Fashion-MNIST", test_fashion_mnist)) {
            /* Only rank 0 prints; the basic runner prints a summary even when silent. */
            if (rank == 0) {
                CU_basic_set_mode(CU_BRM_VERBOSE);
                CU_basic_run_tests();
            } else {
                CU_run_all_tests();
            }
            failures = CU_get_number_of_failures();
        }
        CU_cleanup_registry();
    }

    unsigned total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_UNSIGNED, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        remove_folders();
        if (total > 0)
            fprintf(stderr, "test_dataset: %u failed assertions over all ranks\n", total);
    }
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
