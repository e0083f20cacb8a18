/* Tests of the optimizers (src/optimizer.c). Each update rule and its attribution
 * (effective learning rate and preconditioner) is compared with steps worked out by hand
 * on 3 parameters. Further tests cover SGLD noise statistics and reproducibility, state
 * reset on creation, argument checks, and a linear model that every optimizer trains
 * to a lower loss. Serial. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sgk/loss.h"
#include "sgk/mlp.h"
#include "sgk/optimizer.h"
#include "sgk/rng.h"

/* Relative tolerance between the module and the hand-written formulas. Both evaluate
 * the same expressions of O(1) numbers, possibly in another order, so they differ by a
 * few roundings of 1.1e-16 each; 1e-14 allows ~90 of them and no wrong formula. */
static const double TOL = 1e-14;

enum { N = 3 };

/* The hand-worked problem: start w0, gradients g1, g2, g3 and learning rate 0.1. The
 * gradients are short binary fractions, so the hand arithmetic below is easy to check. */
static const double W0[N] = { 0.5, -1.0, 2.0 };
static const double G1[N] = { 2.0, -4.0, 0.5 };
static const double G2[N] = { 1.0, 2.0, -1.0 };
static const double G3[N] = { -0.5, 0.0, 3.0 };
static const double LR = 0.1;

static int close_to(double actual, double expected)
{
    if (fabs(actual - expected) <= TOL * fmax(1.0, fabs(expected))) return 1;
    fprintf(stderr, "\n  got %.17g, expected %.17g\n", actual, expected);
    return 0;
}

static void check_vector(const double *actual, const double *expected, int n)
{
    for (int i = 0; i < n; i++) CU_ASSERT(close_to(actual[i], expected[i]));
}

/* Defaults with the optimizer and the hyperparameters of one test. */
static sgk_config make_config(sgk_optimizer_kind kind, double lr, double momentum, double beta2,
                              double epsilon, double temperature)
{
    sgk_config config;

    sgk_config_defaults(&config);
    config.train.optimizer = kind;
    config.train.lr = lr;
    config.train.momentum = momentum;
    config.train.beta2 = beta2;
    config.train.epsilon = epsilon;
    config.train.temperature = temperature;
    return config;
}

/* One step that also checks w_{k+1} = w_k + dw. */
static void step_and_check_w(sgk_optimizer *opt, double *w, const double *g, sgk_rng *noise,
                             double *dw, double *effective_lr, const double **preconditioner)
{
    double before[N];

    memcpy(before, w, sizeof before);
    sgk_optimizer_step(opt, w, g, noise, dw, effective_lr, preconditioner);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(w[i], before[i] + dw[i]);
}

/* ------------------------------------------------------------------------- */
/* Hand-worked steps. */

static void test_sgd_steps(void)
{
    sgk_config config = make_config(SGK_OPT_SGD, LR, 0.9, 0.999, 1e-8, 0.0);
    sgk_optimizer opt;
    double w[N], dw[N], effective_lr;
    const double *preconditioner = W0; /* any non-NULL value, to see it replaced */

    memcpy(w, W0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);

    /* dw1 = -0.1 g1 = -0.1 (2, -4, 0.5) */
    step_and_check_w(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
    check_vector(dw, (const double[]){ -0.2, 0.4, -0.05 }, N);
    check_vector(w, (const double[]){ 0.3, -0.6, 1.95 }, N);
    CU_ASSERT_EQUAL(effective_lr, LR);
    CU_ASSERT_PTR_NULL(preconditioner);

    /* dw2 = -0.1 g2 = -0.1 (1, 2, -1); the momentum key is ignored. */
    step_and_check_w(&opt, w, G2, NULL, dw, &effective_lr, &preconditioner);
    check_vector(dw, (const double[]){ -0.1, -0.2, 0.1 }, N);
    check_vector(w, (const double[]){ 0.2, -0.8, 2.05 }, N);
    CU_ASSERT_EQUAL(opt.step, 2);
    sgk_optimizer_free(&opt);
}

/* Heavy ball with momentum 0.5: v = 0.5 v + g, dw = -0.1 v. */
static void test_momentum_steps(void)
{
    sgk_config config = make_config(SGK_OPT_MOMENTUM, LR, 0.5, 0.999, 1e-8, 0.0);
    sgk_optimizer opt;
    double w[N], dw[N], effective_lr;
    const double *preconditioner = W0;

    memcpy(w, W0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);

    /* v1 = g1 = (2, -4, 0.5) */
    step_and_check_w(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
    check_vector(dw, (const double[]){ -0.2, 0.4, -0.05 }, N);
    /* g's weights 1, 0.5, 0.25, ... sum to 1 / (1 - 0.5) = 2, so 0.1 * 2. */
    CU_ASSERT(close_to(effective_lr, 0.2));
    CU_ASSERT_PTR_NULL(preconditioner);

    /* v2 = 0.5 (2, -4, 0.5) + (1, 2, -1) = (2, 0, -0.75) */
    step_and_check_w(&opt, w, G2, NULL, dw, &effective_lr, &preconditioner);
    check_vector(opt.velocity, (const double[]){ 2.0, 0.0, -0.75 }, N);
    check_vector(dw, (const double[]){ -0.2, 0.0, 0.075 }, N);

    /* v3 = 0.5 (2, 0, -0.75) + (-0.5, 0, 3) = (0.5, 0, 2.625) */
    step_and_check_w(&opt, w, G3, NULL, dw, &effective_lr, &preconditioner);
    check_vector(dw, (const double[]){ -0.05, 0.0, -0.2625 }, N);
    /* w3 = w0 - 0.1 (v1 + v2 + v3) = w0 - 0.1 (4.5, -4, 2.375) */
    check_vector(w, (const double[]){ 0.05, -0.6, 1.7625 }, N);
    CU_ASSERT(close_to(effective_lr, 0.2));
    sgk_optimizer_free(&opt);
}

/* Adam with beta1 = 0.5, beta2 = 0.75, epsilon = 0.25; epsilon is large so that a
 * misplaced epsilon (inside the root, or added to v) changes the result visibly. */
static void test_adam_steps(void)
{
    sgk_config config = make_config(SGK_OPT_ADAM, LR, 0.5, 0.75, 0.25, 0.0);
    sgk_optimizer opt;
    double w[N], dw[N], effective_lr;
    const double *preconditioner = NULL;

    memcpy(w, W0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);

    /* Step 1: m1 = 0.5 g1 = (1, -2, 0.25), v1 = 0.25 g1^2 = (1, 4, 0.0625).
     * Bias corrections 1 - 0.5 = 0.5 and 1 - 0.75 = 0.25 give mhat = g1 = (2, -4, 0.5)
     * and vhat = g1^2 = (4, 16, 0.25), so sqrt(vhat) + eps = (2.25, 4.25, 0.75). */
    step_and_check_w(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
    check_vector(opt.velocity, (const double[]){ 1.0, -2.0, 0.25 }, N);
    check_vector(opt.second_moment, (const double[]){ 1.0, 4.0, 0.0625 }, N);
    check_vector(dw, (const double[]){ -0.1 * 2.0 / 2.25, -0.1 * -4.0 / 4.25, -0.1 * 0.5 / 0.75 },
                 N);
    CU_ASSERT_EQUAL(effective_lr, LR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(preconditioner);
    check_vector(preconditioner, (const double[]){ 1.0 / 2.25, 1.0 / 4.25, 1.0 / 0.75 }, N);

    /* Step 2: m2 = 0.5 m1 + 0.5 g2 = (1, 0, -0.375),
     * v2 = 0.75 v1 + 0.25 g2^2 = (1, 4, 0.296875). Corrections 1 - 0.5^2 = 0.75 and
     * 1 - 0.75^2 = 0.4375 give mhat = (4/3, 0, -0.5) and vhat = v2 / 0.4375. */
    step_and_check_w(&opt, w, G2, NULL, dw, &effective_lr, &preconditioner);
    check_vector(opt.velocity, (const double[]){ 1.0, 0.0, -0.375 }, N);
    check_vector(opt.second_moment, (const double[]){ 1.0, 4.0, 0.296875 }, N);
    const double m_hat[N] = { 1.0 / 0.75, 0.0, -0.5 };
    const double v_hat[N] = { 1.0 / 0.4375, 4.0 / 0.4375, 0.296875 / 0.4375 };
    double expected_preconditioner[N], expected_dw[N];
    for (int i = 0; i < N; i++) {
        expected_preconditioner[i] = 1.0 / (sqrt(v_hat[i]) + 0.25);
        expected_dw[i] = -0.1 * m_hat[i] * expected_preconditioner[i];
    }
    check_vector(dw, expected_dw, N);
    check_vector(preconditioner, expected_preconditioner, N);
    CU_ASSERT_EQUAL(effective_lr, LR);
    sgk_optimizer_free(&opt);
}

/* RMSProp with beta2 = 0.75, epsilon = 0.25, no bias correction. */
static void test_rmsprop_steps(void)
{
    sgk_config config = make_config(SGK_OPT_RMSPROP, LR, 0.9, 0.75, 0.25, 0.0);
    sgk_optimizer opt;
    double w[N], dw[N], effective_lr;
    const double *preconditioner = NULL;

    memcpy(w, W0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);

    /* Step 1: v1 = 0.25 g1^2 = (1, 4, 0.0625), sqrt(v1) + eps = (1.25, 2.25, 0.5). */
    step_and_check_w(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
    check_vector(dw, (const double[]){ -0.1 * 2.0 / 1.25, -0.1 * -4.0 / 2.25, -0.1 * 0.5 / 0.5 },
                 N);
    CU_ASSERT_EQUAL(effective_lr, LR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(preconditioner);
    check_vector(preconditioner, (const double[]){ 1.0 / 1.25, 1.0 / 2.25, 1.0 / 0.5 }, N);

    /* Step 2: v2 = 0.75 v1 + 0.25 g2^2 = (1, 4, 0.296875). */
    step_and_check_w(&opt, w, G2, NULL, dw, &effective_lr, &preconditioner);
    double root3 = sqrt(0.296875) + 0.25;
    check_vector(dw, (const double[]){ -0.1 * 1.0 / 1.25, -0.1 * 2.0 / 2.25, -0.1 * -1.0 / root3 },
                 N);
    check_vector(preconditioner, (const double[]){ 1.0 / 1.25, 1.0 / 2.25, 1.0 / root3 }, N);
    sgk_optimizer_free(&opt);
}

/* dw may alias g: the rule reads g[p] before it writes dw[p]. */
static void test_dw_may_alias_g(void)
{
    sgk_config config = make_config(SGK_OPT_ADAM, LR, 0.5, 0.75, 0.25, 0.0);
    sgk_optimizer opt;
    double w[N], buffer[N], effective_lr;
    const double *preconditioner;

    memcpy(w, W0, sizeof w);
    memcpy(buffer, G1, sizeof buffer);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);
    sgk_optimizer_step(&opt, w, buffer, NULL, buffer, &effective_lr, &preconditioner);
    check_vector(buffer, (const double[]){ -0.1 * 2.0 / 2.25, -0.1 * -4.0 / 4.25,
                                           -0.1 * 0.5 / 0.75 }, N);
    sgk_optimizer_free(&opt);
}

/* ------------------------------------------------------------------------- */
/* SGLD. */

static void test_sgld_zero_temperature_is_sgd(void)
{
    sgk_config config = make_config(SGK_OPT_SGLD, LR, 0.9, 0.999, 1e-8, 0.0);
    sgk_optimizer opt;
    double w[N], dw[N], effective_lr;
    const double *preconditioner = W0;

    memcpy(w, W0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);
    /* No stream: at temperature 0 nothing is drawn. */
    step_and_check_w(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(dw[i], -LR * G1[i]);
    CU_ASSERT_EQUAL(effective_lr, LR);
    CU_ASSERT_PTR_NULL(preconditioner);
    sgk_optimizer_free(&opt);
}

/* Step k adds sqrt(2 lr T) xi with xi the first N normals of substream k of the noise
 * stream, whatever was drawn from the stream before. */
static void test_sgld_noise_from_substream(void)
{
    const double temperature = 0.02;
    const double scale = sqrt(2.0 * LR * temperature);
    sgk_config config = make_config(SGK_OPT_SGLD, LR, 0.9, 0.999, 1e-8, temperature);
    sgk_optimizer opt;
    sgk_rng noise, reference;
    double w[N], dw[N], expected[N], effective_lr;
    const double *preconditioner = W0;
    const double *gradients[2] = { G1, G2 };

    memcpy(w, W0, sizeof w);
    sgk_rng_init(&noise, 11, 3, SGK_RNG_NOISE);
    sgk_rng_init(&reference, 11, 3, SGK_RNG_NOISE);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);
    for (int k = 0; k < 2; k++) {
        sgk_rng_seek(&reference, (uint64_t)k);
        for (int i = 0; i < N; i++)
            expected[i] = -LR * gradients[k][i] + scale * sgk_rng_normal(&reference);
        (void)sgk_rng_normal(&noise); /* a stray draw that must not shift the noise */
        step_and_check_w(&opt, w, gradients[k], &noise, dw, &effective_lr, &preconditioner);
        check_vector(dw, expected, N);
        CU_ASSERT_EQUAL(effective_lr, LR);
        CU_ASSERT_PTR_NULL(preconditioner);
    }
    sgk_optimizer_free(&opt);
}

/* With g = 0, dw / sqrt(2 lr T) are the normals themselves. Over M = 20000 of them the
 * sample mean has standard deviation 1/sqrt(M) = 0.0071, the sample variance
 * sqrt(2/(M-1)) = 0.010, and the correlation of two steps' draws 1/sqrt(M). The bounds
 * are 5 standard deviations: a correct generator fails one with probability below 1e-6
 * (and the fixed seed makes the outcome the same on every run). */
static void test_sgld_noise_variance(void)
{
    enum { M = 20000 };
    const double lr = 0.5, temperature = 2.0;
    const double scale = sqrt(2.0 * lr * temperature);
    const double bound_mean = 5.0 / sqrt((double)M);
    const double bound_variance = 5.0 * sqrt(2.0 / (M - 1));
    sgk_config config = make_config(SGK_OPT_SGLD, lr, 0.9, 0.999, 1e-8, temperature);
    sgk_optimizer opt;
    sgk_rng noise;
    double *w = calloc(M, sizeof(double));
    double *g = calloc(M, sizeof(double));
    double *xi[2] = { malloc(M * sizeof(double)), malloc(M * sizeof(double)) };
    double effective_lr;
    const double *preconditioner;

    CU_ASSERT_FATAL(w && g && xi[0] && xi[1]);
    sgk_rng_init(&noise, 2026, 0, SGK_RNG_NOISE);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, M), SGK_OK);
    for (int k = 0; k < 2; k++) {
        double sum = 0.0, sum_squares = 0.0;

        sgk_optimizer_step(&opt, w, g, &noise, xi[k], &effective_lr, &preconditioner);
        for (long i = 0; i < M; i++) {
            xi[k][i] /= scale;
            sum += xi[k][i];
        }
        double mean = sum / M;
        for (long i = 0; i < M; i++) sum_squares += (xi[k][i] - mean) * (xi[k][i] - mean);
        double variance = sum_squares / (M - 1);
        CU_ASSERT(fabs(mean) < bound_mean);
        CU_ASSERT(fabs(variance - 1.0) < bound_variance);
        if (fabs(variance - 1.0) >= bound_variance) fprintf(stderr, "\n  variance %g\n", variance);
    }

    double cross = 0.0;
    for (long i = 0; i < M; i++) cross += xi[0][i] * xi[1][i];
    CU_ASSERT(fabs(cross / M) < bound_mean);

    sgk_optimizer_free(&opt);
    free(w);
    free(g);
    free(xi[0]);
    free(xi[1]);
}

/* Equal streams give bit-identical steps; another replica's stream gives other noise. */
static void test_sgld_reproducible(void)
{
    sgk_config config = make_config(SGK_OPT_SGLD, LR, 0.9, 0.999, 1e-8, 0.5);
    sgk_optimizer first, second, other;
    sgk_rng noise_first, noise_second, noise_other;
    double w_first[N], w_second[N], w_other[N];
    double dw_first[N], dw_second[N], dw_other[N], effective_lr;
    const double *preconditioner;
    int differs = 0;

    memcpy(w_first, W0, sizeof w_first);
    memcpy(w_second, W0, sizeof w_second);
    memcpy(w_other, W0, sizeof w_other);
    sgk_rng_init(&noise_first, 5, 1, SGK_RNG_NOISE);
    sgk_rng_init(&noise_second, 5, 1, SGK_RNG_NOISE);
    sgk_rng_init(&noise_other, 5, 2, SGK_RNG_NOISE);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&first, &config, N), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&second, &config, N), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&other, &config, N), SGK_OK);
    for (int k = 0; k < 3; k++) {
        sgk_optimizer_step(&first, w_first, G1, &noise_first, dw_first, &effective_lr,
                           &preconditioner);
        sgk_optimizer_step(&second, w_second, G1, &noise_second, dw_second, &effective_lr,
                           &preconditioner);
        sgk_optimizer_step(&other, w_other, G1, &noise_other, dw_other, &effective_lr,
                           &preconditioner);
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL(dw_first[i], dw_second[i]);
            CU_ASSERT_EQUAL(w_first[i], w_second[i]);
            if (dw_first[i] != dw_other[i]) differs = 1;
        }
    }
    CU_ASSERT(differs);
    sgk_optimizer_free(&first);
    sgk_optimizer_free(&second);
    sgk_optimizer_free(&other);
}

/* ------------------------------------------------------------------------- */
/* Creation. */

/* Creation zeroes the state even over garbage, and a re-created optimizer's first step
 * is again the first step of the rule, not a continuation. */
static void test_create_resets_state(void)
{
    static const sgk_optimizer_kind kinds[] = { SGK_OPT_MOMENTUM, SGK_OPT_ADAM, SGK_OPT_RMSPROP };
    /* First steps on g1 from the hand-worked cases above. */
    static const double first_dw[3][N] = {
        { -0.2, 0.4, -0.05 },
        { -0.1 * 2.0 / 2.25, -0.1 * -4.0 / 4.25, -0.1 * 0.5 / 0.75 },
        { -0.1 * 2.0 / 1.25, -0.1 * -4.0 / 2.25, -0.1 * 0.5 / 0.5 },
    };

    for (int k = 0; k < 3; k++) {
        sgk_config config = make_config(kinds[k], LR, 0.5, 0.75, 0.25, 0.0);
        sgk_optimizer opt;
        double w[N], dw[N], effective_lr;
        const double *preconditioner;

        memset(&opt, 0xA5, sizeof opt);
        CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);
        CU_ASSERT_EQUAL(opt.step, 0);
        for (int i = 0; i < N; i++) {
            if (opt.velocity) CU_ASSERT_EQUAL(opt.velocity[i], 0.0);
            if (opt.second_moment) CU_ASSERT_EQUAL(opt.second_moment[i], 0.0);
        }

        for (int round = 0; round < 2; round++) {
            memcpy(w, W0, sizeof w);
            sgk_optimizer_step(&opt, w, G1, NULL, dw, &effective_lr, &preconditioner);
            check_vector(dw, first_dw[k], N);
            sgk_optimizer_step(&opt, w, G2, NULL, dw, &effective_lr, &preconditioner);
            sgk_optimizer_free(&opt);
            CU_ASSERT_PTR_NULL(opt.velocity);
            CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, N), SGK_OK);
        }
        sgk_optimizer_free(&opt);
    }
}

/* Each rejected argument gives a usage error naming it and leaves `opt` zeroed. */
static void test_create_rejects_invalid(void)
{
    static const struct {
        const char *key;
        double lr, momentum, beta2, epsilon, temperature;
    } cases[] = {
        { "train.lr", 0.0, 0.9, 0.999, 1e-8, 0.0 },
        { "train.lr", NAN, 0.9, 0.999, 1e-8, 0.0 },
        { "train.momentum", 0.1, 1.0, 0.999, 1e-8, 0.0 },
        { "train.momentum", 0.1, -0.1, 0.999, 1e-8, 0.0 },
        { "train.beta2", 0.1, 0.9, 1.0, 1e-8, 0.0 },
        { "train.epsilon", 0.1, 0.9, 0.999, 0.0, 0.0 },
        { "train.epsilon", 0.1, 0.9, 0.999, INFINITY, 0.0 },
        { "train.temperature", 0.1, 0.9, 0.999, 1e-8, -1.0 },
    };
    sgk_optimizer opt;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sgk_config config = make_config(SGK_OPT_ADAM, cases[c].lr, cases[c].momentum,
                                        cases[c].beta2, cases[c].epsilon, cases[c].temperature);
        memset(&opt, 0xA5, sizeof opt);
        CU_ASSERT_EQUAL(sgk_optimizer_create(&opt, &config, N), SGK_ERR_USAGE);
        CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), cases[c].key));
        CU_ASSERT_PTR_NULL(opt.velocity);
        CU_ASSERT_PTR_NULL(opt.second_moment);
        sgk_optimizer_free(&opt);
    }

    sgk_config config = make_config(SGK_OPT_SGD, 0.1, 0.9, 0.999, 1e-8, 0.0);
    CU_ASSERT_EQUAL(sgk_optimizer_create(&opt, &config, 0), SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "at least 1"));
    config.train.optimizer = (sgk_optimizer_kind)7;
    CU_ASSERT_EQUAL(sgk_optimizer_create(&opt, &config, N), SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "train.optimizer"));
    sgk_optimizer_free(&opt);
    sgk_optimizer_free(&opt); /* twice is safe */
}

/* ------------------------------------------------------------------------- */
/* Training a linear model. */

enum { N_INPUTS = 3, N_POINTS = 32, N_STEPS = 300 };

/* splitmix64: test-local inputs, independent of sgk_rng. */
static double uniform_pm1(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return 2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0;
}

/* Full-batch training of f(x) = W x + b on noiseless targets of a linear teacher
 * y = 0.7 x_1 - 1.2 x_2 + 0.4 x_3 + 0.3, inputs uniform in [-1, 1]^3. The MSE is a
 * convex quadratic with minimum 0 whose Hessian has eigenvalues of about 1/3 (the
 * input variance) and up to about 1, so lr * eigenvalue < 2 and every run below is
 * stable. After 300 steps each run must be below 1% of the initial loss. That bound is
 * loose on purpose: the noise-free runs converge to rounding level, and SGLD's
 * stationary excess loss is about P T / 2 = 2e-6 for P = 4 parameters at T = 1e-6
 * (equipartition under the Gibbs density exp(-L / T)). */
static void test_training_lowers_loss(void)
{
    static const struct {
        const char *name;
        sgk_optimizer_kind kind;
        double lr, momentum, temperature;
    } runs[] = {
        { "sgd", SGK_OPT_SGD, 0.2, 0.0, 0.0 },
        { "momentum", SGK_OPT_MOMENTUM, 0.05, 0.9, 0.0 },
        { "adam", SGK_OPT_ADAM, 0.05, 0.9, 0.0 },
        { "rmsprop", SGK_OPT_RMSPROP, 0.01, 0.9, 0.0 },
        { "sgld", SGK_OPT_SGLD, 0.2, 0.0, 1e-6 },
    };
    double x[N_POINTS * N_INPUTS], y[N_POINTS], f[N_POINTS], r[N_POINTS];
    uint64_t state = 42;
    sgk_mlp net;
    sgk_mlp_work work;

    for (int i = 0; i < N_POINTS; i++) {
        double *xi = x + i * N_INPUTS;
        for (int d = 0; d < N_INPUTS; d++) xi[d] = uniform_pm1(&state);
        y[i] = 0.7 * xi[0] - 1.2 * xi[1] + 0.4 * xi[2] + 0.3;
    }
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&net, N_INPUTS, NULL, 0, 1, SGK_ACT_RELU,
                                         SGK_PARAM_STANDARD), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_work_alloc(&net, N_POINTS, &work), SGK_OK);

    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        sgk_config config = make_config(runs[k].kind, runs[k].lr, runs[k].momentum, 0.999,
                                        1e-8, runs[k].temperature);
        sgk_optimizer opt;
        sgk_rng init, noise;
        double w[N_INPUTS + 1], g[N_INPUTS + 1], dw[N_INPUTS + 1], effective_lr;
        const double *preconditioner;

        CU_ASSERT_EQUAL_FATAL(net.n_params, N_INPUTS + 1);
        sgk_rng_init(&init, 7, 0, SGK_RNG_INIT);
        sgk_rng_init(&noise, 7, 0, SGK_RNG_NOISE);
        sgk_mlp_init_params(&net, &init, w);
        CU_ASSERT_EQUAL_FATAL(sgk_optimizer_create(&opt, &config, net.n_params), SGK_OK);

        sgk_mlp_forward(&net, w, x, N_POINTS, &work, f);
        double initial = sgk_loss_eval(SGK_LOSS_MSE, f, y, N_POINTS, 1, r);
        double loss = initial;
        for (int step = 0; step < N_STEPS; step++) {
            sgk_mlp_backward(&net, w, r, N_POINTS, &work, g);
            for (long p = 0; p < net.n_params; p++) g[p] /= N_POINTS; /* mean gradient */
            sgk_optimizer_step(&opt, w, g, &noise, dw, &effective_lr, &preconditioner);
            sgk_mlp_forward(&net, w, x, N_POINTS, &work, f);
            loss = sgk_loss_eval(SGK_LOSS_MSE, f, y, N_POINTS, 1, r);
        }
        CU_ASSERT(initial > 0.1);
        CU_ASSERT(isfinite(loss));
        CU_ASSERT(loss < 0.01 * initial);
        if (!(loss < 0.01 * initial))
            fprintf(stderr, "\n  %s: loss %g after %d steps, initially %g\n", runs[k].name,
                    loss, N_STEPS, initial);
        sgk_optimizer_free(&opt);
    }
    sgk_mlp_work_free(&work);
}

/* ------------------------------------------------------------------------- */

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        { "sgd steps", test_sgd_steps },
        { "momentum steps", test_momentum_steps },
        { "adam steps", test_adam_steps },
        { "rmsprop steps", test_rmsprop_steps },
        { "dw may alias g", test_dw_may_alias_g },
        { "sgld zero temperature is sgd", test_sgld_zero_temperature_is_sgd },
        { "sgld noise from substream", test_sgld_noise_from_substream },
        { "sgld noise variance", test_sgld_noise_variance },
        { "sgld reproducible", test_sgld_reproducible },
        { "create resets state", test_create_resets_state },
        { "create rejects invalid", test_create_rejects_invalid },
        { "training lowers loss", test_training_lowers_loss },
    };
    CU_pSuite suite;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    suite = CU_add_suite("optimizer", NULL, NULL);
    if (!suite) {
        CU_cleanup_registry();
        return 1;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!CU_add_test(suite, tests[i].name, tests[i].function)) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures != 0 ? 1 : 0;
}
