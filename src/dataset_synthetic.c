/* Sources moons and gaussian-mixture: labelled point clouds in the plane.
 *
 * moons: class c in {0, 1} with probability 1/2 each and an angle t uniform in
 * [0, pi). Class 0 lies on the upper half circle (cos t, sin t), class 1 on the lower
 * one (1 - cos t, 1/2 - sin t), which passes through the centre of the upper one.
 *
 * gaussian-mixture: component k uniform in {0, ..., K - 1} with K =
 * mixture_components, centred at R (cos(2 pi k / K), sin(2 pi k / K)) with R =
 * mixture_radius.
 *
 * Both add isotropic Gaussian noise of standard deviation synthetic_noise to the two
 * coordinates. The label is the class or component, and the one target is -1 for an
 * even label and +1 for an odd one. With [train] loss = xent the targets are one-hot
 * over the labels instead, as for the IDX sources.
 *
 * Every point has its own substream of the SGK_RNG_DATA stream of [data] seed,
 * replica 0 (point_substream), so a point does not depend on how many points come
 * before it: the test points stay the same when n_train changes. Within a point the
 * label comes first, then (moons only) the angle, then the two noise normals, which
 * are drawn even when synthetic_noise = 0 so that the labels and angles do not
 * depend on the noise level. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dataset_internal.h"
#include "sgk/rng.h"

/* Which split a point is drawn for. The value selects bits 32 and up of the point's
 * substream. Starting at 1 keeps clear of substreams 0 to 3 of dataset.c, which
 * ood = noise uses on the same stream. */
typedef enum {
    SYNTHETIC_SPLIT_TRAIN = 1,
    SYNTHETIC_SPLIT_TEST = 2,
    SYNTHETIC_SPLIT_OOD = 3 /* ood = shift points, before their shift */
} synthetic_split;

enum { SYNTHETIC_FEATURES = 2 };

static const double PI = 3.14159265358979323846;

/* Substream of point `index` (0-based within its split). check_keys keeps the point
 * counts at most INT_MAX < 2^32, so the split bits never overlap. */
static uint64_t point_substream(synthetic_split split, long index)
{
    return ((uint64_t)split << 32) | (uint64_t)index;
}

static const char *source_name(const sgk_config *config)
{
    return config->data.source == SGK_SOURCE_MOONS ? "moons" : "gaussian-mixture";
}

static int label_count(const sgk_config *config)
{
    return config->data.source == SGK_SOURCE_MOONS ? 2 : config->data.mixture_components;
}

/* Softmax cross-entropy takes one output per label, the others one output of +-1. */
static int output_count(const sgk_config *config)
{
    return config->train.loss == SGK_LOSS_XENT ? label_count(config) : 1;
}

/* Config validation rejects these values too, but tests and tools call the loader
 * directly. [data] classes is ignored, because the labels are fixed by the source. */
static sgk_status check_keys(const sgk_config *config)
{
    double noise = config->data.synthetic_noise;

    if (!(noise >= 0.0) || !isfinite(noise))
        return sgk_error(SGK_ERR_USAGE, "data.synthetic_noise = %g is invalid; it must be a "
                         "finite number, 0 or more", noise);
    /* Config validation bounds the sum too, because the kernel order is a C int. */
    if (config->data.n_train > INT_MAX || config->data.n_test > INT_MAX ||
        sgk_dataset_ood_count(config) > INT_MAX)
        return sgk_error(SGK_ERR_USAGE, "data.n_train, data.n_test or data.n_ood exceeds %d, "
                         "the maximum number of points in one split of source %s", INT_MAX,
                         source_name(config));
    if (config->data.source == SGK_SOURCE_GAUSSIAN_MIXTURE) {
        double radius = config->data.mixture_radius;
        if (config->data.mixture_components < 1)
            return sgk_error(SGK_ERR_USAGE, "data.mixture_components = %d is invalid; it must "
                             "be at least 1", config->data.mixture_components);
        if (!(radius >= 0.0) || !isfinite(radius))
            return sgk_error(SGK_ERR_USAGE, "data.mixture_radius = %g is invalid; it must be a "
                             "finite number, 0 or more", radius);
    }
    if (config->train.loss == SGK_LOSS_XENT && label_count(config) < 2)
        return sgk_error(SGK_ERR_USAGE, "train.loss = xent needs at least 2 classes, but "
                         "data.mixture_components = 1; use 2 or more components, or loss = "
                         "mse");
    /* Config validation admits ood = classes only for the IDX sources, whose
     * training classes [data] classes selects. These sources have no such selection. */
    if (config->data.ood == SGK_OOD_CLASSES && config->data.n_ood > 0)
        return sgk_error(SGK_ERR_USAGE, "data.ood = classes is not available for source %s, "
                         "whose classes are fixed by the source; use none, noise or "
                         "shift:SCALE", source_name(config));
    return SGK_OK;
}

/* Draw one noiseless moons point into x and return its class. */
static int draw_moon(sgk_rng *rng, double *x)
{
    int label = (int)sgk_rng_below(rng, 2);
    double t = PI * sgk_rng_uniform(rng);

    if (label == 0) {
        x[0] = cos(t);
        x[1] = sin(t);
    } else {
        x[0] = 1.0 - cos(t);
        x[1] = 0.5 - sin(t);
    }
    return label;
}

/* Draw one mixture centre into x and return its component. */
static int draw_centre(sgk_rng *rng, int components, double radius, double *x)
{
    int label = (int)sgk_rng_below(rng, (uint64_t)components);
    double angle = 2.0 * PI * (double)label / (double)components;

    x[0] = radius * cos(angle);
    x[1] = radius * sin(angle);
    return label;
}

/* Draw `count` points of `split` into rows first_row.. of `data`. */
static void draw_points(const sgk_config *config, synthetic_split split, long first_row,
                        long count, sgk_dataset *data)
{
    double noise = config->data.synthetic_noise;
    int outputs = output_count(config);
    sgk_rng rng;

    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_DATA);
    for (long index = 0; index < count; index++) {
        long row = first_row + index;
        double *x = data->x + row * SYNTHETIC_FEATURES;
        int label;

        sgk_rng_seek(&rng, point_substream(split, index));
        if (config->data.source == SGK_SOURCE_MOONS)
            label = draw_moon(&rng, x);
        else
            label = draw_centre(&rng, config->data.mixture_components,
                                config->data.mixture_radius, x);
        x[0] += noise * sgk_rng_normal(&rng);
        x[1] += noise * sgk_rng_normal(&rng);

        data->label[row] = label;
        if (outputs == 1)
            data->y[row] = label % 2 == 0 ? -1.0 : 1.0;
        else
            data->y[row * outputs + label] = 1.0; /* sgk_dataset_alloc zeroed the rest */
    }
}

sgk_status sgk_dataset_build_synthetic(const sgk_config *config, sgk_dataset *data)
{
    long n_train = config->data.n_train;
    long n_test = config->data.n_test;
    long n_ood = sgk_dataset_ood_count(config);

    memset(data, 0, sizeof *data);
    if (config->data.source != SGK_SOURCE_MOONS &&
        config->data.source != SGK_SOURCE_GAUSSIAN_MIXTURE)
        return sgk_error(SGK_ERR_USAGE, "data.source has the value %d, which is neither moons "
                         "nor gaussian-mixture", (int)config->data.source);
    SGK_CHECK(check_keys(config));
    SGK_CHECK(sgk_dataset_alloc(data, n_train, n_test, n_ood, SYNTHETIC_FEATURES,
                                output_count(config)));

    draw_points(config, SYNTHETIC_SPLIT_TRAIN, 0, n_train, data);
    draw_points(config, SYNTHETIC_SPLIT_TEST, n_train, n_test, data);

    /* ood = shift takes further points of the same distribution, which the caller
     * shifts. The caller also fills the ood = noise rows from the training moments. */
    if (config->data.ood == SGK_OOD_SHIFT)
        draw_points(config, SYNTHETIC_SPLIT_OOD, n_train + n_test, n_ood, data);
    return SGK_OK;
}
