/* libFuzzer target: the IDX reader of src/idx.c (sgk_idx_read).
 *
 * Input layout: one mode byte, then the file contents.
 *   mode % 3 == 0: the contents are the file, as they are;
 *   mode % 3 == 1: the file is the contents gzip-compressed;
 *   mode % 3 == 2: the same gzip stream cut short: two further bytes (big-endian)
 *                  give the cut, modulo the stream length.
 * Mutations of a stored gzip stream almost never survive its CRC, so compressing
 * here is what lets the fuzzer reach the IDX checks behind the gzip layer.
 *
 * Besides the sanitizers' checks, the target aborts when a documented contract
 * breaks. Errors must be SGK_ERR_DATA or SGK_ERR_IO with a message, and leave no
 * payload. A file that is read must have 1 to 4 dimensions, a known type code and a
 * payload of exactly the declared size. For input that is not gzip, that payload must
 * be the file after its header, byte for byte. */
#define _GNU_SOURCE /* memfd_create */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "sgk/dataset.h"
#include "fuzz_input.h"

enum { MODE_PLAIN = 0, MODE_GZIP = 1, MODE_GZIP_CUT = 2, N_MODES = 3 };

/* zlib's deflateInit2 writes a gzip header and trailer for window bits 15 + 16. */
enum { GZIP_WINDOW_BITS = 15 + 16, GZIP_MEMORY_LEVEL = 8 };

static fuzz_file idx_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_create(&idx_file, "fuzz-idx");
    return 0;
}

/* gzip-compress `size` bytes at `data` into a new buffer; NULL when zlib fails. */
static unsigned char *gzip_bytes(const uint8_t *data, size_t size, size_t *out_size)
{
    z_stream stream;

    memset(&stream, 0, sizeof stream);
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS,
                     GZIP_MEMORY_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;

    size_t capacity = deflateBound(&stream, (uLong)size);
    unsigned char *out = malloc(capacity);
    if (!out) {
        deflateEnd(&stream);
        return NULL;
    }
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)size;
    stream.next_out = out;
    stream.avail_out = (uInt)capacity;
    int result = deflate(&stream, Z_FINISH);
    *out_size = capacity - stream.avail_out;
    deflateEnd(&stream);
    if (result != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static size_t type_size(int type_code)
{
    switch (type_code) {
    case 0x08:
    case 0x09:
        return 1;
    case 0x0B:
        return 2;
    case 0x0C:
    case 0x0D:
        return 4;
    case 0x0E:
        return 8;
    }
    return 0;
}

/* Check a file that sgk_idx_read accepted. `plain` is the file for uncompressed
 * input, NULL for gzip input. */
static void check_accepted(const sgk_idx *idx, const uint8_t *plain, size_t plain_size)
{
    size_t value_bytes = type_size(idx->type_code);
    size_t expected = value_bytes;

    FUZZ_REQUIRE(value_bytes > 0, "accepted unknown type code 0x%02X", idx->type_code);
    FUZZ_REQUIRE(idx->n_dims >= 1 && idx->n_dims <= 4, "accepted %d dimensions", idx->n_dims);
    for (int i = 0; i < idx->n_dims; i++) {
        FUZZ_REQUIRE(idx->dims[i] >= 0, "dimension %d is negative: %ld", i, idx->dims[i]);
        expected *= (size_t)idx->dims[i];
    }
    FUZZ_REQUIRE(idx->n_bytes == expected,
                 "payload of %zu bytes, but the dimensions and type declare %zu", idx->n_bytes,
                 expected);
    FUZZ_REQUIRE(idx->n_bytes == 0 || idx->data != NULL, "payload of %zu bytes at NULL",
                 idx->n_bytes);
    if (!plain) return;

    size_t header = 4 + 4 * (size_t)idx->n_dims;
    FUZZ_REQUIRE(plain_size == header + idx->n_bytes,
                 "a file of %zu bytes accepted with a %zu-byte header and %zu bytes of payload",
                 plain_size, header, idx->n_bytes);
    FUZZ_REQUIRE(idx->n_bytes == 0 || memcmp(idx->data, plain + header, idx->n_bytes) == 0,
                 "payload differs from the file after its header");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *contents;
    size_t contents_size;
    unsigned char *compressed = NULL;
    size_t compressed_size = 0;
    int mode;

    if (size < 1) return 0;
    mode = data[0] % N_MODES;
    contents = data + 1;
    contents_size = size - 1;

    if (mode == MODE_PLAIN) {
        fuzz_file_write(&idx_file, contents, contents_size);
    } else {
        size_t cut = 0;
        if (mode == MODE_GZIP_CUT) {
            if (contents_size < 2) return 0;
            cut = (size_t)contents[0] << 8 | contents[1];
            contents += 2;
            contents_size -= 2;
        }
        compressed = gzip_bytes(contents, contents_size, &compressed_size);
        if (!compressed) return 0;
        if (mode == MODE_GZIP_CUT) compressed_size = cut % compressed_size;
        fuzz_file_write(&idx_file, compressed, compressed_size);
    }

    sgk_idx idx;
    sgk_error_clear();
    sgk_status status = sgk_idx_read(idx_file.path, &idx);
    if (status == SGK_OK) {
        /* zlib decompresses any file that starts with the gzip magic bytes. */
        int plain = mode == MODE_PLAIN &&
                    !(contents_size >= 2 && contents[0] == 0x1F && contents[1] == 0x8B);
        check_accepted(&idx, plain ? contents : NULL, contents_size);
        /* A cut gzip stream has lost its trailer, and zlib must notice. */
        FUZZ_REQUIRE(mode != MODE_GZIP_CUT, "accepted a gzip stream cut to %zu bytes",
                     compressed_size);
    } else {
        FUZZ_REQUIRE(status == SGK_ERR_DATA || status == SGK_ERR_IO,
                     "status %d; IDX errors are SGK_ERR_DATA (2) or SGK_ERR_IO (4)", (int)status);
        FUZZ_REQUIRE(sgk_error_message()[0] != '\0', "error without a message");
        FUZZ_REQUIRE(idx.data == NULL && idx.n_bytes == 0, "a failed read left a payload");
    }
    sgk_idx_free(&idx);
    free(compressed);
    return 0;
}
