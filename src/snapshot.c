#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sgk/sgk.h"
#include "snapshot.h"

static const char MAGIC[8] = { 'S', 'G', 'K', 'S', 'N', 'A', 'P', '1' };
static const char MANIFEST[] = "manifest";
static const char CONFIGURATION[] = "configuration.ini";

uint64_t sgk_hash_bytes(uint64_t hash, const void *data, size_t bytes)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < bytes; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static void rank_file(char *path, size_t size, const char *folder, long generation, int rank)
{
    snprintf(path, size, "%s/rank-%05d.g%ld.bin", folder, rank, generation);
}

static sgk_status write_all(FILE *file, const void *data, size_t bytes, const char *path,
                            uint64_t *hash)
{
    if (bytes > 0 && fwrite(data, 1, bytes, file) != bytes)
        return sgk_error(SGK_ERR_IO, "cannot write snapshot file '%s': %s", path, strerror(errno));
    *hash = sgk_hash_bytes(*hash, data, bytes);
    return SGK_OK;
}

/* Header, then for each block its name length, name, byte count and bytes, then the hash
 * of everything before it. */
static sgk_status write_rank_file(const char *path, long generation,
                                  const sgk_snapshot_block *blocks, int n_blocks)
{
    FILE *file = fopen(path, "wb");
    uint64_t hash = SGK_HASH_START;
    sgk_status status = SGK_OK;

    if (!file)
        return sgk_error(SGK_ERR_IO, "cannot create snapshot file '%s': %s", path, strerror(errno));
    status = write_all(file, MAGIC, sizeof MAGIC, path, &hash);
    if (status == SGK_OK) status = write_all(file, &generation, sizeof generation, path, &hash);
    if (status == SGK_OK) status = write_all(file, &n_blocks, sizeof n_blocks, path, &hash);
    for (int i = 0; status == SGK_OK && i < n_blocks; i++) {
        int name_length = (int)strlen(blocks[i].name);
        uint64_t bytes = blocks[i].bytes;
        status = write_all(file, &name_length, sizeof name_length, path, &hash);
        if (status == SGK_OK) status = write_all(file, blocks[i].name, (size_t)name_length, path, &hash);
        if (status == SGK_OK) status = write_all(file, &bytes, sizeof bytes, path, &hash);
        if (status == SGK_OK) status = write_all(file, blocks[i].data, blocks[i].bytes, path, &hash);
    }
    if (status == SGK_OK && fwrite(&hash, sizeof hash, 1, file) != 1)
        status = sgk_error(SGK_ERR_IO, "cannot write snapshot file '%s': %s", path, strerror(errno));
    if (fflush(file) != 0 || fsync(fileno(file)) != 0) {
        if (status == SGK_OK)
            status = sgk_error(SGK_ERR_IO, "cannot flush snapshot file '%s': %s", path,
                               strerror(errno));
    }
    if (fclose(file) != 0 && status == SGK_OK)
        status = sgk_error(SGK_ERR_IO, "cannot close snapshot file '%s': %s", path, strerror(errno));
    return status;
}

static sgk_status write_text_atomically(const char *folder, const char *name, const char *text)
{
    char path[SGK_PATH_LEN + 64], temporary[SGK_PATH_LEN + 80];
    FILE *file;

    snprintf(path, sizeof path, "%s/%s", folder, name);
    snprintf(temporary, sizeof temporary, "%s/%s.tmp", folder, name);
    file = fopen(temporary, "w");
    if (!file)
        return sgk_error(SGK_ERR_IO, "cannot create '%s': %s", temporary, strerror(errno));
    int failed = fputs(text, file) < 0;
    failed |= fflush(file) != 0 || fsync(fileno(file)) != 0;
    failed |= fclose(file) != 0;
    if (failed || rename(temporary, path) != 0)
        return sgk_error(SGK_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return SGK_OK;
}

/* Collective. Agree on the worst status; every rank returns it. */
static sgk_status agree_status(MPI_Comm comm, sgk_status status)
{
    int local = (int)status, worst = 0;

    MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm);
    if (worst != SGK_OK && local == SGK_OK) sgk_error_clear();
    return (sgk_status)worst;
}

sgk_status sgk_snapshot_write(MPI_Comm comm, const char *folder, long generation,
                              const char *config_ini, uint64_t data_hash,
                              const sgk_snapshot_block *blocks, int n_blocks)
{
    char path[SGK_PATH_LEN + 64], manifest[512];
    int rank, n_ranks;
    sgk_status status = SGK_OK;

    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &n_ranks);

    /* 1. Folder (rank 0), then every rank's file of the new generation. */
    if (rank == 0 && mkdir(folder, 0777) != 0 && errno != EEXIST)
        status = sgk_error(SGK_ERR_IO, "cannot create the snapshot folder '%s': %s", folder,
                           strerror(errno));
    status = agree_status(comm, status);
    if (status != SGK_OK) return status;
    rank_file(path, sizeof path, folder, generation, rank);
    status = agree_status(comm, write_rank_file(path, generation, blocks, n_blocks));
    if (status != SGK_OK) return status;

    /* 2. Switch the manifest: until this rename, the previous generation stays valid. */
    if (rank == 0) {
        snprintf(manifest, sizeof manifest,
                 "sgk-ensemble snapshot\nversion = %s\ngeneration = %ld\nn_ranks = %d\n"
                 "data_hash = %llu\n",
                 sgk_version(), generation, n_ranks, (unsigned long long)data_hash);
        status = write_text_atomically(folder, CONFIGURATION, config_ini);
        if (status == SGK_OK) status = write_text_atomically(folder, MANIFEST, manifest);
    }
    status = agree_status(comm, status);
    if (status != SGK_OK) return status;

    /* 3. The previous generation is no longer referenced. */
    if (generation > 1) {
        rank_file(path, sizeof path, folder, generation - 1, rank);
        unlink(path);
    }
    return SGK_OK;
}

sgk_status sgk_snapshot_read_manifest(const char *folder, sgk_snapshot_manifest *manifest)
{
    char path[SGK_PATH_LEN + 64], line[256];
    FILE *file;
    int fields = 0;

    memset(manifest, 0, sizeof *manifest);
    snprintf(path, sizeof path, "%s/%s", folder, MANIFEST);
    file = fopen(path, "r");
    if (!file)
        return sgk_error(SGK_ERR_USAGE, "cannot open the snapshot manifest '%s': %s; --restart "
                         "expects the folder <output file>.ckpt that an interrupted run left",
                         path, strerror(errno));
    if (!fgets(line, sizeof line, file) || strcmp(line, "sgk-ensemble snapshot\n") != 0) {
        fclose(file);
        return sgk_error(SGK_ERR_USAGE, "'%s' is not an sgk-ensemble snapshot manifest", path);
    }
    while (fgets(line, sizeof line, file)) {
        unsigned long long hash;
        if (sscanf(line, "version = %31s", manifest->version) == 1) fields |= 1;
        else if (sscanf(line, "generation = %ld", &manifest->generation) == 1) fields |= 2;
        else if (sscanf(line, "n_ranks = %d", &manifest->n_ranks) == 1) fields |= 4;
        else if (sscanf(line, "data_hash = %llu", &hash) == 1) {
            manifest->data_hash = hash;
            fields |= 8;
        }
    }
    fclose(file);
    if (fields != 15)
        return sgk_error(SGK_ERR_USAGE, "snapshot manifest '%s' is incomplete", path);

    /* The configuration, read whole. */
    snprintf(path, sizeof path, "%s/%s", folder, CONFIGURATION);
    file = fopen(path, "r");
    if (!file)
        return sgk_error(SGK_ERR_USAGE, "cannot open '%s': %s", path, strerror(errno));
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0) size = ftell(file);
    if (size < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return sgk_error(SGK_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    }
    manifest->config_ini = malloc((size_t)size + 1);
    if (!manifest->config_ini || fread(manifest->config_ini, 1, (size_t)size, file) != (size_t)size) {
        fclose(file);
        sgk_snapshot_manifest_free(manifest);
        return sgk_error(SGK_ERR_IO, "cannot read '%s'", path);
    }
    manifest->config_ini[size] = '\0';
    fclose(file);
    return SGK_OK;
}

void sgk_snapshot_manifest_free(sgk_snapshot_manifest *manifest)
{
    free(manifest->config_ini);
    manifest->config_ini = NULL;
}

static sgk_status read_exact(FILE *file, void *data, size_t bytes, const char *path,
                             uint64_t *hash)
{
    if (bytes > 0 && fread(data, 1, bytes, file) != bytes)
        return sgk_error(SGK_ERR_IO, "snapshot file '%s' is truncated", path);
    *hash = sgk_hash_bytes(*hash, data, bytes);
    return SGK_OK;
}

sgk_status sgk_snapshot_read_blocks(const char *folder, long generation, int rank,
                                    sgk_snapshot_block *blocks, int n_blocks, int prefix_only)
{
    char path[SGK_PATH_LEN + 64], magic[sizeof MAGIC], name[128];
    uint64_t hash = SGK_HASH_START, stored_hash;
    long stored_generation;
    int stored_blocks;
    sgk_status status;
    FILE *file;

    rank_file(path, sizeof path, folder, generation, rank);
    file = fopen(path, "rb");
    if (!file)
        return sgk_error(SGK_ERR_IO, "cannot open snapshot file '%s': %s", path,
                         strerror(errno));
    status = read_exact(file, magic, sizeof magic, path, &hash);
    if (status == SGK_OK && memcmp(magic, MAGIC, sizeof MAGIC) != 0)
        status = sgk_error(SGK_ERR_USAGE, "'%s' is not an sgk-ensemble snapshot file", path);
    if (status == SGK_OK) status = read_exact(file, &stored_generation, sizeof stored_generation, path, &hash);
    if (status == SGK_OK) status = read_exact(file, &stored_blocks, sizeof stored_blocks, path, &hash);
    if (status == SGK_OK && (stored_generation != generation
                             || (prefix_only ? stored_blocks < n_blocks : stored_blocks != n_blocks)))
        status = sgk_error(SGK_ERR_USAGE, "snapshot file '%s' holds generation %ld with %d blocks, "
                           "expected generation %ld with %d", path, stored_generation,
                           stored_blocks, generation, n_blocks);
    for (int i = 0; status == SGK_OK && i < n_blocks; i++) {
        int name_length;
        uint64_t bytes;
        status = read_exact(file, &name_length, sizeof name_length, path, &hash);
        if (status == SGK_OK && (name_length < 0 || name_length >= (int)sizeof name))
            status = sgk_error(SGK_ERR_IO, "snapshot file '%s' is corrupt", path);
        if (status == SGK_OK) status = read_exact(file, name, (size_t)name_length, path, &hash);
        if (status == SGK_OK) {
            name[name_length] = '\0';
            status = read_exact(file, &bytes, sizeof bytes, path, &hash);
        }
        if (status == SGK_OK && (strcmp(name, blocks[i].name) != 0 || bytes != blocks[i].bytes))
            status = sgk_error(SGK_ERR_USAGE, "snapshot file '%s': block %d is '%s' of %llu bytes, "
                               "expected '%s' of %zu bytes; the snapshot comes from another "
                               "configuration or version", path, i, name,
                               (unsigned long long)bytes, blocks[i].name, blocks[i].bytes);
        if (status == SGK_OK) status = read_exact(file, blocks[i].data, blocks[i].bytes, path, &hash);
    }
    if (status == SGK_OK && !prefix_only
        && (fread(&stored_hash, sizeof stored_hash, 1, file) != 1 || stored_hash != hash))
        status = sgk_error(SGK_ERR_IO, "snapshot file '%s' is corrupt (checksum mismatch)", path);
    fclose(file);
    return status;
}

void sgk_snapshot_remove(MPI_Comm comm, const char *folder)
{
    int rank;
    DIR *dir;
    struct dirent *entry;
    char path[SGK_PATH_LEN + 300];

    MPI_Barrier(comm);
    MPI_Comm_rank(comm, &rank);
    if (rank != 0) return;
    dir = opendir(folder);
    if (!dir) return;
    /* Only the files a snapshot writes: rank files, the manifest and the configuration. */
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (strncmp(name, "rank-", 5) == 0 || strncmp(name, MANIFEST, sizeof MANIFEST - 1) == 0
            || strncmp(name, CONFIGURATION, sizeof CONFIGURATION - 1) == 0) {
            snprintf(path, sizeof path, "%s/%s", folder, name);
            unlink(path);
        }
    }
    closedir(dir);
    rmdir(folder);
}
