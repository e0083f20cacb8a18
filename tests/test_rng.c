/* Tests of the Philox random streams: keys, substreams, and the distributions. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sgk/rng.h"

/* Statistical checks accept deviations up to 6 standard errors: a correct
 * generator fails one such check with probability about 2e-9. The streams are
 * deterministic, so a check that passes once passes on every run. */
#define N_SIGMA 6.0

enum { N_DRAWS = 200000 };

/* Known-answer vector of the Random123 distribution for Philox4x64-10 with counter
 * and key zero. Seed, replica, purpose and substream 0 give exactly that input. */
static void test_known_answer(void)
{
    const uint64_t expected[4] = {0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL,
                                  0xd7e772cee186176bULL, 0x7e68b68aec7ba23bULL};
    sgk_rng rng;

    sgk_rng_init(&rng, 0, 0, (sgk_rng_purpose)0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(sgk_rng_u64(&rng), expected[i]);
}

static void test_same_key_same_numbers(void)
{
    sgk_rng a;
    sgk_rng b;
    int mismatches = 0;

    sgk_rng_init(&a, 2026, 7, SGK_RNG_BATCH);
    sgk_rng_init(&b, 2026, 7, SGK_RNG_BATCH);
    for (int i = 0; i < 1000; i++) {
        if (sgk_rng_u64(&a) != sgk_rng_u64(&b))
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* Count equal words among the first 64 of two streams. */
static int count_equal_words(sgk_rng *a, sgk_rng *b)
{
    int equal = 0;

    for (int i = 0; i < 64; i++) {
        if (sgk_rng_u64(a) == sgk_rng_u64(b))
            equal++;
    }
    return equal;
}

static void test_keys_give_different_streams(void)
{
    sgk_rng base;
    sgk_rng other;

    sgk_rng_init(&base, 2026, 0, SGK_RNG_INIT);
    sgk_rng_init(&other, 2026, 1, SGK_RNG_INIT);
    CU_ASSERT_EQUAL(count_equal_words(&base, &other), 0);

    sgk_rng_init(&base, 2026, 0, SGK_RNG_INIT);
    sgk_rng_init(&other, 2026, 0, SGK_RNG_NOISE);
    CU_ASSERT_EQUAL(count_equal_words(&base, &other), 0);

    sgk_rng_init(&base, 2026, 0, SGK_RNG_INIT);
    sgk_rng_init(&other, 2027, 0, SGK_RNG_INIT);
    CU_ASSERT_EQUAL(count_equal_words(&base, &other), 0);

    sgk_rng_init(&base, 2026, 0, SGK_RNG_INIT);
    sgk_rng_init(&other, 2026, 0, SGK_RNG_INIT);
    sgk_rng_seek(&other, 1);
    CU_ASSERT_EQUAL(count_equal_words(&base, &other), 0);
}

/* A seek must give the same draws whether it follows a fresh init or draws that
 * left a partial block and a cached normal behind. */
static void test_seek_independent_of_history(void)
{
    sgk_rng fresh;
    sgk_rng used;
    int mismatches = 0;

    sgk_rng_init(&fresh, 99, 3, SGK_RNG_BATCH);
    sgk_rng_seek(&fresh, 41);

    sgk_rng_init(&used, 99, 3, SGK_RNG_BATCH);
    sgk_rng_seek(&used, 40);
    for (int i = 0; i < 5; i++)
        (void)sgk_rng_u64(&used);
    (void)sgk_rng_normal(&used); /* leaves the spare normal cached */
    sgk_rng_seek(&used, 41);

    for (int i = 0; i < 10; i++) {
        if (sgk_rng_normal(&fresh) != sgk_rng_normal(&used))
            mismatches++;
    }
    for (int i = 0; i < 10; i++) {
        if (sgk_rng_u64(&fresh) != sgk_rng_u64(&used))
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* The uniform must be the top 53 bits of the next word, scaled by 2^-53. */
static void test_uniform_top_53_bits(void)
{
    sgk_rng words;
    sgk_rng uniforms;
    int mismatches = 0;

    sgk_rng_init(&words, 5, 0, SGK_RNG_DATA);
    sgk_rng_init(&uniforms, 5, 0, SGK_RNG_DATA);
    for (int i = 0; i < 1000; i++) {
        uint64_t top = sgk_rng_u64(&words) >> 11;
        if (ldexp((double)top, -53) != sgk_rng_uniform(&uniforms))
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_uniform_range_and_mean(void)
{
    sgk_rng rng;
    double sum = 0.0;
    int outside = 0;

    sgk_rng_init(&rng, 11, 0, SGK_RNG_NOISE);
    for (int i = 0; i < N_DRAWS; i++) {
        double u = sgk_rng_uniform(&rng);
        if (!(u >= 0.0 && u < 1.0))
            outside++;
        sum += u;
    }
    CU_ASSERT_EQUAL(outside, 0);

    /* U(0, 1) has mean 1/2 and variance 1/12. */
    double standard_error = sqrt(1.0 / 12.0 / N_DRAWS);
    CU_ASSERT(fabs(sum / N_DRAWS - 0.5) < N_SIGMA * standard_error);
}

static void test_normal_mean_and_variance(void)
{
    sgk_rng rng;
    double sum = 0.0;
    double squares = 0.0;

    sgk_rng_init(&rng, 12, 4, SGK_RNG_INIT);
    for (int i = 0; i < N_DRAWS; i++) {
        double z = sgk_rng_normal(&rng);
        sum += z;
        squares += z * z;
    }
    double mean = sum / N_DRAWS;
    double variance = squares / N_DRAWS - mean * mean;

    /* For N(0, 1) the sample mean has standard error 1/sqrt(n) and the sample
     * variance sqrt(2/n). */
    CU_ASSERT(fabs(mean) < N_SIGMA / sqrt((double)N_DRAWS));
    CU_ASSERT(fabs(variance - 1.0) < N_SIGMA * sqrt(2.0 / N_DRAWS));
}

/* Each pair of normals must be the Box-Muller pair of two consecutive uniforms,
 * so the cached second normal is the sine branch of the same pair. */
static void test_normal_box_muller_pair(void)
{
    const double two_pi = 6.283185307179586;
    sgk_rng uniforms;
    sgk_rng normals;

    sgk_rng_init(&uniforms, 13, 0, SGK_RNG_NOISE);
    sgk_rng_init(&normals, 13, 0, SGK_RNG_NOISE);
    for (int i = 0; i < 100; i++) {
        double radius = sqrt(-2.0 * log(1.0 - sgk_rng_uniform(&uniforms)));
        double angle = two_pi * sgk_rng_uniform(&uniforms);
        /* The test repeats the library's formula, so only the compiler's
         * floating-point contraction choices can make the results differ. */
        CU_ASSERT_DOUBLE_EQUAL(sgk_rng_normal(&normals), radius * cos(angle), 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(sgk_rng_normal(&normals), radius * sin(angle), 1e-12);
    }
}

static void test_below_covers_range(void)
{
    enum { BOUND = 7, DRAWS = 70000 };
    long counts[BOUND] = {0};
    int outside = 0;
    sgk_rng rng;

    sgk_rng_init(&rng, 21, 0, SGK_RNG_BATCH);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = sgk_rng_below(&rng, BOUND);
        if (k >= BOUND)
            outside++;
        else
            counts[k]++;
    }
    CU_ASSERT_EQUAL(outside, 0);

    /* Each count is binomial(DRAWS, 1/BOUND). */
    double expected = (double)DRAWS / BOUND;
    double standard_error = sqrt(DRAWS * (1.0 / BOUND) * (1.0 - 1.0 / BOUND));
    for (int k = 0; k < BOUND; k++) {
        CU_ASSERT(counts[k] > 0);
        CU_ASSERT(fabs(counts[k] - expected) < N_SIGMA * standard_error);
    }
}

static void test_below_edge_bounds(void)
{
    /* For bound 3 * 2^62 a plain modulo of 64-bit words would put k < 2^62 with
     * probability 1/2, because the top quarter of words wraps onto it, while the
     * unbiased probability is 1/3. Rejection discards that quarter. */
    const uint64_t bound = UINT64_C(3) << 62;
    const uint64_t low_third = UINT64_C(1) << 62;
    enum { DRAWS = 3000 };
    int wrong = 0;
    int low = 0;
    sgk_rng rng;

    sgk_rng_init(&rng, 22, 0, SGK_RNG_BATCH);
    for (int i = 0; i < DRAWS; i++) {
        if (sgk_rng_below(&rng, 1) != 0)
            wrong++;
        uint64_t k = sgk_rng_below(&rng, bound);
        if (k >= bound)
            wrong++;
        if (k < low_third)
            low++;
    }
    CU_ASSERT_EQUAL(wrong, 0);

    /* The count is binomial(DRAWS, 1/3): standard error ~26, while the biased
     * modulo would be ~500 away from the mean. */
    double p = 1.0 / 3.0;
    CU_ASSERT(fabs(low - DRAWS * p) < N_SIGMA * sqrt(DRAWS * p * (1.0 - p)));
}

static void test_sample_distinct_in_range(void)
{
    enum { POPULATION = 50 };
    long scratch[POPULATION];
    long out[POPULATION];
    sgk_rng rng;

    sgk_rng_init(&rng, 31, 0, SGK_RNG_DATA);
    for (long count = 0; count <= POPULATION; count += 10) {
        int seen[POPULATION] = {0};
        int bad = 0;

        sgk_rng_sample(&rng, POPULATION, count, scratch, out);
        for (long i = 0; i < count; i++) {
            if (out[i] < 0 || out[i] >= POPULATION || seen[out[i]])
                bad++;
            else
                seen[out[i]] = 1;
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
}

/* Every index must be chosen with probability count / population. */
static void test_sample_uniform(void)
{
    enum { POPULATION = 10, COUNT = 3, TRIALS = 20000 };
    long scratch[POPULATION];
    long out[COUNT];
    long hits[POPULATION] = {0};
    sgk_rng rng;

    sgk_rng_init(&rng, 32, 0, SGK_RNG_DATA);
    for (int t = 0; t < TRIALS; t++) {
        sgk_rng_sample(&rng, POPULATION, COUNT, scratch, out);
        for (int i = 0; i < COUNT; i++)
            hits[out[i]]++;
    }

    double p = (double)COUNT / POPULATION;
    double standard_error = sqrt(TRIALS * p * (1.0 - p));
    for (int k = 0; k < POPULATION; k++)
        CU_ASSERT(fabs(hits[k] - TRIALS * p) < N_SIGMA * standard_error);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    CU_pSuite suite = CU_add_suite("rng", NULL, NULL);
    if (!suite ||
        !CU_add_test(suite, "Philox known answer", test_known_answer) ||
        !CU_add_test(suite, "same key same numbers", test_same_key_same_numbers) ||
        !CU_add_test(suite, "keys give different streams", test_keys_give_different_streams) ||
        !CU_add_test(suite, "seek independent of history", test_seek_independent_of_history) ||
        !CU_add_test(suite, "uniform top 53 bits", test_uniform_top_53_bits) ||
        !CU_add_test(suite, "uniform range and mean", test_uniform_range_and_mean) ||
        !CU_add_test(suite, "normal mean and variance", test_normal_mean_and_variance) ||
        !CU_add_test(suite, "normal Box-Muller pair", test_normal_box_muller_pair) ||
        !CU_add_test(suite, "below covers range", test_below_covers_range) ||
        !CU_add_test(suite, "below edge bounds", test_below_edge_bounds) ||
        !CU_add_test(suite, "sample distinct in range", test_sample_distinct_in_range) ||
        !CU_add_test(suite, "sample uniform", test_sample_uniform)) {
        CU_cleanup_registry();
        return 1;
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
