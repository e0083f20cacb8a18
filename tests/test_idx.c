/* Tests of the IDX reader on files the test writes, plain and gzip-compressed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <zlib.h>

#include "sgk/dataset.h"

static char folder[] = "/tmp/sgk-test-idx-XXXXXX";

/* Values that zlib cannot compress much, so a truncated gzip copy ends inside the
 * deflate data rather than in the trailer. */
static unsigned char pseudo_random_byte(size_t i)
{
    return (unsigned char)((i * 2654435761u + 12345u) >> 13);
}

static void make_path(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", folder, name);
}

static int write_plain(const char *path, const unsigned char *bytes, size_t n)
{
    FILE *file = fopen(path, "wb");
    if (!file)
        return -1;
    size_t written = n > 0 ? fwrite(bytes, 1, n, file) : 0;
    return fclose(file) == 0 && written == n ? 0 : -1;
}

static int write_gzip(const char *path, const unsigned char *bytes, size_t n)
{
    gzFile file = gzopen(path, "wb");
    if (!file)
        return -1;
    int written = n > 0 ? gzwrite(file, bytes, (unsigned)n) : 0;
    return gzclose(file) == Z_OK && written == (int)n ? 0 : -1;
}

/* Build an IDX image in `bytes`: magic, sizes, then `payload_bytes` bytes of
 * pseudo-random payload. Returns the total length. */
static size_t build_idx(unsigned char *bytes, int type_code, int n_dims, const unsigned *dims,
                        size_t payload_bytes)
{
    size_t n = 0;

    bytes[n++] = 0;
    bytes[n++] = 0;
    bytes[n++] = (unsigned char)type_code;
    bytes[n++] = (unsigned char)n_dims;
    for (int i = 0; i < n_dims; i++) {
        bytes[n++] = (unsigned char)(dims[i] >> 24);
        bytes[n++] = (unsigned char)(dims[i] >> 16);
        bytes[n++] = (unsigned char)(dims[i] >> 8);
        bytes[n++] = (unsigned char)dims[i];
    }
    for (size_t k = 0; k < payload_bytes; k++)
        bytes[n++] = pseudo_random_byte(k);
    return n;
}

/* Read `path`, expect `expected` and a message that names the path and contains
 * `fragment` (NULL: no fragment check). */
static void expect_failure(const char *path, sgk_status expected, const char *fragment)
{
    sgk_idx idx;

    sgk_error_clear();
    sgk_status status = sgk_idx_read(path, &idx);
    CU_ASSERT_EQUAL(status, expected);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), path));
    if (fragment && !strstr(sgk_error_message(), fragment))
        fprintf(stderr, "\n    message lacks '%s': %s\n", fragment, sgk_error_message());
    if (fragment)
        CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), fragment));
    CU_ASSERT_PTR_NULL(idx.data);
    if (status == SGK_OK)
        sgk_idx_free(&idx);
}

static void check_valid(int compressed)
{
    const unsigned dims[3] = {5, 4, 3};
    unsigned char bytes[256];
    char path[512];
    sgk_idx idx;

    size_t n = build_idx(bytes, 0x08, 3, dims, 60);
    make_path(path, sizeof path, compressed ? "valid.gz" : "valid");
    CU_ASSERT_FATAL((compressed ? write_gzip(path, bytes, n) : write_plain(path, bytes, n)) == 0);

    CU_ASSERT_EQUAL_FATAL(sgk_idx_read(path, &idx), SGK_OK);
    CU_ASSERT_EQUAL(idx.type_code, 0x08);
    CU_ASSERT_EQUAL(idx.n_dims, 3);
    CU_ASSERT_EQUAL(idx.dims[0], 5);
    CU_ASSERT_EQUAL(idx.dims[1], 4);
    CU_ASSERT_EQUAL(idx.dims[2], 3);
    CU_ASSERT_EQUAL(idx.n_bytes, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx.data);
    CU_ASSERT_EQUAL(memcmp(idx.data, bytes + 16, 60), 0);
    sgk_idx_free(&idx);
    CU_ASSERT_PTR_NULL(idx.data);
}

static void test_valid_plain(void)
{
    check_valid(0);
}

static void test_valid_gzip(void)
{
    check_valid(1);
}

/* Multi-byte types keep their big-endian payload; n_bytes counts bytes. */
static void test_valid_double(void)
{
    const unsigned dims[2] = {2, 3};
    unsigned char bytes[128];
    char path[512];
    sgk_idx idx;

    size_t n = build_idx(bytes, 0x0E, 2, dims, 48);
    make_path(path, sizeof path, "doubles");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    CU_ASSERT_EQUAL_FATAL(sgk_idx_read(path, &idx), SGK_OK);
    CU_ASSERT_EQUAL(idx.type_code, 0x0E);
    CU_ASSERT_EQUAL(idx.n_bytes, 48);
    CU_ASSERT_EQUAL(memcmp(idx.data, bytes + 12, 48), 0);
    sgk_idx_free(&idx);
}

static void test_empty_file(void)
{
    char path[512];

    make_path(path, sizeof path, "empty");
    CU_ASSERT_FATAL(write_plain(path, NULL, 0) == 0);
    expect_failure(path, SGK_ERR_DATA, "empty");
}

static void test_short_magic(void)
{
    const unsigned char bytes[2] = {0, 0};
    char path[512];

    make_path(path, sizeof path, "short-magic");
    CU_ASSERT_FATAL(write_plain(path, bytes, sizeof bytes) == 0);
    expect_failure(path, SGK_ERR_DATA, "only 2 bytes");
}

static void test_wrong_magic(void)
{
    const unsigned dims[1] = {4};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 1, dims, 4);
    bytes[0] = 0x1F;
    bytes[1] = 0x8C;
    make_path(path, sizeof path, "wrong-magic");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "0x1F 0x8C");
}

static void test_unknown_type(void)
{
    const unsigned dims[1] = {4};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x0A, 1, dims, 4);
    make_path(path, sizeof path, "unknown-type");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "0x0A");
}

static void test_dimension_count(void)
{
    const unsigned dims[5] = {1, 1, 1, 1, 1};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 0, dims, 0);
    make_path(path, sizeof path, "zero-dims");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "0 dimensions");

    n = build_idx(bytes, 0x08, 5, dims, 1);
    make_path(path, sizeof path, "five-dims");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "5 dimensions");
}

/* Three dimensions need 12 bytes of sizes; the file stops after 6. */
static void test_truncated_dimensions(void)
{
    const unsigned dims[3] = {2, 3, 4};
    unsigned char bytes[64];
    char path[512];

    build_idx(bytes, 0x08, 3, dims, 0);
    make_path(path, sizeof path, "truncated-dims");
    CU_ASSERT_FATAL(write_plain(path, bytes, 4 + 6) == 0);
    expect_failure(path, SGK_ERR_DATA, "has 6");
}

static void test_truncated_after_header(void)
{
    const unsigned dims[3] = {2, 3, 4};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 3, dims, 0);
    make_path(path, sizeof path, "header-only");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "24 bytes of payload");
    expect_failure(path, SGK_ERR_DATA, "has 0 bytes");
}

static void test_counts_larger_than_data(void)
{
    const unsigned dims[3] = {2, 3, 4};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 3, dims, 10);
    make_path(path, sizeof path, "short-payload.gz");
    CU_ASSERT_FATAL(write_gzip(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "counts larger than the data");
    expect_failure(path, SGK_ERR_DATA, "has 10 bytes");
}

static void test_payload_longer_than_declared(void)
{
    const unsigned dims[3] = {2, 3, 4};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 3, dims, 29);
    make_path(path, sizeof path, "long-payload");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "has 29 bytes");
}

/* Four sizes of 2^32 - 1 declare about 2^128 values, more than size_t counts. */
static void test_size_overflow(void)
{
    const unsigned dims[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    unsigned char bytes[64];
    char path[512];

    size_t n = build_idx(bytes, 0x08, 4, dims, 8);
    make_path(path, sizeof path, "overflow");
    CU_ASSERT_FATAL(write_plain(path, bytes, n) == 0);
    expect_failure(path, SGK_ERR_DATA, "corrupt");
}

/* Compress a valid file, then keep only the first half of the compressed copy
 * (`truncate`), or flip the first byte of its CRC-32, 8 bytes from the end. */
static int write_damaged_gzip(const char *path, int truncate)
{
    const unsigned dims[1] = {4000};
    static unsigned char bytes[8192];
    static unsigned char compressed[16384];

    size_t n = build_idx(bytes, 0x08, 1, dims, 4000);
    if (write_gzip(path, bytes, n) != 0)
        return -1;

    FILE *file = fopen(path, "rb");
    if (!file)
        return -1;
    size_t length = fread(compressed, 1, sizeof compressed, file);
    fclose(file);
    if (length < 100)
        return -1;

    if (truncate)
        return write_plain(path, compressed, length / 2);
    compressed[length - 8] ^= 0xFF;
    return write_plain(path, compressed, length);
}

static void test_truncated_gzip(void)
{
    char path[512];

    make_path(path, sizeof path, "truncated.gz");
    CU_ASSERT_FATAL(write_damaged_gzip(path, 1) == 0);
    expect_failure(path, SGK_ERR_DATA, "gzip stream is truncated");
}

static void test_corrupt_gzip(void)
{
    char path[512];

    make_path(path, sizeof path, "corrupt.gz");
    CU_ASSERT_FATAL(write_damaged_gzip(path, 0) == 0);
    expect_failure(path, SGK_ERR_DATA, "gzip stream is corrupt");
}

static void test_missing_file(void)
{
    char path[512];

    make_path(path, sizeof path, "does-not-exist");
    expect_failure(path, SGK_ERR_DATA, "No such file");
}

static void remove_folder(void)
{
    static const char *const names[] = {
        "valid", "valid.gz", "doubles", "empty", "short-magic", "wrong-magic", "unknown-type",
        "zero-dims", "five-dims", "truncated-dims", "header-only", "short-payload.gz",
        "long-payload", "overflow", "truncated.gz", "corrupt.gz"};
    char path[512];

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        make_path(path, sizeof path, names[i]);
        unlink(path);
    }
    rmdir(folder);
}

int main(void)
{
    if (!mkdtemp(folder)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    CU_pSuite suite = CU_add_suite("idx", NULL, NULL);
    if (!suite ||
        !CU_add_test(suite, "valid plain file", test_valid_plain) ||
        !CU_add_test(suite, "valid gzip file", test_valid_gzip) ||
        !CU_add_test(suite, "valid double file", test_valid_double) ||
        !CU_add_test(suite, "empty file", test_empty_file) ||
        !CU_add_test(suite, "short magic number", test_short_magic) ||
        !CU_add_test(suite, "wrong magic number", test_wrong_magic) ||
        !CU_add_test(suite, "unknown type code", test_unknown_type) ||
        !CU_add_test(suite, "dimension count out of range", test_dimension_count) ||
        !CU_add_test(suite, "truncated dimension sizes", test_truncated_dimensions) ||
        !CU_add_test(suite, "truncated after header", test_truncated_after_header) ||
        !CU_add_test(suite, "counts larger than data", test_counts_larger_than_data) ||
        !CU_add_test(suite, "payload longer than declared", test_payload_longer_than_declared) ||
        !CU_add_test(suite, "size overflow", test_size_overflow) ||
        !CU_add_test(suite, "truncated gzip stream", test_truncated_gzip) ||
        !CU_add_test(suite, "corrupt gzip trailer", test_corrupt_gzip) ||
        !CU_add_test(suite, "missing file", test_missing_file)) {
        CU_cleanup_registry();
        return 1;
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    remove_folder();
    return failures == 0 ? 0 : 1;
}
