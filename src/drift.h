/* Per-step drift bookkeeping (private to libsgk).
 *
 * For each optimizer step k of a replica, with minibatch B_k, residuals r_i and the
 * step's attribution (effective learning rate eta and preconditioner P), the drift
 * contribution of training point i to evaluation point a is
 *     D_k(x_a, x_i) = (eta / B) Jbar_k(x_a) P J(x_i; w_k)^T r_i,
 * where Jbar_k is the evaluation point's Jacobian at w_k (path_nodes = 1) or its
 * Gauss-Legendre average along the step (path_nodes >= 2). The accumulator contains
 * sum_k D_k(x_a, x_i) for every pair, already weighted by 1/R, so no step-by-step
 * history is kept. */
#ifndef SGK_DRIFT_H
#define SGK_DRIFT_H

#include "sgk/mlp.h"
#include "sgk/status.h"

typedef struct {
    long n_samples;   /* N evaluation points */
    long n_train;     /* n training points */
    int n_outputs;    /* O */
    int capacity;     /* largest minibatch */
    double *pair;     /* N x n x O: accumulated D(x_a, x_i)[o] */
    double *step;     /* N x O x B: this step's contributions before scattering */
    double *product;  /* (N * O) x B: one layer's delta products */
    double *gram;     /* N x B: one layer's activation Gram plus bias term */
    double *tangent;  /* N x d_max: preconditioned path, one batch point's JVP */
    double *vector;   /* d_max x d_max + d_max: preconditioned path, one layer's P g_i */
} sgk_drift;

sgk_status sgk_drift_alloc(const sgk_mlp *net, long n_samples, long n_train, int capacity,
                           sgk_drift *drift);
void sgk_drift_free(sgk_drift *drift);

/* Add scale * J(eval) P J(batch)^T r for every evaluation point and batch point to the
 * pair accumulator. `eval` contains the evaluation points' factors at the node where their
 * Jacobian is taken; `batch_work` contains the minibatch's activations a[l-1] and, after
 * sgk_mlp_backward with residuals r, its residual-weighted deltas (delta[l] for l < L; r
 * itself for the last layer). `batch` maps minibatch rows to training indices.
 * `input_gram` (N x N, row-major) replaces the first layer's activation Gram when not
 * NULL; with NULL it is computed from the inputs, N B d_0 operations per step. `preconditioner` is NULL for P = I (the layer-factor path) or contains P's diagonal
 * (n_params entries; the explicit path, costing N B P operations). */
void sgk_drift_add_step(sgk_drift *drift, const sgk_mlp *net, const sgk_factors *eval,
                        const sgk_mlp_work *batch_work, const double *residual,
                        const long *batch, int batch_size, const double *input_gram,
                        const double *preconditioner, double scale);

/* Gauss-Legendre nodes in [0, 1] and weights summing to 1 for 1 <= count <= 16. With
 * count = 1 the only node is the left end s = 0, the first-order rule that takes the
 * Jacobian at w_k. */
void sgk_drift_nodes(int count, double *nodes, double *weights);

#endif
