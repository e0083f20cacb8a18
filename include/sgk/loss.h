/* Per-sample losses l(f, y) and their residuals r = dl/df. */
#ifndef SGK_LOSS_H
#define SGK_LOSS_H

#include "sgk/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compute the mean loss over m points (f and y are m x O) and, when r is not NULL,
 * the residual of every point (m x O).
 *   mse:      l = |f - y|^2 / 2, r = f - y.
 *   xent:     softmax cross-entropy with one-hot y, l = lse(f) - y . f,
 *             r = softmax(f) - y; lse is shifted by max f, so no exp overflows.
 *   logistic: y = +-1, l = log(1 + exp(-y f)), r = -y sigmoid(-y f), finite for every
 *             finite f; with O > 1 each output is its own binary problem, summed.
 * Returns NaN or Inf when an output is not finite, NaN when m = 0 (the mean of no
 * points) and NaN for an unknown `kind`. */
double sgk_loss_eval(sgk_loss_kind kind, const double *f, const double *y, int m,
                     int n_outputs, double *r);

#ifdef __cplusplus
}
#endif
#endif
