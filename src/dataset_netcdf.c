/* Source netcdf: the points of one NetCDF file, in file order.
 *
 * The file contains x(sample, feature) and y(sample, output), of any numeric type and
 * with any dimension names, and optionally an integer split(sample) with 0 train,
 * 1 test and 2 ood. The output file of sgk-ensemble has this layout, so a run can
 * read the evaluation set of an earlier one. Rank 0 alone reads the file, with the
 * serial API, and sgk_dataset_load broadcasts the result. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netcdf.h>

#include "dataset_internal.h"

/* Bytes of x (or y) values read per NetCDF call. The bound keeps memory small when
 * a file has many more points than the run uses. */
enum { BLOCK_BYTES = 1 << 24 };

/* Room for the text of sgk_file_request_describe. */
enum { REQUEST_TEXT_BYTES = 256 };

/* An open input file and what the loader learned about it. */
typedef struct {
    const char *path;
    int ncid;
    int x_id;
    int y_id;
    int split_id;    /* -1 when the file has no split variable */
    size_t n_points; /* length of the first dimension of x and y */
    size_t n_features;
    size_t n_outputs;
    int *split;         /* n_points values of split, or NULL without it */
    long *row_of_point; /* per point of the file: its row in the evaluation set, or -1 */
    size_t end_point;   /* one past the last point that has a row */
} nc_input;

static sgk_status read_failed(const nc_input *input, const char *what, int result)
{
    return sgk_error(SGK_ERR_IO, "reading NetCDF file '%s' failed at %s: %s", input->path, what,
                     nc_strerror(result));
}

static int is_numeric(nc_type type)
{
    return type >= NC_BYTE && type <= NC_UINT64 && type != NC_CHAR;
}

static int is_integer(nc_type type)
{
    return is_numeric(type) && type != NC_FLOAT && type != NC_DOUBLE;
}

/* Find variable `name`, check its rank and type, and store its id and lengths.
 * `layout` is how the message describes the expected shape, e.g. "x(sample, feature)". */
static sgk_status find_variable(const nc_input *input, const char *name, const char *layout,
                                int n_dims, int want_integer, int *varid, size_t *lengths)
{
    int dimids[NC_MAX_VAR_DIMS];
    nc_type type;
    int found_dims = 0;

    int result = nc_inq_varid(input->ncid, name, varid);
    if (result == NC_ENOTVAR)
        return sgk_error(SGK_ERR_DATA,
                         "NetCDF file '%s' has no variable '%s'; source netcdf "
                         "reads x(sample, feature), y(sample, output) and the optional "
                         "split(sample)",
                         input->path, name);
    if (result == NC_NOERR)
        result = nc_inq_var(input->ncid, *varid, NULL, &type, &found_dims, dimids, NULL);
    if (result != NC_NOERR) return read_failed(input, name, result);

    if (found_dims != n_dims)
        return sgk_error(SGK_ERR_DATA,
                         "variable '%s' in NetCDF file '%s' has %d dimension%s; "
                         "it must have %d, as %s",
                         name, input->path, found_dims, found_dims == 1 ? "" : "s", n_dims, layout);

    if (!(want_integer ? is_integer(type) : is_numeric(type))) {
        char type_name[NC_MAX_NAME + 1] = "user-defined";
        nc_inq_type(input->ncid, type, type_name, NULL);
        return sgk_error(SGK_ERR_DATA,
                         "variable '%s' in NetCDF file '%s' has type %s; it "
                         "must be %s",
                         name, input->path, type_name,
                         want_integer ? "an integer type" : "numeric (double or float)");
    }

    for (int k = 0; k < n_dims; k++) {
        result = nc_inq_dimlen(input->ncid, dimids[k], &lengths[k]);
        if (result != NC_NOERR) return read_failed(input, name, result);
    }
    return SGK_OK;
}

/* Find x, y and split, and check that their sample counts agree. */
static sgk_status find_variables(nc_input *input)
{
    size_t x_shape[2];
    size_t y_shape[2];
    size_t split_length;

    SGK_CHECK(find_variable(input, "x", "x(sample, feature)", 2, 0, &input->x_id, x_shape));
    SGK_CHECK(find_variable(input, "y", "y(sample, output)", 2, 0, &input->y_id, y_shape));
    if (x_shape[0] != y_shape[0])
        return sgk_error(SGK_ERR_DATA,
                         "NetCDF file '%s' has %zu samples in x but %zu in y; "
                         "the first dimensions of x and y must have the same length",
                         input->path, x_shape[0], y_shape[0]);
    if (x_shape[1] < 1 || x_shape[1] > INT_MAX || y_shape[1] < 1 || y_shape[1] > INT_MAX)
        return sgk_error(SGK_ERR_DATA,
                         "NetCDF file '%s' has x with %zu features and y with "
                         "%zu outputs; each count must be between 1 and %d",
                         input->path, x_shape[1], y_shape[1], INT_MAX);
    input->n_points = x_shape[0];
    input->n_features = x_shape[1];
    input->n_outputs = y_shape[1];

    int varid;
    input->split_id = -1;
    if (nc_inq_varid(input->ncid, "split", &varid) == NC_ENOTVAR) return SGK_OK;
    SGK_CHECK(
        find_variable(input, "split", "split(sample)", 1, 1, &input->split_id, &split_length));
    if (split_length != input->n_points)
        return sgk_error(SGK_ERR_DATA,
                         "NetCDF file '%s' has %zu values in split but %zu "
                         "samples in x and y; split needs one value per sample",
                         input->path, split_length, input->n_points);
    return SGK_OK;
}

static sgk_status read_split(nc_input *input)
{
    size_t n = input->n_points;

    input->split = malloc((n > 0 ? n : 1) * sizeof *input->split);
    if (!input->split)
        return sgk_error(SGK_ERR_IO,
                         "out of memory for the %zu split values of NetCDF file "
                         "'%s'",
                         n, input->path);

    int result = n > 0 ? nc_get_var_int(input->ncid, input->split_id, input->split) : NC_NOERR;
    if (result == NC_ERANGE)
        return sgk_error(SGK_ERR_DATA,
                         "variable 'split' in NetCDF file '%s' has values "
                         "outside the range of int; accepted values are 0 (train), 1 (test) "
                         "and 2 (ood)",
                         input->path);
    if (result != NC_NOERR) return read_failed(input, "split", result);

    for (size_t p = 0; p < n; p++) {
        int value = input->split[p];
        if (value != SGK_SPLIT_TRAIN && value != SGK_SPLIT_TEST && value != SGK_SPLIT_OOD)
            return sgk_error(SGK_ERR_DATA,
                             "variable 'split' in NetCDF file '%s' has the value "
                             "%d at sample %zu (0-based); accepted values are 0 (train), 1 "
                             "(test) and 2 (ood)",
                             input->path, value, p);
    }
    return SGK_OK;
}

/* Points needed from each split: train, test (with the ood = shift points after
 * them) and ood. */
static void points_needed(const sgk_file_request *request, long needed[3])
{
    needed[SGK_SPLIT_TRAIN] = request->n_train;
    needed[SGK_SPLIT_TEST] = request->n_test;
    needed[SGK_SPLIT_OOD] = 0;
    if (request->ood_origin == SGK_FILE_OOD_TEST)
        needed[SGK_SPLIT_TEST] += request->n_ood;
    else if (request->ood_origin == SGK_FILE_OOD_SPLIT)
        needed[SGK_SPLIT_OOD] = request->n_ood;
}

/* With a split variable: the first points of each split, in file order. The test
 * rows run on into the ood rows for ood = shift, whose rows follow the test rows. */
static sgk_status select_by_split(nc_input *input, const sgk_file_request *request)
{
    long first_row[3] = { 0, request->n_train, request->n_train + request->n_test };
    long needed[3];
    long found[3] = { 0, 0, 0 };

    points_needed(request, needed);
    for (size_t p = 0; p < input->n_points; p++) {
        int split = input->split[p];
        if (found[split] < needed[split]) {
            input->row_of_point[p] = first_row[split] + found[split];
            input->end_point = p + 1;
        }
        found[split]++;
    }

    if (found[0] >= needed[0] && found[1] >= needed[1] && found[2] >= needed[2]) return SGK_OK;

    char counts[REQUEST_TEXT_BYTES];
    sgk_file_request_describe(request, counts, sizeof counts);
    return sgk_error(SGK_ERR_DATA,
                     "NetCDF file '%s' has %ld points with split = 0 (train), "
                     "%ld with split = 1 (test) and %ld with split = 2 (ood), but the run "
                     "needs %ld, %ld and %ld (%s); lower these counts or add points to the "
                     "file",
                     input->path, found[0], found[1], found[2], needed[0], needed[1], needed[2],
                     counts);
}

/* Without a split variable: training points first, then test points, then the
 * test points of ood = shift. */
static sgk_status select_in_order(nc_input *input, const sgk_file_request *request)
{
    if (request->ood_origin == SGK_FILE_OOD_SPLIT)
        return sgk_error(SGK_ERR_DATA,
                         "NetCDF file '%s' has no variable 'split', so it marks "
                         "no ood points; add split(sample) with 2 for ood points, or use ood = "
                         "noise or shift:SCALE",
                         input->path);

    long needed[3];
    points_needed(request, needed);
    long total = needed[SGK_SPLIT_TRAIN] + needed[SGK_SPLIT_TEST];
    if ((size_t)total <= input->n_points) {
        for (long p = 0; p < total; p++) input->row_of_point[p] = p;
        input->end_point = (size_t)total;
        return SGK_OK;
    }

    char counts[REQUEST_TEXT_BYTES];
    sgk_file_request_describe(request, counts, sizeof counts);
    return sgk_error(SGK_ERR_DATA,
                     "NetCDF file '%s' has %zu points, but the run needs %ld (%s), "
                     "taken in file order because the file has no split variable; lower these "
                     "counts or add points to the file",
                     input->path, input->n_points, total, counts);
}
static sgk_status select_points(nc_input *input, const sgk_file_request *request)
{
    size_t n = input->n_points;

    input->row_of_point = malloc((n > 0 ? n : 1) * sizeof *input->row_of_point);
    if (!input->row_of_point)
        return sgk_error(SGK_ERR_IO, "out of memory for the %zu points of NetCDF file '%s'", n,
                         input->path);
    for (size_t p = 0; p < n; p++) input->row_of_point[p] = -1;
    input->end_point = 0;

    if (input->split_id < 0) return select_in_order(input, request);
    SGK_CHECK(read_split(input));
    return select_by_split(input, request);
}

/* Copy `width` values of point `point` (file index) into `out`, failing on the
 * first non-finite value. */
static sgk_status copy_finite(const nc_input *input, const char *name, const char *column,
                              const double *values, size_t width, size_t point, double *out)
{
    for (size_t k = 0; k < width; k++) {
        if (!isfinite(values[k]))
            return sgk_error(SGK_ERR_DATA,
                             "variable '%s' in NetCDF file '%s' has the "
                             "non-finite value %g at sample %zu, %s %zu (0-based); every "
                             "value of the points used must be finite",
                             name, input->path, values[k], point, column, k);
        out[k] = values[k];
    }
    return SGK_OK;
}

static int block_has_rows(const nc_input *input, size_t start, size_t count)
{
    for (size_t p = start; p < start + count; p++)
        if (input->row_of_point[p] >= 0) return 1;
    return 0;
}

/* Read the points that have rows, in blocks of consecutive points, into `data`. */
static sgk_status read_block(const nc_input *input, size_t start, size_t count, double *x_block,
                             double *y_block, sgk_dataset *data)
{
    size_t d = input->n_features;
    size_t o = input->n_outputs;
    size_t x_start[2] = { start, 0 };
    size_t x_count[2] = { count, d };
    size_t y_count[2] = { count, o };

    int result = nc_get_vara_double(input->ncid, input->x_id, x_start, x_count, x_block);
    if (result != NC_NOERR) return read_failed(input, "x", result);
    result = nc_get_vara_double(input->ncid, input->y_id, x_start, y_count, y_block);
    if (result != NC_NOERR) return read_failed(input, "y", result);

    for (size_t k = 0; k < count; k++) {
        size_t point = start + k;
        long row = input->row_of_point[point];
        if (row < 0) continue;
        SGK_CHECK(copy_finite(input, "x", "feature", x_block + k * d, d, point,
                              data->x + (size_t)row * d));
        SGK_CHECK(copy_finite(input, "y", "output", y_block + k * o, o, point,
                              data->y + (size_t)row * o));
        data->source_index[row] = (long)point;
    }
    return SGK_OK;
}

static sgk_status read_points(const nc_input *input, sgk_dataset *data)
{
    size_t width = input->n_features > input->n_outputs ? input->n_features : input->n_outputs;
    size_t block = BLOCK_BYTES / sizeof(double) / width;
    if (block < 1) block = 1;
    if (block > input->end_point) block = input->end_point;

    double *x_block = malloc((block > 0 ? block : 1) * input->n_features * sizeof(double));
    double *y_block = malloc((block > 0 ? block : 1) * input->n_outputs * sizeof(double));
    sgk_status status = SGK_OK;
    if (!x_block || !y_block)
        status = sgk_error(SGK_ERR_IO, "out of memory for %zu points of NetCDF file '%s'", block,
                           input->path);

    for (size_t start = 0; status == SGK_OK && start < input->end_point; start += block) {
        size_t count = input->end_point - start < block ? input->end_point - start : block;
        if (block_has_rows(input, start, count))
            status = read_block(input, start, count, x_block, y_block, data);
    }
    free(x_block);
    free(y_block);
    return status;
}

/* Steps of sgk_dataset_read_netcdf on an open file; the caller closes it. */
static sgk_status read_open_file(nc_input *input, const sgk_file_request *request,
                                 sgk_dataset *data)
{
    /* 1. Check the variables and choose which points fill which rows. */
    SGK_CHECK(find_variables(input));
    SGK_CHECK(select_points(input, request));

    /* 2. Allocate the set and read the chosen points. Rows of ood = noise stay 0. */
    SGK_CHECK(sgk_dataset_alloc(data, request->n_train, request->n_test, request->n_ood,
                                (int)input->n_features, (int)input->n_outputs));
    return read_points(input, data);
}

sgk_status sgk_dataset_read_netcdf(const char *path, const sgk_file_request *request,
                                   sgk_dataset *data)
{
    nc_input input = { .path = path, .split_id = -1 };

    memset(data, 0, sizeof *data);
    int result = nc_open(path, NC_NOWRITE, &input.ncid);
    if (result != NC_NOERR)
        return sgk_error(SGK_ERR_DATA, "cannot open NetCDF file '%s': %s; data.path must name a NetCDF file "
                         "with variables x(sample, feature) and y(sample, output)",
                         path, nc_strerror(result));

    sgk_status status = read_open_file(&input, request, data);
    nc_close(input.ncid);
    free(input.split);
    free(input.row_of_point);
    if (status != SGK_OK) sgk_dataset_free(data);
    return status;
}
