/* Restart snapshots (private to libsgk).
 *
 * A snapshot is a folder, by default `<output file>.ckpt`, holding a manifest, the resolved
 * configuration, and one binary file per rank with that rank's whole training state as a
 * list of named blocks. A new generation is written next to the old one, the manifest
 * is switched to it by an atomic rename, and only then are the old files removed, so a
 * run killed at any moment leaves one complete generation. */
#ifndef SGK_SNAPSHOT_H
#define SGK_SNAPSHOT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "sgk/status.h"

/* One named array of a rank's state. */
typedef struct {
    const char *name;
    void *data;
    size_t bytes;
} sgk_snapshot_block;

/* What the manifest records about the run that wrote the snapshot. */
typedef struct {
    long generation;
    int n_ranks;
    uint64_t data_hash;
    char version[32];
    char *config_ini;   /* resolved configuration, malloc'd */
} sgk_snapshot_manifest;

/* Collective. Write this rank's blocks as generation `generation`, then switch the
 * manifest to it and remove the previous generation's files. */
sgk_status sgk_snapshot_write(MPI_Comm comm, const char *folder, long generation,
                              const char *config_ini, uint64_t data_hash,
                              const sgk_snapshot_block *blocks, int n_blocks);

/* Read the manifest of `folder` (any rank, no communication). */
sgk_status sgk_snapshot_read_manifest(const char *folder, sgk_snapshot_manifest *manifest);
void sgk_snapshot_manifest_free(sgk_snapshot_manifest *manifest);

/* Read this rank's blocks of the manifest's generation into the given buffers; names,
 * order and sizes must match what was written. With prefix_only, read only the first
 * n_blocks blocks, without the checksum (which covers the whole file). */
sgk_status sgk_snapshot_read_blocks(const char *folder, long generation, int rank,
                                    sgk_snapshot_block *blocks, int n_blocks, int prefix_only);

/* FNV-1a hash of a byte range, chained through `hash` (start with SGK_HASH_START). */
#define SGK_HASH_START 0xcbf29ce484222325ULL
uint64_t sgk_hash_bytes(uint64_t hash, const void *data, size_t bytes);

/* Collective. Remove the snapshot folder after a completed run. */
void sgk_snapshot_remove(MPI_Comm comm, const char *folder);

#endif
