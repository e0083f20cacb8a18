/* NetCDF-4 output file. */
#ifndef SGK_NCIO_H
#define SGK_NCIO_H

#include <mpi.h>
#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/run.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Provenance stored as global attributes. */
typedef struct {
    const char *config_ini;   /* resolved configuration, INI text */
    const char *command_line;
    const char *start_time;   /* ISO 8601, UTC */
    const char *host;
} sgk_run_info;

/* Collective. Write every contract variable the run computed to `path`, with the
 * distributed kernel written in parallel by the ranks that own it. Failures are
 * SGK_ERR_IO naming the path and the NetCDF message. */
sgk_status sgk_output_write(const char *path, const sgk_config *config,
                            const sgk_dataset *data, const sgk_results *results,
                            const sgk_grid *grid, const sgk_run_info *info);

#ifdef __cplusplus
}
#endif
#endif
