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
 * during training. */
sgk_status sgk_tangent_gram(const sgk_mlp *net, const sgk_factors *fa, const sgk_factors *fb,
                            const double *input_gram, int ld_input, double alpha,
                            double *K, int ldk);

/* The same traced kernel from explicit Jacobians (rows i * O + o, P columns),
 * for tests. */
void sgk_tangent_gram_explicit(int ma, int mb, int n_outputs, long n_params,
                               const double *jac_a, const double *jac_b, double alpha,
                               double *K, int ldk);

#ifdef __cplusplus
}
#endif
#endif
