/* Evaluation set: collective loading, dispatch to the sources, and the
 * out-of-distribution points that are derived from the training inputs (ood = noise
 * and ood = shift). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "sgk/rng.h"

/* Message buffer size; the buffer in status.c has the same size. */
enum { MESSAGE_BYTES = 2048 };

/* Fields of the header that rank 0 broadcasts before the arrays. */
enum {
    HEADER_STATUS,
    HEADER_N_TRAIN,
    HEADER_N_TEST,
    HEADER_N_OOD,
    HEADER_N_FEATURES,
    HEADER_N_OUTPUTS,
    HEADER_MESSAGE_BYTES,
    HEADER_FIELDS
};

static sgk_status mpi_check(int result, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (result == MPI_SUCCESS)
        return SGK_OK;
    if (MPI_Error_string(result, text, &length) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error code %d", result);
    return sgk_error(SGK_ERR_IO, "loading the data set: %s failed: %s", call, text);
}

/* MPI_Bcast for arrays of any length: MPI counts are int, so long arrays go in
 * pieces of at most INT_MAX elements. */
static sgk_status broadcast(void *buffer, size_t count, MPI_Datatype type,
                            size_t element_bytes, MPI_Comm comm)
{
    char *bytes = buffer;
    const size_t piece_max = 1u << 30;

    while (count > 0) {
        size_t piece = count < piece_max ? count : piece_max;
        SGK_CHECK(mpi_check(MPI_Bcast(bytes, (int)piece, type, 0, comm), "MPI_Bcast"));
        bytes += piece * element_bytes;
        count -= piece;
    }
    return SGK_OK;
}

sgk_status sgk_dataset_alloc(sgk_dataset *data, long n_train, long n_test, long n_ood,
                             int n_features, int n_outputs)
{
    long n = n_train + n_test + n_ood;

    memset(data, 0, sizeof *data);
    data->n_samples = n;
    data->n_train = n_train;
    data->n_test = n_test;
    data->n_ood = n_ood;
    data->n_features = n_features;
    data->n_outputs = n_outputs;

    size_t rows = (size_t)n;
    if (n > 0 && (rows > SIZE_MAX / sizeof(double) / (size_t)n_features ||
                  rows > SIZE_MAX / sizeof(double) / (size_t)n_outputs))
        return sgk_error(SGK_ERR_IO, "evaluation set of %ld points x %d features is too large "
                         "to address", n, n_features);

    /* calloc(0, ...) may return NULL, so empty arrays get one element. */
    size_t alloc_rows = rows > 0 ? rows : 1;
    data->x = calloc(alloc_rows * (size_t)n_features, sizeof(double));
    data->y = calloc(alloc_rows * (size_t)n_outputs, sizeof(double));
    data->split = calloc(alloc_rows, sizeof(int));
    data->label = calloc(alloc_rows, sizeof(int));
    data->source_index = calloc(alloc_rows, sizeof(long));
    if (!data->x || !data->y || !data->split || !data->label || !data->source_index) {
        sgk_dataset_free(data);
        return sgk_error(SGK_ERR_IO, "out of memory for the evaluation set: %ld points x "
                         "(%d features + %d outputs)", n, n_features, n_outputs);
    }

    for (long i = 0; i < n; i++) {
        data->split[i] = i < n_train ? SGK_SPLIT_TRAIN
                         : i < n_train + n_test ? SGK_SPLIT_TEST : SGK_SPLIT_OOD;
        data->label[i] = -1;
        data->source_index[i] = -1;
    }
    return SGK_OK;
}

void sgk_dataset_free(sgk_dataset *data)
{
    free(data->x);
    free(data->y);
    free(data->split);
    free(data->label);
    free(data->source_index);
    memset(data, 0, sizeof *data);
}

long sgk_dataset_ood_count(const sgk_config *config)
{
    return config->data.ood == SGK_OOD_NONE ? 0 : config->data.n_ood;
}

/* Per-feature mean and population variance (divided by n_train) of the training
 * inputs. `mean` and `variance` hold n_features entries. */
static void training_moments(const sgk_dataset *data, double *mean, double *variance)
{
    int d = data->n_features;

    for (int j = 0; j < d; j++) {
        double sum = 0.0;
        for (long i = 0; i < data->n_train; i++)
            sum += data->x[i * d + j];
        mean[j] = sum / (double)data->n_train;

        /* Two passes: the mean first, then squared deviations, which avoids the
         * cancellation of sum(x^2) - n mean^2 on features with a large mean. */
        double squares = 0.0;
        for (long i = 0; i < data->n_train; i++) {
            double deviation = data->x[i * d + j] - mean[j];
            squares += deviation * deviation;
        }
        variance[j] = squares / (double)data->n_train;
    }
}

/* Fill the ood rows with Gaussian inputs whose per-feature mean and variance are
 * those of the training inputs. Targets stay 0, and labels and source indices -1. */
static sgk_status fill_noise_ood(const sgk_config *config, sgk_dataset *data)
{
    int d = data->n_features;
    double *mean = malloc((size_t)d * sizeof *mean);
    double *variance = malloc((size_t)d * sizeof *variance);
    sgk_rng rng;

    if (!mean || !variance) {
        free(mean);
        free(variance);
        return sgk_error(SGK_ERR_IO, "out of memory for the moments of %d features", d);
    }
    training_moments(data, mean, variance);

    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_DATA);
    sgk_rng_seek(&rng, SGK_DATA_SUBSTREAM_NOISE);
    for (long i = data->n_train + data->n_test; i < data->n_samples; i++) {
        for (int j = 0; j < d; j++)
            data->x[i * d + j] = mean[j] + sqrt(variance[j]) * sgk_rng_normal(&rng);
    }

    free(mean);
    free(variance);
    return SGK_OK;
}

/* Add `scale` times the standard deviation of all training input values, pooled
 * over points and features (population form), to every input of the ood rows. */
static void shift_ood(double scale, sgk_dataset *data)
{
    size_t count = (size_t)data->n_train * (size_t)data->n_features;
    double sum = 0.0;
    double squares = 0.0;

    for (size_t k = 0; k < count; k++)
        sum += data->x[k];
    double mean = sum / (double)count;
    for (size_t k = 0; k < count; k++)
        squares += (data->x[k] - mean) * (data->x[k] - mean);
    double offset = scale * sqrt(squares / (double)count);

    size_t first = (size_t)(data->n_train + data->n_test) * (size_t)data->n_features;
    size_t end = (size_t)data->n_samples * (size_t)data->n_features;
    for (size_t k = first; k < end; k++)
        data->x[k] += offset;
}

/* Check the keys that every source uses. Config validation should already reject
 * these values, but tests and tools also call the loader directly. */
static sgk_status check_counts(const sgk_config *config)
{
    if (config->data.n_train < 1)
        return sgk_error(SGK_ERR_USAGE, "data.n_train = %ld is invalid; it must be at least 1",
                         config->data.n_train);
    if (config->data.n_test < 0)
        return sgk_error(SGK_ERR_USAGE, "data.n_test = %ld is invalid; it must be 0 or more",
                         config->data.n_test);
    if (config->data.ood != SGK_OOD_NONE && config->data.n_ood < 0)
        return sgk_error(SGK_ERR_USAGE, "data.n_ood = %ld is invalid; it must be 0 or more",
                         config->data.n_ood);
    if (config->data.ood == SGK_OOD_SHIFT && !isfinite(config->data.ood_shift))
        return sgk_error(SGK_ERR_USAGE, "data.ood = shift:%g is invalid; SCALE must be a "
                         "finite number", config->data.ood_shift);
    return SGK_OK;
}

/* Translate the [data] keys into the points a netcdf or csv file must supply.
 * ood = shift takes further test points, as the other sources do. */
static sgk_status file_request(const sgk_config *config, sgk_file_request *request)
{
    const char *source = config->data.source == SGK_SOURCE_NETCDF ? "netcdf" : "csv";

    request->n_train = config->data.n_train;
    request->n_test = config->data.n_test;
    request->n_ood = sgk_dataset_ood_count(config);
    request->ood_origin = SGK_FILE_OOD_NONE;

    switch (config->data.ood) {
    case SGK_OOD_NONE:
    case SGK_OOD_NOISE:
        break;
    case SGK_OOD_SHIFT:
        request->ood_origin = SGK_FILE_OOD_TEST;
        break;
    case SGK_OOD_FILE:
        request->ood_origin = SGK_FILE_OOD_SPLIT;
        break;
    case SGK_OOD_CLASSES:
        if (request->n_ood > 0)
            return sgk_error(SGK_ERR_USAGE, "data.ood = classes:LIST needs class labels, but "
                             "data.source = %s has none; use ood = none, noise or shift:SCALE",
                             source);
        break;
    }

    if (config->data.path[0] == '\0')
        return sgk_error(SGK_ERR_USAGE, "data.path is empty; data.source = %s reads its points "
                         "from the file that data.path names", source);
    return SGK_OK;
}

void sgk_file_request_describe(const sgk_file_request *request, char *text, size_t size)
{
    int n = snprintf(text, size, "data.n_train = %ld, data.n_test = %ld", request->n_train,
                     request->n_test);
    if (n < 0 || (size_t)n >= size)
        return;

    if (request->ood_origin == SGK_FILE_OOD_TEST)
        snprintf(text + n, size - (size_t)n, ", data.n_ood = %ld further test points for "
                 "ood = shift", request->n_ood);
    else if (request->ood_origin == SGK_FILE_OOD_SPLIT)
        snprintf(text + n, size - (size_t)n, ", data.n_ood = %ld", request->n_ood);
}

static sgk_status build_from_file(const sgk_config *config, sgk_dataset *data)
{
    sgk_file_request request;

    SGK_CHECK(file_request(config, &request));
    if (config->data.source == SGK_SOURCE_NETCDF)
        return sgk_dataset_read_netcdf(config->data.path, &request, data);
    return sgk_dataset_read_csv(config->data.path, &request, data);
}

/* Build the whole evaluation set on the calling process. */
static sgk_status build(const sgk_config *config, sgk_dataset *data)
{
    SGK_CHECK(check_counts(config));

    switch (config->data.source) {
    case SGK_SOURCE_FASHION_MNIST:
    case SGK_SOURCE_IDX:
        SGK_CHECK(sgk_dataset_build_idx(config, data));
        break;
    case SGK_SOURCE_TEACHER:
        SGK_CHECK(sgk_dataset_build_teacher(config, data));
        break;
    case SGK_SOURCE_MOONS:
    case SGK_SOURCE_GAUSSIAN_MIXTURE:
        SGK_CHECK(sgk_dataset_build_synthetic(config, data));
        break;
    case SGK_SOURCE_NETCDF:
    case SGK_SOURCE_CSV:
        SGK_CHECK(build_from_file(config, data));
        break;
    default:
        return sgk_error(SGK_ERR_USAGE, "data.source has the invalid value %d; use "
                         "fashion-mnist, idx, netcdf, csv, teacher, moons or "
                         "gaussian-mixture", (int)config->data.source);
    }

    sgk_status status = SGK_OK;
    if (config->data.ood == SGK_OOD_NOISE)
        status = fill_noise_ood(config, data);
    else if (config->data.ood == SGK_OOD_SHIFT)
        shift_ood(config->data.ood_shift, data);
    if (status != SGK_OK)
        sgk_dataset_free(data);
    return status;
}

/* Send rank 0's failure to every rank, so each records the same message. */
static sgk_status broadcast_failure(sgk_status status, long message_bytes, int rank,
                                    MPI_Comm comm)
{
    char message[MESSAGE_BYTES] = {0};

    if (rank == 0)
        snprintf(message, sizeof message, "%s", sgk_error_message());
    SGK_CHECK(broadcast(message, (size_t)message_bytes, MPI_CHAR, 1, comm));
    message[MESSAGE_BYTES - 1] = '\0';
    return sgk_error(status, "%s", message);
}

/* Allocate the arrays on ranks other than 0; every rank learns whether all
 * allocations succeeded, so no rank enters a broadcast that another has left. */
static sgk_status allocate_everywhere(const long *header, int rank, MPI_Comm comm,
                                      sgk_dataset *data)
{
    int failed_rank = -1;
    int worst = -1;

    if (rank != 0 && sgk_dataset_alloc(data, header[HEADER_N_TRAIN], header[HEADER_N_TEST],
                                       header[HEADER_N_OOD], (int)header[HEADER_N_FEATURES],
                                       (int)header[HEADER_N_OUTPUTS]) != SGK_OK)
        failed_rank = rank;
    SGK_CHECK(mpi_check(MPI_Allreduce(&failed_rank, &worst, 1, MPI_INT, MPI_MAX, comm),
                        "MPI_Allreduce"));
    if (worst >= 0) {
        sgk_dataset_free(data);
        return sgk_error(SGK_ERR_IO, "out of memory on rank %d for the evaluation set of "
                         "%ld points x %ld features", worst,
                         header[HEADER_N_TRAIN] + header[HEADER_N_TEST] + header[HEADER_N_OOD],
                         header[HEADER_N_FEATURES]);
    }
    return SGK_OK;
}

static sgk_status broadcast_arrays(sgk_dataset *data, MPI_Comm comm)
{
    size_t n = (size_t)data->n_samples;

    SGK_CHECK(broadcast(data->x, n * (size_t)data->n_features, MPI_DOUBLE, sizeof(double),
                        comm));
    SGK_CHECK(broadcast(data->y, n * (size_t)data->n_outputs, MPI_DOUBLE, sizeof(double),
                        comm));
    SGK_CHECK(broadcast(data->split, n, MPI_INT, sizeof(int), comm));
    SGK_CHECK(broadcast(data->label, n, MPI_INT, sizeof(int), comm));
    SGK_CHECK(broadcast(data->source_index, n, MPI_LONG, sizeof(long), comm));
    return SGK_OK;
}

/* Collective. Rank 0 builds the set and broadcasts a header (status, sizes, message
 * length), then either its error message or the arrays. */
sgk_status sgk_dataset_load(const sgk_config *config, MPI_Comm comm, sgk_dataset *data)
{
    long header[HEADER_FIELDS] = {0};
    int rank = 0;

    memset(data, 0, sizeof *data);
    SGK_CHECK(mpi_check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank"));

    /* 1. Rank 0 reads the files and builds the whole set. */
    if (rank == 0) {
        sgk_status status = build(config, data);
        header[HEADER_STATUS] = status;
        header[HEADER_N_TRAIN] = data->n_train;
        header[HEADER_N_TEST] = data->n_test;
        header[HEADER_N_OOD] = data->n_ood;
        header[HEADER_N_FEATURES] = data->n_features;
        header[HEADER_N_OUTPUTS] = data->n_outputs;
        header[HEADER_MESSAGE_BYTES] = status == SGK_OK ? 0 : MESSAGE_BYTES;
    }

    /* 2. Every rank learns the outcome and sizes. */
    sgk_status status = broadcast(header, HEADER_FIELDS, MPI_LONG, sizeof(long), comm);
    if (status == SGK_OK && header[HEADER_STATUS] != SGK_OK) {
        sgk_dataset_free(data);
        return broadcast_failure((sgk_status)header[HEADER_STATUS],
                                 header[HEADER_MESSAGE_BYTES], rank, comm);
    }

    /* 3. The other ranks allocate and receive the arrays. */
    if (status == SGK_OK)
        status = allocate_everywhere(header, rank, comm, data);
    if (status == SGK_OK)
        status = broadcast_arrays(data, comm);
    if (status != SGK_OK)
        sgk_dataset_free(data);
    return status;
}
