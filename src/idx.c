/* IDX reader. An IDX file is a 4-byte magic number (0, 0, type code, dimension
 * count), one big-endian 32-bit size per dimension, then the values in row-major
 * order, multi-byte types big-endian. zlib's gzread reads gzip-compressed and plain
 * files through the same calls, so both are accepted under any file name. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "sgk/dataset.h"

enum {
    MAGIC_BYTES = 4,
    MAX_DIMS = 4,           /* the capacity of sgk_idx.dims */
    DIM_BYTES = 4,          /* each dimension size is a big-endian uint32 */
    READ_CHUNK = 1 << 20,   /* bytes per gzread call and first payload allocation */
};

/* Bytes per value of an IDX type code, or 0 for a code the format does not define. */
static size_t type_size(int type_code)
{
    switch (type_code) {
    case 0x08: /* unsigned byte */
    case 0x09: /* signed byte */
        return 1;
    case 0x0B: /* short */
        return 2;
    case 0x0C: /* int */
    case 0x0D: /* float */
        return 4;
    case 0x0E: /* double */
        return 8;
    }
    return 0;
}

/* Turn the error state of `file` into a status after a short or failed read.
 * Returns SGK_OK when the stream simply ended (plain file end, or a complete gzip
 * stream). */
static sgk_status check_stream(gzFile file, const char *path)
{
    int zlib_error = Z_OK;
    const char *zlib_message = gzerror(file, &zlib_error);
    size_t path_length = strlen(path);

    /* zlib prefixes its message with "PATH: ", which ours already names. */
    if (strncmp(zlib_message, path, path_length) == 0 && zlib_message[path_length] == ':')
        zlib_message += path_length + (zlib_message[path_length + 1] == ' ' ? 2 : 1);

    switch (zlib_error) {
    case Z_OK:
        return SGK_OK;
    case Z_BUF_ERROR:
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': the gzip stream is truncated (the file ends in "
                         "the middle of the compressed data); download or copy it again",
                         path);
    case Z_ERRNO:
        return sgk_error(SGK_ERR_IO, "IDX file '%s': read failed: %s", path, strerror(errno));
    case Z_MEM_ERROR:
        return sgk_error(SGK_ERR_IO, "IDX file '%s': out of memory while decompressing", path);
    default:
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': the gzip stream is corrupt (zlib error %d: %s); "
                         "download or copy it again",
                         path, zlib_error, zlib_message);
    }
}

/* Read up to `want` bytes into `buffer` and store the count in `*got`, which is less
 * than `want` only at the end of the data. A gzip stream that is truncated or
 * corrupt is an error even when some bytes were read. */
static sgk_status read_bytes(gzFile file, const char *path, unsigned char *buffer,
                             size_t want, size_t *got)
{
    *got = 0;
    while (*got < want) {
        size_t remaining = want - *got;
        unsigned chunk = remaining < READ_CHUNK ? (unsigned)remaining : READ_CHUNK;
        int n = gzread(file, buffer + *got, chunk);

        if (n < 0)
            return check_stream(file, path);
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    if (*got < want)
        return check_stream(file, path);
    return SGK_OK;
}

static void format_dims(const sgk_idx *idx, char *text, size_t size)
{
    size_t used = 0;

    text[0] = '\0';
    for (int i = 0; i < idx->n_dims && used < size; i++) {
        int n = snprintf(text + used, size - used, "%s%ld", i ? " x " : "", idx->dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Multiply the dimension sizes and the value size, rejecting products that do not
 * fit in size_t or long (a corrupt header can declare up to 2^128 values). */
static sgk_status payload_size(const sgk_idx *idx, const char *path, const char *dims_text,
                               size_t value_bytes, size_t *n_bytes)
{
    size_t limit = (size_t)LONG_MAX < SIZE_MAX ? (size_t)LONG_MAX : SIZE_MAX;
    size_t product = value_bytes;

    for (int i = 0; i < idx->n_dims; i++) {
        size_t dim = (size_t)idx->dims[i];
        if (dim != 0 && product > limit / dim)
            return sgk_error(SGK_ERR_DATA,
                             "IDX file '%s': the header declares %s values, more than %zu "
                             "bytes of payload; the header is corrupt",
                             path, dims_text, limit);
        product *= dim;
    }
    *n_bytes = product;
    return SGK_OK;
}

static sgk_status read_header(gzFile file, const char *path, sgk_idx *idx)
{
    unsigned char magic[MAGIC_BYTES];
    unsigned char dim_bytes[MAX_DIMS * DIM_BYTES];
    size_t got = 0;

    SGK_CHECK(read_bytes(file, path, magic, MAGIC_BYTES, &got));
    if (got == 0)
        return sgk_error(SGK_ERR_DATA, "IDX file '%s' is empty (0 bytes)", path);
    if (got < MAGIC_BYTES)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s' has only %zu bytes; an IDX file starts with a "
                         "4-byte magic number",
                         path, got);
    if (magic[0] != 0 || magic[1] != 0)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': wrong magic number, first bytes are 0x%02X 0x%02X "
                         "where IDX files have 0x00 0x00; this is not an IDX file",
                         path, magic[0], magic[1]);

    idx->type_code = magic[2];
    if (type_size(idx->type_code) == 0)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': unknown type code 0x%02X; IDX defines 0x08 (unsigned "
                         "byte), 0x09 (signed byte), 0x0B (short), 0x0C (int), 0x0D (float) "
                         "and 0x0E (double)",
                         path, magic[2]);

    idx->n_dims = magic[3];
    if (idx->n_dims < 1 || idx->n_dims > MAX_DIMS)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': the header declares %d dimensions; this reader "
                         "accepts 1 to %d",
                         path, idx->n_dims, MAX_DIMS);

    size_t want = (size_t)idx->n_dims * DIM_BYTES;
    SGK_CHECK(read_bytes(file, path, dim_bytes, want, &got));
    if (got < want)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': truncated header, %d dimensions need %zu bytes of "
                         "sizes after the magic number but the file has %zu",
                         path, idx->n_dims, want, got);

    for (int i = 0; i < idx->n_dims; i++) {
        const unsigned char *b = dim_bytes + DIM_BYTES * i;
        uint32_t size = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
                        ((uint32_t)b[2] << 8) | (uint32_t)b[3];
        idx->dims[i] = (long)size;
    }
    return SGK_OK;
}

/* Read exactly `n_bytes` of payload. The buffer grows as data arrives, so a corrupt
 * header that declares gigabytes does not allocate them before the file runs out. */
static sgk_status read_payload(gzFile file, const char *path, size_t n_bytes,
                               unsigned char **payload, size_t *got)
{
    size_t capacity = 0;

    *payload = NULL;
    *got = 0;
    while (*got < n_bytes) {
        if (*got == capacity) {
            size_t grown = capacity == 0 ? READ_CHUNK : capacity * 2;
            if (grown > n_bytes || grown < capacity)
                grown = n_bytes;
            unsigned char *bigger = realloc(*payload, grown);
            if (!bigger)
                return sgk_error(SGK_ERR_IO,
                                 "IDX file '%s': out of memory for %zu bytes of payload",
                                 path, grown);
            *payload = bigger;
            capacity = grown;
        }

        size_t chunk = 0;
        SGK_CHECK(read_bytes(file, path, *payload + *got, capacity - *got, &chunk));
        *got += chunk;
        if (*got < capacity)
            break; /* end of data */
    }
    return SGK_OK;
}

/* Count the bytes after the declared payload; reading to the end also makes zlib
 * verify the gzip trailer (CRC and length). */
static sgk_status count_trailing(gzFile file, const char *path, size_t *extra)
{
    unsigned char buffer[1 << 16];
    size_t got = 0;

    *extra = 0;
    do {
        SGK_CHECK(read_bytes(file, path, buffer, sizeof buffer, &got));
        *extra += got;
    } while (got == sizeof buffer);
    return SGK_OK;
}

static sgk_status read_file(gzFile file, const char *path, sgk_idx *idx)
{
    char dims_text[128];
    size_t value_bytes = 0;
    size_t got = 0;
    size_t extra = 0;

    SGK_CHECK(read_header(file, path, idx));
    value_bytes = type_size(idx->type_code);
    format_dims(idx, dims_text, sizeof dims_text);
    SGK_CHECK(payload_size(idx, path, dims_text, value_bytes, &idx->n_bytes));

    SGK_CHECK(read_payload(file, path, idx->n_bytes, &idx->data, &got));
    if (got < idx->n_bytes)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': counts larger than the data, the header declares "
                         "%s values (%zu bytes of payload) but the file has %zu bytes "
                         "after the header",
                         path, dims_text, idx->n_bytes, got);

    SGK_CHECK(count_trailing(file, path, &extra));
    if (extra > 0)
        return sgk_error(SGK_ERR_DATA,
                         "IDX file '%s': payload longer than declared, the header declares "
                         "%s values (%zu bytes) but the file has %zu bytes after the header",
                         path, dims_text, idx->n_bytes, idx->n_bytes + extra);
    return SGK_OK;
}

sgk_status sgk_idx_read(const char *path, sgk_idx *idx)
{
    memset(idx, 0, sizeof *idx);

    errno = 0;
    gzFile file = gzopen(path, "rb");
    if (!file)
        return sgk_error(SGK_ERR_DATA, "cannot open IDX file '%s': %s", path,
                         errno ? strerror(errno) : "out of memory");

    sgk_status status = read_file(file, path, idx);
    int close_result = gzclose(file);

    if (status == SGK_OK && close_result != Z_OK)
        status = sgk_error(SGK_ERR_IO, "IDX file '%s': closing failed (zlib error %d)", path,
                           close_result);
    if (status != SGK_OK)
        sgk_idx_free(idx);
    return status;
}

void sgk_idx_free(sgk_idx *idx)
{
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
