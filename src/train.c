/* One replica: minibatch SGD on its own random streams, with the tangent kernel of
 * every evaluation point taken at each checkpoint. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/log.h"
#include "sgk/loss.h"
#include "sgk/rng.h"
#include "sgk/tangent.h"
#include "train.h"

/* Buffers of one replica's training, allocated once. */
typedef struct {
    double *w;          /* parameters */
    double *grad;       /* sum_i J_i^T r_i over the minibatch */
    double *xb, *yb;    /* minibatch inputs and targets */
    double *fb, *rb;    /* minibatch outputs and residuals */
    long *batch;        /* minibatch indices into the training points */
    long *scratch;      /* population for sampling, n_train entries */
    sgk_mlp_work batch_work;
    sgk_mlp_work eval_work;
    sgk_factors factors;
} replica_buffers;

static void buffers_free(replica_buffers *b)
{
    free(b->w);
    free(b->grad);
    free(b->xb);
    free(b->yb);
    free(b->fb);
    free(b->rb);
    free(b->batch);
    free(b->scratch);
    sgk_mlp_work_free(&b->batch_work);
    sgk_mlp_work_free(&b->eval_work);
    sgk_factors_free(&b->factors);
}

static sgk_status buffers_alloc(const sgk_train_plan *plan, long batch_size, replica_buffers *b)
{
    const sgk_dataset *data = plan->data;
    const sgk_mlp *net = plan->net;
    long n_samples = data->n_samples;

    memset(b, 0, sizeof *b);
    b->w = malloc(sizeof(double) * net->n_params);
    b->grad = malloc(sizeof(double) * net->n_params);
    b->xb = malloc(sizeof(double) * batch_size * data->n_features);
    b->yb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->fb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->rb = malloc(sizeof(double) * batch_size * data->n_outputs);
    b->batch = malloc(sizeof(long) * batch_size);
    b->scratch = malloc(sizeof(long) * data->n_train);
    if (!b->w || !b->grad || !b->xb || !b->yb || !b->fb || !b->rb || !b->batch || !b->scratch) {
        buffers_free(b);
        return sgk_error(SGK_ERR_IO, "out of memory for the training buffers of %ld parameters",
                         net->n_params);
    }
    if (sgk_mlp_work_alloc(net, (int)batch_size, &b->batch_work) != SGK_OK
        || sgk_mlp_work_alloc(net, (int)n_samples, &b->eval_work) != SGK_OK
        || sgk_factors_alloc(net, (int)n_samples, &b->factors) != SGK_OK) {
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

/* Outputs, losses and the weighted tangent kernel of all evaluation points at checkpoint c. */
static sgk_status take_checkpoint(const sgk_train_plan *plan, int c, replica_buffers *b,
                                  double *kernel, sgk_replica_record *record)
{
    const sgk_dataset *data = plan->data;
    int n_outputs = data->n_outputs;
    long n_samples = data->n_samples;
    double *f = record->f + (size_t)c * n_samples * n_outputs;

    sgk_mlp_tangent_factors(plan->net, b->w, data->x, (int)n_samples, &b->eval_work,
                            &b->factors, f);
    record->loss_train[c] = sgk_loss_eval(plan->config->train.loss, f, data->y,
                                          (int)data->n_train, n_outputs, NULL);
    record->loss_test[c] = NAN;
    if (data->n_test > 0) {
        size_t offset = (size_t)data->n_train * n_outputs;
        record->loss_test[c] = sgk_loss_eval(plan->config->train.loss, f + offset,
                                             data->y + offset, (int)data->n_test, n_outputs, NULL);
    }
    if (!all_finite(f, n_samples * n_outputs)) return SGK_OK;
    return sgk_tangent_gram(plan->net, &b->factors, &b->factors, plan->input_gram,
                            (int)n_samples, plan->kernel_weight[c], kernel, (int)n_samples);
}

/* One SGD step: w -= (lr / B) sum_{i in batch} J_i^T r_i. Returns the minibatch loss. */
static double sgd_step(const sgk_train_plan *plan, long step, long batch_size, sgk_rng *batch_rng,
                       replica_buffers *b)
{
    const sgk_dataset *data = plan->data;
    const sgk_config *config = plan->config;
    int n_features = data->n_features;
    int n_outputs = data->n_outputs;
    double loss;

    /* 1. Minibatch: B distinct training points drawn uniformly, from the substream of this step,
     *    so that a step's batch does not depend on earlier draws. Full batch takes every point. */
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

    /* 2. Residuals and gradient of the minibatch loss. */
    sgk_mlp_forward(plan->net, b->w, b->xb, (int)batch_size, &b->batch_work, b->fb);
    loss = sgk_loss_eval(config->train.loss, b->fb, b->yb, (int)batch_size, n_outputs, b->rb);
    if (!isfinite(loss)) return loss;
    sgk_mlp_backward(plan->net, b->w, b->rb, (int)batch_size, &b->batch_work, b->grad);

    /* 3. Update. */
    double scale = -config->train.lr / (double)batch_size;
    for (long p = 0; p < plan->net->n_params; p++) b->w[p] += scale * b->grad[p];
    return loss;
}

sgk_status sgk_replica_train(const sgk_train_plan *plan, long replica, double *kernel,
                             sgk_replica_record *record)
{
    const sgk_config *config = plan->config;
    long steps = config->train.steps;
    long batch_size = config->train.batch_size > 0 ? config->train.batch_size
                                                    : plan->data->n_train;
    unsigned vary = config->ensemble.vary;
    replica_buffers b;
    sgk_rng init_rng, batch_rng;
    sgk_status status = SGK_OK;
    int next_checkpoint = 0;
    double start;

    record->diverged_step = -1;
    record->seconds_train = 0.0;
    record->seconds_kernel = 0.0;
    for (int c = 0; c < plan->n_checkpoints; c++) {
        record->loss_train[c] = NAN;
        record->loss_test[c] = NAN;
    }
    SGK_CHECK(buffers_alloc(plan, batch_size, &b));

    /* A stream that does not vary between replicas is keyed by replica 0, so every
     * replica draws the same numbers from it. */
    sgk_rng_init(&init_rng, config->ensemble.seed, (vary & SGK_VARY_INIT) ? (uint64_t)replica : 0,
                 SGK_RNG_INIT);
    sgk_rng_init(&batch_rng, config->ensemble.seed,
                 (vary & SGK_VARY_BATCH) ? (uint64_t)replica : 0, SGK_RNG_BATCH);
    sgk_mlp_init_params(plan->net, &init_rng, b.w);

    for (long step = 0;; step++) {
        if (next_checkpoint < plan->n_checkpoints && plan->checkpoint_step[next_checkpoint] == step) {
            start = sgk_seconds();
            status = take_checkpoint(plan, next_checkpoint, &b, kernel, record);
            record->seconds_kernel += sgk_seconds() - start;
            if (status != SGK_OK) break;
            int c = next_checkpoint++;
            const double *f = record->f + (size_t)c * plan->data->n_samples * plan->data->n_outputs;
            if (!all_finite(f, plan->data->n_samples * plan->data->n_outputs)) {
                record->diverged_step = step;
                break;
            }
        }
        if (step == steps) break;

        start = sgk_seconds();
        double loss = sgd_step(plan, step, batch_size, &batch_rng, &b);
        record->seconds_train += sgk_seconds() - start;
        if (!isfinite(loss) || !all_finite(b.w, plan->net->n_params)) {
            record->diverged_step = step;
            break;
        }
    }
    buffers_free(&b);
    return status;
}
