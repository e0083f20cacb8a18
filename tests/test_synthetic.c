/* Tests of the sources moons and gaussian-mixture through sgk_dataset_load.
 *
 * Runs on any number of ranks: every rank loads, and each load checks that all ranks
 * got the same status, message and arrays. Expected moments come from the closed
 * forms of the two distributions, and expected positions from the curve and centre
 * equations, not from the generator. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/dataset.h"

/* Statistical checks accept deviations up to 6 standard errors. The draws are
 * deterministic, so they pass or fail the same way on every run, and a correct
 * generator fails one check with probability about 2e-9. */
#define N_SIGMA 6.0

/* Noiseless points are cos and sin of one angle, scaled by at most a few units, so
 * their distance to the exact curve or centre is a few rounding errors. */
#define ON_CURVE_TOLERANCE 1e-12

static const double PI = 3.14159265358979323846;

static int rank;

static void base_config(sgk_config *config, sgk_source source)
{
    memset(config, 0, sizeof *config);
    config->data.source = source;
    config->data.classes[0] = 0;
    config->data.classes[1] = 1;
    config->data.n_classes = 2;
    config->data.n_train = 50;
    config->data.n_test = 30;
    config->data.ood = SGK_OOD_NONE;
    config->data.seed = 3;
    config->data.synthetic_noise = 0.1;
    config->data.mixture_components = 8;
    config->data.mixture_radius = 2.0;
}

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t k = 0; k < n; k++)
        hash = (hash ^ p[k]) * 0x100000001b3ULL;
    return hash;
}

/* Hash of the status, the message on failure, and every array on success. */
static uint64_t fingerprint(sgk_status status, const sgk_dataset *data)
{
    uint64_t hash = fnv1a(0xcbf29ce484222325ULL, &status, sizeof status);
    if (status != SGK_OK)
        return fnv1a(hash, sgk_error_message(), strlen(sgk_error_message()));

    size_t n = (size_t)data->n_samples;
    long sizes[6] = { data->n_samples, data->n_train,    data->n_test,
                      data->n_ood,     data->n_features, data->n_outputs };
    hash = fnv1a(hash, sizes, sizeof sizes);
    hash = fnv1a(hash, data->x, n * (size_t)data->n_features * sizeof(double));
    hash = fnv1a(hash, data->y, n * (size_t)data->n_outputs * sizeof(double));
    hash = fnv1a(hash, data->split, n * sizeof(int));
    hash = fnv1a(hash, data->label, n * sizeof(int));
    return fnv1a(hash, data->source_index, n * sizeof(long));
}

/* Collective. Load, and check that every rank got what rank 0 got. */
static sgk_status load(const sgk_config *config, sgk_dataset *data)
{
    sgk_error_clear();
    sgk_status status = sgk_dataset_load(config, MPI_COMM_WORLD, data);

    uint64_t mine = fingerprint(status, data);
    uint64_t root = mine;
    MPI_Bcast(&root, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    int differs = root != mine;
    int any_differs = 0;
    MPI_Allreduce(&differs, &any_differs, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(any_differs, 0);
    return status;
}

static int contains(const char *text, const char *fragment)
{
    int found = strstr(text, fragment) != NULL;
    if (!found && rank == 0)
        fprintf(stderr, "\n    message lacks '%s': %s\n", fragment, text);
    return found;
}

/* ---- moments ---- */

/* Sample moments of one coordinate about a known mean: the mean itself, the
 * variance about `mean` and the fourth central moment about it. Centring on the exact
 * mean keeps the variance estimate unbiased, so its standard error is
 * sqrt((fourth - variance^2) / n). */
typedef struct {
    long count;
    double sum;
    double squares;
    double fourth;
} moments;

static void add_value(moments *m, double value, double mean)
{
    double deviation = value - mean;
    m->count++;
    m->sum += value;
    m->squares += deviation * deviation;
    m->fourth += deviation * deviation * deviation * deviation;
}

/* Check the sample mean and variance against `mean` and `variance`. The mean's
 * standard error uses the exact variance, the variance's uses the sample fourth
 * moment, because its closed form would need the fourth moment of the noise
 * convolved with the curve. */
static void check_moments(const moments *m, double mean, double variance, const char *what)
{
    double n = (double)m->count;
    double sample_mean = m->sum / n;
    double sample_variance = m->squares / n;
    double fourth = m->fourth / n;
    double mean_error = N_SIGMA * sqrt(variance / n);
    double fourth_excess = fmax(fourth - sample_variance * sample_variance, 0.0);
    double variance_error = N_SIGMA * sqrt(fourth_excess / n);

    CU_ASSERT(m->count > 100);
    CU_ASSERT(fabs(sample_mean - mean) < mean_error);
    CU_ASSERT(fabs(sample_variance - variance) < variance_error);
    if (rank == 0 && (fabs(sample_mean - mean) >= mean_error ||
                      fabs(sample_variance - variance) >= variance_error))
        fprintf(stderr, "\n    %s: mean %.6f (expected %.6f +- %.6f), variance %.6f "
                "(expected %.6f +- %.6f)\n", what, sample_mean, mean, mean_error,
                sample_variance, variance, variance_error);
}

/* Check that `count` of `n` draws is a fraction p within N_SIGMA binomial standard
 * errors. */
static void check_fraction(long count, long n, double p)
{
    double error = N_SIGMA * sqrt(p * (1.0 - p) / (double)n);
    CU_ASSERT(fabs((double)count / (double)n - p) <= error);
}

/* ---- tests ---- */

/* Shapes, splits, labels, targets and source indices of both sources. */
static void test_shapes_and_targets(void)
{
    static const sgk_source sources[] = { SGK_SOURCE_MOONS, SGK_SOURCE_GAUSSIAN_MIXTURE };

    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        sgk_config config;
        sgk_dataset data;
        int max_label = sources[s] == SGK_SOURCE_MOONS ? 1 : 7;

        base_config(&config, sources[s]);
        CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);
        CU_ASSERT_EQUAL(data.n_samples, 80);
        CU_ASSERT_EQUAL(data.n_features, 2);
        CU_ASSERT_EQUAL(data.n_outputs, 1);

        int bad_labels = 0, bad_targets = 0, bad_indices = 0, bad_splits = 0;
        for (long row = 0; row < data.n_samples; row++) {
            int label = data.label[row];
            int expected_split = row < 50 ? SGK_SPLIT_TRAIN : SGK_SPLIT_TEST;
            if (label < 0 || label > max_label)
                bad_labels++;
            if (data.y[row] != (label % 2 == 0 ? -1.0 : 1.0))
                bad_targets++;
            if (data.source_index[row] != -1)
                bad_indices++;
            if (data.split[row] != expected_split)
                bad_splits++;
        }
        CU_ASSERT_EQUAL(bad_labels, 0);
        CU_ASSERT_EQUAL(bad_targets, 0);
        CU_ASSERT_EQUAL(bad_indices, 0);
        CU_ASSERT_EQUAL(bad_splits, 0);
        sgk_dataset_free(&data);
    }
}

/* Per class, with t uniform on [0, pi): E cos t = 0, E sin t = 2 / pi,
 * Var cos t = 1/2 and Var sin t = 1/2 - 4 / pi^2. Class 1 is a reflection plus a
 * translation of class 0, so it has the same variances and the means (1, 1/2 - 2/pi).
 * The noise adds sigma^2 to each variance. */
static void test_moons_moments(void)
{
    enum { N = 40000 };
    const double sigma = 0.15;
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.n_train = N;
    config.data.n_test = 0;
    config.data.synthetic_noise = sigma;
    CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);

    const double mean_x[2] = { 0.0, 1.0 };
    const double mean_y[2] = { 2.0 / PI, 0.5 - 2.0 / PI };
    const double variance_x = 0.5 + sigma * sigma;
    const double variance_y = 0.5 - 4.0 / (PI * PI) + sigma * sigma;
    moments x[2] = { { 0 } }, y[2] = { { 0 } };
    long class_one = 0;

    for (long i = 0; i < N; i++) {
        int c = data.label[i];
        if (c != 0 && c != 1)
            continue;
        class_one += c;
        add_value(&x[c], data.x[2 * i], mean_x[c]);
        add_value(&y[c], data.x[2 * i + 1], mean_y[c]);
    }
    check_fraction(class_one, N, 0.5);
    check_moments(&x[0], mean_x[0], variance_x, "moons class 0, x");
    check_moments(&y[0], mean_y[0], variance_y, "moons class 0, y");
    check_moments(&x[1], mean_x[1], variance_x, "moons class 1, x");
    check_moments(&y[1], mean_y[1], variance_y, "moons class 1, y");
    sgk_dataset_free(&data);
}

/* With the component k uniform among K and centre c_k = R (cos a_k, sin a_k),
 * a_k = 2 pi k / K, the mixture has mean (1/K) sum_k c_k and, per coordinate,
 * variance (1/K) sum_k c_kj^2 - mean_j^2 + sigma^2. Each component's points have
 * mean c_k and variance sigma^2, and each component has probability 1/K. */
static void test_mixture_moments(void)
{
    enum { N = 40000, MAX_COMPONENTS = 8 };
    static const struct {
        int components;
        double radius;
        double sigma;
    } cases[] = { { 8, 2.0, 0.25 }, { 3, 1.5, 0.1 }, { 1, 2.0, 0.5 } };

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int K = cases[c].components;
        double R = cases[c].radius;
        double sigma = cases[c].sigma;
        double centre[MAX_COMPONENTS][2];
        double mean[2] = { 0.0, 0.0 }, second[2] = { 0.0, 0.0 };
        sgk_config config;
        sgk_dataset data;

        for (int k = 0; k < K; k++) {
            double angle = 2.0 * PI * k / K;
            centre[k][0] = R * cos(angle);
            centre[k][1] = R * sin(angle);
            for (int j = 0; j < 2; j++) {
                mean[j] += centre[k][j] / K;
                second[j] += centre[k][j] * centre[k][j] / K;
            }
        }

        base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
        config.data.n_train = N;
        config.data.n_test = 0;
        config.data.synthetic_noise = sigma;
        config.data.mixture_components = K;
        config.data.mixture_radius = R;
        CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);

        moments pooled[2] = { { 0 } };
        moments component[MAX_COMPONENTS][2] = { { { 0 } } };
        int bad_labels = 0;
        for (long i = 0; i < N; i++) {
            int k = data.label[i];
            if (k < 0 || k >= K) {
                bad_labels++;
                continue;
            }
            for (int j = 0; j < 2; j++) {
                add_value(&pooled[j], data.x[2 * i + j], mean[j]);
                add_value(&component[k][j], data.x[2 * i + j], centre[k][j]);
            }
        }
        CU_ASSERT_EQUAL(bad_labels, 0);
        check_moments(&pooled[0], mean[0], second[0] - mean[0] * mean[0] + sigma * sigma,
                      "mixture x");
        check_moments(&pooled[1], mean[1], second[1] - mean[1] * mean[1] + sigma * sigma,
                      "mixture y");
        for (int k = 0; k < K; k++) {
            check_fraction(component[k][0].count, N, 1.0 / K);
            check_moments(&component[k][0], centre[k][0], sigma * sigma, "component x");
            check_moments(&component[k][1], centre[k][1], sigma * sigma, "component y");
        }
        sgk_dataset_free(&data);
    }
}

/* Distance of a noiseless moons point to the half circle of its class, or INFINITY
 * when it lies on the wrong half of the full circle by more than the tolerance. */
static double moon_curve_distance(const double *x, int label)
{
    if (label == 0)
        return x[1] >= -ON_CURVE_TOLERANCE ? fabs(hypot(x[0], x[1]) - 1.0) : INFINITY;
    if (label == 1)
        return x[1] <= 0.5 + ON_CURVE_TOLERANCE ? fabs(hypot(x[0] - 1.0, x[1] - 0.5) - 1.0)
                                                : INFINITY;
    return INFINITY;
}

/* With synthetic_noise = 0 every point lies on its curve or centre, and the moons
 * points cover both half circles from end to end. */
static void test_noiseless_points_on_curves(void)
{
    enum { N = 4000 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.n_train = N;
    config.data.n_test = 0;
    config.data.synthetic_noise = 0.0;
    CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);

    double worst = 0.0;
    double x_min[2] = { INFINITY, INFINITY }, x_max[2] = { -INFINITY, -INFINITY };
    for (long i = 0; i < N; i++) {
        int c = data.label[i];
        worst = fmax(worst, moon_curve_distance(&data.x[2 * i], c));
        if (c == 0 || c == 1) {
            x_min[c] = fmin(x_min[c], data.x[2 * i]);
            x_max[c] = fmax(x_max[c], data.x[2 * i]);
        }
    }
    CU_ASSERT(worst <= ON_CURVE_TOLERANCE);
    /* x = cos t (class 0) and 1 - cos t (class 1) span [-1, 1] and [0, 2]; a point
     * within 0.01 of each end has probability about 0.045 per class-0 draw. */
    CU_ASSERT(x_min[0] < -0.99 && x_max[0] > 0.99);
    CU_ASSERT(x_min[1] < 0.01 && x_max[1] > 1.99);
    sgk_dataset_free(&data);

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.n_train = N;
    config.data.n_test = 0;
    config.data.synthetic_noise = 0.0;
    config.data.mixture_components = 5;
    config.data.mixture_radius = 3.0;
    CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);
    worst = 0.0;
    for (long i = 0; i < N; i++) {
        double angle = 2.0 * PI * data.label[i] / 5.0;
        worst = fmax(worst, hypot(data.x[2 * i] - 3.0 * cos(angle),
                                  data.x[2 * i + 1] - 3.0 * sin(angle)));
    }
    CU_ASSERT(worst <= ON_CURVE_TOLERANCE);
    sgk_dataset_free(&data);
}

/* Each point has its own random substream: the test points do not depend on n_train,
 * the first training points do not depend on n_train either, and another seed gives
 * other points. */
static void test_points_independent_of_counts(void)
{
    static const sgk_source sources[] = { SGK_SOURCE_MOONS, SGK_SOURCE_GAUSSIAN_MIXTURE };

    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        sgk_config config;
        sgk_dataset small, large, other_seed;

        base_config(&config, sources[s]);
        CU_ASSERT_EQUAL_FATAL(load(&config, &small), SGK_OK);
        config.data.n_train = 80;
        CU_ASSERT_EQUAL_FATAL(load(&config, &large), SGK_OK);
        config.data.n_train = 50;
        config.data.seed = 4;
        CU_ASSERT_EQUAL_FATAL(load(&config, &other_seed), SGK_OK);

        /* Test rows start at row 50 in `small` and at row 80 in `large`. */
        CU_ASSERT_EQUAL(memcmp(small.x + 2 * 50, large.x + 2 * 80, 30 * 2 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(small.y + 50, large.y + 80, 30 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(small.label + 50, large.label + 80, 30 * sizeof(int)), 0);
        CU_ASSERT_EQUAL(memcmp(small.x, large.x, 50 * 2 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(small.label, large.label, 50 * sizeof(int)), 0);

        /* Training and test points come from different substreams. */
        CU_ASSERT_NOT_EQUAL(memcmp(small.x, small.x + 2 * 50, 30 * 2 * sizeof(double)), 0);
        CU_ASSERT_NOT_EQUAL(memcmp(small.x, other_seed.x, 50 * 2 * sizeof(double)), 0);
        sgk_dataset_free(&small);
        sgk_dataset_free(&large);
        sgk_dataset_free(&other_seed);
    }
}

/* The noise is synthetic_noise times normals that do not depend on the noise level:
 * the labels stay, and x(0.2) - x(0) = 2 (x(0.1) - x(0)). */
static void test_noise_scales_same_normals(void)
{
    sgk_config config;
    sgk_dataset clean, noisy, noisier;

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.synthetic_noise = 0.0;
    CU_ASSERT_EQUAL_FATAL(load(&config, &clean), SGK_OK);
    config.data.synthetic_noise = 0.1;
    CU_ASSERT_EQUAL_FATAL(load(&config, &noisy), SGK_OK);
    config.data.synthetic_noise = 0.2;
    CU_ASSERT_EQUAL_FATAL(load(&config, &noisier), SGK_OK);

    CU_ASSERT_EQUAL(memcmp(clean.label, noisy.label, 80 * sizeof(int)), 0);
    CU_ASSERT_EQUAL(memcmp(clean.label, noisier.label, 80 * sizeof(int)), 0);
    double worst = 0.0;
    double noise_norm = 0.0;
    for (long k = 0; k < 80 * 2; k++) {
        double once = noisy.x[k] - clean.x[k];
        /* Each side is a difference of values below about 2.5, so rounding gives
         * errors of a few 1e-16. */
        worst = fmax(worst, fabs((noisier.x[k] - clean.x[k]) - 2.0 * once));
        noise_norm += once * once;
    }
    CU_ASSERT(worst < 1e-12);
    CU_ASSERT(noise_norm > 0.0);
    sgk_dataset_free(&clean);
    sgk_dataset_free(&noisy);
    sgk_dataset_free(&noisier);
}

/* [data] classes does not select anything for these sources and is ignored, as for
 * the teacher source. */
static void test_classes_key_ignored(void)
{
    sgk_config config;
    sgk_dataset first, second;

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    CU_ASSERT_EQUAL_FATAL(load(&config, &first), SGK_OK);
    config.data.classes[0] = 3;
    config.data.classes[1] = 6;
    config.data.classes[2] = 9;
    config.data.n_classes = 3;
    CU_ASSERT_EQUAL_FATAL(load(&config, &second), SGK_OK);
    CU_ASSERT_EQUAL(fingerprint(SGK_OK, &first), fingerprint(SGK_OK, &second));
    sgk_dataset_free(&first);
    sgk_dataset_free(&second);
}

/* With loss = xent the targets are one-hot over the 2 moons classes or the K mixture
 * components, with the 1 at the label; K = 1 is rejected. */
static void test_xent_one_hot_targets(void)
{
    static const struct {
        sgk_source source;
        int components;
        int outputs;
    } cases[] = { { SGK_SOURCE_MOONS, 8, 2 }, { SGK_SOURCE_GAUSSIAN_MIXTURE, 5, 5 } };

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sgk_config config;
        sgk_dataset data;
        sgk_dataset plain;

        base_config(&config, cases[c].source);
        config.data.mixture_components = cases[c].components;
        CU_ASSERT_EQUAL_FATAL(load(&config, &plain), SGK_OK);
        config.train.loss = SGK_LOSS_XENT;
        CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);
        CU_ASSERT_EQUAL(data.n_outputs, cases[c].outputs);

        int bad_rows = 0;
        for (long row = 0; row < data.n_samples; row++) {
            for (int k = 0; k < data.n_outputs; k++) {
                double expected = k == data.label[row] ? 1.0 : 0.0;
                if (data.y[row * data.n_outputs + k] != expected)
                    bad_rows++;
            }
        }
        CU_ASSERT_EQUAL(bad_rows, 0);
        /* The loss changes the targets only, not the points or labels. */
        CU_ASSERT_EQUAL(memcmp(data.x, plain.x, 80 * 2 * sizeof(double)), 0);
        CU_ASSERT_EQUAL(memcmp(data.label, plain.label, 80 * sizeof(int)), 0);
        sgk_dataset_free(&data);
        sgk_dataset_free(&plain);
    }

    sgk_config config;
    sgk_dataset data;
    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.mixture_components = 1;
    config.train.loss = SGK_LOSS_XENT;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "data.mixture_components = 1"));
}

/* ood = shift draws further noiseless points of the same distribution, keeps their
 * labels and targets, and adds SCALE times the pooled standard deviation of the
 * training inputs to each coordinate. */
static void test_ood_shift(void)
{
    enum { N_TRAIN = 200, N_TEST = 20, N_OOD = 40 };
    const double scale = 2.5;
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.n_train = N_TRAIN;
    config.data.n_test = N_TEST;
    config.data.synthetic_noise = 0.0;
    config.data.ood = SGK_OOD_SHIFT;
    config.data.ood_shift = scale;
    config.data.n_ood = N_OOD;
    CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);
    CU_ASSERT_EQUAL(data.n_ood, N_OOD);

    double sum = 0.0, squares = 0.0;
    for (long k = 0; k < 2 * N_TRAIN; k++)
        sum += data.x[k];
    double mean = sum / (2 * N_TRAIN);
    for (long k = 0; k < 2 * N_TRAIN; k++)
        squares += (data.x[k] - mean) * (data.x[k] - mean);
    double offset = scale * sqrt(squares / (2 * N_TRAIN));

    double worst = 0.0;
    int bad_rows = 0;
    for (long row = N_TRAIN + N_TEST; row < data.n_samples; row++) {
        double unshifted[2] = { data.x[2 * row] - offset, data.x[2 * row + 1] - offset };
        int label = data.label[row];
        worst = fmax(worst, moon_curve_distance(unshifted, label));
        if (data.split[row] != SGK_SPLIT_OOD || data.y[row] != (label == 0 ? -1.0 : 1.0))
            bad_rows++;
    }
    CU_ASSERT(worst <= ON_CURVE_TOLERANCE);
    CU_ASSERT_EQUAL(bad_rows, 0);
    /* The shifted points are fresh draws, not the test points moved. */
    CU_ASSERT(data.x[2 * (N_TRAIN + N_TEST)] - offset != data.x[2 * N_TRAIN]);
    sgk_dataset_free(&data);
}

/* ood = noise rows are Gaussian points with the training moments, target 0 and
 * label -1, as for every source. */
static void test_ood_noise(void)
{
    enum { N_OOD = 30 };
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.ood = SGK_OOD_NOISE;
    config.data.n_ood = N_OOD;
    CU_ASSERT_EQUAL_FATAL(load(&config, &data), SGK_OK);
    CU_ASSERT_EQUAL(data.n_samples, 80 + N_OOD);

    int bad_rows = 0;
    for (long row = 80; row < data.n_samples; row++) {
        if (data.label[row] != -1 || data.y[row] != 0.0 || !isfinite(data.x[2 * row]) ||
            !isfinite(data.x[2 * row + 1]) || data.split[row] != SGK_SPLIT_OOD)
            bad_rows++;
    }
    CU_ASSERT_EQUAL(bad_rows, 0);
    sgk_dataset_free(&data);
}

/* Invalid keys are configuration errors whose message names the key or source. */
static void test_invalid_keys(void)
{
    sgk_config config;
    sgk_dataset data;

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.ood = SGK_OOD_CLASSES;
    config.data.ood_classes[0] = 1;
    config.data.n_ood_classes = 1;
    config.data.n_ood = 3;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "moons"));
    CU_ASSERT(data.x == NULL);

    base_config(&config, SGK_SOURCE_MOONS);
    config.data.synthetic_noise = -1.0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "data.synthetic_noise"));

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.synthetic_noise = NAN;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "data.synthetic_noise"));

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.mixture_components = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "data.mixture_components"));

    base_config(&config, SGK_SOURCE_GAUSSIAN_MIXTURE);
    config.data.mixture_radius = INFINITY;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "data.mixture_radius"));

    /* Each point's substream encodes its index in 32 bits, and the check comes before
     * any allocation. */
    base_config(&config, SGK_SOURCE_MOONS);
    config.data.n_test = (long)INT_MAX + 1;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_ERR_USAGE);
    CU_ASSERT(contains(sgk_error_message(), "2147483647"));

    /* moons has no components, so the mixture keys do not apply to it. */
    base_config(&config, SGK_SOURCE_MOONS);
    config.data.mixture_components = 0;
    CU_ASSERT_EQUAL(load(&config, &data), SGK_OK);
    sgk_dataset_free(&data);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        { "shapes and targets", test_shapes_and_targets },
        { "moons moments", test_moons_moments },
        { "mixture moments", test_mixture_moments },
        { "noiseless points on curves", test_noiseless_points_on_curves },
        { "points independent of counts", test_points_independent_of_counts },
        { "noise scales same normals", test_noise_scales_same_normals },
        { "classes key ignored", test_classes_key_ignored },
        { "xent one-hot targets", test_xent_one_hot_targets },
        { "ood shift", test_ood_shift },
        { "ood noise", test_ood_noise },
        { "invalid keys", test_invalid_keys },
    };

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);

    int result = 1;
    if (CU_initialize_registry() == CUE_SUCCESS) {
        CU_pSuite suite = CU_add_suite("synthetic", NULL, NULL);
        int registered = suite != NULL;
        for (size_t t = 0; registered && t < sizeof tests / sizeof tests[0]; t++)
            registered = CU_add_test(suite, tests[t].name, tests[t].function) != NULL;
        if (registered)
            result = sgk_test_mpi_run(MPI_COMM_WORLD);
        CU_cleanup_registry();
    }
    MPI_Finalize();
    return result;
}
