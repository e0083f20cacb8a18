/* Multilayer perceptron: batched forward and backward passes and tangent factors.
 *
 * Every pass works on a row-major batch of m points, so each layer is one dgemm over
 * the whole batch. The per-output backward passes of the tangent factors stack the
 * O outputs of every point as O rows, (m * O) rows in all, which keeps them BLAS-3. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "sgk/mlp.h"

/* Strict C11 headers do not define M_SQRT1_2, M_2_SQRTPI or M_PI. */
static const double SQRT1_2 = 0.70710678118654752440084436210485;        /* 1 / sqrt(2) */
static const double TWO_OVER_SQRT_PI = 1.12837916709551257389615890312154; /* 2 / sqrt(pi) */
static const double INV_SQRT_2PI = 0.39894228040143267793994605993438;    /* 1 / sqrt(2 pi) */

/* Initialization gain s^2 of a hidden layer: 2 for the half-rectifying relu and gelu,
 * which keeps the second moment of the pre-activations constant across layers,
 * and 1 for tanh and erf, whose slope at 0 is close to 1. */
static double hidden_gain(sgk_activation activation)
{
    return (activation == SGK_ACT_RELU || activation == SGK_ACT_GELU) ? 2.0 : 1.0;
}

/* phi(x). relu passes NaN through, so a diverged replica shows NaN outputs. */
static double activate(sgk_activation activation, double x)
{
    switch (activation) {
    case SGK_ACT_RELU:
        return x < 0.0 ? 0.0 : x;
    case SGK_ACT_TANH:
        return tanh(x);
    case SGK_ACT_ERF:
        return erf(x);
    case SGK_ACT_GELU:
        return 0.5 * x * erfc(-x * SQRT1_2); /* x Phi(x), Phi the normal CDF */
    }
    return NAN;
}

/* phi'(x). The relu derivative at 0 is taken as 0. */
static double activation_derivative(sgk_activation activation, double x)
{
    switch (activation) {
    case SGK_ACT_RELU:
        return x > 0.0 ? 1.0 : 0.0;
    case SGK_ACT_TANH: {
        double t = tanh(x);
        return 1.0 - t * t;
    }
    case SGK_ACT_ERF:
        return TWO_OVER_SQRT_PI * exp(-x * x);
    case SGK_ACT_GELU:
        return 0.5 * erfc(-x * SQRT1_2) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    }
    return NAN;
}

sgk_status sgk_mlp_create(sgk_mlp *net, int n_inputs, const int *widths, int n_hidden,
                          int n_outputs, sgk_activation activation,
                          sgk_parametrization parametrization)
{
    long offset = 0;

    if (n_inputs < 1)
        return sgk_error(SGK_ERR_DATA, "network input size %d is invalid: the data must "
                         "have at least one feature", n_inputs);
    if (n_outputs < 1)
        return sgk_error(SGK_ERR_DATA, "network output size %d is invalid: the data must "
                         "have at least one output", n_outputs);
    if (n_hidden < 0 || n_hidden > SGK_MAX_HIDDEN)
        return sgk_error(SGK_ERR_USAGE, "model.widths lists %d hidden layers; between 0 "
                         "and %d are accepted", n_hidden, SGK_MAX_HIDDEN);
    for (int l = 0; l < n_hidden; l++)
        if (widths[l] < 1)
            return sgk_error(SGK_ERR_USAGE, "model.widths: hidden layer %d has width %d; "
                             "widths must be positive integers", l + 1, widths[l]);
    if (activation != SGK_ACT_RELU && activation != SGK_ACT_TANH
        && activation != SGK_ACT_ERF && activation != SGK_ACT_GELU)
        return sgk_error(SGK_ERR_USAGE, "model.activation code %d is invalid; accepted: "
                         "relu, tanh, erf, gelu", (int)activation);
    if (parametrization != SGK_PARAM_STANDARD && parametrization != SGK_PARAM_NTK)
        return sgk_error(SGK_ERR_USAGE, "model.parametrization code %d is invalid; "
                         "accepted: standard, ntk", (int)parametrization);

    memset(net, 0, sizeof *net);
    net->n_layers = n_hidden + 1;
    net->activation = activation;
    net->parametrization = parametrization;
    net->dims[0] = n_inputs;
    for (int l = 1; l <= n_hidden; l++) net->dims[l] = widths[l - 1];
    net->dims[net->n_layers] = n_outputs;

    for (int l = 1; l <= net->n_layers; l++) {
        int fan_in = net->dims[l - 1];
        double gain = l < net->n_layers ? hidden_gain(activation) : 1.0;
        double scale = sqrt(gain / fan_in);

        if (parametrization == SGK_PARAM_STANDARD) {
            net->weight_scale[l - 1] = 1.0;
            net->bias_scale[l - 1] = 1.0;
            net->init_std_w[l - 1] = scale;
            net->init_std_b[l - 1] = 0.0;
        } else {
            net->weight_scale[l - 1] = scale;
            net->bias_scale[l - 1] = SGK_NTK_BIAS_SCALE;
            net->init_std_w[l - 1] = 1.0;
            net->init_std_b[l - 1] = 1.0;
        }
        net->w_offset[l - 1] = offset;
        offset += (long)net->dims[l] * fan_in;
        net->b_offset[l - 1] = offset;
        offset += net->dims[l];
    }
    net->n_params = offset;
    return SGK_OK;
}

void sgk_mlp_init_params(const sgk_mlp *net, sgk_rng *rng, double *w)
{
    for (int l = 1; l <= net->n_layers; l++) {
        long n_weights = (long)net->dims[l] * net->dims[l - 1];
        double *weights = w + net->w_offset[l - 1];
        double *biases = w + net->b_offset[l - 1];
        double std_w = net->init_std_w[l - 1];
        double std_b = net->init_std_b[l - 1];

        for (long k = 0; k < n_weights; k++) weights[k] = std_w * sgk_rng_normal(rng);
        /* Zero biases draw nothing, so the standard parametrization's weights of
         * layer l + 1 start where layer l's weights ended in the stream. */
        for (int j = 0; j < net->dims[l]; j++)
            biases[j] = std_b > 0.0 ? std_b * sgk_rng_normal(rng) : 0.0;
    }
}

/* malloc of count doubles, at least one so that an empty batch still gets a
 * pointer that BLAS accepts. */
static double *alloc_doubles(size_t count)
{
    return malloc(sizeof(double) * (count > 0 ? count : 1));
}

sgk_status sgk_mlp_work_alloc(const sgk_mlp *net, int capacity, sgk_mlp_work *work)
{
    int n_layers = net->n_layers;
    size_t rows = (size_t)(capacity > 0 ? capacity : 0);
    int failed = 0;

    memset(work, 0, sizeof *work);
    if (capacity < 0)
        return sgk_error(SGK_ERR_USAGE, "MLP work buffers for %d points requested; the "
                         "capacity must be 0 or more", capacity);
    work->capacity = capacity;
    for (int l = 0; l <= n_layers; l++) {
        size_t count = rows * (size_t)net->dims[l];

        if (l < n_layers) failed |= !(work->a[l] = alloc_doubles(count));
        if (l > 0) {
            failed |= !(work->h[l] = alloc_doubles(count));
            failed |= !(work->delta[l] = alloc_doubles(count));
        }
    }
    if (failed) {
        sgk_mlp_work_free(work);
        return sgk_error(SGK_ERR_IO, "out of memory for MLP work buffers of %d points "
                         "(network widths up to layer %d)", capacity, n_layers);
    }
    return SGK_OK;
}

void sgk_mlp_work_free(sgk_mlp_work *work)
{
    for (int l = 0; l <= SGK_MAX_LAYERS; l++) {
        free(work->h[l]);
        free(work->a[l]);
        free(work->delta[l]);
    }
    memset(work, 0, sizeof *work);
}

void sgk_mlp_forward(const sgk_mlp *net, const double *w, const double *x, int m,
                     sgk_mlp_work *work, double *f)
{
    int n_layers = net->n_layers;

    if (m <= 0) return;
    assert(m <= work->capacity);
    memcpy(work->a[0], x, sizeof(double) * (size_t)m * net->dims[0]);
    for (int l = 1; l <= n_layers; l++) {
        int d_in = net->dims[l - 1];
        int d_out = net->dims[l];
        const double *weights = w + net->w_offset[l - 1];
        const double *biases = w + net->b_offset[l - 1];
        double bias_scale = net->bias_scale[l - 1];
        double *h = work->h[l];

        /* h_l = c_l a_{l-1} W_l^T + beta_l b_l, one row per point: the dgemm adds
         * the weight term onto rows preset to the bias term. */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d_out; j++) h[(size_t)i * d_out + j] = bias_scale * biases[j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, d_out, d_in,
                    net->weight_scale[l - 1], work->a[l - 1], d_in, weights, d_in, 1.0,
                    h, d_out);

        if (l < n_layers) {
            double *a = work->a[l];
            size_t count = (size_t)m * d_out;

            for (size_t k = 0; k < count; k++) a[k] = activate(net->activation, h[k]);
        }
    }
    if (f) memcpy(f, work->h[n_layers], sizeof(double) * (size_t)m * net->dims[n_layers]);
}

/* Multiply delta ((m * rows_per_point) x d) by phi'(h) (m x d) elementwise, where
 * delta rows i * rows_per_point .. i * rows_per_point + rows_per_point - 1 belong to
 * point i. Each derivative is evaluated once and reused for the point's rows. */
static void multiply_by_derivative(sgk_activation activation, const double *h, int m, int d,
                                   int rows_per_point, double *delta)
{
    for (int i = 0; i < m; i++) {
        const double *h_row = h + (size_t)i * d;
        double *block = delta + (size_t)i * rows_per_point * d;

        for (int j = 0; j < d; j++) {
            double slope = activation_derivative(activation, h_row[j]);

            for (int o = 0; o < rows_per_point; o++) block[(size_t)o * d + j] *= slope;
        }
    }
}

/* lower = (c_l upper W_l) .* phi'(h_{l-1}): the chain rule from layer l's
 * pre-activations (rows x d_l) down to layer l-1's (rows x d_{l-1}), for l >= 2.
 * rows = m * rows_per_point. */
static void propagate_delta(const sgk_mlp *net, const double *w, int l, const sgk_mlp_work *work,
                            int m, int rows_per_point, const double *upper, double *lower)
{
    int d_upper = net->dims[l];
    int d_lower = net->dims[l - 1];

    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m * rows_per_point, d_lower,
                d_upper, net->weight_scale[l - 1], upper, d_upper, w + net->w_offset[l - 1],
                d_lower, 0.0, lower, d_lower);
    multiply_by_derivative(net->activation, work->h[l - 1], m, d_lower, rows_per_point, lower);
}

void sgk_mlp_backward(const sgk_mlp *net, const double *w, const double *r, int m,
                      sgk_mlp_work *work, double *grad)
{
    const double *upper = r; /* d(sum_i r_i . f_i) / d h_l, m x d_l; h_L = f */

    if (m <= 0) {
        memset(grad, 0, sizeof(double) * (size_t)net->n_params);
        return;
    }
    for (int l = net->n_layers; l >= 1; l--) {
        int d_out = net->dims[l];
        int d_in = net->dims[l - 1];
        double bias_scale = net->bias_scale[l - 1];
        double *grad_b = grad + net->b_offset[l - 1];

        /* dW_l = c_l delta_l^T a_{l-1}, summed over the batch by the dgemm. */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d_out, d_in, m,
                    net->weight_scale[l - 1], upper, d_out, work->a[l - 1], d_in, 0.0,
                    grad + net->w_offset[l - 1], d_in);

        for (int j = 0; j < d_out; j++) grad_b[j] = 0.0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d_out; j++) grad_b[j] += upper[(size_t)i * d_out + j];
        for (int j = 0; j < d_out; j++) grad_b[j] *= bias_scale;

        if (l > 1) {
            propagate_delta(net, w, l, work, m, 1, upper, work->delta[l - 1]);
            upper = work->delta[l - 1];
        }
    }
}

void sgk_mlp_input_gradient(const sgk_mlp *net, const double *w, const double *r, int m,
                            sgk_mlp_work *work, double *grad_x)
{
    const double *upper = r; /* d(sum_i r_i . f_i) / d h_l, m x d_l */

    if (m <= 0) return;
    for (int l = net->n_layers; l >= 2; l--) {
        propagate_delta(net, w, l, work, m, 1, upper, work->delta[l - 1]);
        upper = work->delta[l - 1];
    }
    /* h_1 = c_1 W_1 x + beta_1 b_1, so d/dx = c_1 delta_1 W_1, one row per point. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, net->dims[0], net->dims[1],
                net->weight_scale[0], upper, net->dims[1], w + net->w_offset[0], net->dims[0],
                0.0, grad_x, net->dims[0]);
}

sgk_status sgk_factors_alloc(const sgk_mlp *net, int m, sgk_factors *factors)
{
    int n_layers = net->n_layers;
    int n_outputs = net->dims[n_layers];
    size_t rows = (size_t)(m > 0 ? m : 0);
    int failed = 0;

    memset(factors, 0, sizeof *factors);
    if (m < 0)
        return sgk_error(SGK_ERR_USAGE, "tangent factors for %d points requested; the "
                         "point count must be 0 or more", m);
    factors->m = m;
    factors->capacity = m;
    factors->n_outputs = n_outputs;
    factors->n_layers = n_layers;
    memcpy(factors->dims, net->dims, sizeof factors->dims);
    for (int l = 1; l <= n_layers; l++) {
        failed |= !(factors->act[l - 1] = alloc_doubles(rows * net->dims[l - 1]));
        failed |= !(factors->delta[l - 1] = alloc_doubles(rows * n_outputs * net->dims[l]));
    }
    if (failed) {
        sgk_factors_free(factors);
        return sgk_error(SGK_ERR_IO, "out of memory for the tangent factors of %d points "
                         "with %d outputs", m, n_outputs);
    }
    return SGK_OK;
}

void sgk_factors_free(sgk_factors *factors)
{
    for (int l = 0; l < SGK_MAX_LAYERS; l++) {
        free(factors->act[l]);
        free(factors->delta[l]);
    }
    memset(factors, 0, sizeof *factors);
}

void sgk_mlp_tangent_factors(const sgk_mlp *net, const double *w, const double *x,
                             int m, sgk_mlp_work *work, sgk_factors *factors, double *f)
{
    int n_layers = net->n_layers;
    int n_outputs = net->dims[n_layers];
    double *top = factors->delta[n_layers - 1];

    factors->m = m;
    if (m <= 0) return;
    assert(m <= factors->capacity);
    sgk_mlp_forward(net, w, x, m, work, f);
    for (int l = 1; l <= n_layers; l++)
        memcpy(factors->act[l - 1], work->a[l - 1],
               sizeof(double) * (size_t)m * net->dims[l - 1]);

    /* d f_o / d h_{L,j} is 1 for j = o and 0 otherwise: an O x O identity per point. */
    memset(top, 0, sizeof(double) * (size_t)m * n_outputs * n_outputs);
    for (size_t row = 0; row < (size_t)m * n_outputs; row++)
        top[row * n_outputs + row % n_outputs] = 1.0;

    /* The O backward passes run together: point i's row for output o is row
     * i * O + o of an (m * O) x d_l matrix, which is the layout of delta[l-1]. */
    for (int l = n_layers; l >= 2; l--)
        propagate_delta(net, w, l, work, m, n_outputs, factors->delta[l - 1],
                        factors->delta[l - 2]);
}

/* Write layer l's block of the Jacobian rows i * O + o, i < m, from the sensitivities
 * delta (m x d_l) of output o: c_l delta_j a_k for W_l[j][k] and beta_l delta_j for b_l[j]. */
static void fill_jacobian_layer(const sgk_mlp *net, int l, const sgk_mlp_work *work, int m,
                                int o, const double *delta, double *jacobian)
{
    int d_out = net->dims[l];
    int d_in = net->dims[l - 1];
    int n_outputs = net->dims[net->n_layers];
    double weight_scale = net->weight_scale[l - 1];
    double bias_scale = net->bias_scale[l - 1];

    for (int i = 0; i < m; i++) {
        double *row = jacobian + ((size_t)i * n_outputs + o) * net->n_params;
        double *row_w = row + net->w_offset[l - 1];
        double *row_b = row + net->b_offset[l - 1];
        const double *a = work->a[l - 1] + (size_t)i * d_in;
        const double *delta_i = delta + (size_t)i * d_out;

        for (int j = 0; j < d_out; j++) {
            double factor = weight_scale * delta_i[j];

            for (int k = 0; k < d_in; k++) row_w[(size_t)j * d_in + k] = factor * a[k];
            row_b[j] = bias_scale * delta_i[j];
        }
    }
}

void sgk_mlp_jacobian(const sgk_mlp *net, const double *w, const double *x, int m,
                      sgk_mlp_work *work, double *jacobian)
{
    int n_layers = net->n_layers;
    int n_outputs = net->dims[n_layers];

    if (m <= 0) return;
    sgk_mlp_forward(net, w, x, m, work, NULL);

    /* One batched backward pass per output, independent of sgk_mlp_tangent_factors
     * so that tests can check one against the other. work->delta[L] contains the seed. */
    for (int o = 0; o < n_outputs; o++) {
        const double *upper = work->delta[n_layers];

        memset(work->delta[n_layers], 0, sizeof(double) * (size_t)m * n_outputs);
        for (int i = 0; i < m; i++) work->delta[n_layers][(size_t)i * n_outputs + o] = 1.0;

        for (int l = n_layers; l >= 1; l--) {
            fill_jacobian_layer(net, l, work, m, o, upper, jacobian);
            if (l > 1) {
                propagate_delta(net, w, l, work, m, 1, upper, work->delta[l - 1]);
                upper = work->delta[l - 1];
            }
        }
    }
}
