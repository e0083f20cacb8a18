/* Kernel-evolution metrics: summaries of the ensemble-mean tangent kernel on the probe
 * set at every checkpoint. Serial: rank 0 calls it on kernels it already holds. */
#ifndef SGK_EVOLUTION_H
#define SGK_EVOLUTION_H

#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metrics of the probe kernel Theta_c, one entry per checkpoint c unless stated.
 * A metric is NaN where its formula divides by a zero norm or a zero time step, and at
 * every checkpoint whose kernel has a NaN or Inf entry. sgk_evolution_compute lists
 * each case. */
typedef struct {
    int n_checkpoints;
    double *trace;              /* tr Theta_c */
    double *frobenius;          /* |Theta_c|_F */
    double *alignment;          /* kernel-target alignment, summed over outputs */
    double *alignment_centered; /* the same with kernel and targets centered */
    double *distance;           /* 1 - cosine between Theta_0 and Theta_c */
    double *velocity;           /* |Theta_c - Theta_{c-1}|_F / (t_c - t_{c-1}): kernel
                                   per unit of diffusion time, NaN at c = 0 */
    double *effective_rank;     /* (sum lambda)^2 / sum lambda^2 */
    double *spread;             /* sqrt(sum_ij var_ij) / |Theta_c|_F */
    int n_top;
    double *top_eigenvalues; /* n_checkpoints x n_top, row-major, each row descending;
                                NULL when n_top = 0 */
} sgk_evolution;

/* Compute the kernel-evolution metrics of n_checkpoints probe kernels.
 *
 * probe_mean      n_checkpoints x P x P, row-major: the ensemble-mean kernel Theta_c,
 *                 traced over outputs and symmetric up to rounding.
 * probe_var       same shape: unbiased variance over replicas of each entry (NaN when
 *                 R = 1), or NULL when no variance is available (spread is then NaN).
 * y_probe         P x O, row-major: the probe points' targets.
 * checkpoint_time n_checkpoints diffusion times, non-decreasing.
 * n_top           how many of the largest eigenvalues to keep, 0 <= n_top <= P.
 *
 * Per checkpoint, with y_o the column of output o and Y = [y_1 .. y_O]:
 *   alignment  = sum_o y_o^T Theta y_o / (|Theta|_F sum_o |y_o|^2);
 *   centered   = the same with Theta replaced by H Theta H and y_o by H y_o, where
 *                H = I - 11^T / P subtracts the mean over probe points;
 *   distance   = 1 - <Theta_0, Theta_c>_F / (|Theta_0|_F |Theta_c|_F);
 *   velocity   = |Theta_c - Theta_{c-1}|_F / (t_c - t_{c-1});
 *   eff. rank  = (sum_k lambda_k)^2 / sum_k lambda_k^2 over the eigenvalues of the
 *                symmetric part (Theta + Theta^T) / 2, from LAPACK DSYEVD;
 *   spread     = sqrt(max(0, sum_ij var_ij)) / |Theta_c|_F.
 * A metric is NaN when its denominator is zero: a zero kernel (every ratio over
 * |Theta|_F, and distance when Theta_0 or Theta_c is zero), zero targets (alignment),
 * a constant kernel or targets (centered alignment), t_c = t_{c-1} (velocity). Every
 * metric that reads a kernel with a NaN or Inf entry is NaN.
 *
 * On success `evolution` owns new arrays that sgk_evolution_free releases. On failure
 * it is zeroed. Errors: SGK_ERR_USAGE for a missing array, a size out of range or
 * times that decrease or are not finite; SGK_ERR_IO when out of memory;
 * SGK_ERR_NUMERIC when DSYEVD fails. */
sgk_status sgk_evolution_compute(int n_checkpoints, long n_probe, int n_outputs,
                                 const double *probe_mean, const double *probe_var,
                                 const double *y_probe, const double *checkpoint_time, int n_top,
                                 sgk_evolution *evolution);

/* Release the arrays of `evolution` and zero it. NULL and a zeroed struct are safe. */
void sgk_evolution_free(sgk_evolution *evolution);

#ifdef __cplusplus
}
#endif
#endif
