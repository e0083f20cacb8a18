/* Spectrum of the training-set kernel operator, target projections, memory residuals
 * and generalization error of the ensemble (doc/theory-as-implemented.md, section
 * "Spectrum and generalization"). */
#ifndef SGK_ANALYSIS_H
#define SGK_ANALYSIS_H

#include "sgk/config.h"
#include "sgk/dataset.h"
#include "sgk/kernel.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a test error is measured, chosen from the targets of the training and test
 * points. */
typedef enum {
    SGK_ERROR_SIGN,   /* one output, every target -1 or +1: rate of sign(f) != y */
    SGK_ERROR_ARGMAX, /* two or more outputs, every target one-hot: rate of argmax f != argmax y */
    SGK_ERROR_MSE     /* otherwise: mean over outputs of (f - y)^2, averaged over points */
} sgk_error_kind;

/* Name of an error kind as stored in the output file: "sign error rate",
 * "argmax error rate" or "mean squared error". */
const char *sgk_error_kind_name(sgk_error_kind kind);

/* Generalization of the ensemble mean and of each replica. The struct owns its
 * arrays, and sgk_generalization_free releases them. */
typedef struct {
    sgk_error_kind kind;
    long n_test;
    double test_error_mean; /* error of the ensemble mean over the test points, NaN without any */
    long n_replicas;        /* entries of test_error_replica, 0 when it is NULL */
    double *test_error_replica; /* per replica, the same measure, NULL without replica outputs */
    double *point_error;        /* N entries: error of the ensemble mean at each training and
                                 * test point, NaN at out-of-distribution points */
} sgk_generalization;

/* Serial. Choose the error kind from the targets of the training and test points of
 * `data`. Then measure the error of `f_mean` (N x O, row-major, the ensemble mean at
 * the last checkpoint) and of each replica in `f_replica` (R x N x O, or NULL to
 * leave test_error_replica out). A non-finite output counts as an error under the
 * sign and argmax measures. Missing arrays are SGK_ERR_USAGE, and running out of
 * memory is SGK_ERR_IO. */
sgk_status sgk_generalization_compute(const sgk_dataset *data, const double *f_mean,
                                      const double *f_replica, long n_replicas,
                                      sgk_generalization *generalization);

void sgk_generalization_free(sgk_generalization *generalization);

/* Pearson correlation of x and y over the `count` pairs, or NaN when it is undefined:
 * fewer than two pairs, a non-finite value, or a constant x or y. */
double sgk_pearson_correlation(const double *x, const double *y, long count);

/* Everything sgk_analysis_run computes. n is the training-point count, k = n_eig the
 * computed eigenpairs, O the outputs and N the evaluation points. Arrays marked
 * "every rank" have the same values on every rank, and the generalization arrays are
 * set on rank 0 only. */
typedef struct {
    long n_train;               /* n */
    long n_samples;             /* N */
    int n_outputs;              /* O */
    long n_eig;                 /* k: the largest k eigenpairs were computed, k <= n */
    double tolerance;           /* tau, [spectrum] tolerance */
    double *eigenvalues;        /* every rank, k entries: eigenvalues of K_n = K[train, train] / n,
                                 * descending */
    int has_vectors;            /* `vectors` is kept ([spectrum] eigenvectors = yes) */
    sgk_dmatrix vectors;        /* n x n distributed; columns 0..k-1 are the eigenvectors in the
                                 * order of `eigenvalues`, columns k.. are zero */
    double eigen_residual;      /* max_j |K_n v_j - lambda_j v_j|_2 / max_j |lambda_j| */
    long n_negative;            /* eigenvalues below -tau * lambda_1 */
    double most_negative;       /* the smallest computed eigenvalue */
    long n_retained;            /* eigenvalues >= tau * lambda_1 and > 0: the rank of the
                                 * truncated pseudo-inverse */
    double effective_rank;      /* (sum lambda)^2 / sum lambda^2 over the k computed eigenvalues */
    int without_targets;        /* 1 when the evaluation set has no targets ([train] task =
                                 * gan): the target projections, alignments and
                                 * generalization were skipped and their arrays are NaN */
    double *target_coeff;       /* every rank, k x O: c_jo = v_j . y_o / |y_o| */
    double *captured_energy;    /* every rank, k x O: sum_{i <= j} c_io^2 */
    double *null_space_energy;  /* every rank, O: sum of c_jo^2 over lambda_j < tau * lambda_1 */
    double *remaining_energy;   /* every rank, O: 1 - sum_j c_jo^2, the target energy outside the
                                 * computed eigenvectors (0 up to rounding when k = n) */
    double *alignment;          /* every rank, O: y^T K y / (|K|_F |y|^2) on the training block */
    double *alignment_centered; /* every rank, O: the same with K -> H K H and y -> y - mean(y) */
    double *memory_residual;    /* every rank, N: s(x) = 1 - k_x^T K_n^+ k_x / (n K(x, x)) */
    int has_generalization;     /* the generalization numbers below were computed */
    sgk_generalization generalization; /* rank 0 */
    double residual_error_correlation; /* rank 0: Pearson correlation of memory_residual and
                                        * point_error over the test points */
} sgk_analysis;

/* Collective over the grid of `sgk`. Compute the spectrum of K_n = K[train, train] / n
 * from the distributed N x N kernel `sgk` (training points first, n = data->n_train):
 * all eigenpairs, or the largest [spectrum] eigenpairs; then the projections of the
 * training targets, the alignments, the memory residual of every evaluation point
 * and, when `f_mean_final` is given on rank 0, the generalization error (f_mean_final
 * N x O and f_replica_final R x N x O, row-major, rank 0 only; other ranks pass
 * NULL; f_replica_final may be NULL on rank 0 too). Logs the main numbers from rank 0.
 * Every rank returns the same status. An eigen-solver failure, or eigenpairs whose
 * residual exceeds SGK_EIGEN_RESIDUAL_LIMIT, is SGK_ERR_NUMERIC; inconsistent inputs
 * are SGK_ERR_USAGE, and running out of memory is SGK_ERR_IO. On failure `analysis`
 * has no arrays.
 * For all eigenpairs, the eigen-solver works in the training block of `sgk` itself:
 * its lower triangle is saved, overwritten and restored bitwise before the call
 * returns, whatever the status. A solver that changed the upper triangle is
 * SGK_ERR_NUMERIC, and `sgk` is then invalid. */
sgk_status sgk_analysis_run(const sgk_config *config, const sgk_dataset *data,
                            sgk_dmatrix *sgk, const double *f_mean_final,
                            const double *f_replica_final, long n_replicas, sgk_analysis *analysis);

/* Free the arrays and the eigenvector matrix, and zero `analysis`. Safe on a zeroed
 * struct. Not collective. */
void sgk_analysis_free(sgk_analysis *analysis);

/* Largest accepted eigenpair residual max_j |K_n v_j - lambda_j v_j| / max_j |lambda_j|.
 * A backward-stable solver gives about n * 2.2e-16, under 1e-10 for n up to 10^5,
 * while eigenvectors that missed the back-transformation to K_n give residuals near 1. */
#define SGK_EIGEN_RESIDUAL_LIMIT 1e-6

#ifdef __cplusplus
}
#endif
#endif
