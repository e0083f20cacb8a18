/* Tangent-kernel blocks from layer factors, and the explicit-Jacobian reference. */
#ifndef SGK_TANGENT_H
#define SGK_TANGENT_H

#include "sgk/mlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* K[i][j] += alpha * tr_o Theta(x_i, x'_j) for the points of `fa` (rows) and `fb`
 * (columns), where
 *   tr_o Theta(x, x') = sum_l <delta_l(x), delta_l(x')> (c_l^2 <a_{l-1}(x), a_{l-1}(x')> + beta_l^2)
 * and <delta_l(x), delta_l(x')> sums over outputs and units. K is row-major with
 * leading dimension ldk. Every product is a dgemm (dsyrk when fa == fb). When
 * `input_gram` is not NULL it holds <x_i, x'_j> (fa->m x fb->m, leading dimension
 * ld_input) and replaces the first layer's activation product, which does not change
 * during training.
 * Passing the same pointer as fa and fb selects the symmetric path, which computes
 * the upper triangle and adds it to both triangles of K. Temporaries take at most
 * 3 x 256 x fb->m doubles. Errors: SGK_ERR_USAGE when the factors do not match `net`
 * or a leading dimension is below fb->m, SGK_ERR_IO when the temporaries cannot be
 * allocated (K is then unchanged). */
sgk_status sgk_tangent_gram(const sgk_mlp *net, const sgk_factors *fa, const sgk_factors *fb,
                            const double *input_gram, int ld_input, double alpha,
                            double *K, int ldk);

/* Add alpha * the same traced kernel, computed from explicit Jacobians (rows
 * i * O + o, P columns, as sgk_mlp_jacobian writes them), to K: one dgemm per output.
 * For tests and small layers. O * P must fit in an int. */
void sgk_tangent_gram_explicit(int ma, int mb, int n_outputs, long n_params,
                               const double *jac_a, const double *jac_b, double alpha,
                               double *K, int ldk);

/* K[i][j] += alpha * sum_o J_o(x_i) P J_o(x'_j)^T, the tangent kernel with the diagonal
 * preconditioner P (n_params entries, nonnegative) of Adam or RMSProp, traced over the
 * outputs, at parameters w, for the ma points x_a and mb points x_b (rows of the inputs).
 * P breaks the layer factorization, so this takes explicit Jacobians, scaled by sqrt(P),
 * in blocks of about 32 MB: ma mb O P operations. */
sgk_status sgk_tangent_gram_preconditioned(const sgk_mlp *net, const double *w,
                                           const double *x_a, int ma, const double *x_b, int mb,
                                           const double *preconditioner, double alpha,
                                           double *K, int ldk);

#ifdef __cplusplus
}
#endif
#endif
