/* NetCDF-4 output file. */
#ifndef SGK_NCIO_H
#define SGK_NCIO_H

#include <mpi.h>
#include "sgk/analysis.h"
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
 * distributed kernel written in parallel by the ranks that own it. Arrays that are
 * NULL in `results` on rank 0 (losses, f_mean, f_var, eigenvalues) and a kernel
 * with n = 0 are left out. Text attributes take rank 0's `info` and `config`.
 * NetCDF failures are SGK_ERR_IO naming the path, the variable and the NetCDF
 * message. Inputs that disagree (kernel size, rank 0's dimensions, a NULL array)
 * are SGK_ERR_USAGE and leave no file. Every rank returns the same status and
 * message, and a file whose writing failed is removed. */
sgk_status sgk_output_write(const char *path, const sgk_config *config,
                            const sgk_dataset *data, const sgk_results *results,
                            const sgk_grid *grid, const sgk_run_info *info);

/* Collective. sgk_output_write plus the variables of `analysis` (the result of
 * sgk_analysis_run on the same grid, passed on every rank; NULL writes none of them).
 * Its eigenvalues replace results->eigenvalues and define the eig dimension. The
 * eigenvectors are written in parallel from the distributed matrix when
 * analysis->has_vectors, and the generalization variables when
 * analysis->has_generalization. An analysis whose sizes differ from `data`, or that
 * lacks an array, is SGK_ERR_USAGE and leaves no file. */
sgk_status sgk_output_write_with_analysis(const char *path, const sgk_config *config,
                                          const sgk_dataset *data, const sgk_results *results,
                                          const sgk_analysis *analysis, const sgk_grid *grid,
                                          const sgk_run_info *info);

#ifdef __cplusplus
}
#endif
#endif
