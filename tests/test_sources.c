/* Tests of the netcdf and csv data sources on small files that the test writes.
 *
 * Runs on any number of ranks (mpirun -n 1 to 4): rank 0 writes the files, every rank
 * loads them through sgk_dataset_load, and each load checks that all ranks got the
 * same status, message and arrays. Expected values come from the formulas that wrote
 * the files, not from the loader. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <mpi.h>
#include <netcdf.h>

#include "dataset_internal.h"
#include "mpi_test.h"
#include "sgk/dataset.h"

enum {
    N_POINTS = 12, /* points of the valid NetCDF files */
    N_FEATURES = 3,
    N_OUTPUTS = 2,
    CSV_ROWS = 8, /* data rows of the valid CSV files */
    CSV_FEATURES = 2,
    PATH_BYTES = 512,
};

/* Split of each point in split.nc: train points 1, 3, 5, 6, 9; test points 0, 4, 8,
 * 10; ood points 2, 7, 11. */
static const int SPLIT_OF_POINT[N_POINTS] = { 1, 0, 2, 0, 1, 0, 0, 2, 1, 0, 1, 2 };

static int rank;
static char folder[256] = "/tmp/sgk-test-sources-XXXXXX";

/* Values of the valid files. Quarters are exact in float and the targets are
 * integers, so a float x and a short y must load to exactly these values. */
static double x_value(long point, int feature)
{
    return (double)point + 0.25 * feature;
}

static double y_value(long point, int output)
{
    return 2.0 * (double)point - output;
}

static void path_of(const char *name, char *path)
{
    snprintf(path, PATH_BYTES, "%s/%s", folder, name);
}

/* ---- writing the NetCDF files (rank 0) ---- */

/* One NetCDF test file. x has `n_x` samples and `x_rank` dimensions (a third one of
 * length 1 when 3), y has `n_y` samples or is absent when n_y = 0, and split is
 * written when `split` is not NULL. Point `nan_point` (or -1) gets x = NaN at
 * feature 1. */
typedef struct {
    const char *name;
    long n_x;
    int x_rank;
    nc_type x_type;
    long n_y;
    nc_type y_type;
    const int *split;
    nc_type split_type;
    long nan_point;
} nc_spec;

static int write_netcdf(const nc_spec *spec)
{
    char path[PATH_BYTES];
    int ncid, x_dims[3], y_dims[2], sample_y, x_id, y_id = -1, split_id = -1;
    int ok;

    path_of(spec->name, path);
    if (nc_create(path, NC_CLOBBER | NC_NETCDF4, &ncid) != NC_NOERR) return -1;
    ok = nc_def_dim(ncid, "point", (size_t)spec->n_x, &x_dims[0]) == NC_NOERR &&
         nc_def_dim(ncid, "pixel", N_FEATURES, &x_dims[1]) == NC_NOERR &&
         nc_def_dim(ncid, "extra", 1, &x_dims[2]) == NC_NOERR &&
         nc_def_dim(ncid, "point_y", (size_t)(spec->n_y > 0 ? spec->n_y : 1), &sample_y) ==
             NC_NOERR &&
         nc_def_dim(ncid, "target", N_OUTPUTS, &y_dims[1]) == NC_NOERR;
    y_dims[0] = spec->n_y == spec->n_x ? x_dims[0] : sample_y;
    ok = ok && nc_def_var(ncid, "x", spec->x_type, spec->x_rank, x_dims, &x_id) == NC_NOERR;
    if (ok && spec->n_y > 0) ok = nc_def_var(ncid, "y", spec->y_type, 2, y_dims, &y_id) == NC_NOERR;
    if (ok && spec->split)
        ok = nc_def_var(ncid, "split", spec->split_type, 1, x_dims, &split_id) == NC_NOERR;
    ok = ok && nc_enddef(ncid) == NC_NOERR;

    double *x = malloc((size_t)spec->n_x * N_FEATURES * sizeof *x);
    double *y = malloc((size_t)(spec->n_y > 0 ? spec->n_y : 1) * N_OUTPUTS * sizeof *y);
    ok = ok && x && y;
    for (long p = 0; ok && p < spec->n_x; p++)
        for (int j = 0; j < N_FEATURES; j++)
            x[p * N_FEATURES + j] = p == spec->nan_point && j == 1 ? NAN : x_value(p, j);
    for (long p = 0; ok && p < spec->n_y; p++)
        for (int o = 0; o < N_OUTPUTS; o++) y[p * N_OUTPUTS + o] = y_value(p, o);
    ok = ok && nc_put_var_double(ncid, x_id, x) == NC_NOERR;
    if (ok && spec->n_y > 0) ok = nc_put_var_double(ncid, y_id, y) == NC_NOERR;
    if (ok && spec->split) ok = nc_put_var_int(ncid, split_id, spec->split) == NC_NOERR;
    free(x);
    free(y);
    return nc_close(ncid) == NC_NOERR && ok ? 0 : -1;
}

static int write_netcdf_files(void)
{
    static const int bad_split[N_POINTS] = { 0, 0, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0 };
    const nc_spec specs[] = {
        { "split.nc", N_POINTS, 2, NC_DOUBLE, N_POINTS, NC_DOUBLE, SPLIT_OF_POINT, NC_BYTE, -1 },
        { "plain.nc", N_POINTS, 2, NC_FLOAT, N_POINTS, NC_SHORT, NULL, NC_INT, -1 },
        { "no-y.nc", N_POINTS, 2, NC_DOUBLE, 0, NC_DOUBLE, NULL, NC_INT, -1 },
        { "x-rank3.nc", N_POINTS, 3, NC_DOUBLE, N_POINTS, NC_DOUBLE, NULL, NC_INT, -1 },
        { "counts.nc", N_POINTS, 2, NC_DOUBLE, N_POINTS - 1, NC_DOUBLE, NULL, NC_INT, -1 },
        { "nan.nc", N_POINTS, 2, NC_DOUBLE, N_POINTS, NC_DOUBLE, NULL, NC_INT, 5 },
        { "bad-split.nc", N_POINTS, 2, NC_DOUBLE, N_POINTS, NC_DOUBLE, bad_split, NC_INT, -1 },
        { "float-split.nc", N_POINTS, 2, NC_DOUBLE, N_POINTS, NC_DOUBLE, SPLIT_OF_POINT, NC_FLOAT,
          -1 },
    };
    int failed = 0;

    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) failed |= write_netcdf(&specs[k]);
    return failed;
}

/* ---- writing the CSV files (rank 0) ---- */

static int write_text(const char *name, const char *text)
{
    char path[PATH_BYTES];

    path_of(name, path);
    FILE *file = fopen(path, "w");
    if (!file) return -1;
    int ok = fputs(text, file) >= 0;
    return fclose(file) == 0 && ok ? 0 : -1;
}

/* Write CSV_ROWS rows of x_value and y_value with a header, comments, blank lines,
 * spaces around fields and some Windows line ends. With `bom`, the file starts with a
 * UTF-8 byte order mark instead of the header. */
static int write_valid_csv(const char *name, int bom)
{
    char path[PATH_BYTES];

    path_of(name, path);
    FILE *file = fopen(path, "w");
    if (!file) return -1;
    if (bom)
        fputs("\xEF\xBB\xBF", file);
    else
        fputs("# made by test_sources\n\nfeature a, feature b ,target\n", file);
    for (long p = 0; p < CSV_ROWS; p++) {
        if (p == 3) fputs("   \n  # a comment between rows\n", file);
        fprintf(file, "%.17g, %.17g,%.17g%s", x_value(p, 0), x_value(p, 1), y_value(p, 0),
                p % 2 ? "\r\n" : "\n");
    }
    return fclose(file) == 0 ? 0 : -1;
}

static int write_csv_files(void)
{
    int failed = 0;

    failed |= write_valid_csv("valid.csv", 0);
    failed |= write_valid_csv("bom.csv", 1);
    failed |= write_text("ragged.csv", "a,b,y\n1,2,3\n4,5,6\n7,8\n9,10,11\n");
    failed |= write_text("text-field.csv", "1,2,3\n4,5,6\n7,abc,9\n");
    failed |= write_text("empty-field.csv", "1,2,3\n4,,6\n7,8,9\n");
    failed |= write_text("nan.csv", "1,2,3\n4,5,nan\n7,8,9\n");
    failed |= write_text("overflow.csv", "1,2,3\n4,1e999,6\n7,8,9\n");
    failed |= write_text("empty.csv", "");
    failed |= write_text("comments-only.csv", "# nothing here\n\n   \n");
    failed |= write_text("header-only.csv", "a,b,y\n");
    failed |= write_text("one-column.csv", "1\n2\n3\n");
    failed |= write_text("not-netcdf.nc", "this is text, not NetCDF\n");
    return failed;
}

static void remove_files(void)
{
    static const char *const names[] = {
        "split.nc",   "plain.nc",          "no-y.nc",         "x-rank3.nc",     "counts.nc",
        "nan.nc",     "bad-split.nc",      "float-split.nc",  "valid.csv",      "bom.csv",
        "ragged.csv", "text-field.csv",    "empty-field.csv", "nan.csv",        "overflow.csv",
        "empty.csv",  "comments-only.csv", "header-only.csv", "one-column.csv", "not-netcdf.nc"
    };
    char path[PATH_BYTES];

    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        path_of(names[k], path);
        unlink(path);
    }
    rmdir(folder);
}

/* ---- loading and agreement across ranks ---- */

static void base_config(sgk_config *config, sgk_source source, const char *name)
{
    memset(config, 0, sizeof *config);
    config->data.source = source;
    path_of(name, config->data.path);
    config->data.n_train = 3;
    config->data.n_test = 2;
    config->data.ood = SGK_OOD_NONE;
    config->data.seed = 1;
}

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t k = 0; k < n; k++) hash = (hash ^ p[k]) * 0x100000001b3ULL;
    return hash;
}

/* Hash of the status, of the message on failure and of every array on success. */
static uint64_t fingerprint(sgk_status status, const sgk_dataset *data)
{
    uint64_t hash = fnv1a(0xcbf29ce484222325ULL, &status, sizeof status);
    if (status != SGK_OK) return fnv1a(hash, sgk_error_message(), strlen(sgk_error_message()));

    size_t n = (size_t)data->n_samples;
    hash = fnv1a(hash, data->x, n * (size_t)data->n_features * sizeof(double));
    hash = fnv1a(hash, data->y, n * (size_t)data->n_outputs * sizeof(double));
    hash = fnv1a(hash, data->split, n * sizeof(int));
    return fnv1a(hash, data->source_index, n * sizeof(long));
}

/* Collective. Load, and check that every rank got what rank 0 got. */
static sgk_status load(const sgk_config *config, sgk_dataset *data)
{
    sgk_error_clear();
    sgk_status status = sgk_dataset_load(config, MPI_COMM_WORLD, data);

    uint64_t mine = fingerprint(status, data);
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
    if (!found && rank == 0) fprintf(stderr, "\n    message lacks '%s': %s\n", fragment, text);
    return found;
}

/* Load `config`, expect `status` and a message with the file name and each of the
 * NULL-terminated `fragments`. */
static void expect_failure(const sgk_config *config, sgk_status status, const char *file_name,
                           const char *const *fragments)
{
    sgk_dataset data;

    CU_ASSERT_EQUAL(load(config, &data), status);
    CU_ASSERT_PTR_NULL(data.x);
    CU_ASSERT(contains(sgk_error_message(), file_name));
    for (const char *const *fragment = fragments; *fragment; fragment++)
        CU_ASSERT(contains(sgk_error_message(), *fragment));
}

/* Count the entries of rows [first, first + count) that differ from the file point
 * in source_index, and the rows whose split is not `split`. */
static int count_row_mismatches(const sgk_dataset *data, long first, long count, int split)
{
    int mismatches = 0;

    for (long row = first; row < first + count; row++) {
        long point = data->source_index[row];
        mismatches += data->split[row] != split;
        mismatches += data->label[row] != -1;
        for (int j = 0; j < data->n_features; j++)
            mismatches += data->x[row * data->n_features + j] != x_value(point, j);
        for (int o = 0; o < data->n_outputs; o++)
            mismatches += data->y[row * data->n_outputs + o] != y_value(point, o);
    }
    return mismatches;
}

static void check_source_indices(const sgk_dataset *data, const long *expected, long count)
{
    for (long row = 0; row < count; row++) CU_ASSERT_EQUAL(data->source_index[row], expected[row]);
}

/* Population standard deviation of all training inputs, pooled over points and
 * features: the unit of ood = shift. */
static double pooled_training_std(const sgk_dataset *data)
{
    long count = data->n_train * data->n_features;
    double sum = 0.0;
    double squares = 0.0;

    for (long k = 0; k < count; k++) sum += data->x[k];
    double mean = sum / (double)count;
    for (long k = 0; k < count; k++) squares += (data->x[k] - mean) * (data->x[k] - mean);
    return sqrt(squares / (double)count);
}

/* ---- netcdf: valid files ---- */

static void test_netcdf_split_order(void)
{
    static const long points[] = { 1, 3, 5, 0, 4 }; /* first train points, then test */
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_NETCDF, "split.nc");
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    CU_ASSERT_EQUAL(data.n_samples, 5);
    CU_ASSERT_EQUAL(data.n_features, N_FEATURES);
    CU_ASSERT_EQUAL(data.n_outputs, N_OUTPUTS);
    check_source_indices(&data, points, 5);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 0, 3, SGK_SPLIT_TRAIN), 0);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 3, 2, SGK_SPLIT_TEST), 0);
    sgk_dataset_free(&data);
}

/* Without split: file order. x is float and y short in this file. */
static void test_netcdf_file_order(void)
{
    static const long points[] = { 0, 1, 2, 3, 4, 5, 6 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_NETCDF, "plain.nc");
    config.data.n_train = 4;
    config.data.n_test = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    check_source_indices(&data, points, 7);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 0, 4, SGK_SPLIT_TRAIN), 0);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 4, 3, SGK_SPLIT_TEST), 0);
    sgk_dataset_free(&data);
}

/* The split-2 points, through the reader because no [data] ood value selects them. */
static void test_netcdf_ood_from_split(void)
{
    static const long points[] = { 1, 3, 0, 2, 7 };
    sgk_file_request request = { 2, 1, 2, SGK_FILE_OOD_SPLIT };
    char path[PATH_BYTES];
    sgk_dataset data;

    path_of("split.nc", path);
    CU_ASSERT_EQUAL(sgk_dataset_read_netcdf(path, &request, &data), SGK_OK);
    if (data.x) {
        check_source_indices(&data, points, 5);
        CU_ASSERT_EQUAL(count_row_mismatches(&data, 3, 2, SGK_SPLIT_OOD), 0);
        sgk_dataset_free(&data);
    }

    request.n_ood = 4;
    CU_ASSERT_EQUAL(sgk_dataset_read_netcdf(path, &request, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "3 with split = 2"));
    CU_ASSERT_PTR_NULL(data.x);

    path_of("plain.nc", path);
    request.n_ood = 1;
    CU_ASSERT_EQUAL(sgk_dataset_read_netcdf(path, &request, &data), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "no variable 'split'"));
}

/* ood = shift takes the test points after the first n_test and shifts their inputs. */
static void test_netcdf_ood_shift(void)
{
    static const long points[] = { 1, 3, 5, 0, 4, 8 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_NETCDF, "split.nc");
    config.data.n_test = 1;
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = 2.0;
    config.data.n_ood = 2;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    check_source_indices(&data, points, 6);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 0, 3, SGK_SPLIT_TRAIN), 0);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 3, 1, SGK_SPLIT_TEST), 0);
    double offset = 2.0 * pooled_training_std(&data);
    for (long row = 4; row < 6; row++) {
        long point = data.source_index[row];
        CU_ASSERT_EQUAL(data.split[row], SGK_SPLIT_OOD);
        /* One addition of the offset: the only difference is its rounding. */
        for (int j = 0; j < N_FEATURES; j++)
            CU_ASSERT_DOUBLE_EQUAL(data.x[row * N_FEATURES + j], x_value(point, j) + offset, 1e-12);
        for (int o = 0; o < N_OUTPUTS; o++)
            CU_ASSERT_EQUAL(data.y[row * N_OUTPUTS + o], y_value(point, o));
    }
    sgk_dataset_free(&data);
}

/* ood = noise rows come from no file point and keep targets 0. */
static void test_netcdf_ood_noise(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_NETCDF, "plain.nc");
    config.data.ood = SGK_OOD_NOISE;
    config.data.n_ood = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    CU_ASSERT_EQUAL(data.n_samples, 8);
    CU_ASSERT_EQUAL(count_row_mismatches(&data, 0, 3, SGK_SPLIT_TRAIN), 0);
    for (long row = 5; row < 8; row++) {
        CU_ASSERT_EQUAL(data.source_index[row], -1);
        CU_ASSERT_EQUAL(data.split[row], SGK_SPLIT_OOD);
        CU_ASSERT_EQUAL(data.y[row * N_OUTPUTS], 0.0);
        /* Features 1 and 2 of the training points vary, so their noise is not 0. */
        CU_ASSERT(data.x[row * N_FEATURES + 1] != 0.0);
    }
    sgk_dataset_free(&data);
}

/* ---- netcdf: malformed files and requests ---- */

static void test_netcdf_missing_variable(void)
{
    static const char *const fragments[] = { "no variable 'y'", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "no-y.nc");
    expect_failure(&config, SGK_ERR_DATA, "no-y.nc", fragments);
}

static void test_netcdf_wrong_rank(void)
{
    static const char *const fragments[] = { "'x'", "3 dimensions", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "x-rank3.nc");
    expect_failure(&config, SGK_ERR_DATA, "x-rank3.nc", fragments);
}

static void test_netcdf_mismatched_counts(void)
{
    static const char *const fragments[] = { "12 samples in x but 11 in y", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "counts.nc");
    expect_failure(&config, SGK_ERR_DATA, "counts.nc", fragments);
}

static void test_netcdf_too_few_points(void)
{
    static const char *const by_split[] = { "5 points with split = 0", "4 with split = 1",
                                            "needs 6, 2 and 0", NULL };
    static const char *const in_order[] = { "has 12 points", "needs 13", NULL };
    static const char *const shift[] = { "needs 3, 5 and 0", "ood = shift", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "split.nc");
    config.data.n_train = 6;
    expect_failure(&config, SGK_ERR_DATA, "split.nc", by_split);

    base_config(&config, SGK_SOURCE_NETCDF, "plain.nc");
    config.data.n_train = 10;
    config.data.n_test = 3;
    expect_failure(&config, SGK_ERR_DATA, "plain.nc", in_order);

    /* The shifted points count against the test points: 2 + 3 > 4. */
    base_config(&config, SGK_SOURCE_NETCDF, "split.nc");
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = 1.0;
    config.data.n_ood = 3;
    expect_failure(&config, SGK_ERR_DATA, "split.nc", shift);
}

static void test_netcdf_non_finite(void)
{
    static const char *const fragments[] = { "'x'", "sample 5, feature 1", NULL };
    sgk_config config;
    sgk_dataset data;

    /* Points 0..4 are finite; the NaN of point 5 is not used, so it is not read. */
    base_config(&config, SGK_SOURCE_NETCDF, "nan.nc");
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    sgk_dataset_free(&data);

    config.data.n_test = 3; /* points 0..5 */
    expect_failure(&config, SGK_ERR_DATA, "nan.nc", fragments);
}

static void test_netcdf_invalid_split(void)
{
    static const char *const value[] = { "'split'", "value 3 at sample 4", NULL };
    static const char *const type[] = { "'split'", "float", "integer", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "bad-split.nc");
    expect_failure(&config, SGK_ERR_DATA, "bad-split.nc", value);
    base_config(&config, SGK_SOURCE_NETCDF, "float-split.nc");
    expect_failure(&config, SGK_ERR_DATA, "float-split.nc", type);
}

static void test_netcdf_unreadable(void)
{
    static const char *const not_netcdf[] = { "cannot open NetCDF file", NULL };
    static const char *const missing[] = { "cannot open NetCDF file", "No such file", NULL };
    static const char *const classes[] = { "classes:LIST", "netcdf", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_NETCDF, "not-netcdf.nc");
    expect_failure(&config, SGK_ERR_DATA, "not-netcdf.nc", not_netcdf);
    base_config(&config, SGK_SOURCE_NETCDF, "absent.nc");
    expect_failure(&config, SGK_ERR_DATA, "absent.nc", missing);

    base_config(&config, SGK_SOURCE_NETCDF, "split.nc");
    config.data.ood = SGK_OOD_CLASSES;
    config.data.n_ood = 1;
    expect_failure(&config, SGK_ERR_USAGE, "data.ood", classes);
}

/* ---- csv ---- */

static void check_csv_rows(const sgk_dataset *data, long first, long count, int split)
{
    for (long row = first; row < first + count; row++) {
        CU_ASSERT_EQUAL(data->source_index[row], row);
        CU_ASSERT_EQUAL(data->split[row], split);
        CU_ASSERT_EQUAL(data->label[row], -1);
        for (int j = 0; j < CSV_FEATURES; j++)
            CU_ASSERT_EQUAL(data->x[row * CSV_FEATURES + j], x_value(row, j));
        CU_ASSERT_EQUAL(data->y[row], y_value(row, 0));
    }
}

/* Header, comments, blank lines, spaces and CRLF line ends; %.17g round-trips. */
static void test_csv_round_trip(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_CSV, "valid.csv");
    config.data.n_train = 5;
    config.data.n_test = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    CU_ASSERT_EQUAL(data.n_samples, CSV_ROWS);
    CU_ASSERT_EQUAL(data.n_features, CSV_FEATURES);
    CU_ASSERT_EQUAL(data.n_outputs, 1);
    check_csv_rows(&data, 0, 5, SGK_SPLIT_TRAIN);
    check_csv_rows(&data, 5, 3, SGK_SPLIT_TEST);
    sgk_dataset_free(&data);
}

/* Without a header the first line is a point, also behind a byte order mark. */
static void test_csv_without_header(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_CSV, "bom.csv");
    config.data.n_train = 2;
    config.data.n_test = 1;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    check_csv_rows(&data, 0, 2, SGK_SPLIT_TRAIN);
    check_csv_rows(&data, 2, 1, SGK_SPLIT_TEST);
    sgk_dataset_free(&data);
}

static void test_csv_ood_shift(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_CSV, "valid.csv");
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = -1.5;
    config.data.n_ood = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    if (!data.x) return;

    double offset = -1.5 * pooled_training_std(&data);
    for (long row = 5; row < 8; row++) {
        CU_ASSERT_EQUAL(data.source_index[row], row);
        CU_ASSERT_EQUAL(data.split[row], SGK_SPLIT_OOD);
        CU_ASSERT_EQUAL(data.y[row], y_value(row, 0));
        /* One addition of the offset: the only difference is its rounding. */
        for (int j = 0; j < CSV_FEATURES; j++)
            CU_ASSERT_DOUBLE_EQUAL(data.x[row * CSV_FEATURES + j], x_value(row, j) + offset, 1e-12);
    }
    sgk_dataset_free(&data);
}

static void test_csv_ragged_line(void)
{
    static const char *const fragments[] = { "line 4 has 2 columns", "line 1 (the header) has 3",
                                             NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_CSV, "ragged.csv");
    expect_failure(&config, SGK_ERR_DATA, "ragged.csv", fragments);
}

static void test_csv_invalid_fields(void)
{
    static const char *const text[] = { "line 3, column 2", "'abc' is not a number", NULL };
    static const char *const empty[] = { "line 2, column 2 is empty", NULL };
    static const char *const nan[] = { "line 2, column 3", "'nan' is not finite", NULL };
    static const char *const overflow[] = { "line 2, column 2", "'1e999' is not finite", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_CSV, "text-field.csv");
    expect_failure(&config, SGK_ERR_DATA, "text-field.csv", text);
    base_config(&config, SGK_SOURCE_CSV, "empty-field.csv");
    expect_failure(&config, SGK_ERR_DATA, "empty-field.csv", empty);
    base_config(&config, SGK_SOURCE_CSV, "nan.csv");
    expect_failure(&config, SGK_ERR_DATA, "nan.csv", nan);
    base_config(&config, SGK_SOURCE_CSV, "overflow.csv");
    expect_failure(&config, SGK_ERR_DATA, "overflow.csv", overflow);
}

static void test_csv_empty_files(void)
{
    static const char *const no_rows[] = { "has no rows", NULL };
    static const char *const header_only[] = { "header (line 1) but no data rows", "needs 5",
                                               NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_CSV, "empty.csv");
    expect_failure(&config, SGK_ERR_DATA, "empty.csv", no_rows);
    base_config(&config, SGK_SOURCE_CSV, "comments-only.csv");
    expect_failure(&config, SGK_ERR_DATA, "comments-only.csv", no_rows);
    base_config(&config, SGK_SOURCE_CSV, "header-only.csv");
    expect_failure(&config, SGK_ERR_DATA, "header-only.csv", header_only);
}

static void test_csv_too_few_rows(void)
{
    static const char *const fragments[] = { "has 8 data rows", "needs 9", NULL };
    static const char *const shift[] = { "has 8 data rows", "needs 10", "ood = shift", NULL };
    sgk_config config;

    base_config(&config, SGK_SOURCE_CSV, "valid.csv");
    config.data.n_train = 6;
    config.data.n_test = 3;
    expect_failure(&config, SGK_ERR_DATA, "valid.csv", fragments);

    base_config(&config, SGK_SOURCE_CSV, "valid.csv");
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = 1.0;
    config.data.n_ood = 5;
    expect_failure(&config, SGK_ERR_DATA, "valid.csv", shift);
}

static void test_csv_unusable_files(void)
{
    static const char *const one_column[] = { "line 1 has 1 column", NULL };
    static const char *const missing[] = { "cannot open CSV file", "No such file", NULL };
    sgk_file_request request = { 1, 0, 1, SGK_FILE_OOD_SPLIT };
    char path[PATH_BYTES];
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_CSV, "one-column.csv");
    expect_failure(&config, SGK_ERR_DATA, "one-column.csv", one_column);
    base_config(&config, SGK_SOURCE_CSV, "absent.csv");
    expect_failure(&config, SGK_ERR_DATA, "absent.csv", missing);

    path_of("valid.csv", path);
    CU_ASSERT_EQUAL(sgk_dataset_read_csv(path, &request, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "no split column"));
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        { "netcdf split order", test_netcdf_split_order },
        { "netcdf file order", test_netcdf_file_order },
        { "netcdf ood from split", test_netcdf_ood_from_split },
        { "netcdf ood shift", test_netcdf_ood_shift },
        { "netcdf ood noise", test_netcdf_ood_noise },
        { "netcdf missing variable", test_netcdf_missing_variable },
        { "netcdf wrong rank", test_netcdf_wrong_rank },
        { "netcdf mismatched counts", test_netcdf_mismatched_counts },
        { "netcdf too few points", test_netcdf_too_few_points },
        { "netcdf non-finite value", test_netcdf_non_finite },
        { "netcdf invalid split", test_netcdf_invalid_split },
        { "netcdf unreadable file", test_netcdf_unreadable },
        { "csv round trip", test_csv_round_trip },
        { "csv without header", test_csv_without_header },
        { "csv ood shift", test_csv_ood_shift },
        { "csv ragged line", test_csv_ragged_line },
        { "csv invalid fields", test_csv_invalid_fields },
        { "csv empty files", test_csv_empty_files },
        { "csv too few rows", test_csv_too_few_rows },
        { "csv unusable files", test_csv_unusable_files },
    };
    int failed_setup = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        failed_setup = !mkdtemp(folder) || write_netcdf_files() != 0 || write_csv_files() != 0;
    MPI_Bcast(&failed_setup, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(folder, sizeof folder, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (failed_setup) {
        if (rank == 0) fprintf(stderr, "test_sources: cannot write the test files under /tmp\n");
        MPI_Finalize();
        return 1;
    }

    int result = 1;
    if (CU_initialize_registry() == CUE_SUCCESS) {
        CU_pSuite suite = CU_add_suite("sources", NULL, NULL);
        int registered = suite != NULL;
        for (size_t t = 0; registered && t < sizeof tests / sizeof tests[0]; t++)
            registered = CU_add_test(suite, tests[t].name, tests[t].function) != NULL;
        if (registered) result = sgk_test_mpi_run(MPI_COMM_WORLD);
        CU_cleanup_registry();
    }

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) remove_files();
    MPI_Finalize();
    return result;
}
