/* Optimizer steps (SGD, heavy-ball momentum, Adam, RMSProp, SGLD) and the attribution
 * of each step to the current gradient that the drift bookkeeping uses.
 *
 * A step turns the minibatch mean gradient g_k into the parameter change dw_k. The drift
 * attributes dw_k to the current gradient as -effective_lr * P .* g_k, with a diagonal
 * preconditioner P; what the attribution misses (the part of dw_k made of past gradients,
 * Langevin noise) ends up in the measured remainder. doc/optimizers.md gives every
 * update rule and attribution as implemented. */
#ifndef SGK_OPTIMIZER_H
#define SGK_OPTIMIZER_H

#include "sgk/config.h"
#include "sgk/rng.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* State of one replica's optimizer. The hyperparameters are copied from [train] at
 * creation; `step` and the state arrays change with every sgk_optimizer_step. */
typedef struct {
    sgk_optimizer_kind kind;
    long n_params;          /* entries of w, g, dw and of every state array */
    double lr;              /* learning rate eta */
    double momentum;        /* heavy-ball coefficient (momentum), first-moment decay beta1 (adam) */
    double beta2;           /* second-moment decay (adam, rmsprop) */
    double epsilon;         /* added to the root of the second moment (adam, rmsprop) */
    double temperature;     /* Langevin temperature (sgld) */
    double *velocity;       /* heavy-ball velocity (momentum) or first moment m (adam); else NULL */
    double *second_moment;  /* running mean of g^2 (adam, rmsprop); else NULL */
    double *preconditioner; /* P of the last step (adam, rmsprop); else NULL */
    long step;              /* steps taken since creation */
} sgk_optimizer;

/* Set up `opt` for `n_params` parameters with the optimizer and hyperparameters of
 * config->train, and zero its state (step 0, zero moments). `opt` may hold garbage on
 * entry; it is not freed first, so free a previously created optimizer before reuse.
 * Errors: SGK_ERR_USAGE for n_params < 1, an unknown optimizer or a hyperparameter
 * outside its range (lr > 0, 0 <= momentum < 1, 0 <= beta2 < 1, epsilon > 0,
 * temperature >= 0, all finite), naming the key; SGK_ERR_IO when out of memory. On
 * error `opt` is zeroed, so sgk_optimizer_free on it is safe. */
sgk_status sgk_optimizer_create(sgk_optimizer *opt, const sgk_config *config, long n_params);

/* Nonzero for the optimizers whose steps carry a diagonal preconditioner (Adam, RMSProp). */
int sgk_optimizer_preconditions(sgk_optimizer_kind kind);

/* Release the state arrays and zero `opt`. Safe on a zeroed optimizer and twice. */
void sgk_optimizer_free(sgk_optimizer *opt);

/* Take one step from the minibatch mean gradient g: compute dw, then w += dw in
 * place, so w_{k+1} = w_k + dw with one rounding per entry. g and dw must not alias
 * w, but dw may alias g. Then opt->step increases by one.
 * Attribution: the step is attributed to g as -(*effective_lr) * P .* g, where
 * *preconditioner = P (n_params entries, owned by `opt`, valid until the next step or
 * free) or NULL for P = I.
 * noise: the SGK_RNG_NOISE stream. SGLD with temperature > 0 draws the noise of step k
 * (k = opt->step before the call) from substream k, one standard normal per parameter
 * in parameter order, so a step's noise does not depend on earlier draws and a restart
 * that restores opt->step draws the same noise. `noise` may be NULL for every other
 * optimizer and for SGLD at temperature 0, which draws nothing. */
void sgk_optimizer_step(sgk_optimizer *opt, double *w, const double *g, sgk_rng *noise,
                        double *dw, double *effective_lr, const double **preconditioner);

#ifdef __cplusplus
}
#endif
#endif
