/* libFuzzer target: the CSV reader of the csv data source (src/dataset_csv.c,
 * sgk_dataset_read_csv).
 *
 * Input layout: three bytes that set the request, then the file contents.
 *   byte 0: n_train = 1 + byte % 16
 *   byte 1: n_test = byte % 8
 *   byte 2: where ood points come from, byte % 3 (none, further test rows, a split
 *           column, which CSV lacks), and n_ood = byte / 3 % 4
 * The counts stay small on purpose. sgk_dataset_alloc sizes the evaluation set from
 * the request before the reader knows how many rows the file has, so large counts
 * would measure that allocation, not the parser.
 *
 * Besides the sanitizers' checks, the target aborts when a documented contract
 * breaks. Errors must be SGK_ERR_DATA or SGK_ERR_IO (SGK_ERR_USAGE for the split
 * origin) with a message, and leave no arrays. An accepted file must give exactly the
 * requested rows, one output and finite values, each row numbered by its data row. */
#define _GNU_SOURCE /* memfd_create */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "fuzz_input.h"

enum { REQUEST_BYTES = 3, MAX_TRAIN = 16, MAX_TEST = 8, MAX_OOD = 4 };

static fuzz_file csv_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_create(&csv_file, "fuzz-csv");
    return 0;
}

static void decode_request(const uint8_t *bytes, sgk_file_request *request)
{
    static const sgk_file_ood origins[] = { SGK_FILE_OOD_NONE, SGK_FILE_OOD_TEST,
                                            SGK_FILE_OOD_SPLIT };

    request->n_train = 1 + bytes[0] % MAX_TRAIN;
    request->n_test = bytes[1] % MAX_TEST;
    request->ood_origin = origins[bytes[2] % 3];
    request->n_ood = bytes[2] / 3 % MAX_OOD;
}

static void check_failure(sgk_status status, const sgk_file_request *request,
                          const sgk_dataset *data)
{
    if (request->ood_origin == SGK_FILE_OOD_SPLIT)
        FUZZ_REQUIRE(status == SGK_ERR_USAGE,
                     "status %d for a split request; CSV has no split column, which is "
                     "SGK_ERR_USAGE (1)",
                     (int)status);
    else
        FUZZ_REQUIRE(status == SGK_ERR_DATA || status == SGK_ERR_IO,
                     "status %d; CSV errors are SGK_ERR_DATA (2) or SGK_ERR_IO (4)", (int)status);
    FUZZ_REQUIRE(sgk_error_message()[0] != '\0', "error without a message");
    FUZZ_REQUIRE(!data->x && !data->y && !data->split && !data->label && !data->source_index,
                 "a failed read left arrays allocated");
}

static void check_accepted(const sgk_file_request *request, const sgk_dataset *data)
{
    long from_file = request->n_train + request->n_test;

    FUZZ_REQUIRE(request->ood_origin != SGK_FILE_OOD_SPLIT,
                 "accepted a request for split-2 points from a CSV file");
    FUZZ_REQUIRE(data->n_train == request->n_train && data->n_test == request->n_test &&
                     data->n_ood == request->n_ood,
                 "rows %ld + %ld + %ld for a request of %ld + %ld + %ld", data->n_train,
                 data->n_test, data->n_ood, request->n_train, request->n_test, request->n_ood);
    FUZZ_REQUIRE(data->n_samples == data->n_train + data->n_test + data->n_ood, "n_samples = %ld",
                 data->n_samples);
    FUZZ_REQUIRE(data->n_outputs == 1, "%d outputs; a CSV row has one target", data->n_outputs);
    FUZZ_REQUIRE(data->n_features >= 1, "%d features", data->n_features);

    if (request->ood_origin == SGK_FILE_OOD_TEST) from_file += request->n_ood;
    for (long row = 0; row < data->n_samples; row++) {
        int expected_split = row < data->n_train                  ? SGK_SPLIT_TRAIN
                             : row < data->n_train + data->n_test ? SGK_SPLIT_TEST
                                                                  : SGK_SPLIT_OOD;
        FUZZ_REQUIRE(data->split[row] == expected_split, "row %ld has split %d", row,
                     data->split[row]);
        FUZZ_REQUIRE(data->label[row] == -1, "row %ld has label %d; CSV rows have none", row,
                     data->label[row]);
        if (row >= from_file) {
            FUZZ_REQUIRE(data->source_index[row] == -1,
                         "ood row %ld, not from the file, has source index %ld", row,
                         data->source_index[row]);
            continue;
        }
        /* Rows are stored in file order, one per data row. */
        FUZZ_REQUIRE(data->source_index[row] == row, "row %ld has source index %ld", row,
                     data->source_index[row]);
        for (int k = 0; k < data->n_features; k++)
            FUZZ_REQUIRE(isfinite(data->x[row * data->n_features + k]),
                         "row %ld, feature %d is not finite", row, k);
        FUZZ_REQUIRE(isfinite(data->y[row]), "row %ld has a target that is not finite", row);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sgk_file_request request;
    sgk_dataset set;

    if (size < REQUEST_BYTES) return 0;
    decode_request(data, &request);
    fuzz_file_write(&csv_file, data + REQUEST_BYTES, size - REQUEST_BYTES);

    sgk_error_clear();
    sgk_status status = sgk_dataset_read_csv(csv_file.path, &request, &set);
    if (status == SGK_OK)
        check_accepted(&request, &set);
    else
        check_failure(status, &request, &set);
    sgk_dataset_free(&set);
    return 0;
}
