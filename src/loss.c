/* Per-sample losses and residuals r = dl/df, evaluated without overflow for any
 * finite output. */
#include <math.h>
#include <stddef.h>

#include "sgk/loss.h"

/* NaN when an output of the point is NaN, +Inf when one is infinite, 0 otherwise.
 * Added to a point's loss, it makes a non-finite output visible even where the loss
 * formula itself would saturate to a finite value (logistic loss at f = +Inf, y = +1). */
static double nonfinite_marker(const double *f, int n_outputs)
{
    double marker = 0.0;

    for (int o = 0; o < n_outputs; o++) {
        if (isnan(f[o])) return f[o];
        if (isinf(f[o])) marker = INFINITY;
    }
    return marker;
}

/* l = |f - y|^2 / 2, r = f - y. */
static double mse_point(const double *f, const double *y, int n_outputs, double *r)
{
    double loss = 0.0;

    for (int o = 0; o < n_outputs; o++) {
        double diff = f[o] - y[o];

        loss += 0.5 * diff * diff;
        if (r) r[o] = diff;
    }
    return loss;
}

/* Softmax cross-entropy l = sum_o y_o (lse(f) - f_o). Shifting by the maximum,
 * lse(f) = max f + log sum_o exp(f_o - max f), keeps every exp argument <= 0.
 * The residual r = softmax(f) - y is dl/df when the targets sum to 1 (one-hot).
 * Outputs with y_o = 0 add nothing, so an output at -Inf with target 0 does not
 * turn the loss into 0 * Inf. */
static double xent_point(const double *f, const double *y, int n_outputs, double *r)
{
    double f_max = f[0];
    double sum_exp = 0.0;
    double log_sum_exp;
    double loss = 0.0;

    for (int o = 1; o < n_outputs; o++)
        if (f[o] > f_max) f_max = f[o];
    for (int o = 0; o < n_outputs; o++) sum_exp += exp(f[o] - f_max);
    log_sum_exp = f_max + log(sum_exp);

    for (int o = 0; o < n_outputs; o++) {
        if (y[o] != 0.0) loss += y[o] * (log_sum_exp - f[o]);
        if (r) r[o] = exp(f[o] - log_sum_exp) - y[o];
    }
    return loss;
}

/* log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), finite for every finite z. */
static double softplus(double z)
{
    return fmax(z, 0.0) + log1p(exp(-fabs(z)));
}

/* 1 / (1 + exp(-z)), evaluated through exp of a non-positive argument. */
static double sigmoid(double z)
{
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* Binary logistic loss with targets +-1: l = log(1 + exp(-y f)), r = -y sigmoid(-y f).
 * With more than one output every output is an independent binary problem and the
 * point's loss is the sum. */
static double logistic_point(const double *f, const double *y, int n_outputs, double *r)
{
    double loss = 0.0;

    for (int o = 0; o < n_outputs; o++) {
        double margin = -y[o] * f[o];

        loss += softplus(margin);
        if (r) r[o] = -y[o] * sigmoid(margin);
    }
    return loss;
}

double sgk_loss_eval(sgk_loss_kind kind, const double *f, const double *y, int m,
                     int n_outputs, double *r)
{
    double total = 0.0;

    if (m <= 0 || n_outputs <= 0) return NAN;
    for (int i = 0; i < m; i++) {
        size_t offset = (size_t)i * n_outputs;
        const double *f_i = f + offset;
        const double *y_i = y + offset;
        double *r_i = r ? r + offset : NULL;

        switch (kind) {
        case SGK_LOSS_MSE:
            total += mse_point(f_i, y_i, n_outputs, r_i);
            break;
        case SGK_LOSS_XENT:
            total += xent_point(f_i, y_i, n_outputs, r_i);
            break;
        case SGK_LOSS_LOGISTIC:
            total += logistic_point(f_i, y_i, n_outputs, r_i);
            break;
        default:
            return NAN;
        }
        total += nonfinite_marker(f_i, n_outputs);
    }
    return total / m;
}
