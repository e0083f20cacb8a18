/* Helpers shared by the libFuzzer targets of this folder.
 *
 * The readers under test take a file path, so each target keeps one anonymous
 * in-memory file (memfd_create, Linux 3.17 and later) and hands the readers its
 * /proc/self/fd path. Opening that path gives a fresh file position, as opening a
 * regular file does, and nothing is left on disk when a target stops or crashes. */
#ifndef SGK_FUZZ_INPUT_H
#define SGK_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* An in-memory file and the path that opens it. */
typedef struct {
    int fd;
    char path[64];
} fuzz_file;

/* Create the file, or stop the target: without it no input can be tried. */
static void fuzz_file_create(fuzz_file *file, const char *name)
{
    file->fd = memfd_create(name, 0);
    if (file->fd < 0) {
        perror("fuzz: memfd_create");
        abort();
    }
    snprintf(file->path, sizeof file->path, "/proc/self/fd/%d", file->fd);
}

/* Replace the contents of `file` with the `size` bytes at `data`. */
static void fuzz_file_write(const fuzz_file *file, const void *data, size_t size)
{
    const char *bytes = data;
    size_t written = 0;

    if (ftruncate(file->fd, 0) != 0) {
        perror("fuzz: ftruncate");
        abort();
    }
    while (written < size) {
        ssize_t n = pwrite(file->fd, bytes + written, size - written, (off_t)written);
        if (n <= 0) {
            perror("fuzz: pwrite");
            abort();
        }
        written += (size_t)n;
    }
}

/* Report a broken contract and abort, which libFuzzer records as a crash together
 * with the input that caused it. */
#define FUZZ_REQUIRE(condition, ...)                                                               \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "fuzz: contract broken: %s\n  ", #condition);                          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
