/* Optimizer steps and their attribution to the current gradient.
 *
 * Every update rule reads g[p] before it writes dw[p], one parameter at a time, which
 * is what lets dw alias g. The attributions follow one principle: the step is charged
 * to the current gradient with the weight that gradient receives over all updates,
 * present and future, assuming the preconditioner stays as it is now. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/optimizer.h"

/* Names of sgk_optimizer_kind values, for messages. */
static const char *const kind_names[] = { "sgd", "momentum", "adam", "rmsprop", "sgld" };

#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

/* Record an error for a [train] hyperparameter outside its range. */
static sgk_status invalid_hyperparameter(const char *key, double value, const char *accepted)
{
    return sgk_error(SGK_ERR_USAGE, "optimizer: invalid train.%s = %g; expected %s", key, value,
                     accepted);
}

static sgk_status check_hyperparameters(const sgk_config *config, long n_params)
{
    int kind = (int)config->train.optimizer;
    double lr = config->train.lr;
    double momentum = config->train.momentum;
    double beta2 = config->train.beta2;
    double epsilon = config->train.epsilon;
    double temperature = config->train.temperature;

    if (n_params < 1)
        return sgk_error(SGK_ERR_USAGE, "optimizer: %ld parameters requested; an optimizer needs "
                         "at least 1", n_params);
    if (kind < 0 || kind >= N_KINDS)
        return sgk_error(SGK_ERR_USAGE, "optimizer: unknown train.optimizer value %d; expected "
                         "sgd, momentum, adam, rmsprop or sgld", kind);

    /* The negated comparisons reject NaN too. */
    if (!(lr > 0.0) || !isfinite(lr))
        return invalid_hyperparameter("lr", lr, "a finite number > 0");
    if (!(momentum >= 0.0 && momentum < 1.0))
        return invalid_hyperparameter("momentum", momentum, "a number >= 0 and < 1");
    if (!(beta2 >= 0.0 && beta2 < 1.0))
        return invalid_hyperparameter("beta2", beta2, "a number >= 0 and < 1");
    if (!(epsilon > 0.0) || !isfinite(epsilon))
        return invalid_hyperparameter("epsilon", epsilon, "a finite number > 0");
    if (!(temperature >= 0.0) || !isfinite(temperature))
        return invalid_hyperparameter("temperature", temperature, "a finite number >= 0");
    return SGK_OK;
}

sgk_status sgk_optimizer_create(sgk_optimizer *opt, const sgk_config *config, long n_params)
{
    sgk_optimizer_kind kind = config->train.optimizer;
    sgk_status status;
    int ok = 1;

    memset(opt, 0, sizeof *opt);
    status = check_hyperparameters(config, n_params);
    if (status != SGK_OK) return status;

    opt->kind = kind;
    opt->n_params = n_params;
    opt->lr = config->train.lr;
    opt->momentum = config->train.momentum;
    opt->beta2 = config->train.beta2;
    opt->epsilon = config->train.epsilon;
    opt->temperature = config->train.temperature;

    /* calloc gives the zero moments that every rule starts from. */
    if (kind == SGK_OPT_MOMENTUM || kind == SGK_OPT_ADAM) {
        opt->velocity = calloc((size_t)n_params, sizeof(double));
        ok = ok && opt->velocity;
    }
    if (kind == SGK_OPT_ADAM || kind == SGK_OPT_RMSPROP) {
        opt->second_moment = calloc((size_t)n_params, sizeof(double));
        opt->preconditioner = calloc((size_t)n_params, sizeof(double));
        ok = ok && opt->second_moment && opt->preconditioner;
    }
    if (!ok) {
        sgk_optimizer_free(opt);
        return sgk_error(SGK_ERR_IO, "optimizer: out of memory for the %s state of %ld parameters",
                         kind_names[kind], n_params);
    }
    return SGK_OK;
}

void sgk_optimizer_free(sgk_optimizer *opt)
{
    free(opt->velocity);
    free(opt->second_moment);
    free(opt->preconditioner);
    memset(opt, 0, sizeof *opt);
}

/* ------------------------------------------------------------------------- */
/* Update rules. Each writes dw only, and sgk_optimizer_step applies it to w. */

static void sgd_update(const sgk_optimizer *opt, const double *g, double *dw)
{
    for (long p = 0; p < opt->n_params; p++) dw[p] = -opt->lr * g[p];
}

/* Heavy ball: v = momentum v + g, dw = -lr v. */
static void momentum_update(sgk_optimizer *opt, const double *g, double *dw)
{
    double *v = opt->velocity;

    for (long p = 0; p < opt->n_params; p++) {
        v[p] = opt->momentum * v[p] + g[p];
        dw[p] = -opt->lr * v[p];
    }
}

/* Adam with bias correction, where t = opt->step + 1 counts this step. The
 * preconditioner P = 1 / (sqrt(vhat) + eps) is kept for the attribution. */
static void adam_update(sgk_optimizer *opt, const double *g, double *dw)
{
    double beta1 = opt->momentum;
    double beta2 = opt->beta2;
    double t = (double)(opt->step + 1);
    /* pow(0, t) = 0 for t >= 1, so beta = 0 gives no correction, as it should. */
    double correction1 = 1.0 - pow(beta1, t);
    double correction2 = 1.0 - pow(beta2, t);
    double *m = opt->velocity;
    double *v = opt->second_moment;
    double *preconditioner = opt->preconditioner;

    for (long p = 0; p < opt->n_params; p++) {
        double gradient = g[p];

        m[p] = beta1 * m[p] + (1.0 - beta1) * gradient;
        v[p] = beta2 * v[p] + (1.0 - beta2) * gradient * gradient;
        double m_hat = m[p] / correction1;
        double v_hat = v[p] / correction2;
        preconditioner[p] = 1.0 / (sqrt(v_hat) + opt->epsilon);
        dw[p] = -opt->lr * m_hat * preconditioner[p];
    }
}

/* RMSProp without bias correction. Because v starts at 0, the first step of a parameter
 * is -lr g / (sqrt(1 - beta2) |g| + eps), up to 1 / sqrt(1 - beta2) times lr in size.
 * doc/optimizers.md warns users about it. */
static void rmsprop_update(sgk_optimizer *opt, const double *g, double *dw)
{
    double beta2 = opt->beta2;
    double *v = opt->second_moment;
    double *preconditioner = opt->preconditioner;

    for (long p = 0; p < opt->n_params; p++) {
        double gradient = g[p];

        v[p] = beta2 * v[p] + (1.0 - beta2) * gradient * gradient;
        preconditioner[p] = 1.0 / (sqrt(v[p]) + opt->epsilon);
        dw[p] = -opt->lr * gradient * preconditioner[p];
    }
}

/* Euler-Maruyama step of the Langevin equation dw = -grad L dt + sqrt(2 T) dW with
 * dt = lr: dw = -lr g + sqrt(2 lr T) xi. At T = 0 no normal is drawn, so the step is
 * plain SGD bit for bit and `noise` may be NULL. */
static void sgld_update(const sgk_optimizer *opt, const double *g, sgk_rng *noise, double *dw)
{
    double noise_scale = sqrt(2.0 * opt->lr * opt->temperature);

    if (opt->temperature == 0.0) {
        sgd_update(opt, g, dw);
        return;
    }
    sgk_rng_seek(noise, (uint64_t)opt->step);
    for (long p = 0; p < opt->n_params; p++) {
        double gradient = g[p];
        dw[p] = -opt->lr * gradient + noise_scale * sgk_rng_normal(noise);
    }
}

void sgk_optimizer_step(sgk_optimizer *opt, double *w, const double *g, sgk_rng *noise,
                        double *dw, double *effective_lr, const double **preconditioner)
{
    *effective_lr = opt->lr;
    *preconditioner = NULL;

    switch (opt->kind) {
    case SGK_OPT_SGD:
        sgd_update(opt, g, dw);
        break;
    case SGK_OPT_MOMENTUM:
        /* g_k enters v_k, v_{k+1}, ... with weights 1, momentum, momentum^2, ..., which
         * sum to 1 / (1 - momentum). */
        momentum_update(opt, g, dw);
        *effective_lr = opt->lr / (1.0 - opt->momentum);
        break;
    case SGK_OPT_ADAM:
        /* The first moment spreads g_k over this and later steps with weights
         * (1 - beta1) beta1^j, which sum to 1 once the bias correction 1 / (1 - beta1^t)
         * has faded; during the first ~1 / (1 - beta1) steps the correction gives early
         * gradients more weight than lr, and the measured remainder holds the difference. */
        adam_update(opt, g, dw);
        *preconditioner = opt->preconditioner;
        break;
    case SGK_OPT_RMSPROP:
        rmsprop_update(opt, g, dw);
        *preconditioner = opt->preconditioner;
        break;
    case SGK_OPT_SGLD:
        /* The noise is not a gradient and is left to the remainder. */
        sgld_update(opt, g, noise, dw);
        break;
    }

    for (long p = 0; p < opt->n_params; p++) w[p] += dw[p];
    opt->step++;
}

int sgk_optimizer_preconditions(sgk_optimizer_kind kind)
{
    return kind == SGK_OPT_ADAM || kind == SGK_OPT_RMSPROP;
}
