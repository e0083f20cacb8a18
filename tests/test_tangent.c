/* Tests of the tangent-kernel blocks (src/tangent.c): the layer-factor Gram against
 * the Gram of explicit Jacobians, and closed forms of networks without hidden layers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sgk/mlp.h"
#include "sgk/tangent.h"

/* Both Grams sum the same products in different orders, so they differ by rounding
 * of order P * eps * max|K| (P < 200 here); 1e-12 of max|K| leaves a wide margin
 * while any missing or misplaced term would be of order max|K|. */
static const double GRAM_TOL = 1e-12;

/* splitmix64: a test-local generator, so the test data do not depend on sgk_rng. */
static uint64_t test_state = 0x2545f4914f6cdd1dULL;

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

static void random_params(const sgk_mlp *net, double *w, double scale)
{
    for (int l = 1; l <= net->n_layers; l++) {
        fill_uniform(w + net->w_offset[l - 1], (size_t)net->dims[l] * net->dims[l - 1],
                     scale * sqrt(3.0) * net->init_std_w[l - 1]);
        fill_uniform(w + net->b_offset[l - 1], (size_t)net->dims[l], 0.5 * scale);
    }
}

static double max_abs(const double *values, size_t count)
{
    double largest = 0.0;

    for (size_t k = 0; k < count; k++)
        if (fabs(values[k]) > largest) largest = fabs(values[k]);
    return largest;
}

/* <x_i, x'_j> by plain loops, independent of the BLAS calls under test. */
static void input_gram_loops(const double *xa, int ma, const double *xb, int mb, int d,
                             double *gram)
{
    for (int i = 0; i < ma; i++)
        for (int j = 0; j < mb; j++) {
            double sum = 0.0;

            for (int k = 0; k < d; k++) sum += xa[(size_t)i * d + k] * xb[(size_t)j * d + k];
            gram[(size_t)i * mb + j] = sum;
        }
}

typedef struct {
    int n_inputs;
    const int *widths;
    int n_hidden;
    int n_outputs;
    sgk_activation activation;
    int ma, mb;
} gram_shape;

static const int WIDTHS_A[] = { 6 };
static const int WIDTHS_B[] = { 5, 7, 4 };
static const int WIDTHS_C[] = { 3 };

static const gram_shape SHAPES[] = {
    { 3, NULL, 0, 1, SGK_ACT_TANH, 5, 7 },
    { 4, WIDTHS_A, 1, 1, SGK_ACT_RELU, 6, 4 },
    { 4, WIDTHS_A, 1, 3, SGK_ACT_GELU, 5, 8 },
    { 3, WIDTHS_B, 3, 2, SGK_ACT_ERF, 7, 6 },
    { 5, WIDTHS_B, 3, 4, SGK_ACT_TANH, 3, 9 },
    /* More rows than one panel of sgk_tangent_gram (256), so panels and their
     * remainders are covered in both the rectangular and the symmetric path. */
    { 2, WIDTHS_C, 1, 2, SGK_ACT_GELU, 600, 300 },
};

/* Fill K with the same random start in both kernels, add alpha times the traced
 * tangent kernel through factors and through explicit Jacobians, and compare. */
static void check_gram(const gram_shape *shape, sgk_parametrization param, int symmetric,
                       int with_input_gram)
{
    const double alpha = 0.7;
    sgk_mlp net;
    sgk_mlp_work work;
    sgk_factors fa, fb;
    int ma = shape->ma;
    int mb = symmetric ? ma : shape->mb;
    int O = shape->n_outputs;
    int d0 = shape->n_inputs;
    int capacity = ma > mb ? ma : mb;
    double *w, *xa, *xb, *jac_a, *jac_b, *k_factors, *k_explicit, *gram = NULL;
    double scale, largest_diff = 0.0;

    CU_ASSERT_FATAL(sgk_mlp_create(&net, d0, shape->widths, shape->n_hidden, O,
                                   shape->activation, param) == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, capacity, &work) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&net, capacity, &fa) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&net, capacity, &fb) == SGK_OK);
    w = malloc(sizeof(double) * net.n_params);
    xa = malloc(sizeof(double) * ma * d0);
    xb = malloc(sizeof(double) * mb * d0);
    jac_a = malloc(sizeof(double) * ma * O * net.n_params);
    jac_b = malloc(sizeof(double) * mb * O * net.n_params);
    k_factors = malloc(sizeof(double) * ma * mb);
    k_explicit = malloc(sizeof(double) * ma * mb);
    if (with_input_gram) gram = malloc(sizeof(double) * ma * mb);
    CU_ASSERT_FATAL(w && xa && xb && jac_a && jac_b && k_factors && k_explicit
                    && (gram || !with_input_gram));

    random_params(&net, w, 1.0);
    fill_uniform(xa, (size_t)ma * d0, 1.5);
    if (symmetric)
        memcpy(xb, xa, sizeof(double) * ma * d0);
    else
        fill_uniform(xb, (size_t)mb * d0, 1.5);
    fill_uniform(k_factors, (size_t)ma * mb, 1.0);
    memcpy(k_explicit, k_factors, sizeof(double) * ma * mb);
    if (gram) input_gram_loops(xa, ma, xb, mb, d0, gram);

    /* Capacity above m checks that factors->m, not the allocation, sets the size. */
    sgk_mlp_tangent_factors(&net, w, xa, ma, &work, &fa, NULL);
    if (!symmetric) sgk_mlp_tangent_factors(&net, w, xb, mb, &work, &fb, NULL);
    CU_ASSERT_EQUAL_FATAL(sgk_tangent_gram(&net, &fa, symmetric ? &fa : &fb, gram, mb, alpha,
                                           k_factors, mb),
                          SGK_OK);

    sgk_mlp_jacobian(&net, w, xa, ma, &work, jac_a);
    sgk_mlp_jacobian(&net, w, xb, mb, &work, jac_b);
    sgk_tangent_gram_explicit(ma, mb, O, net.n_params, jac_a, jac_b, alpha, k_explicit, mb);

    scale = max_abs(k_explicit, (size_t)ma * mb);
    for (size_t k = 0; k < (size_t)ma * mb; k++)
        if (fabs(k_factors[k] - k_explicit[k]) > largest_diff)
            largest_diff = fabs(k_factors[k] - k_explicit[k]);
    if (largest_diff > GRAM_TOL * scale)
        fprintf(stderr, "\n%d x %d Gram, %d hidden, %d outputs, parametrization %d, "
                "symmetric %d, input Gram %d: max difference %.3g of max |K| %.3g\n",
                ma, mb, shape->n_hidden, O, (int)param, symmetric, with_input_gram,
                largest_diff, scale);
    CU_ASSERT(largest_diff <= GRAM_TOL * scale);

    sgk_factors_free(&fa);
    sgk_factors_free(&fb);
    sgk_mlp_work_free(&work);
    free(w);
    free(xa);
    free(xb);
    free(jac_a);
    free(jac_b);
    free(k_factors);
    free(k_explicit);
    free(gram);
}

static void run_gram_cases(int symmetric, int with_input_gram)
{
    const sgk_parametrization params[] = { SGK_PARAM_STANDARD, SGK_PARAM_NTK };

    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        for (size_t p = 0; p < 2; p++) check_gram(&SHAPES[s], params[p], symmetric, with_input_gram);
}

static void test_gram_rectangular(void)
{
    run_gram_cases(0, 0);
}

static void test_gram_rectangular_input_gram(void)
{
    run_gram_cases(0, 1);
}

static void test_gram_symmetric(void)
{
    run_gram_cases(1, 0);
}

static void test_gram_symmetric_input_gram(void)
{
    run_gram_cases(1, 1);
}

/* Without hidden layers f_o = c W_o . x + beta b_o, so J_o = [c e_o (x) x, beta e_o] and
 * tr_o Theta(x, x') = O (c^2 x . x' + beta^2) whatever the weights: x . x' + 1 per output
 * in the standard parametrization, x . x' / d_0 + 0.01 in the NTK one. */
static void check_linear_closed_form(sgk_parametrization param, int n_outputs)
{
    enum { D = 4, MA = 5, MB = 3 };
    sgk_mlp net;
    sgk_mlp_work work;
    sgk_factors fa, fb;
    double xa[MA * D], xb[MB * D], K[MA * MB] = { 0 };
    double *w;
    double c2 = param == SGK_PARAM_STANDARD ? 1.0 : 1.0 / D;
    double b2 = param == SGK_PARAM_STANDARD ? 1.0 : 0.01;

    CU_ASSERT_FATAL(sgk_mlp_create(&net, D, NULL, 0, n_outputs, SGK_ACT_RELU, param) == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, MA, &work) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&net, MA, &fa) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&net, MB, &fb) == SGK_OK);
    w = malloc(sizeof(double) * net.n_params);
    CU_ASSERT_FATAL(w != NULL);
    /* Large weights: the kernel of a linear model must not depend on them. */
    random_params(&net, w, 40.0);
    fill_uniform(xa, MA * D, 2.0);
    fill_uniform(xb, MB * D, 2.0);

    sgk_mlp_tangent_factors(&net, w, xa, MA, &work, &fa, NULL);
    sgk_mlp_tangent_factors(&net, w, xb, MB, &work, &fb, NULL);
    CU_ASSERT_EQUAL_FATAL(sgk_tangent_gram(&net, &fa, &fb, NULL, 0, 1.0, K, MB), SGK_OK);

    for (int i = 0; i < MA; i++)
        for (int j = 0; j < MB; j++) {
            double dot = 0.0;
            double expected;

            for (int k = 0; k < D; k++) dot += xa[i * D + k] * xb[j * D + k];
            expected = n_outputs * (c2 * dot + b2);
            /* Entries are below 60 and sums of a few terms, so rounding stays below 1e-13. */
            CU_ASSERT_DOUBLE_EQUAL(K[i * MB + j], expected, 1e-12);
        }

    sgk_factors_free(&fa);
    sgk_factors_free(&fb);
    sgk_mlp_work_free(&work);
    free(w);
}

static void test_linear_closed_form(void)
{
    check_linear_closed_form(SGK_PARAM_STANDARD, 1);
    check_linear_closed_form(SGK_PARAM_STANDARD, 3);
    check_linear_closed_form(SGK_PARAM_NTK, 1);
    check_linear_closed_form(SGK_PARAM_NTK, 3);
}

static void test_gram_rejects_mismatch(void)
{
    const int widths[] = { 4 };
    const int other_widths[] = { 5 };
    sgk_mlp net, other;
    sgk_factors fa, fb;
    double K[4] = { 0 };

    CU_ASSERT_FATAL(sgk_mlp_create(&net, 2, widths, 1, 1, SGK_ACT_TANH, SGK_PARAM_STANDARD)
                    == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_create(&other, 2, other_widths, 1, 1, SGK_ACT_TANH,
                                   SGK_PARAM_STANDARD) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&net, 2, &fa) == SGK_OK);
    CU_ASSERT_FATAL(sgk_factors_alloc(&other, 2, &fb) == SGK_OK);
    memset(fa.delta[0], 0, sizeof(double) * 2 * 4);
    memset(fa.delta[1], 0, sizeof(double) * 2 * 1);
    memset(fa.act[0], 0, sizeof(double) * 2 * 2);
    memset(fa.act[1], 0, sizeof(double) * 2 * 4);

    CU_ASSERT_EQUAL(sgk_tangent_gram(&net, &fa, &fb, NULL, 0, 1.0, K, 2), SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "width 5"));
    CU_ASSERT_EQUAL(sgk_tangent_gram(&net, &fa, &fa, NULL, 0, 1.0, K, 1), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(sgk_tangent_gram(&net, &fa, &fa, K, 1, 1.0, K, 2), SGK_ERR_USAGE);
    for (int k = 0; k < 4; k++) CU_ASSERT_EQUAL(K[k], 0.0);

    sgk_factors_free(&fa);
    sgk_factors_free(&fb);
}

int main(void)
{
    CU_pSuite suite;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    suite = CU_add_suite("tangent", NULL, NULL);
    if (!suite
        || !CU_add_test(suite, "gram rectangular", test_gram_rectangular)
        || !CU_add_test(suite, "gram rectangular with input Gram",
                        test_gram_rectangular_input_gram)
        || !CU_add_test(suite, "gram symmetric", test_gram_symmetric)
        || !CU_add_test(suite, "gram symmetric with input Gram", test_gram_symmetric_input_gram)
        || !CU_add_test(suite, "linear closed form", test_linear_closed_form)
        || !CU_add_test(suite, "gram rejects mismatch", test_gram_rejects_mismatch)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
