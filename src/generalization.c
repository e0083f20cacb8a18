/* Test error of the ensemble mean and of single replicas, and the Pearson
 * correlation used to compare it with the memory residual. Serial, because only
 * rank 0 has the network outputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/analysis.h"

const char *sgk_error_kind_name(sgk_error_kind kind)
{
    switch (kind) {
    case SGK_ERROR_SIGN:
        return "sign error rate";
    case SGK_ERROR_ARGMAX:
        return "argmax error rate";
    case SGK_ERROR_MSE:
        return "mean squared error";
    }
    return "?";
}

/* Whether `y` (O entries) is one 1 and O - 1 zeros. */
static int is_one_hot(const double *y, int outputs)
{
    int ones = 0;

    for (int o = 0; o < outputs; o++) {
        if (y[o] == 1.0)
            ones++;
        else if (y[o] != 0.0)
            return 0;
    }
    return ones == 1;
}

/* The measure the targets of the training and test points allow. */
static sgk_error_kind choose_kind(const sgk_dataset *data)
{
    int outputs = data->n_outputs;
    int sign = outputs == 1, argmax = outputs >= 2;

    for (long x = 0; x < data->n_samples && (sign || argmax); x++) {
        const double *y = data->y + x * outputs;

        if (data->split[x] == SGK_SPLIT_OOD) continue;
        if (sign && y[0] != 1.0 && y[0] != -1.0) sign = 0;
        if (argmax && !is_one_hot(y, outputs)) argmax = 0;
    }
    if (sign) return SGK_ERROR_SIGN;
    if (argmax) return SGK_ERROR_ARGMAX;
    return SGK_ERROR_MSE;
}

/* Index of the largest entry, or -1 when an entry is not finite. */
static int argmax(const double *values, int count)
{
    int best = 0;

    for (int o = 0; o < count; o++) {
        if (!isfinite(values[o])) return -1;
        if (values[o] > values[best]) best = o;
    }
    return best;
}

/* Error of the outputs `f` at one point with targets `y`. */
static double point_error(sgk_error_kind kind, const double *f, const double *y, int outputs)
{
    double sum = 0.0;

    switch (kind) {
    case SGK_ERROR_SIGN:
        /* f = 0 and NaN count as wrong: neither has the sign of y. */
        return f[0] * y[0] > 0.0 ? 0.0 : 1.0;
    case SGK_ERROR_ARGMAX: {
        int predicted = argmax(f, outputs);

        return predicted >= 0 && predicted == argmax(y, outputs) ? 0.0 : 1.0;
    }
    case SGK_ERROR_MSE:
        break;
    }
    for (int o = 0; o < outputs; o++) sum += (f[o] - y[o]) * (f[o] - y[o]);
    return sum / outputs;
}

/* Mean error of the outputs `f` (N x O) over the test points, or NaN without any. */
static double test_error(const sgk_dataset *data, sgk_error_kind kind, const double *f)
{
    double sum = 0.0;
    long count = 0;

    for (long x = 0; x < data->n_samples; x++) {
        if (data->split[x] != SGK_SPLIT_TEST) continue;
        sum += point_error(kind, f + x * data->n_outputs, data->y + x * data->n_outputs,
                           data->n_outputs);
        count++;
    }
    return count > 0 ? sum / (double)count : NAN;
}

sgk_status sgk_generalization_compute(const sgk_dataset *data, const double *f_mean,
                                      const double *f_replica, long n_replicas,
                                      sgk_generalization *generalization)
{
    size_t per_replica = (size_t)data->n_samples * (size_t)data->n_outputs;

    memset(generalization, 0, sizeof *generalization);
    if (f_mean == NULL || data->y == NULL || data->split == NULL || data->n_outputs < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_generalization_compute: the ensemble-mean outputs, the targets "
                         "and the split array are all needed (n_outputs = %d)",
                         data->n_outputs);
    if (f_replica != NULL && n_replicas < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_generalization_compute: replica outputs given with %ld replicas; "
                         "pass at least 1, or NULL outputs",
                         n_replicas);

    generalization->kind = choose_kind(data);
    generalization->point_error = malloc((size_t)data->n_samples * sizeof(double));
    if (f_replica != NULL) {
        generalization->n_replicas = n_replicas;
        generalization->test_error_replica = malloc((size_t)n_replicas * sizeof(double));
    }
    if (generalization->point_error == NULL ||
        (f_replica != NULL && generalization->test_error_replica == NULL)) {
        sgk_generalization_free(generalization);
        return sgk_error(SGK_ERR_IO,
                         "out of memory for the errors of %ld points and %ld "
                         "replicas",
                         data->n_samples, n_replicas);
    }

    /* Out-of-distribution targets are placeholders (0) for most sources. */
    for (long x = 0; x < data->n_samples; x++) {
        int outputs = data->n_outputs;

        generalization->point_error[x] =
            data->split[x] == SGK_SPLIT_OOD
                ? NAN
                : point_error(generalization->kind, f_mean + x * outputs, data->y + x * outputs,
                              outputs);
        if (data->split[x] == SGK_SPLIT_TEST) generalization->n_test++;
    }
    generalization->test_error_mean = test_error(data, generalization->kind, f_mean);
    for (long r = 0; f_replica != NULL && r < n_replicas; r++)
        generalization->test_error_replica[r] =
            test_error(data, generalization->kind, f_replica + (size_t)r * per_replica);
    return SGK_OK;
}

void sgk_generalization_free(sgk_generalization *generalization)
{
    free(generalization->test_error_replica);
    free(generalization->point_error);
    memset(generalization, 0, sizeof *generalization);
}

double sgk_pearson_correlation(const double *x, const double *y, long count)
{
    double mean_x = 0.0, mean_y = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0;

    if (count < 2) return NAN;
    for (long i = 0; i < count; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) return NAN;
        mean_x += x[i];
        mean_y += y[i];
    }
    mean_x /= (double)count;
    mean_y /= (double)count;

    /* Sums of centered products: the two-pass form, without the cancellation of
     * sum x y - n mean_x mean_y. */
    for (long i = 0; i < count; i++) {
        sxx += (x[i] - mean_x) * (x[i] - mean_x);
        syy += (y[i] - mean_y) * (y[i] - mean_y);
        sxy += (x[i] - mean_x) * (y[i] - mean_y);
    }
    if (sxx == 0.0 || syy == 0.0) return NAN;
    return sxy / sqrt(sxx * syy);
}
