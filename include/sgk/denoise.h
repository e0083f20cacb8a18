/* Denoising task ([train] task = denoise): a network D(x~, sigma) trained by denoising
 * score matching over L noise levels, and the per-level parts of its path kernel.
 *
 * Levels: sigma_1 = sigma_max > ... > sigma_L = sigma_min, geometric, stored 0-based
 * (level l = 0..L-1). The network takes the noisy point and sigma itself as its last
 * input, and step k trains one level l_k: every minibatch point x_i becomes
 * (x_i + sigma_{l_k} eps_i, sigma_{l_k}) with target x_i, under the squared loss. The
 * score estimate is s(x~, sigma) = (D(x~, sigma) - x~) / sigma^2. doc/generative.md
 * gives the kernels and profiles as implemented. */
#ifndef SGK_DENOISE_H
#define SGK_DENOISE_H

#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/kernel.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the denoise task adds to a run's results. Arrays are on every rank unless noted. */
typedef struct {
    int n_levels;                /* L; 0 when the run was not a denoise run */
    double *noise_level;         /* L: sigma_l, descending */
    double *level_time;          /* C x L: ensemble-mean diffusion time spent training level l
                                  * before checkpoint c */
    double *level_trace;         /* C x L: ensemble-mean trace over the evaluation points of the
                                  * instantaneous level-l kernel at checkpoint c */
    sgk_dmatrix *level_kernel;   /* L matrices N x N: K^(l), traced over outputs */
    long n_eig;                  /* eigenvalues kept per level */
    double *level_eigenvalues;   /* L x n_eig: spectrum of K^(l)[train, train] / n, descending */
    int n_bins;                  /* distance bins of the locality profile */
    double *bin_center;          /* n_bins: pair distance at the bin centre */
    double *bin_count;           /* n_bins: evaluation-point pairs in the bin */
    double *profile;             /* L x n_bins: mean K^(l)(x, x') over the bin's pairs */
    double *profile_normalized;  /* L x n_bins: mean of K^(l)(x, x') / sqrt(K^(l)(x, x) K^(l)(x', x')) */
    double *width;               /* L: distance where profile_normalized falls to half of its
                                  * first bin, linearly interpolated; NaN when it never does */
} sgk_denoise_results;

/* Noise standard deviation of level l (0-based): sigma_max (sigma_min / sigma_max)^(l / (L - 1)),
 * and sigma_max when L = 1. */
double sgk_denoise_sigma(const sgk_config *config, int level);

/* Replace the targets of a loaded evaluation set by its inputs (O = d), the clean points
 * the denoiser learns to return. Errors: SGK_ERR_IO when out of memory. */
sgk_status sgk_denoise_targets(sgk_dataset *data);

/* Draw the noise level of step `step` of `replica` and perturb its minibatch. x contains
 * m rows of d + 1 numbers, the clean point and then any value. Each row gets sigma eps
 * (eps standard normal, one per coordinate in row order) added to its first d entries,
 * and sigma as its last. Both draws come from substream `step` of the SGK_RNG_LEVEL
 * stream, keyed by the replica when [ensemble] vary contains batch, so a restart
 * reproduces them. x may be NULL to draw the level alone. Returns the level index. */
int sgk_denoise_perturb(const sgk_config *config, long replica, long step, double *x, long m,
                        int d);

void sgk_denoise_results_free(sgk_denoise_results *results);

#ifdef __cplusplus
}
#endif
#endif
