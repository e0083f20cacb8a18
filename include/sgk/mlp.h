/* Multilayer perceptron: forward pass, backward pass, tangent features.
 *
 * Layer l = 1..L maps a_{l-1} (width d_{l-1}) to h_l = c_l W_l a_{l-1} + beta_l b_l,
 * and a_l = phi(h_l) for hidden layers; the last layer is linear, f = h_L.
 * Standard parametrization: c_l = beta_l = 1, W ~ N(0, s^2 / d_{l-1}), b = 0.
 * NTK parametrization: c_l = s / sqrt(d_{l-1}), beta_l = SGK_NTK_BIAS_SCALE,
 * W, b ~ N(0, 1). The gain s^2 is 2 for relu and gelu, 1 for tanh and erf, and 1
 * for the last layer.
 *
 * Parameters are one flat vector: for each layer, W_l row-major (d_l x d_{l-1}),
 * then b_l. Batches of points are row-major arrays, one row per point. */
#ifndef SGK_MLP_H
#define SGK_MLP_H

#include "sgk/config.h"
#include "sgk/rng.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SGK_MAX_LAYERS (SGK_MAX_HIDDEN + 1)
#define SGK_NTK_BIAS_SCALE 0.1

typedef struct {
    int n_layers;                     /* L: hidden layers + 1 */
    int dims[SGK_MAX_LAYERS + 1];     /* d_0 (inputs) .. d_L (outputs) */
    sgk_activation activation;
    sgk_parametrization parametrization;
    double weight_scale[SGK_MAX_LAYERS]; /* c_l, index l-1 */
    double bias_scale[SGK_MAX_LAYERS];   /* beta_l, index l-1 */
    double init_std_w[SGK_MAX_LAYERS];   /* standard deviation of initial W_l */
    double init_std_b[SGK_MAX_LAYERS];   /* standard deviation of initial b_l */
    long w_offset[SGK_MAX_LAYERS];    /* start of W_l in the parameter vector */
    long b_offset[SGK_MAX_LAYERS];    /* start of b_l */
    long n_params;                    /* P */
} sgk_mlp;

/* Per-batch buffers for up to `capacity` points. h[l] and delta[l] exist for
 * l = 1..L and a[l] for l = 0..L-1; the outputs are h[L], so a[L], h[0] and
 * delta[0] are NULL. */
typedef struct {
    int capacity;
    double *h[SGK_MAX_LAYERS + 1];    /* pre-activations, h[l] is capacity x d_l */
    double *a[SGK_MAX_LAYERS + 1];    /* activations, a[0] is a copy of the inputs */
    double *delta[SGK_MAX_LAYERS + 1];/* backward sensitivities, capacity x d_l */
} sgk_mlp_work;

/* Tangent factors of m points, the layer-wise pieces of their Jacobians:
 * act[l-1] is m x d_{l-1} (a_{l-1}), and delta[l-1] is m x (O * d_l) with
 * delta[l-1][i][o][j] = d f_o(x_i) / d h_{l,j}. Then
 * d f_o / d W_l[j][k] = c_l delta[o][j] a[k] and d f_o / d b_l[j] = beta_l delta[o][j]. */
typedef struct {
    int m;                            /* points of the last sgk_mlp_tangent_factors call */
    int capacity;                     /* points the arrays were allocated for */
    int n_outputs;
    int n_layers;
    int dims[SGK_MAX_LAYERS + 1];
    double *act[SGK_MAX_LAYERS];
    double *delta[SGK_MAX_LAYERS];
} sgk_factors;

/* Fill `net` with the layer sizes, scales, initial standard deviations and
 * parameter offsets of an MLP with n_hidden hidden layers of `widths`. Errors:
 * SGK_ERR_DATA for fewer than one input or output, SGK_ERR_USAGE for a hidden-layer
 * count outside 0..SGK_MAX_HIDDEN, a width below 1 or an unknown activation or
 * parametrization. */
sgk_status sgk_mlp_create(sgk_mlp *net, int n_inputs, const int *widths, int n_hidden,
                          int n_outputs, sgk_activation activation,
                          sgk_parametrization parametrization);

/* Draw initial parameters from `rng` (SGK_RNG_INIT stream): one normal per weight,
 * then per bias, layer by layer in parameter-vector order. Biases with standard
 * deviation 0 (standard parametrization) are set to 0 without a draw. */
void sgk_mlp_init_params(const sgk_mlp *net, sgk_rng *rng, double *w);

sgk_status sgk_mlp_work_alloc(const sgk_mlp *net, int capacity, sgk_mlp_work *work);
void sgk_mlp_work_free(sgk_mlp_work *work);

/* Outputs f (m x O, may be NULL) of m points x (m x d_0); m <= work->capacity.
 * Keeps h and a in `work` for a following backward pass. */
void sgk_mlp_forward(const sgk_mlp *net, const double *w, const double *x, int m,
                     sgk_mlp_work *work, double *f);

/* grad = sum_i J(x_i)^T r_i for the m points of the last forward pass, where r is
 * m x O. `grad` (n_params) is overwritten. work->h and work->a are only read, so
 * several backward passes may follow one forward pass. */
void sgk_mlp_backward(const sgk_mlp *net, const double *w, const double *r, int m,
                      sgk_mlp_work *work, double *grad);

/* grad_x = the input gradients sum_o r_io d f_o(x_i) / d x_i of the m points of the last
 * forward pass, one row of d_0 entries per point, where r is m x O. With one output and
 * r = 1 this is grad_x f. work->h and work->a are only read; work->delta is overwritten,
 * as sgk_mlp_backward does. */
void sgk_mlp_input_gradient(const sgk_mlp *net, const double *w, const double *r, int m,
                            sgk_mlp_work *work, double *grad_x);

sgk_status sgk_factors_alloc(const sgk_mlp *net, int m, sgk_factors *factors);
void sgk_factors_free(sgk_factors *factors);

/* Run the forward pass and the per-output backward passes of m points, and fill
 * `factors` (allocated for at least m points; sets factors->m = m) and f (m x O,
 * may be NULL). m <= work->capacity. */
void sgk_mlp_tangent_factors(const sgk_mlp *net, const double *w, const double *x,
                             int m, sgk_mlp_work *work, sgk_factors *factors, double *f);

/* Explicit Jacobian, (m * O) x P row-major, row i * O + o: reference for tests
 * and the explicit path of small layers. It runs its own forward pass and one
 * backward pass per output, separate from sgk_mlp_tangent_factors. */
void sgk_mlp_jacobian(const sgk_mlp *net, const double *w, const double *x, int m,
                      sgk_mlp_work *work, double *jacobian);

#ifdef __cplusplus
}
#endif
#endif
