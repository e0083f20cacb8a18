/* Source teacher: synthetic regression with a fixed random teacher network.
 *
 * Inputs x ~ N(0, I_d) / sqrt(d), so |x|^2 is close to 1 for any d. The teacher is
 * f*(x) = sum_k v_k tanh(w_k . x + b_k) / sqrt(m) with m hidden units and w_k, b_k, v_k
 * standard normal: w_k . x is then about N(0, 1), tanh works in its nonlinear but
 * unsaturated range, and f*(x) has variance of order 1 whatever m is. Targets are
 * y = f*(x) + teacher_noise * N(0, 1).
 *
 * Every draw comes from the SGK_RNG_TEACHER stream of [data] seed, replica 0, with
 * one substream per purpose. Within a point the d inputs come first, then the noise
 * normal, which is drawn even when teacher_noise = 0 so that the inputs do not
 * depend on the noise level. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "sgk/rng.h"

enum {
    TEACHER_SUBSTREAM_WEIGHTS = 0,
    TEACHER_SUBSTREAM_TRAIN = 1,
    TEACHER_SUBSTREAM_TEST = 2,
    TEACHER_SUBSTREAM_OOD = 3   /* ood = shift points, before their shift */
};

/* Teacher weights: w is m x d row-major, then b and v with m entries each. */
typedef struct {
    int d;
    int m;
    double *w;
    double *b;
    double *v;
} teacher;

static sgk_status check_keys(const sgk_config *config)
{
    if (config->data.teacher_inputs < 1)
        return sgk_error(SGK_ERR_USAGE, "data.teacher_inputs = %d is invalid; it must be "
                         "at least 1", config->data.teacher_inputs);
    if (config->data.teacher_width < 1)
        return sgk_error(SGK_ERR_USAGE, "data.teacher_width = %d is invalid; it must be at "
                         "least 1", config->data.teacher_width);
    if (!(config->data.teacher_noise >= 0.0) || !isfinite(config->data.teacher_noise))
        return sgk_error(SGK_ERR_USAGE, "data.teacher_noise = %g is invalid; it must be a "
                         "finite number, 0 or more", config->data.teacher_noise);
    if (config->data.ood == SGK_OOD_CLASSES && config->data.n_ood > 0)
        return sgk_error(SGK_ERR_USAGE, "data.ood = classes needs a source with class "
                         "labels (fashion-mnist or idx); source teacher has none, so use "
                         "none, noise or shift:SCALE");
    return SGK_OK;
}

static sgk_status create_teacher(const sgk_config *config, teacher *net)
{
    size_t d = (size_t)config->data.teacher_inputs;
    size_t m = (size_t)config->data.teacher_width;
    sgk_rng rng;

    net->d = (int)d;
    net->m = (int)m;
    net->w = malloc(m * d * sizeof *net->w);
    net->b = malloc(m * sizeof *net->b);
    net->v = malloc(m * sizeof *net->v);
    if (!net->w || !net->b || !net->v)
        return sgk_error(SGK_ERR_IO, "out of memory for a teacher of %zu inputs and %zu "
                         "hidden units", d, m);

    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_TEACHER);
    sgk_rng_seek(&rng, TEACHER_SUBSTREAM_WEIGHTS);
    for (size_t k = 0; k < m * d; k++)
        net->w[k] = sgk_rng_normal(&rng);
    for (size_t k = 0; k < m; k++)
        net->b[k] = sgk_rng_normal(&rng);
    for (size_t k = 0; k < m; k++)
        net->v[k] = sgk_rng_normal(&rng);
    return SGK_OK;
}

static void free_teacher(teacher *net)
{
    free(net->w);
    free(net->b);
    free(net->v);
}

static double evaluate(const teacher *net, const double *x)
{
    double sum = 0.0;

    for (int k = 0; k < net->m; k++) {
        const double *w_k = net->w + (size_t)k * (size_t)net->d;
        double preactivation = net->b[k];
        for (int j = 0; j < net->d; j++)
            preactivation += w_k[j] * x[j];
        sum += net->v[k] * tanh(preactivation);
    }
    return sum / sqrt((double)net->m);
}

/* Draw `count` fresh points into rows first_row.. from `substream`. */
static void draw_points(const sgk_config *config, const teacher *net, uint64_t substream,
                        long first_row, long count, sgk_dataset *data)
{
    double input_scale = 1.0 / sqrt((double)net->d);
    sgk_rng rng;

    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_TEACHER);
    sgk_rng_seek(&rng, substream);
    for (long row = first_row; row < first_row + count; row++) {
        double *x = data->x + row * net->d;
        for (int j = 0; j < net->d; j++)
            x[j] = input_scale * sgk_rng_normal(&rng);
        double noise = sgk_rng_normal(&rng);
        data->y[row] = evaluate(net, x) + config->data.teacher_noise * noise;
    }
}

sgk_status sgk_dataset_build_teacher(const sgk_config *config, sgk_dataset *data)
{
    long n_train = config->data.n_train;
    long n_test = config->data.n_test;
    long n_ood = sgk_dataset_ood_count(config);
    teacher net = {0};

    memset(data, 0, sizeof *data);
    SGK_CHECK(check_keys(config));

    sgk_status status = create_teacher(config, &net);
    if (status == SGK_OK)
        status = sgk_dataset_alloc(data, n_train, n_test, n_ood, net.d, 1);
    if (status == SGK_OK) {
        draw_points(config, &net, TEACHER_SUBSTREAM_TRAIN, 0, n_train, data);
        draw_points(config, &net, TEACHER_SUBSTREAM_TEST, n_train, n_test, data);

        /* ood = shift takes further test-distribution points; ood = noise rows are
         * filled by the caller from the training moments. */
        if (config->data.ood == SGK_OOD_SHIFT)
            draw_points(config, &net, TEACHER_SUBSTREAM_OOD, n_train + n_test, n_ood, data);
    }
    free_teacher(&net);
    return status;
}
