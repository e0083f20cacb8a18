/* The denoise task inside a run (private to libsgk). */
#ifndef SGK_DENOISE_RUN_H
#define SGK_DENOISE_RUN_H

#include "assemble.h"
#include "sgk/denoise.h"
#include "sgk/run.h"

/* Build the evaluation set the network takes: every point followed by sigma_min, its last
 * input.
 * `conditioned` shares y, split, label and source_index with `data` and owns only x (free
 * it alone). Errors: SGK_ERR_USAGE when the targets are not the clean points. */
sgk_status sgk_denoise_condition_data(const sgk_config *config, const sgk_dataset *data,
                                      sgk_dataset *conditioned);

/* Compute replica `replica`'s trapezoid weights of the diffusion time spent on each level
 * (weight, C x L, summing over l to the plain trapezoid weights) and the time spent on
 * each level before each checkpoint (time, C x L), each step lasting `step_time`. The
 * steps' levels are drawn again with sgk_denoise_perturb. */
sgk_status sgk_denoise_level_weights(const sgk_config *config, int n_checkpoints,
                                     const long *checkpoint_step, double step_time,
                                     long replica, double *weight, double *time);

/* Collective. Assemble every K^(l) = (1/R') sum_r sum_c omega^(l)_{r,c} tr_o Theta_{r,c}
 * evaluated with sigma_l as the last input, their traces per checkpoint, and the total
 * kernel sum_l K^(l) into `total`; each step lasts `step_time` of diffusion time.
 * *stopped as in sgk_kernel_assemble. */
sgk_status sgk_denoise_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                const int *dropped, long n_accepted, const sgk_results *base,
                                double step_time, sgk_dmatrix *total, sgk_denoise_results *out,
                                double *seconds, int *stopped);

/* Collective. The level spectra (n_eig largest eigenvalues of each K^(l)[train, train] / n)
 * and the locality profiles; `data` is the conditioned evaluation set. */
sgk_status sgk_denoise_analyse(const sgk_config *config, const sgk_dataset *data,
                               long n_eig, sgk_denoise_results *out);

#endif
