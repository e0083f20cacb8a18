/* Kernel-evolution metrics on small hand-made kernels, each metric checked against its
 * formula evaluated here by a different route (explicit matrices, known spectra,
 * replica kernels). Serial.
 *
 * Tolerances: the kernels have at most 36 entries of order 1 to 100, so every sum
 * rounds to about 1e-14 relative; 1e-12 relative leaves a factor 100 of margin.
 * Eigenvalues from DSYEVD carry an absolute error of a few n eps |Theta|_2, below
 * 1e-12 |Theta|_F for these sizes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sgk/evolution.h"

#define TOLERANCE 1e-12

/* Orthogonal and symmetric: the 4 x 4 Hadamard matrix divided by 2. */
static const double hadamard[4][4] = {
    { 0.5, 0.5, 0.5, 0.5 },
    { 0.5, -0.5, 0.5, -0.5 },
    { 0.5, 0.5, -0.5, -0.5 },
    { 0.5, -0.5, -0.5, 0.5 },
};

/* Eigenvalues of the base kernel A = Q diag(lambda) Q^T, descending. */
static const double base_spectrum[4] = { 4.0, 2.0, 1.0, 0.5 };

static void base_kernel(double a[16])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double sum = 0.0;
            for (int k = 0; k < 4; k++) sum += hadamard[i][k] * base_spectrum[k] * hadamard[j][k];
            a[i * 4 + j] = sum;
        }
}

static int close_to(double value, double expected, double scale)
{
    return fabs(value - expected) <= TOLERANCE * scale;
}

static double frobenius(const double *a, int count)
{
    double sum = 0.0;

    for (int k = 0; k < count; k++) sum += a[k] * a[k];
    return sqrt(sum);
}

/* Theta_c = (1 + c) A on uneven times: the direction never changes, so distance is 0
 * and alignment and effective rank are constant, while trace, norm and eigenvalues
 * scale with 1 + c and the velocity is |A|_F / dt. */
static void test_scaled_kernel(void)
{
    enum { C = 4, P = 4, O = 1 };
    const double time[C] = { 0.0, 0.5, 1.25, 3.0 };
    const double y[P] = { 1.0, -2.0, 0.5, 3.0 };
    double a[P * P], kernels[C * P * P], variance[C * P * P];
    sgk_evolution evolution;

    base_kernel(a);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < P * P; k++) {
            kernels[c * P * P + k] = (1.0 + c) * a[k];
            variance[c * P * P + k] = 0.0;
        }
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(C, P, O, kernels, variance, y, time, 3, &evolution),
                          SGK_OK);
    CU_ASSERT_EQUAL(evolution.n_checkpoints, C);
    CU_ASSERT_EQUAL(evolution.n_top, 3);

    /* Direct alignment y^T A y / (|A|_F |y|^2), with A y as a matrix-vector product. */
    double y_a_y = 0.0, y_norm2 = 0.0, a_norm = frobenius(a, P * P);
    for (int i = 0; i < P; i++) {
        double row = 0.0;
        for (int j = 0; j < P; j++) row += a[i * P + j] * y[j];
        y_a_y += y[i] * row;
        y_norm2 += y[i] * y[i];
    }
    double alignment = y_a_y / (a_norm * y_norm2);
    double spectrum_sum = 0.0, spectrum_squares = 0.0;
    for (int k = 0; k < P; k++) {
        spectrum_sum += base_spectrum[k];
        spectrum_squares += base_spectrum[k] * base_spectrum[k];
    }
    double rank = spectrum_sum * spectrum_sum / spectrum_squares;

    for (int c = 0; c < C; c++) {
        double scale = 1.0 + c;
        CU_ASSERT(close_to(evolution.trace[c], scale * spectrum_sum, scale * spectrum_sum));
        CU_ASSERT(close_to(evolution.frobenius[c], scale * a_norm, scale * a_norm));
        CU_ASSERT(close_to(evolution.alignment[c], alignment, 1.0));
        CU_ASSERT(fabs(evolution.distance[c]) <= TOLERANCE);
        CU_ASSERT(close_to(evolution.effective_rank[c], rank, rank));
        CU_ASSERT_EQUAL(evolution.spread[c], 0.0);
        for (int k = 0; k < 3; k++)
            CU_ASSERT(close_to(evolution.top_eigenvalues[c * 3 + k], scale * base_spectrum[k],
                               scale * a_norm));
    }
    CU_ASSERT(isnan(evolution.velocity[0]));
    for (int c = 1; c < C; c++) {
        double expected = a_norm / (time[c] - time[c - 1]);
        CU_ASSERT(close_to(evolution.velocity[c], expected, expected));
    }
    sgk_evolution_free(&evolution);
    CU_ASSERT_PTR_NULL(evolution.trace);
    CU_ASSERT_PTR_NULL(evolution.top_eigenvalues);
    CU_ASSERT_EQUAL(evolution.n_checkpoints, 0);
}

/* Effective rank (sum lambda)^2 / sum lambda^2 equals (tr K)^2 / |K|_F^2 for a
 * symmetric K, which checks the eigenvalue route without an eigen-solver. */
static void test_effective_rank_trace_identity(void)
{
    enum { P = 5 };
    const double factor[P][3] = {
        { 1.0, 0.0, 2.0 },  { -1.0, 3.0, 0.5 }, { 0.0, 1.0, 1.0 },
        { 2.0, -2.0, 0.0 }, { 0.5, 0.5, -1.5 },
    };
    const double y[P] = { 1, 1, -1, -1, 1 };
    const double time[1] = { 0.0 };
    double kernel[P * P], trace = 0.0;
    sgk_evolution evolution;

    /* K = F F^T: positive semidefinite of rank 3. */
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            double sum = 0.0;
            for (int k = 0; k < 3; k++) sum += factor[i][k] * factor[j][k];
            kernel[i * P + j] = sum;
        }
    for (int i = 0; i < P; i++) trace += kernel[i * P + i];
    double expected = trace * trace / (frobenius(kernel, P * P) * frobenius(kernel, P * P));

    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, 1, kernel, NULL, y, time, P, &evolution),
                          SGK_OK);
    CU_ASSERT(close_to(evolution.effective_rank[0], expected, expected));
    CU_ASSERT(evolution.effective_rank[0] > 1.0);
    CU_ASSERT(evolution.effective_rank[0] < 3.0);
    /* Rank 3: the two smallest eigenvalues vanish up to rounding. */
    CU_ASSERT(fabs(evolution.top_eigenvalues[3]) <= TOLERANCE * evolution.frobenius[0]);
    CU_ASSERT(fabs(evolution.top_eigenvalues[4]) <= TOLERANCE * evolution.frobenius[0]);
    for (int k = 1; k < P; k++)
        CU_ASSERT(evolution.top_eigenvalues[k] <= evolution.top_eigenvalues[k - 1]);
    sgk_evolution_free(&evolution);
}

/* A rank-1 kernel u u^T has effective rank 1 and the single eigenvalue |u|^2. */
static void test_rank_one_kernel(void)
{
    enum { P = 5 };
    const double u[P] = { 1.0, -2.0, 0.5, 3.0, 1.5 };
    const double y[P] = { 1, 0, 0, 1, 0 };
    const double time[1] = { 0.0 };
    double kernel[P * P], u_norm2 = 0.0;
    sgk_evolution evolution;

    for (int i = 0; i < P; i++) {
        u_norm2 += u[i] * u[i];
        for (int j = 0; j < P; j++) kernel[i * P + j] = u[i] * u[j];
    }
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, 1, kernel, NULL, y, time, 2, &evolution),
                          SGK_OK);
    CU_ASSERT(close_to(evolution.effective_rank[0], 1.0, 1.0));
    CU_ASSERT(close_to(evolution.top_eigenvalues[0], u_norm2, u_norm2));
    CU_ASSERT(fabs(evolution.top_eigenvalues[1]) <= TOLERANCE * u_norm2);
    CU_ASSERT(isnan(evolution.spread[0]));
    sgk_evolution_free(&evolution);
}

/* Identity P x P: effective rank P, alignment |y|^2 / (sqrt(P) |y|^2) = 1 / sqrt(P),
 * and centered alignment |H y|^2 / (|H|_F |H y|^2) = 1 / sqrt(P - 1), since H is a
 * projection of rank P - 1. */
static void test_identity_kernel(void)
{
    enum { P = 6, O = 2 };
    const double y[P * O] = { 1, 0, 0, 1, 1, 0, 0, 1, 2, -1, 0.5, 3 };
    const double time[1] = { 0.0 };
    double kernel[P * P] = { 0 };
    sgk_evolution evolution;

    for (int i = 0; i < P; i++) kernel[i * P + i] = 1.0;
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, O, kernel, NULL, y, time, 0, &evolution),
                          SGK_OK);
    CU_ASSERT(close_to(evolution.effective_rank[0], P, P));
    CU_ASSERT(close_to(evolution.trace[0], P, P));
    CU_ASSERT(close_to(evolution.alignment[0], 1.0 / sqrt(P), 1.0));
    CU_ASSERT(close_to(evolution.alignment_centered[0], 1.0 / sqrt(P - 1.0), 1.0));
    CU_ASSERT_PTR_NULL(evolution.top_eigenvalues);
    sgk_evolution_free(&evolution);
}

/* Centered alignment with two outputs against explicit matrices: H = I - 11^T / P,
 * H K H by matrix products, and sum_o (H y_o)^T (H K H) (H y_o) over
 * |H K H|_F sum_o |H y_o|^2. The uncentered form uses K and y directly. */
static void test_alignment_two_outputs(void)
{
    enum { P = 4, O = 2 };
    const double y[P * O] = { 1.0, -1.0, 2.0, 0.0, -0.5, 1.0, 3.0, 2.0 };
    const double time[1] = { 0.0 };
    double kernel[P * P], h[P * P], hk[P * P], hkh[P * P], hy[P * O];
    sgk_evolution evolution;

    base_kernel(kernel);
    kernel[1] += 0.75; /* break the Hadamard structure, keep symmetry */
    kernel[4] += 0.75;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) h[i * P + j] = (i == j) - 1.0 / P;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            hk[i * P + j] = 0.0;
            for (int k = 0; k < P; k++) hk[i * P + j] += h[i * P + k] * kernel[k * P + j];
        }
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            hkh[i * P + j] = 0.0;
            for (int k = 0; k < P; k++) hkh[i * P + j] += hk[i * P + k] * h[k * P + j];
        }
    for (int i = 0; i < P; i++)
        for (int o = 0; o < O; o++) {
            hy[i * O + o] = 0.0;
            for (int k = 0; k < P; k++) hy[i * O + o] += h[i * P + k] * y[k * O + o];
        }

    double numerator = 0.0, centered_numerator = 0.0, y_norm2 = 0.0, hy_norm2 = 0.0;
    for (int o = 0; o < O; o++)
        for (int i = 0; i < P; i++) {
            y_norm2 += y[i * O + o] * y[i * O + o];
            hy_norm2 += hy[i * O + o] * hy[i * O + o];
            for (int j = 0; j < P; j++) {
                numerator += y[i * O + o] * kernel[i * P + j] * y[j * O + o];
                centered_numerator += hy[i * O + o] * hkh[i * P + j] * hy[j * O + o];
            }
        }
    double expected = numerator / (frobenius(kernel, P * P) * y_norm2);
    double expected_centered = centered_numerator / (frobenius(hkh, P * P) * hy_norm2);

    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, O, kernel, NULL, y, time, 0, &evolution),
                          SGK_OK);
    CU_ASSERT(close_to(evolution.alignment[0], expected, 1.0));
    CU_ASSERT(close_to(evolution.alignment_centered[0], expected_centered, 1.0));
    CU_ASSERT(fabs(evolution.alignment_centered[0] - evolution.alignment[0]) > 1e-3);
    sgk_evolution_free(&evolution);
}

/* Kernels orthogonal in the Frobenius inner product: distance 1, velocity
 * |e1 e1^T - e2 e2^T|_F / dt = sqrt(2) / dt. */
static void test_orthogonal_kernels(void)
{
    enum { C = 2, P = 3 };
    const double y[P] = { 1, 2, 3 };
    const double time[C] = { 1.0, 1.5 };
    double kernels[C * P * P] = { 0 };
    sgk_evolution evolution;

    kernels[0] = 2.0;                 /* Theta_0 = 2 e1 e1^T */
    kernels[P * P + 1 * P + 1] = 3.0; /* Theta_1 = 3 e2 e2^T */
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, 1, &evolution),
                          SGK_OK);
    CU_ASSERT(fabs(evolution.distance[0]) <= TOLERANCE);
    CU_ASSERT(close_to(evolution.distance[1], 1.0, 1.0));
    double expected = sqrt(2.0 * 2.0 + 3.0 * 3.0) / 0.5;
    CU_ASSERT(close_to(evolution.velocity[1], expected, expected));
    CU_ASSERT(close_to(evolution.top_eigenvalues[0], 2.0, 2.0));
    CU_ASSERT(close_to(evolution.top_eigenvalues[1], 3.0, 3.0));
    sgk_evolution_free(&evolution);
}

/* Spread from replica kernels: with the unbiased variance of each entry over R
 * replicas, sum_ij var_ij = sum_r |Theta_r - mean|_F^2 / (R - 1), computed here from
 * the replicas' Frobenius distances to their mean. */
static void test_spread_from_replicas(void)
{
    enum { R = 3, P = 3 };
    const double replicas[R][P * P] = {
        { 2.0, 1.0, 0.0, 1.0, 3.0, 0.5, 0.0, 0.5, 1.0 },
        { 2.5, 0.5, 0.2, 0.5, 2.0, 0.0, 0.2, 0.0, 1.5 },
        { 1.0, 1.5, -0.4, 1.5, 4.0, 1.0, -0.4, 1.0, 0.5 },
    };
    const double y[P] = { 1, -1, 1 };
    const double time[1] = { 0.0 };
    double mean[P * P] = { 0 }, variance[P * P] = { 0 }, squared_distance = 0.0;
    sgk_evolution evolution;

    for (int k = 0; k < P * P; k++) {
        for (int r = 0; r < R; r++) mean[k] += replicas[r][k] / R;
        for (int r = 0; r < R; r++)
            variance[k] += (replicas[r][k] - mean[k]) * (replicas[r][k] - mean[k]) / (R - 1);
    }
    for (int r = 0; r < R; r++) {
        double distance = 0.0;
        for (int k = 0; k < P * P; k++)
            distance += (replicas[r][k] - mean[k]) * (replicas[r][k] - mean[k]);
        squared_distance += distance;
    }
    double expected = sqrt(squared_distance / (R - 1)) / frobenius(mean, P * P);

    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, 1, mean, variance, y, time, 0, &evolution),
                          SGK_OK);
    CU_ASSERT(close_to(evolution.spread[0], expected, expected));
    sgk_evolution_free(&evolution);
}

/* Spread edge cases: NaN variance (one replica) gives NaN, and a total variance
 * slightly below zero, as cancellation can produce, counts as zero. */
static void test_spread_edge_cases(void)
{
    enum { P = 2 };
    const double kernel[P * P] = { 1.0, 0.0, 0.0, 1.0 };
    const double one_replica[P * P] = { NAN, NAN, NAN, NAN };
    const double cancelled[P * P] = { -1e-18, 0.0, 0.0, 0.0 };
    const double y[P] = { 1, -1 };
    const double time[1] = { 0.0 };
    sgk_evolution evolution;

    CU_ASSERT_EQUAL_FATAL(
        sgk_evolution_compute(1, P, 1, kernel, one_replica, y, time, 0, &evolution), SGK_OK);
    CU_ASSERT(isnan(evolution.spread[0]));
    CU_ASSERT(close_to(evolution.frobenius[0], sqrt(2.0), 1.0));
    sgk_evolution_free(&evolution);

    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, 1, kernel, cancelled, y, time, 0, &evolution),
                          SGK_OK);
    CU_ASSERT_EQUAL(evolution.spread[0], 0.0);
    sgk_evolution_free(&evolution);
}

/* Only the symmetric part enters the eigenvalues: adding an antisymmetric S to A
 * leaves them at A's spectrum. */
static void test_asymmetric_input(void)
{
    enum { P = 4 };
    const double y[P] = { 1, 2, -1, 0 };
    const double time[1] = { 0.0 };
    double kernel[P * P];
    sgk_evolution evolution;

    base_kernel(kernel);
    kernel[0 * P + 2] += 0.3;
    kernel[2 * P + 0] -= 0.3;
    kernel[1 * P + 3] -= 0.7;
    kernel[3 * P + 1] += 0.7;
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(1, P, 1, kernel, NULL, y, time, P, &evolution),
                          SGK_OK);
    for (int k = 0; k < P; k++)
        CU_ASSERT(close_to(evolution.top_eigenvalues[k], base_spectrum[k], 4.0));
    sgk_evolution_free(&evolution);
}

/* Zero denominators give NaN: a zero kernel (every ratio over its norm), zero
 * targets, constant targets or a constant kernel (centered alignment), and two
 * checkpoints at the same time (velocity). */
static void test_zero_norms(void)
{
    enum { C = 3, P = 3 };
    const double y[P] = { 1, -1, 2 };
    const double zero_y[P] = { 0, 0, 0 };
    const double constant_y[P] = { 2, 2, 2 };
    const double time[C] = { 0.0, 1.0, 1.0 };
    double kernels[C * P * P] = { 0 };
    double variance[C * P * P] = { 0 };
    sgk_evolution evolution;

    /* Checkpoint 0 is zero, 1 constant (all ones), 2 the identity. */
    for (int k = 0; k < P * P; k++) kernels[P * P + k] = 1.0;
    for (int i = 0; i < P; i++) kernels[2 * P * P + i * P + i] = 1.0;
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(C, P, 1, kernels, variance, y, time, 1, &evolution),
                          SGK_OK);
    CU_ASSERT_EQUAL(evolution.trace[0], 0.0);
    CU_ASSERT_EQUAL(evolution.frobenius[0], 0.0);
    CU_ASSERT(isnan(evolution.alignment[0]));
    CU_ASSERT(isnan(evolution.alignment_centered[0]));
    CU_ASSERT(isnan(evolution.effective_rank[0]));
    CU_ASSERT(isnan(evolution.spread[0]));
    CU_ASSERT_EQUAL(evolution.top_eigenvalues[0], 0.0);
    for (int c = 0; c < C; c++) CU_ASSERT(isnan(evolution.distance[c]));
    CU_ASSERT(isnan(evolution.alignment_centered[1]));
    CU_ASSERT(isfinite(evolution.alignment[1]));
    CU_ASSERT(close_to(evolution.effective_rank[1], 1.0, 1.0));
    CU_ASSERT(isfinite(evolution.velocity[1]));
    CU_ASSERT(isnan(evolution.velocity[2]));
    sgk_evolution_free(&evolution);

    CU_ASSERT_EQUAL_FATAL(
        sgk_evolution_compute(C, P, 1, kernels, NULL, zero_y, time, 0, &evolution), SGK_OK);
    CU_ASSERT(isnan(evolution.alignment[2]));
    CU_ASSERT(isnan(evolution.alignment_centered[2]));
    sgk_evolution_free(&evolution);

    CU_ASSERT_EQUAL_FATAL(
        sgk_evolution_compute(C, P, 1, kernels, NULL, constant_y, time, 0, &evolution), SGK_OK);
    CU_ASSERT(close_to(evolution.alignment[2], 1.0 / sqrt(P), 1.0));
    CU_ASSERT(isnan(evolution.alignment_centered[2]));
    sgk_evolution_free(&evolution);
}

/* A kernel with a NaN or Inf entry makes every metric that reads it NaN, and only
 * those: its own checkpoint, the next velocity, and every distance when it is
 * Theta_0. */
static void test_non_finite_kernel(void)
{
    enum { C = 3, P = 2 };
    const double y[P] = { 1, -1 };
    const double time[C] = { 0.0, 1.0, 2.0 };
    double kernels[C * P * P] = { 1, 0, 0, 1, 2, 0, 0, 2, 3, 1, 1, 3 };
    sgk_evolution evolution;

    kernels[P * P + 1] = INFINITY;
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, 2, &evolution),
                          SGK_OK);
    CU_ASSERT(isnan(evolution.trace[1]));
    CU_ASSERT(isnan(evolution.frobenius[1]));
    CU_ASSERT(isnan(evolution.effective_rank[1]));
    CU_ASSERT(isnan(evolution.top_eigenvalues[2]));
    CU_ASSERT(isnan(evolution.top_eigenvalues[3]));
    CU_ASSERT(isnan(evolution.distance[1]));
    CU_ASSERT(isnan(evolution.velocity[1]));
    CU_ASSERT(isnan(evolution.velocity[2]));
    CU_ASSERT(isfinite(evolution.distance[2]));
    CU_ASSERT(isfinite(evolution.trace[2]));
    CU_ASSERT(isfinite(evolution.effective_rank[2]));
    sgk_evolution_free(&evolution);

    kernels[P * P + 1] = 0.0;
    kernels[0] = NAN;
    CU_ASSERT_EQUAL_FATAL(sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, 2, &evolution),
                          SGK_OK);
    for (int c = 0; c < C; c++) CU_ASSERT(isnan(evolution.distance[c]));
    CU_ASSERT(isnan(evolution.velocity[1]));
    CU_ASSERT(isfinite(evolution.velocity[2]));
    sgk_evolution_free(&evolution);
}

/* One rejected call: status SGK_ERR_USAGE, a message containing `expected_text`, and
 * the output struct left zeroed. */
static void expect_usage_error(sgk_status status, const sgk_evolution *evolution,
                               const char *expected_text)
{
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), expected_text));
    CU_ASSERT_PTR_NULL(evolution->trace);
    CU_ASSERT_PTR_NULL(evolution->top_eigenvalues);
    CU_ASSERT_EQUAL(evolution->n_checkpoints, 0);
}

static void test_argument_checks(void)
{
    enum { C = 2, P = 2 };
    const double kernels[C * P * P] = { 1, 0, 0, 1, 2, 0, 0, 2 };
    const double y[P] = { 1, -1 };
    const double time[C] = { 0.0, 1.0 };
    const double decreasing[C] = { 1.0, 0.5 };
    const double not_finite[C] = { 0.0, NAN };
    sgk_evolution evolution;
    sgk_status status;

    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, 0, NULL);
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "output struct"));

    memset(&evolution, 0xff, sizeof evolution);
    status = sgk_evolution_compute(0, P, 1, kernels, NULL, y, time, 0, &evolution);
    expect_usage_error(status, &evolution, "n_checkpoints = 0");
    status = sgk_evolution_compute(C, P, 0, kernels, NULL, y, time, 0, &evolution);
    expect_usage_error(status, &evolution, "n_outputs = 0");
    status = sgk_evolution_compute(C, 0, 1, kernels, NULL, y, time, 0, &evolution);
    expect_usage_error(status, &evolution, "n_probe = 0");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, P + 1, &evolution);
    expect_usage_error(status, &evolution, "n_top = 3");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, time, -1, &evolution);
    expect_usage_error(status, &evolution, "n_top = -1");
    status = sgk_evolution_compute(C, P, 1, NULL, NULL, y, time, 0, &evolution);
    expect_usage_error(status, &evolution, "probe_mean");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, NULL, time, 0, &evolution);
    expect_usage_error(status, &evolution, "y_probe");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, NULL, 0, &evolution);
    expect_usage_error(status, &evolution, "checkpoint_time array");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, decreasing, 0, &evolution);
    expect_usage_error(status, &evolution, "must not decrease");
    status = sgk_evolution_compute(C, P, 1, kernels, NULL, y, not_finite, 0, &evolution);
    expect_usage_error(status, &evolution, "checkpoint_time[1] = nan is not finite");

    /* Freeing a zeroed struct or NULL is a no-op. */
    sgk_evolution_free(&evolution);
    sgk_evolution_free(NULL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;

    CU_pSuite suite = CU_add_suite("evolution", NULL, NULL);
    if (!suite || !CU_add_test(suite, "scaled kernel", test_scaled_kernel) ||
        !CU_add_test(suite, "effective rank trace identity", test_effective_rank_trace_identity) ||
        !CU_add_test(suite, "rank-one kernel", test_rank_one_kernel) ||
        !CU_add_test(suite, "identity kernel", test_identity_kernel) ||
        !CU_add_test(suite, "alignment two outputs", test_alignment_two_outputs) ||
        !CU_add_test(suite, "orthogonal kernels", test_orthogonal_kernels) ||
        !CU_add_test(suite, "spread from replicas", test_spread_from_replicas) ||
        !CU_add_test(suite, "spread edge cases", test_spread_edge_cases) ||
        !CU_add_test(suite, "asymmetric input", test_asymmetric_input) ||
        !CU_add_test(suite, "zero norms", test_zero_norms) ||
        !CU_add_test(suite, "non-finite kernel", test_non_finite_kernel) ||
        !CU_add_test(suite, "argument checks", test_argument_checks)) {
        CU_cleanup_registry();
        return 1;
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
