/* One replica: its optimizer steps on its own random streams, the per-step drift, and at
 * each checkpoint its outputs, parameters and probe kernel. The checkpoint kernels of all
 * evaluation points are assembled later from the stored parameters (assemble.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/denoise.h"
#include "sgk/log.h"
#include "sgk/loss.h"
#include "sgk/optimizer.h"
#include "sgk/rng.h"
#include "sgk/tangent.h"
#include "gan.h"
#include "train.h"

long sgk_train_plan_params(const sgk_train_plan *plan)
{
    return plan->gan != NULL ? plan->gan->n_params : plan->net->n_params;
}

static void buffers_free(sgk_replica_buffers *b)
{
    free(b->w);
    free(b->w_start);
    free(b->w_node);
    free(b->grad);
    free(b->dw);
    free(b->xb);
    free(b->yb);
    free(b->fb);
    free(b->rb);
    free(b->batch);
    free(b->scratch);
    sgk_mlp_work_free(&b->batch_work);
    sgk_mlp_work_free(&b->eval_work);
    sgk_mlp_work_free(&b->probe_work);
    sgk_factors_free(&b->factors);
    sgk_factors_free(&b->probe_factors);
}

static sgk_status buffers_alloc(const sgk_train_plan *plan, long batch_size, sgk_replica_buffers *b)
{
    const sgk_dataset *data = plan->data;
    const sgk_mlp *net = plan->net;
    long n_samples = data->n_samples;

    memset(b, 0, sizeof *b);
    b->w = malloc(sizeof(double) * net->n_params);
    b->w_start = malloc(sizeof(double) * net->n_params);
    b->w_node = malloc(sizeof(double) * net->n_params);
    b->grad = malloc(sizeof(double) * net->n_params);
    b->dw = malloc(sizeof(double) * net->n_params);
    b->xb = malloc(sizeof(double) * batch_size * data->n_features);
    b->yb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->fb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->rb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->batch = malloc(sizeof(long) * batch_size);
    b->scratch = malloc(sizeof(long) * data->n_train);
    if (!b->w || !b->w_start || !b->w_node || !b->grad || !b->dw || !b->xb || !b->yb || !b->fb || !b->rb || !b->batch || !b->scratch) {
        buffers_free(b);
        return sgk_error(SGK_ERR_IO, "out of memory for the training buffers of %ld parameters",
                         net->n_params);
    }
    if (sgk_mlp_work_alloc(net, (int)batch_size, &b->batch_work) != SGK_OK
        || sgk_mlp_work_alloc(net, (int)n_samples, &b->eval_work) != SGK_OK
        || sgk_factors_alloc(net, (int)n_samples, &b->factors) != SGK_OK
        || sgk_mlp_work_alloc(net, (int)(plan->n_probe > 0 ? plan->n_probe : 1),
                              &b->probe_work) != SGK_OK
        || sgk_factors_alloc(net, (int)(plan->n_probe > 0 ? plan->n_probe : 1),
                             &b->probe_factors) != SGK_OK) {
        buffers_free(b);
        return sgk_error(SGK_ERR_IO,
                         "out of memory for the tangent factors of %ld evaluation points",
                         n_samples);
    }
    return SGK_OK;
}

static int all_finite(const double *values, long count)
{
    for (long i = 0; i < count; i++)
        if (!isfinite(values[i])) return 0;
    return 1;
}

/* Tangent kernel of the probe points at parameters w, with the preconditioner when not
 * NULL. */
static sgk_status probe_kernel(const sgk_train_plan *plan, sgk_replica_buffers *b,
                               const double *w, const double *preconditioner, double *out)
{
    long n_probe = plan->n_probe;

    memset(out, 0, sizeof(double) * n_probe * n_probe);
    if (preconditioner != NULL)
        return sgk_tangent_gram_preconditioned(plan->net, w, plan->probe_x, (int)n_probe,
                                               plan->probe_x, (int)n_probe, preconditioner, 1.0,
                                               out, (int)n_probe);
    sgk_mlp_tangent_factors(plan->net, w, plan->probe_x, (int)n_probe, &b->probe_work,
                            &b->probe_factors, NULL);
    return sgk_tangent_gram(plan->net, &b->probe_factors, &b->probe_factors,
                            plan->probe_input_gram, (int)n_probe, 1.0, out, (int)n_probe);
}

/* The preconditioner of checkpoint c is known once the step at c has been taken: store it
 * and take the probe kernel with it, at the checkpoint's parameters w. */
static sgk_status finish_preconditioned_checkpoint(const sgk_train_plan *plan, int c,
                                                   sgk_replica_buffers *b, const double *w,
                                                   const double *preconditioner,
                                                   sgk_replica_record *record)
{
    long n_params = plan->net->n_params;

    memcpy(record->preconditioner + (size_t)c * n_params, preconditioner,
           sizeof(double) * n_params);
    if (plan->n_probe == 0) return SGK_OK;
    return probe_kernel(plan, b, w, preconditioner,
                        record->probe_kernel + (size_t)c * plan->n_probe * plan->n_probe);
}

/* Checkpoint c: outputs and losses of all evaluation points, the parameters (for the
 * kernel assembly) and the probe kernel. */
static sgk_status take_checkpoint(const sgk_train_plan *plan, int c, sgk_replica_buffers *b,
                                  sgk_replica_record *record)
{
    const sgk_dataset *data = plan->data;
    int n_outputs = data->n_outputs;
    long n_samples = data->n_samples;
    long n_params = plan->net->n_params;
    double *f = record->f + (size_t)c * n_samples * n_outputs;

    sgk_mlp_forward(plan->net, b->w, data->x, (int)n_samples, &b->eval_work, f);
    memcpy(record->weights + (size_t)c * n_params, b->w, sizeof(double) * n_params);
    record->loss_train[c] = sgk_loss_eval(plan->config->train.loss, f, data->y,
                                          (int)data->n_train, n_outputs, NULL);
    record->loss_test[c] = NAN;
    if (data->n_test > 0) {
        size_t offset = (size_t)data->n_train * n_outputs;
        record->loss_test[c] = sgk_loss_eval(plan->config->train.loss, f + offset,
                                             data->y + offset, (int)data->n_test, n_outputs, NULL);
    }
    /* With a preconditioner the probe kernel waits for the step's P. */
    if (!all_finite(f, n_samples * n_outputs) || plan->n_probe == 0 || record->preconditioner)
        return SGK_OK;
    return probe_kernel(plan, b, b->w, NULL,
                        record->probe_kernel + (size_t)c * plan->n_probe * plan->n_probe);
}

/* Minibatch, residuals and gradient sum_{i in batch} J_i^T r_i at the current w; leaves
 * the minibatch's activations and residual-weighted deltas in b->batch_work for the drift.
 * Returns the minibatch loss. */
static double minibatch_gradient(const sgk_train_plan *plan, long replica, long step,
                                 long batch_size, sgk_rng *batch_rng, sgk_replica_buffers *b)
{
    const sgk_dataset *data = plan->data;
    int n_features = data->n_features;
    int n_outputs = data->n_outputs;
    double loss;

    /* B distinct training points drawn uniformly, from the substream of this step, so that
     * a step's batch does not depend on earlier draws. Full batch takes every point. */
    if (batch_size == data->n_train) {
        for (long i = 0; i < batch_size; i++) b->batch[i] = i;
    } else {
        sgk_rng_seek(batch_rng, (uint64_t)step);
        sgk_rng_sample(batch_rng, data->n_train, batch_size, b->scratch, b->batch);
    }
    for (long i = 0; i < batch_size; i++) {
        memcpy(b->xb + i * n_features, data->x + b->batch[i] * n_features,
               sizeof(double) * n_features);
        memcpy(b->yb + i * n_outputs, data->y + b->batch[i] * n_outputs,
               sizeof(double) * n_outputs);
    }
    /* Denoising: the step's noise level perturbs the clean points, which stay the targets. */
    if (plan->config->train.task == SGK_TASK_DENOISE)
        sgk_denoise_perturb(plan->config, replica, step, b->xb, batch_size, n_features - 1);
    sgk_mlp_forward(plan->net, b->w, b->xb, (int)batch_size, &b->batch_work, b->fb);
    loss = sgk_loss_eval(plan->config->train.loss, b->fb, b->yb, (int)batch_size, n_outputs,
                         b->rb);
    if (isfinite(loss))
        sgk_mlp_backward(plan->net, b->w, b->rb, (int)batch_size, &b->batch_work, b->grad);
    return loss;
}

/* Factors of every evaluation point at parameters w (no outputs kept). */
static void evaluation_factors(const sgk_train_plan *plan, const double *w, sgk_replica_buffers *b)
{
    sgk_mlp_tangent_factors(plan->net, w, plan->data->x, (int)plan->data->n_samples,
                            &b->eval_work, &b->factors, NULL);
}

/* Drift of this step: scale = (eta_eff / B) / R times J(x_a) P J(x_i)^T r_i, with the
 * evaluation Jacobian at w_k (one node) or averaged over Gauss-Legendre nodes along
 * w_k + s dw_k. b->w_start contains w_k and b->w contains w_{k+1}. */
static void add_step_drift(const sgk_train_plan *plan, sgk_drift *drift, long batch_size,
                           double scale, const double *preconditioner, sgk_replica_buffers *b)
{
    double nodes[SGK_MAX_PATH_NODES], weights[SGK_MAX_PATH_NODES];
    long n_params = plan->net->n_params;

    sgk_drift_nodes(plan->path_nodes, nodes, weights);
    for (int q = 0; q < plan->path_nodes; q++) {
        if (nodes[q] == 0.0) {
            if (!b->factors_current) evaluation_factors(plan, b->w_start, b);
        } else {
            for (long p = 0; p < n_params; p++)
                b->w_node[p] = b->w_start[p] + nodes[q] * (b->w[p] - b->w_start[p]);
            evaluation_factors(plan, b->w_node, b);
        }
        sgk_drift_add_step(drift, plan->net, &b->factors, &b->batch_work, b->rb, b->batch,
                           (int)batch_size, NULL, preconditioner, scale * weights[q]);
        b->factors_current = 0;
    }
}

sgk_status sgk_replica_start(const sgk_train_plan *plan, long replica, sgk_replica *rep)
{
    const sgk_config *config = plan->config;
    unsigned vary = config->ensemble.vary;
    long batch_size = config->train.batch_size > 0 ? config->train.batch_size
                                                    : plan->data->n_train;
    sgk_rng init_rng;
    sgk_status status;

    if (plan->gan != NULL) return sgk_gan_replica_start(plan, replica, rep);
    memset(rep, 0, sizeof *rep);
    rep->replica = replica;
    rep->batch_size = batch_size;
    SGK_CHECK(buffers_alloc(plan, batch_size, &rep->b));
    status = sgk_optimizer_create(&rep->optimizer, config, plan->net->n_params);
    if (status != SGK_OK) {
        buffers_free(&rep->b);
        return status;
    }

    /* A stream that does not vary between replicas is keyed by replica 0, so every
     * replica draws the same numbers from it. */
    sgk_rng_init(&init_rng, config->ensemble.seed, (vary & SGK_VARY_INIT) ? (uint64_t)replica : 0,
                 SGK_RNG_INIT);
    sgk_rng_init(&rep->batch_rng, config->ensemble.seed,
                 (vary & SGK_VARY_BATCH) ? (uint64_t)replica : 0, SGK_RNG_BATCH);
    sgk_rng_init(&rep->noise_rng, config->ensemble.seed,
                 (vary & SGK_VARY_NOISE) ? (uint64_t)replica : 0, SGK_RNG_NOISE);
    if (plan->initial_weights != NULL)
        memcpy(rep->b.w, plan->initial_weights, sizeof(double) * plan->net->n_params);
    else
        sgk_mlp_init_params(plan->net, &init_rng, rep->b.w);
    return SGK_OK;
}

void sgk_replica_free(sgk_replica *rep)
{
    sgk_optimizer_free(&rep->optimizer);
    buffers_free(&rep->b);
    memset(rep, 0, sizeof *rep);
}

void sgk_replica_record_reset(const sgk_train_plan *plan, sgk_replica_record *record)
{
    record->diverged_step = -1;
    record->seconds_train = 0.0;
    record->seconds_kernel = 0.0;
    record->seconds_drift = 0.0;
    for (int c = 0; c < plan->n_checkpoints; c++) {
        record->loss_train[c] = NAN;
        record->loss_test[c] = NAN;
    }
}

sgk_status sgk_replica_run(const sgk_train_plan *plan, sgk_replica *rep, sgk_drift *drift, sgk_replica_record *record, sgk_step_hook hook,
                           void *context, int *paused)
{
    const sgk_config *config = plan->config;
    const sgk_dataset *data = plan->data;
    sgk_replica_buffers *b = &rep->b;
    long n_params = plan->net->n_params;
    long batch_size = rep->batch_size;
    size_t n_values = (size_t)data->n_samples * data->n_outputs;
    sgk_status status = SGK_OK;
    double start;

    if (plan->gan != NULL) return sgk_gan_replica_run(plan, rep, record, hook, context, paused);
    *paused = 0;
    for (;; rep->step++) {
        long step = rep->step;
        int pending = -1; /* checkpoint taken at this step that still needs the step's P */

        /* 1. The control hook may write a snapshot of the replica here, at the top of a step,
         *    and pause the training. A restart resumes at this same point. */
        if (hook != NULL && hook(context, rep) != 0) {
            *paused = 1;
            break;
        }

        /* 2. Checkpoint: outputs, losses, parameters and probe kernel at w_k. */
        if (rep->next_checkpoint < plan->n_checkpoints
            && plan->checkpoint_step[rep->next_checkpoint] == step) {
            int c = rep->next_checkpoint;
            start = sgk_seconds();
            status = take_checkpoint(plan, c, b, record);
            record->seconds_kernel += sgk_seconds() - start;
            if (status != SGK_OK) break;
            rep->next_checkpoint++;
            /* Outputs may stay finite while their squared residuals overflow. */
            if (!all_finite(record->f + (size_t)c * n_values, (long)n_values)
                || !isfinite(record->loss_train[c])) {
                record->diverged_step = step;
                break;
            }
            pending = c;
        }
        if (step == config->train.steps) {
            /* The final checkpoint takes the preconditioner of the last step. */
            if (pending >= 0 && record->preconditioner && rep->optimizer.preconditioner)
                status = finish_preconditioned_checkpoint(plan, pending, b, b->w,
                                                          rep->optimizer.preconditioner, record);
            break;
        }

        /* 3. Minibatch gradient at w_k, then the optimizer's update from its mean. */
        start = sgk_seconds();
        double loss = minibatch_gradient(plan, rep->replica, step, batch_size, &rep->batch_rng, b);
        if (!isfinite(loss)) {
            record->diverged_step = step;
            break;
        }
        memcpy(b->w_start, b->w, sizeof(double) * n_params);
        for (long p = 0; p < n_params; p++) b->grad[p] /= (double)batch_size;
        double effective_lr;
        const double *preconditioner;
        sgk_optimizer_step(&rep->optimizer, b->w, b->grad, &rep->noise_rng, b->dw, &effective_lr,
                           &preconditioner);
        record->seconds_train += sgk_seconds() - start;
        if (!all_finite(b->w, n_params)) {
            record->diverged_step = step;
            break;
        }
        if (pending >= 0 && record->preconditioner && preconditioner) {
            start = sgk_seconds();
            status = finish_preconditioned_checkpoint(plan, pending, b, b->w_start,
                                                      preconditioner, record);
            record->seconds_kernel += sgk_seconds() - start;
            if (status != SGK_OK) break;
        }

        /* 4. Drift of the step, attributed to the minibatch points. */
        if (drift != NULL) {
            start = sgk_seconds();
            add_step_drift(plan, drift, batch_size,
                           effective_lr / (double)batch_size / (double)config->ensemble.replicas,
                           preconditioner, b);
            record->seconds_drift += sgk_seconds() - start;
        }
        b->factors_current = 0;
    }
    return status;
}
