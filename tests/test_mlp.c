/* Tests of the MLP (src/mlp.c) and the losses (src/loss.c): gradients, Jacobians and
 * residuals against central finite differences, initialization statistics, layout. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sgk/loss.h"
#include "sgk/mlp.h"
#include "sgk/rng.h"

/* Central-difference step for smooth functions of O(1) size: the truncation error
 * h^2 |f'''| / 6 is about 1e-13 and the rounding error eps |f| / h about 1e-9. */
static const double FD_STEP = 1e-6;

/* Allowed |finite difference - analytic| per unit of (1 + |analytic|): a hundred
 * times the rounding error above, and far below any error in a formula. */
static const double FD_TOL = 1e-7;

/* Pre-activations closer to 0 than this could cross the relu kink under a step of
 * FD_STEP; the relu cases require every hidden pre-activation to stay further away. */
static const double KINK_MARGIN = 1e-3;

static const sgk_activation ACTIVATIONS[] = { SGK_ACT_RELU, SGK_ACT_TANH, SGK_ACT_ERF,
                                              SGK_ACT_GELU };
static const sgk_parametrization PARAMETRIZATIONS[] = { SGK_PARAM_STANDARD, SGK_PARAM_NTK };

/* Hidden-layer shapes: depths 0, 1 and 3. */
static const int WIDTHS_DEPTH1[] = { 5 };
static const int WIDTHS_DEPTH3[] = { 4, 6, 5 };
static const struct {
    const int *widths;
    int n_hidden;
} SHAPES[] = { { NULL, 0 }, { WIDTHS_DEPTH1, 1 }, { WIDTHS_DEPTH3, 3 } };
static const int OUTPUT_COUNTS[] = { 1, 3 };

enum { N_INPUTS = 3, N_POINTS = 4 };

/* splitmix64: a test-local generator, so the test data do not depend on sgk_rng. */
static uint64_t test_state = 0x9e3779b97f4a7c15ULL;

static double uniform_pm1(void)
{
    uint64_t z = (test_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return 2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0;
}

static void fill_uniform(double *values, size_t count, double scale)
{
    for (size_t k = 0; k < count; k++) values[k] = scale * uniform_pm1();
}

/* Random parameters of the size of the initialization (uniform with the same variance
 * as init_std_w) and nonzero biases, so that the bias paths are exercised. */
static void random_params(const sgk_mlp *net, double *w)
{
    for (int l = 1; l <= net->n_layers; l++) {
        size_t n_weights = (size_t)net->dims[l] * net->dims[l - 1];

        fill_uniform(w + net->w_offset[l - 1], n_weights, sqrt(3.0) * net->init_std_w[l - 1]);
        fill_uniform(w + net->b_offset[l - 1], (size_t)net->dims[l], 0.5);
    }
}

/* Smallest |h| over the hidden pre-activations of the last forward pass. */
static double min_hidden_preactivation(const sgk_mlp *net, const sgk_mlp_work *work, int m)
{
    double smallest = INFINITY;

    for (int l = 1; l < net->n_layers; l++)
        for (size_t k = 0; k < (size_t)m * net->dims[l]; k++)
            if (fabs(work->h[l][k]) < smallest) smallest = fabs(work->h[l][k]);
    return smallest;
}

/* sum_i r_i . f(x_i; w): its gradient in w is sum_i J_i^T r_i. */
static double weighted_output_sum(const sgk_mlp *net, const double *w, const double *x,
                                  const double *r, int m, sgk_mlp_work *work, double *f)
{
    size_t count = (size_t)m * net->dims[net->n_layers];
    double sum = 0.0;

    sgk_mlp_forward(net, w, x, m, work, f);
    for (size_t k = 0; k < count; k++) sum += r[k] * f[k];
    return sum;
}

/* One network case: the checks below run on every combination of activation,
 * parametrization, depth and output count. */
typedef struct {
    sgk_mlp net;
    sgk_mlp_work work;
    double *w;
    double *x;
    double *r;
    double *f;
    double *grad;
    double *jacobian;
    char label[96];
} net_case;

static int case_open(net_case *c, sgk_activation activation, sgk_parametrization param,
                     const int *widths, int n_hidden, int n_outputs)
{
    memset(c, 0, sizeof *c);
    if (sgk_mlp_create(&c->net, N_INPUTS, widths, n_hidden, n_outputs, activation, param)
        != SGK_OK)
        return 0;
    if (sgk_mlp_work_alloc(&c->net, N_POINTS, &c->work) != SGK_OK) return 0;
    c->w = malloc(sizeof(double) * c->net.n_params);
    c->x = malloc(sizeof(double) * N_POINTS * N_INPUTS);
    c->r = malloc(sizeof(double) * N_POINTS * n_outputs);
    c->f = malloc(sizeof(double) * N_POINTS * n_outputs);
    c->grad = malloc(sizeof(double) * c->net.n_params);
    c->jacobian = malloc(sizeof(double) * N_POINTS * n_outputs * c->net.n_params);
    if (!c->w || !c->x || !c->r || !c->f || !c->grad || !c->jacobian) return 0;
    fill_uniform(c->r, (size_t)N_POINTS * n_outputs, 1.0);

    /* Finite differences across the relu kink would measure a one-sided slope, so
     * relu cases draw again until every hidden pre-activation is KINK_MARGIN from 0. */
    for (int attempt = 0; attempt < 100; attempt++) {
        random_params(&c->net, c->w);
        fill_uniform(c->x, N_POINTS * N_INPUTS, 1.5);
        sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
        if (activation != SGK_ACT_RELU
            || min_hidden_preactivation(&c->net, &c->work, N_POINTS) > KINK_MARGIN)
            break;
    }
    snprintf(c->label, sizeof c->label, "activation %d, parametrization %d, %d hidden, %d outputs",
             (int)activation, (int)param, n_hidden, n_outputs);
    return 1;
}

static void case_close(net_case *c)
{
    sgk_mlp_work_free(&c->work);
    free(c->w);
    free(c->x);
    free(c->r);
    free(c->f);
    free(c->grad);
    free(c->jacobian);
}

/* Run `check` on every network case. */
static void for_each_case(void (*check)(net_case *c))
{
    for (size_t a = 0; a < sizeof ACTIVATIONS / sizeof *ACTIVATIONS; a++)
        for (size_t p = 0; p < sizeof PARAMETRIZATIONS / sizeof *PARAMETRIZATIONS; p++)
            for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
                for (size_t o = 0; o < sizeof OUTPUT_COUNTS / sizeof *OUTPUT_COUNTS; o++) {
                    net_case c;
                    int ready = case_open(&c, ACTIVATIONS[a], PARAMETRIZATIONS[p],
                                          SHAPES[s].widths, SHAPES[s].n_hidden,
                                          OUTPUT_COUNTS[o]);

                    CU_ASSERT_FATAL(ready);
                    check(&c);
                    case_close(&c);
                }
}

/* A relu case is valid for finite differences only away from the kink; case_open
 * draws until it is, and this confirms that a draw succeeded. */
static void check_kink_margin(net_case *c)
{
    if (c->net.activation != SGK_ACT_RELU) return;
    sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
    CU_ASSERT(min_hidden_preactivation(&c->net, &c->work, N_POINTS) > KINK_MARGIN);
}

static void check_backward_fd(net_case *c)
{
    int failures = 0;

    check_kink_margin(c);
    sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
    sgk_mlp_backward(&c->net, c->w, c->r, N_POINTS, &c->work, c->grad);

    for (long p = 0; p < c->net.n_params; p++) {
        double saved = c->w[p];
        double plus, minus, fd;

        c->w[p] = saved + FD_STEP;
        plus = weighted_output_sum(&c->net, c->w, c->x, c->r, N_POINTS, &c->work, c->f);
        c->w[p] = saved - FD_STEP;
        minus = weighted_output_sum(&c->net, c->w, c->x, c->r, N_POINTS, &c->work, c->f);
        c->w[p] = saved;
        fd = (plus - minus) / (2.0 * FD_STEP);
        if (fabs(fd - c->grad[p]) > FD_TOL * (1.0 + fabs(c->grad[p]))) {
            if (failures++ == 0)
                fprintf(stderr, "gradient entry %ld: backward %.12g, finite difference %.12g (%s)\n",
                        p, c->grad[p], fd, c->label);
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_backward_matches_finite_differences(void)
{
    for_each_case(check_backward_fd);
}

static void check_jacobian_fd(net_case *c)
{
    int n_outputs = c->net.dims[c->net.n_layers];
    size_t n_out = (size_t)N_POINTS * n_outputs;
    double *f_plus = malloc(sizeof(double) * n_out);
    double *f_minus = malloc(sizeof(double) * n_out);
    int failures = 0;

    CU_ASSERT_FATAL(f_plus && f_minus);
    check_kink_margin(c);
    sgk_mlp_jacobian(&c->net, c->w, c->x, N_POINTS, &c->work, c->jacobian);

    for (long p = 0; p < c->net.n_params; p++) {
        double saved = c->w[p];

        c->w[p] = saved + FD_STEP;
        sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, f_plus);
        c->w[p] = saved - FD_STEP;
        sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, f_minus);
        c->w[p] = saved;
        for (size_t row = 0; row < n_out; row++) {
            double analytic = c->jacobian[row * c->net.n_params + p];
            double fd = (f_plus[row] - f_minus[row]) / (2.0 * FD_STEP);

            if (fabs(fd - analytic) > FD_TOL * (1.0 + fabs(analytic)) && failures++ == 0)
                fprintf(stderr, "Jacobian row %zu column %ld: %.12g, finite difference %.12g (%s)\n",
                        row, p, analytic, fd, c->label);
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    free(f_plus);
    free(f_minus);
}

static void test_jacobian_matches_finite_differences(void)
{
    for_each_case(check_jacobian_fd);
}

/* sum_i r_i . f(x_i) differentiated in each input coordinate x_ik, against the input
 * gradient; same step and tolerance as the parameter gradient above. */
static void check_input_gradient_fd(net_case *c)
{
    size_t n_inputs = (size_t)N_POINTS * N_INPUTS;
    double *grad_x = malloc(sizeof(double) * n_inputs);
    int failures = 0;

    CU_ASSERT_FATAL(grad_x != NULL);
    check_kink_margin(c);
    sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
    sgk_mlp_input_gradient(&c->net, c->w, c->r, N_POINTS, &c->work, grad_x);

    for (size_t k = 0; k < n_inputs; k++) {
        double saved = c->x[k];
        double plus, minus, fd;

        c->x[k] = saved + FD_STEP;
        plus = weighted_output_sum(&c->net, c->w, c->x, c->r, N_POINTS, &c->work, c->f);
        c->x[k] = saved - FD_STEP;
        minus = weighted_output_sum(&c->net, c->w, c->x, c->r, N_POINTS, &c->work, c->f);
        c->x[k] = saved;
        fd = (plus - minus) / (2.0 * FD_STEP);
        if (fabs(fd - grad_x[k]) > FD_TOL * (1.0 + fabs(grad_x[k]))) {
            if (failures++ == 0)
                fprintf(stderr, "input gradient entry %zu: analytic %.12g, finite difference "
                        "%.12g (%s)\n", k, grad_x[k], fd, c->label);
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    free(grad_x);
}

static void test_input_gradient_matches_finite_differences(void)
{
    for_each_case(check_input_gradient_fd);
}

/* backward and jacobian share only the forward pass; both compute sum_i J_i^T r_i
 * exactly up to summation order, so they agree to rounding: 1e-12 of the summed
 * magnitudes sum |J| |r| leaves room for a few hundred roundings. */
static void check_backward_jacobian(net_case *c)
{
    int n_outputs = c->net.dims[c->net.n_layers];
    long n_params = c->net.n_params;
    int failures = 0;

    sgk_mlp_jacobian(&c->net, c->w, c->x, N_POINTS, &c->work, c->jacobian);
    sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
    sgk_mlp_backward(&c->net, c->w, c->r, N_POINTS, &c->work, c->grad);

    for (long p = 0; p < n_params; p++) {
        double product = 0.0;
        double magnitude = 0.0;

        for (int row = 0; row < N_POINTS * n_outputs; row++) {
            double term = c->jacobian[(size_t)row * n_params + p] * c->r[row];

            product += term;
            magnitude += fabs(term);
        }
        if (fabs(product - c->grad[p]) > 1e-12 * (magnitude + 1e-300) && failures++ == 0)
            fprintf(stderr, "gradient entry %ld: backward %.17g, J^T r %.17g (%s)\n", p,
                    c->grad[p], product, c->label);
    }
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_backward_equals_jacobian_transpose(void)
{
    for_each_case(check_backward_jacobian);
}

/* Every Jacobian entry equals c_l delta_j a_k (weights) or beta_l delta_j (biases)
 * built from the tangent factors, which come from a separate backward pass; 1e-12
 * relative allows for the different order of the same roundings. */
static void check_factors_rows(net_case *c)
{
    int n_outputs = c->net.dims[c->net.n_layers];
    sgk_factors factors;
    double *f_factors = malloc(sizeof(double) * N_POINTS * n_outputs);
    int failures = 0;

    CU_ASSERT_FATAL(f_factors != NULL);
    CU_ASSERT_FATAL(sgk_factors_alloc(&c->net, N_POINTS, &factors) == SGK_OK);
    sgk_mlp_jacobian(&c->net, c->w, c->x, N_POINTS, &c->work, c->jacobian);
    sgk_mlp_forward(&c->net, c->w, c->x, N_POINTS, &c->work, c->f);
    sgk_mlp_tangent_factors(&c->net, c->w, c->x, N_POINTS, &c->work, &factors, f_factors);
    CU_ASSERT_EQUAL(factors.m, N_POINTS);
    CU_ASSERT_EQUAL(memcmp(c->f, f_factors, sizeof(double) * N_POINTS * n_outputs), 0);

    for (int i = 0; i < N_POINTS; i++)
        for (int o = 0; o < n_outputs; o++) {
            const double *row = c->jacobian + ((size_t)i * n_outputs + o) * c->net.n_params;

            for (int l = 1; l <= c->net.n_layers; l++) {
                int d_out = c->net.dims[l];
                int d_in = c->net.dims[l - 1];
                const double *delta = factors.delta[l - 1] + ((size_t)i * n_outputs + o) * d_out;
                const double *act = factors.act[l - 1] + (size_t)i * d_in;

                for (int j = 0; j < d_out; j++) {
                    double bias = c->net.bias_scale[l - 1] * delta[j];
                    double bias_ref = row[c->net.b_offset[l - 1] + j];

                    failures += fabs(bias - bias_ref) > 1e-12 * (1.0 + fabs(bias_ref));
                    for (int k = 0; k < d_in; k++) {
                        double weight = c->net.weight_scale[l - 1] * delta[j] * act[k];
                        double weight_ref = row[c->net.w_offset[l - 1] + (long)j * d_in + k];

                        failures += fabs(weight - weight_ref) > 1e-12 * (1.0 + fabs(weight_ref));
                    }
                }
            }
        }
    if (failures) fprintf(stderr, "%d factor entries differ from the Jacobian (%s)\n", failures, c->label);
    CU_ASSERT_EQUAL(failures, 0);
    sgk_factors_free(&factors);
    free(f_factors);
}

static void test_factors_reproduce_jacobian(void)
{
    for_each_case(check_factors_rows);
}

/* f(x) = phi(x) for a 1-1-1 network with unit weights, zero biases, standard
 * parametrization. gelu is checked against x (1 + erf(x / sqrt 2)) / 2, a different
 * form from the erfc one in mlp.c. */
static void test_activation_values(void)
{
    const int width = 1;
    const double inputs[] = { -2.5, -0.7, -1e-3, 0.0, 0.4, 1.9 };
    const int n_points = (int)(sizeof inputs / sizeof *inputs);

    for (size_t a = 0; a < sizeof ACTIVATIONS / sizeof *ACTIVATIONS; a++) {
        sgk_mlp net;
        sgk_mlp_work work;
        double w[4];
        double f[sizeof inputs / sizeof *inputs];

        CU_ASSERT_FATAL(sgk_mlp_create(&net, 1, &width, 1, 1, ACTIVATIONS[a],
                                       SGK_PARAM_STANDARD) == SGK_OK);
        CU_ASSERT_FATAL(net.n_params == 4);
        CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, n_points, &work) == SGK_OK);
        w[net.w_offset[0]] = 1.0;
        w[net.b_offset[0]] = 0.0;
        w[net.w_offset[1]] = 1.0;
        w[net.b_offset[1]] = 0.0;
        sgk_mlp_forward(&net, w, inputs, n_points, &work, f);

        for (int i = 0; i < n_points; i++) {
            double x = inputs[i];
            double expected = 0.0;

            switch (ACTIVATIONS[a]) {
            case SGK_ACT_RELU:
                expected = x > 0.0 ? x : 0.0;
                break;
            case SGK_ACT_TANH:
                expected = (exp(2.0 * x) - 1.0) / (exp(2.0 * x) + 1.0);
                break;
            case SGK_ACT_ERF:
                expected = erf(x);
                break;
            case SGK_ACT_GELU:
                expected = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
                break;
            }
            /* Different but exact formulas of the same function: a few ulp apart. */
            CU_ASSERT_DOUBLE_EQUAL(f[i], expected, 1e-14 * (1.0 + fabs(expected)));
        }
        sgk_mlp_work_free(&work);
    }
}

/* With layer 1's parameters 0 every relu pre-activation is exactly 0, where the
 * derivative is defined as 0: no gradient reaches layer 1 although W_2 = 1 passes
 * the residual down, and the output layer receives a_1 = 0. */
static void test_relu_derivative_at_zero(void)
{
    const int width = 4;
    const int m = 3;
    double x[3 * 2] = { 0.3, -1.2, 2.0, 0.5, -0.8, 1.1 };
    double r[3] = { 0.7, -0.2, 1.5 };
    sgk_mlp net;
    sgk_mlp_work work;
    double *w;
    double *grad;

    CU_ASSERT_FATAL(sgk_mlp_create(&net, 2, &width, 1, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD)
                    == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, m, &work) == SGK_OK);
    w = calloc((size_t)net.n_params, sizeof(double));
    grad = malloc(sizeof(double) * net.n_params);
    CU_ASSERT_FATAL(w && grad);
    for (int j = 0; j < width; j++) w[net.w_offset[1] + j] = 1.0;

    sgk_mlp_forward(&net, w, x, m, &work, NULL);
    sgk_mlp_backward(&net, w, r, m, &work, grad);
    for (long p = 0; p < net.b_offset[1]; p++) CU_ASSERT_EQUAL(grad[p], 0.0);
    /* d/db_2 of sum_i r_i f_i is sum_i r_i. */
    CU_ASSERT_DOUBLE_EQUAL(grad[net.b_offset[1]], r[0] + r[1] + r[2], 1e-15);

    sgk_mlp_work_free(&work);
    free(w);
    free(grad);
}

/* Compare the sample mean and variance of `count` values with N(0, std^2). The sample
 * variance of n normal draws has relative standard deviation sqrt(2 / (n - 1)), and
 * the mean has standard deviation std / sqrt(n). Bounds of six standard deviations
 * make a false failure about as likely as 2e-9 per check. */
static void check_normal_sample(const double *values, long count, double std)
{
    double mean = 0.0;
    double variance = 0.0;

    for (long k = 0; k < count; k++) mean += values[k];
    mean /= count;
    for (long k = 0; k < count; k++) variance += (values[k] - mean) * (values[k] - mean);
    variance /= count - 1;

    CU_ASSERT(fabs(mean) < 6.0 * std / sqrt((double)count));
    CU_ASSERT(fabs(variance / (std * std) - 1.0) < 6.0 * sqrt(2.0 / (count - 1)));
}

static void test_init_standard_deviation(void)
{
    const int widths[] = { 300, 200 };
    sgk_rng rng;

    for (size_t p = 0; p < sizeof PARAMETRIZATIONS / sizeof *PARAMETRIZATIONS; p++) {
        sgk_mlp net;
        double *w;

        CU_ASSERT_FATAL(sgk_mlp_create(&net, 400, widths, 2, 250, SGK_ACT_RELU,
                                       PARAMETRIZATIONS[p]) == SGK_OK);
        w = malloc(sizeof(double) * net.n_params);
        CU_ASSERT_FATAL(w != NULL);
        sgk_rng_init(&rng, 2026, 3, SGK_RNG_INIT);
        sgk_mlp_init_params(&net, &rng, w);

        for (int l = 1; l <= net.n_layers; l++) {
            double expected_w, expected_b;
            long n_weights = (long)net.dims[l] * net.dims[l - 1];
            const double *biases = w + net.b_offset[l - 1];

            /* Expected values from the header's definition, not from net's fields. */
            if (PARAMETRIZATIONS[p] == SGK_PARAM_STANDARD) {
                expected_w = sqrt((l < net.n_layers ? 2.0 : 1.0) / net.dims[l - 1]);
                expected_b = 0.0;
            } else {
                expected_w = 1.0;
                expected_b = 1.0;
            }
            CU_ASSERT_DOUBLE_EQUAL(net.init_std_w[l - 1], expected_w, 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(net.init_std_b[l - 1], expected_b, 1e-15);
            check_normal_sample(w + net.w_offset[l - 1], n_weights, expected_w);
            if (expected_b == 0.0) {
                for (int j = 0; j < net.dims[l]; j++) CU_ASSERT_EQUAL(biases[j], 0.0);
            } else {
                check_normal_sample(biases, net.dims[l], expected_b);
            }
        }
        free(w);
    }
}

/* Two layers' weights are not the same draws: a replica's parameters are one stream. */
static void test_init_layers_distinct(void)
{
    const int width = 3;
    sgk_mlp net;
    sgk_rng rng;
    double w[3 * 3 + 3 + 3 * 3 + 3];

    CU_ASSERT_FATAL(sgk_mlp_create(&net, 3, &width, 1, 3, SGK_ACT_TANH, SGK_PARAM_NTK)
                    == SGK_OK);
    CU_ASSERT_FATAL(net.n_params == (long)(sizeof w / sizeof *w));
    sgk_rng_init(&rng, 1, 0, SGK_RNG_INIT);
    sgk_mlp_init_params(&net, &rng, w);
    CU_ASSERT(memcmp(w + net.w_offset[0], w + net.w_offset[1], 9 * sizeof(double)) != 0);
}

/* Layout of a 4 -> 5 -> 3 -> 2 network, counted by hand:
 * W1 20 at 0, b1 5 at 20, W2 15 at 25, b2 3 at 40, W3 6 at 43, b3 2 at 49, P = 51. */
static void test_param_layout(void)
{
    const int widths[] = { 5, 3 };
    const long w_offsets[] = { 0, 25, 43 };
    const long b_offsets[] = { 20, 40, 49 };
    sgk_mlp net;

    CU_ASSERT_FATAL(sgk_mlp_create(&net, 4, widths, 2, 2, SGK_ACT_GELU, SGK_PARAM_NTK)
                    == SGK_OK);
    CU_ASSERT_EQUAL(net.n_layers, 3);
    CU_ASSERT_EQUAL(net.dims[0], 4);
    CU_ASSERT_EQUAL(net.dims[3], 2);
    CU_ASSERT_EQUAL(net.n_params, 51);
    for (int l = 0; l < 3; l++) {
        CU_ASSERT_EQUAL(net.w_offset[l], w_offsets[l]);
        CU_ASSERT_EQUAL(net.b_offset[l], b_offsets[l]);
    }

    /* NTK scales: c_l = s / sqrt(d_{l-1}), gain 2 for gelu, 1 for the output layer. */
    CU_ASSERT_DOUBLE_EQUAL(net.weight_scale[0], sqrt(2.0 / 4.0), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(net.weight_scale[1], sqrt(2.0 / 5.0), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(net.weight_scale[2], sqrt(1.0 / 3.0), 1e-15);
    for (int l = 0; l < 3; l++) CU_ASSERT_EQUAL(net.bias_scale[l], SGK_NTK_BIAS_SCALE);

    CU_ASSERT_FATAL(sgk_mlp_create(&net, 4, widths, 2, 2, SGK_ACT_TANH, SGK_PARAM_STANDARD)
                    == SGK_OK);
    CU_ASSERT_EQUAL(net.n_params, 51);
    for (int l = 0; l < 3; l++) {
        CU_ASSERT_EQUAL(net.weight_scale[l], 1.0);
        CU_ASSERT_EQUAL(net.bias_scale[l], 1.0);
    }
    CU_ASSERT_DOUBLE_EQUAL(net.init_std_w[1], sqrt(1.0 / 5.0), 1e-15);
}

static void test_create_rejects_invalid(void)
{
    const int widths[] = { 4, 0 };
    const int good_widths[] = { 4 };
    sgk_mlp net;

    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 3, widths, 2, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD),
                    SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "model.widths"));
    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 3, good_widths, SGK_MAX_HIDDEN + 1, 1, SGK_ACT_RELU,
                                   SGK_PARAM_STANDARD),
                    SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 0, good_widths, 1, 1, SGK_ACT_RELU, SGK_PARAM_STANDARD),
                    SGK_ERR_DATA);
    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 3, good_widths, 1, 0, SGK_ACT_RELU, SGK_PARAM_STANDARD),
                    SGK_ERR_DATA);
    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 3, good_widths, 1, 1, (sgk_activation)17,
                                   SGK_PARAM_STANDARD),
                    SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "model.activation"));
    CU_ASSERT_EQUAL(sgk_mlp_create(&net, 3, good_widths, 1, 1, SGK_ACT_RELU,
                                   (sgk_parametrization)5),
                    SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "model.parametrization"));
}

/* r_ij = m dL/df_ij, because the loss is the mean over the m points. */
static void check_residual_fd(sgk_loss_kind kind, const double *f0, const double *y, int m,
                              int n_outputs)
{
    size_t count = (size_t)m * n_outputs;
    double *f = malloc(sizeof(double) * count);
    double *r = malloc(sizeof(double) * count);

    CU_ASSERT_FATAL(f && r);
    memcpy(f, f0, sizeof(double) * count);
    CU_ASSERT(isfinite(sgk_loss_eval(kind, f, y, m, n_outputs, r)));
    for (size_t k = 0; k < count; k++) {
        double plus, minus, fd;

        f[k] = f0[k] + FD_STEP;
        plus = sgk_loss_eval(kind, f, y, m, n_outputs, NULL);
        f[k] = f0[k] - FD_STEP;
        minus = sgk_loss_eval(kind, f, y, m, n_outputs, NULL);
        f[k] = f0[k];
        fd = m * (plus - minus) / (2.0 * FD_STEP);
        if (fabs(fd - r[k]) > FD_TOL * (1.0 + fabs(r[k])))
            fprintf(stderr, "loss %d residual %zu: %.12g, finite difference %.12g\n", (int)kind,
                    k, r[k], fd);
        CU_ASSERT(fabs(fd - r[k]) <= FD_TOL * (1.0 + fabs(r[k])));
    }
    free(f);
    free(r);
}

static void test_loss_residuals_match_finite_differences(void)
{
    enum { M = 5, O = 3 };
    double f[M * O];
    double y_mse[M * O];
    double y_onehot[M * O] = { 0 };
    double y_sign[M];

    fill_uniform(f, M * O, 3.0);
    fill_uniform(y_mse, M * O, 2.0);
    for (int i = 0; i < M; i++) {
        y_onehot[i * O + i % O] = 1.0;
        y_sign[i] = i % 2 ? 1.0 : -1.0;
    }
    check_residual_fd(SGK_LOSS_MSE, f, y_mse, M, O);
    check_residual_fd(SGK_LOSS_XENT, f, y_onehot, M, O);
    check_residual_fd(SGK_LOSS_LOGISTIC, f, y_sign, M, 1);
}

/* Values against direct formulas: mean of |f - y|^2 / 2, and xent of two classes,
 * which equals the logistic loss of the logit difference. */
static void test_loss_values(void)
{
    const double f[] = { 1.0, -2.0, 0.5, 3.0 };
    const double y[] = { 0.0, -1.0, 2.0, 1.0 };
    const double onehot[] = { 1.0, 0.0, 0.0, 1.0 };
    const double logit_diff[] = { 1.0 - (-2.0), 3.0 - 0.5 };
    const double sign[] = { 1.0, 1.0 };
    double r[4];
    double mse = (1.0 + 1.0 + 2.25 + 4.0) / 2.0 / 2.0;
    double xent, logistic;

    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_MSE, f, y, 2, 2, r), mse, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r[2], 0.5 - 2.0, 1e-15);

    xent = sgk_loss_eval(SGK_LOSS_XENT, f, onehot, 2, 2, NULL);
    logistic = sgk_loss_eval(SGK_LOSS_LOGISTIC, logit_diff, sign, 2, 1, NULL);
    /* Same value through log-sum-exp and softplus: a few ulp apart. */
    CU_ASSERT_DOUBLE_EQUAL(xent, logistic, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(logistic, (log1p(exp(-3.0)) + log1p(exp(-2.5))) / 2.0, 1e-15);
}

/* At |f| = 800, exp(f) overflows; the stable forms must give the asymptotic values.
 * exp(-800) underflows to 0 in double, so these values are exact in double. */
static void test_loss_stable_at_large_outputs(void)
{
    const double f_pos = 800.0, f_neg = -800.0;
    const double y_plus = 1.0, y_minus = -1.0;
    const double f3[] = { 800.0, -800.0, 0.0 };
    const double y3[] = { 0.0, 1.0, 0.0 };
    const double f3b[] = { 800.0, 0.0, 0.0 };
    const double y3b[] = { 1.0, 0.0, 0.0 };
    double r[3];

    /* log(1 + exp(800)) = 800 to double precision; r = -y sigmoid(800) = 1. */
    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_LOGISTIC, &f_pos, &y_minus, 1, 1, r), 800.0,
                           1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r[0], 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_LOGISTIC, &f_neg, &y_plus, 1, 1, r), 800.0,
                           1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r[0], -1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_LOGISTIC, &f_pos, &y_plus, 1, 1, r), 0.0,
                           1e-300);
    CU_ASSERT(isfinite(r[0]) && fabs(r[0]) < 1e-300);

    /* lse(800, -800, 0) = 800, so the loss of class 1 is 800 - (-800). */
    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_XENT, f3, y3, 1, 3, r), 1600.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r[0], 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r[1], -1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r[2], 0.0, 1e-300);
    CU_ASSERT_DOUBLE_EQUAL(sgk_loss_eval(SGK_LOSS_XENT, f3b, y3b, 1, 3, r), 0.0, 1e-300);
    CU_ASSERT_DOUBLE_EQUAL(r[0], 0.0, 1e-300);
}

static void test_loss_nonfinite_propagates(void)
{
    const double y[] = { 1.0, 0.0 };
    const double f_nan[] = { NAN, 0.0 };
    const double f_inf[] = { INFINITY, 0.0 };
    const double f_minus_inf[] = { 0.0, -INFINITY };

    CU_ASSERT(isnan(sgk_loss_eval(SGK_LOSS_MSE, f_nan, y, 1, 2, NULL)));
    CU_ASSERT(isinf(sgk_loss_eval(SGK_LOSS_MSE, f_inf, y, 1, 2, NULL)));
    CU_ASSERT(isnan(sgk_loss_eval(SGK_LOSS_XENT, f_nan, y, 1, 2, NULL)));
    CU_ASSERT(!isfinite(sgk_loss_eval(SGK_LOSS_XENT, f_inf, y, 1, 2, NULL)));
    /* The formula alone would give 0 here: class 0 wins and class 1 has target 0. */
    CU_ASSERT(!isfinite(sgk_loss_eval(SGK_LOSS_XENT, f_minus_inf, y, 1, 2, NULL)));
    /* log(1 + exp(-inf)) = 0 by the formula alone. */
    CU_ASSERT(!isfinite(sgk_loss_eval(SGK_LOSS_LOGISTIC, f_inf, y, 1, 1, NULL)));
    CU_ASSERT(isnan(sgk_loss_eval(SGK_LOSS_LOGISTIC, f_nan, y, 1, 1, NULL)));
    CU_ASSERT(isnan(sgk_loss_eval(SGK_LOSS_MSE, f_nan, y, 0, 2, NULL)));
}

/* NaN parameters reach the outputs through every activation, relu included. */
static void test_forward_propagates_nan(void)
{
    const int width = 3;
    double x[2] = { 0.5, -0.5 };

    for (size_t a = 0; a < sizeof ACTIVATIONS / sizeof *ACTIVATIONS; a++) {
        sgk_mlp net;
        sgk_mlp_work work;
        double w[2 * 3 + 3 + 3 + 1];
        double f;

        CU_ASSERT_FATAL(sgk_mlp_create(&net, 2, &width, 1, 1, ACTIVATIONS[a],
                                       SGK_PARAM_STANDARD) == SGK_OK);
        CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, 1, &work) == SGK_OK);
        for (size_t k = 0; k < sizeof w / sizeof *w; k++) w[k] = 0.3;
        w[net.b_offset[0]] = NAN;
        sgk_mlp_forward(&net, w, x, 1, &work, &f);
        CU_ASSERT(isnan(f));
        sgk_mlp_work_free(&work);
    }
}

int main(void)
{
    CU_pSuite suite;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    suite = CU_add_suite("mlp", NULL, NULL);
    if (!suite
        || !CU_add_test(suite, "backward vs finite differences",
                        test_backward_matches_finite_differences)
        || !CU_add_test(suite, "jacobian vs finite differences",
                        test_jacobian_matches_finite_differences)
        || !CU_add_test(suite, "input gradient vs finite differences",
                        test_input_gradient_matches_finite_differences)
        || !CU_add_test(suite, "backward equals J^T r", test_backward_equals_jacobian_transpose)
        || !CU_add_test(suite, "factors reproduce jacobian", test_factors_reproduce_jacobian)
        || !CU_add_test(suite, "activation values", test_activation_values)
        || !CU_add_test(suite, "relu derivative at zero", test_relu_derivative_at_zero)
        || !CU_add_test(suite, "init standard deviation", test_init_standard_deviation)
        || !CU_add_test(suite, "init layers distinct", test_init_layers_distinct)
        || !CU_add_test(suite, "parameter layout", test_param_layout)
        || !CU_add_test(suite, "create rejects invalid", test_create_rejects_invalid)
        || !CU_add_test(suite, "forward propagates NaN", test_forward_propagates_nan)
        || !CU_add_test(suite, "loss residuals vs finite differences",
                        test_loss_residuals_match_finite_differences)
        || !CU_add_test(suite, "loss values", test_loss_values)
        || !CU_add_test(suite, "loss stable at |f| = 800", test_loss_stable_at_large_outputs)
        || !CU_add_test(suite, "loss non-finite propagates", test_loss_nonfinite_propagates)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
