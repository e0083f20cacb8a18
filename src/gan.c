/* GAN mode: the latent evaluation set, the alternating training of generator and
 * discriminator, and the discriminator field. The kernel assembly is in gan_assemble.c.
 *
 * One training step k of a replica, with B the batch size:
 *   1. B real samples x_i (the batch stream at substream k, as in the supervised task) and
 *      B latents z_j ~ N(0, I) (the latent stream at substream k);
 *   2. discriminator step on L_D = (1/B) sum_i softplus(-D(x_i)) + (1/B) sum_j
 *      softplus(D(G(z_j))), skipped when [gan] disc_lr = 0;
 *   3. generator step on the non-saturating loss L_G = (1/B) sum_j softplus(-D(G(z_j))),
 *      with the discriminator of after step 2.
 * Both steps run on one optimizer over [w_G ; v_D], as two views of its state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan.h"
#include "sgk/log.h"
#include "sgk/optimizer.h"
#include "sgk/rng.h"

/* softplus(s) = log(1 + e^s) without overflow. */
static double softplus(double s)
{
    return (s > 0.0 ? s : 0.0) + log1p(exp(-fabs(s)));
}

/* 1 / (1 + e^-s) without overflow. */
static double sigmoid(double s)
{
    if (s >= 0.0) return 1.0 / (1.0 + exp(-s));
    double e = exp(s);
    return e / (1.0 + e);
}

sgk_status sgk_gan_plan_create(const sgk_config *config, const sgk_dataset *real,
                               const sgk_mlp *generator, sgk_gan_plan *plan)
{
    sgk_status status;

    memset(plan, 0, sizeof *plan);
    plan->real = real;
    status = sgk_mlp_create(&plan->disc, real->n_features, config->gan.disc_widths,
                            config->gan.disc_n_hidden, 1, config->model.activation,
                            config->model.parametrization);
    if (status != SGK_OK)
        return sgk_error(status, "[gan] disc_widths: the discriminator cannot be built: %s",
                         sgk_error_message());
    plan->n_gen_params = generator->n_params;
    plan->n_params = generator->n_params + plan->disc.n_params;
    return SGK_OK;
}

void sgk_gan_disc_init(const sgk_config *config, const sgk_mlp *disc, long replica, double *v)
{
    sgk_rng rng;

    sgk_rng_init(&rng, config->ensemble.seed,
                 (config->ensemble.vary & SGK_VARY_INIT) ? (uint64_t)replica : 0,
                 SGK_RNG_DISC_INIT);
    sgk_mlp_init_params(disc, &rng, v);
}

sgk_status sgk_gan_results_prepare(const sgk_config *config, const sgk_dataset *real, int rank,
                                   sgk_gan_results *gan)
{
    long n = config->gan.latent_points;
    int k = config->gan.latent_dim;
    int n_outputs = real->n_features;
    sgk_dataset *latent = &gan->latent;
    sgk_rng rng;

    memset(gan, 0, sizeof *gan);
    gan->enabled = 1;
    gan->n_real = real->n_train;
    gan->n_grid = n_outputs == 2 && config->gan.grid > 0
                      ? (long)config->gan.grid * config->gan.grid : 0;

    latent->n_samples = n;
    latent->n_train = n;
    latent->n_features = k;
    latent->n_outputs = n_outputs;
    latent->x = malloc(sizeof(double) * (size_t)n * k);
    latent->y = calloc((size_t)n * n_outputs, sizeof(double));
    latent->split = calloc((size_t)n, sizeof(int)); /* every point is SGK_SPLIT_TRAIN */
    if (rank == 0) {
        gan->real_x = malloc(sizeof(double) * (gan->n_real * n_outputs + 1));
        gan->disc_grid = malloc(sizeof(double) * (gan->n_grid * 2 + 1));
        gan->disc_value = malloc(sizeof(double) * (gan->n_grid + 1));
        gan->disc_gradient = malloc(sizeof(double) * (gan->n_grid * 2 + 1));
    }
    if (!latent->x || !latent->y || !latent->split
        || (rank == 0 && (!gan->real_x || !gan->disc_grid || !gan->disc_value
                          || !gan->disc_gradient)))
        return sgk_error(SGK_ERR_IO, "out of memory for %ld latent points of dimension %d", n,
                         k);

    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_LATENT_POINTS);
    for (size_t v = 0; v < (size_t)n * k; v++) latent->x[v] = sgk_rng_normal(&rng);
    if (rank == 0)
        memcpy(gan->real_x, real->x, sizeof(double) * gan->n_real * n_outputs);
    return SGK_OK;
}

void sgk_gan_results_free(sgk_gan_results *gan)
{
    sgk_dataset_free(&gan->latent);
    free(gan->real_x);
    free(gan->disc_grid);
    free(gan->disc_value);
    free(gan->disc_gradient);
    memset(gan, 0, sizeof *gan);
}

sgk_status sgk_gan_replica_start(const sgk_train_plan *plan, long replica, sgk_replica *rep)
{
    const sgk_config *config = plan->config;
    const sgk_gan_plan *gan = plan->gan;
    unsigned vary = config->ensemble.vary;
    sgk_rng init_rng;
    sgk_status status;

    memset(rep, 0, sizeof *rep);
    rep->replica = replica;
    rep->batch_size = config->train.batch_size > 0 ? config->train.batch_size
                                                   : gan->real->n_train;
    rep->b.w = malloc(sizeof(double) * gan->n_params);
    if (!rep->b.w)
        return sgk_error(SGK_ERR_IO, "out of memory for the %ld parameters of generator and "
                         "discriminator", gan->n_params);
    status = sgk_optimizer_create(&rep->optimizer, config, gan->n_params);
    if (status != SGK_OK) {
        free(rep->b.w);
        rep->b.w = NULL;
        return status;
    }
    sgk_rng_init(&init_rng, config->ensemble.seed, (vary & SGK_VARY_INIT) ? (uint64_t)replica : 0,
                 SGK_RNG_INIT);
    sgk_rng_init(&rep->batch_rng, config->ensemble.seed,
                 (vary & SGK_VARY_BATCH) ? (uint64_t)replica : 0, SGK_RNG_BATCH);
    /* The latent stream of a step is keyed like the batch stream (see gan_step). */
    sgk_rng_init(&rep->noise_rng, config->ensemble.seed,
                 (vary & SGK_VARY_BATCH) ? (uint64_t)replica : 0, SGK_RNG_LATENT);
    sgk_mlp_init_params(plan->net, &init_rng, rep->b.w);
    sgk_gan_disc_init(config, &gan->disc, replica, rep->b.w + gan->n_gen_params);
    return SGK_OK;
}

/* Buffers of one sgk_gan_replica_run call. */
typedef struct {
    double *x_real;     /* B x O real batch */
    double *z;          /* B x latent_dim latents */
    double *x_disc;     /* discriminator inputs: real rows, then generated rows */
    double *d_out;      /* discriminator outputs of x_disc */
    double *d_seed;     /* their loss derivatives */
    double *x_grad;     /* B x O: grad_x D at the generated samples */
    double *g_seed;     /* B x O: generator residuals r_j */
    double *grad;       /* P_G + P_D gradient */
    double *dw;         /* P_G + P_D step */
    long *batch;
    long *scratch;
    long disc_capacity; /* rows of x_disc, d_out and d_seed */
    sgk_mlp_work gen_batch, gen_eval, disc_work;
} gan_buffers;

static void gan_buffers_free(gan_buffers *g)
{
    free(g->x_real);
    free(g->z);
    free(g->x_disc);
    free(g->d_out);
    free(g->d_seed);
    free(g->x_grad);
    free(g->g_seed);
    free(g->grad);
    free(g->dw);
    free(g->batch);
    free(g->scratch);
    sgk_mlp_work_free(&g->gen_batch);
    sgk_mlp_work_free(&g->gen_eval);
    sgk_mlp_work_free(&g->disc_work);
    memset(g, 0, sizeof *g);
}

static sgk_status gan_buffers_alloc(const sgk_train_plan *plan, long batch_size, gan_buffers *g)
{
    const sgk_gan_plan *gan = plan->gan;
    long n_train = gan->real->n_train, n_latent = plan->data->n_samples;
    int n_outputs = gan->real->n_features, latent_dim = plan->data->n_features;
    /* A training step feeds 2B rows to the discriminator, a checkpoint n + N. */
    long rows = 2 * batch_size > n_train + n_latent ? 2 * batch_size : n_train + n_latent;

    memset(g, 0, sizeof *g);
    g->disc_capacity = rows;
    g->x_real = malloc(sizeof(double) * batch_size * n_outputs);
    g->z = malloc(sizeof(double) * batch_size * latent_dim);
    g->x_disc = malloc(sizeof(double) * rows * n_outputs);
    g->d_out = malloc(sizeof(double) * rows);
    g->d_seed = malloc(sizeof(double) * rows);
    g->x_grad = malloc(sizeof(double) * batch_size * n_outputs);
    g->g_seed = malloc(sizeof(double) * batch_size * n_outputs);
    g->grad = malloc(sizeof(double) * gan->n_params);
    g->dw = malloc(sizeof(double) * gan->n_params);
    g->batch = malloc(sizeof(long) * batch_size);
    g->scratch = malloc(sizeof(long) * n_train);
    if (!g->x_real || !g->z || !g->x_disc || !g->d_out || !g->d_seed || !g->x_grad || !g->g_seed
        || !g->grad || !g->dw || !g->batch || !g->scratch
        || sgk_mlp_work_alloc(plan->net, (int)batch_size, &g->gen_batch) != SGK_OK
        || sgk_mlp_work_alloc(plan->net, (int)n_latent, &g->gen_eval) != SGK_OK
        || sgk_mlp_work_alloc(&gan->disc, (int)rows, &g->disc_work) != SGK_OK) {
        gan_buffers_free(g);
        return sgk_error(SGK_ERR_IO, "out of memory for the GAN training buffers (batch %ld, "
                         "%ld parameters)", batch_size, gan->n_params);
    }
    return SGK_OK;
}

/* Step the part [offset, offset + count) of the state with learning rate lr, through a copy
 * of the optimizer whose arrays point into that part, so Adam's moments stay per part.
 * The copy's step counter is discarded: the caller advances opt->step once per training
 * step, and both parts see the same bias correction. */
static void step_part(const sgk_optimizer *opt, long offset, long count, double lr, double *w,
                      const double *grad, double *dw)
{
    sgk_optimizer view = *opt;
    double effective_lr;
    const double *preconditioner;

    view.n_params = count;
    view.lr = lr;
    if (view.velocity) view.velocity += offset;
    if (view.second_moment) view.second_moment += offset;
    if (view.preconditioner) view.preconditioner += offset;
    sgk_optimizer_step(&view, w + offset, grad + offset, NULL, dw + offset, &effective_lr,
                       &preconditioner);
}

static int all_finite(const double *values, long count)
{
    for (long i = 0; i < count; i++)
        if (!isfinite(values[i])) return 0;
    return 1;
}

/* One training step at rep->step (see the file comment). Returns 0 when a loss or a
 * parameter stopped being finite. */
static int gan_step(const sgk_train_plan *plan, sgk_replica *rep, gan_buffers *g)
{
    const sgk_gan_plan *gan = plan->gan;
    const sgk_dataset *real = gan->real;
    const sgk_mlp *gen = plan->net;
    const sgk_mlp *disc = &gan->disc;
    int n_outputs = real->n_features, latent_dim = plan->data->n_features;
    long batch_size = rep->batch_size, n_gen = gan->n_gen_params;
    double *w = rep->b.w, *v = rep->b.w + n_gen;
    double loss = 0.0;

    /* 1. Real batch as in the supervised task, and the step's latents. */
    if (batch_size == real->n_train) {
        for (long i = 0; i < batch_size; i++) g->batch[i] = i;
    } else {
        sgk_rng_seek(&rep->batch_rng, (uint64_t)rep->step);
        sgk_rng_sample(&rep->batch_rng, real->n_train, batch_size, g->scratch, g->batch);
    }
    for (long i = 0; i < batch_size; i++)
        memcpy(g->x_real + i * n_outputs, real->x + g->batch[i] * n_outputs,
               sizeof(double) * n_outputs);
    sgk_rng_seek(&rep->noise_rng, (uint64_t)rep->step);
    for (long k = 0; k < batch_size * latent_dim; k++) g->z[k] = sgk_rng_normal(&rep->noise_rng);

    /* Generated samples G(z_j), kept in gen_batch for the generator's backward pass. */
    double *x_fake = g->x_disc + batch_size * n_outputs;
    sgk_mlp_forward(gen, w, g->z, (int)batch_size, &g->gen_batch, x_fake);
    memset(g->grad, 0, sizeof(double) * gan->n_params);

    /* 2. Discriminator step on the 2B rows [real ; generated]: dL_D/dD is -sigmoid(-D) for
     *    a real row and sigmoid(D) for a generated one, each over B. */
    if (plan->config->gan.disc_lr > 0.0) {
        memcpy(g->x_disc, g->x_real, sizeof(double) * batch_size * n_outputs);
        sgk_mlp_forward(disc, v, g->x_disc, (int)(2 * batch_size), &g->disc_work, g->d_out);
        for (long i = 0; i < 2 * batch_size; i++) {
            double s = g->d_out[i];
            int is_real = i < batch_size;
            loss += is_real ? softplus(-s) : softplus(s);
            g->d_seed[i] = is_real ? -sigmoid(-s) : sigmoid(s);
        }
        if (!isfinite(loss)) return 0;
        sgk_mlp_backward(disc, v, g->d_seed, (int)(2 * batch_size), &g->disc_work,
                         g->grad + n_gen);
        for (long p = n_gen; p < gan->n_params; p++) g->grad[p] /= (double)batch_size;
        step_part(&rep->optimizer, n_gen, gan->n_params - n_gen, plan->config->gan.disc_lr, w,
                  g->grad, g->dw);
    }

    /* 3. Generator step: r_j = -sigmoid(-D(G(z_j))) grad_x D(G(z_j)), at the updated v. */
    sgk_mlp_forward(disc, v, x_fake, (int)batch_size, &g->disc_work, g->d_out);
    for (long j = 0; j < batch_size; j++) {
        g->d_seed[j] = 1.0;
        loss += softplus(-g->d_out[j]);
    }
    if (!isfinite(loss)) return 0;
    sgk_mlp_input_gradient(disc, v, g->d_seed, (int)batch_size, &g->disc_work, g->x_grad);
    for (long j = 0; j < batch_size; j++) {
        double weight = -sigmoid(-g->d_out[j]);
        for (int o = 0; o < n_outputs; o++)
            g->g_seed[j * n_outputs + o] = weight * g->x_grad[j * n_outputs + o];
    }
    sgk_mlp_backward(gen, w, g->g_seed, (int)batch_size, &g->gen_batch, g->grad);
    for (long p = 0; p < n_gen; p++) g->grad[p] /= (double)batch_size;
    step_part(&rep->optimizer, 0, n_gen, plan->config->train.lr, w, g->grad, g->dw);
    rep->optimizer.step++;
    return all_finite(w, gan->n_params);
}

/* Checkpoint c: generated samples of the latent points, parameters, and the two losses.
 * loss_train is the discriminator loss: the mean of softplus(-D) over the n real training
 * samples plus the mean of softplus(D) over the N generated latent points. loss_test is
 * the generator loss, the mean of softplus(-D) over the generated latent points. */
static void take_checkpoint(const sgk_train_plan *plan, int c, const sgk_replica *rep,
                            gan_buffers *g, sgk_replica_record *record)
{
    const sgk_gan_plan *gan = plan->gan;
    long n_real = gan->real->n_train, n_latent = plan->data->n_samples;
    int n_outputs = gan->real->n_features;
    double *f = record->f + (size_t)c * n_latent * n_outputs;
    double real_sum = 0.0, fake_sum = 0.0, generator_sum = 0.0;

    sgk_mlp_forward(plan->net, rep->b.w, plan->data->x, (int)n_latent, &g->gen_eval, f);
    memcpy(record->weights + (size_t)c * gan->n_params, rep->b.w,
           sizeof(double) * gan->n_params);
    memcpy(g->x_disc, gan->real->x, sizeof(double) * n_real * n_outputs);
    memcpy(g->x_disc + n_real * n_outputs, f, sizeof(double) * n_latent * n_outputs);
    sgk_mlp_forward(&gan->disc, rep->b.w + gan->n_gen_params, g->x_disc,
                    (int)(n_real + n_latent), &g->disc_work, g->d_out);
    for (long i = 0; i < n_real; i++) real_sum += softplus(-g->d_out[i]);
    for (long a = 0; a < n_latent; a++) {
        fake_sum += softplus(g->d_out[n_real + a]);
        generator_sum += softplus(-g->d_out[n_real + a]);
    }
    record->loss_train[c] = real_sum / (double)n_real + fake_sum / (double)n_latent;
    record->loss_test[c] = generator_sum / (double)n_latent;
}

/* Adam and RMSProp: the diagonal preconditioner of the step taken at checkpoint c, known
 * once that step is done, as in the supervised task. Both networks' parts are kept; the
 * kernel uses the generator's. */
static void record_preconditioner(const sgk_train_plan *plan, int c, const sgk_replica *rep,
                                  sgk_replica_record *record)
{
    long n_params = plan->gan->n_params;

    if (record->preconditioner == NULL || rep->optimizer.preconditioner == NULL) return;
    memcpy(record->preconditioner + (size_t)c * n_params, rep->optimizer.preconditioner,
           sizeof(double) * n_params);
}

sgk_status sgk_gan_replica_run(const sgk_train_plan *plan, sgk_replica *rep,
                               sgk_replica_record *record, sgk_step_hook hook, void *context,
                               int *paused)
{
    size_t n_values = (size_t)plan->data->n_samples * plan->data->n_outputs;
    gan_buffers g;
    double start;

    *paused = 0;
    SGK_CHECK(gan_buffers_alloc(plan, rep->batch_size, &g));
    for (;; rep->step++) {
        long step = rep->step;
        int pending = -1; /* checkpoint taken at this step that still needs the step's P */

        /* 1. The hook may snapshot and pause here, at the top of a step, like the
         *    supervised loop. */
        if (hook != NULL && hook(context, rep) != 0) {
            *paused = 1;
            break;
        }

        /* 2. Checkpoint at w_k. */
        if (rep->next_checkpoint < plan->n_checkpoints
            && plan->checkpoint_step[rep->next_checkpoint] == step) {
            int c = rep->next_checkpoint;
            start = sgk_seconds();
            take_checkpoint(plan, c, rep, &g, record);
            record->seconds_kernel += sgk_seconds() - start;
            rep->next_checkpoint++;
            if (!all_finite(record->f + (size_t)c * n_values, (long)n_values)
                || !isfinite(record->loss_train[c]) || !isfinite(record->loss_test[c])) {
                record->diverged_step = step;
                break;
            }
            pending = c;
        }
        if (step == plan->config->train.steps) {
            /* The final checkpoint takes the preconditioner of the last step. */
            if (pending >= 0) record_preconditioner(plan, pending, rep, record);
            break;
        }

        /* 3. Discriminator step, then generator step. */
        start = sgk_seconds();
        int finite = gan_step(plan, rep, &g);
        record->seconds_train += sgk_seconds() - start;
        if (!finite) {
            record->diverged_step = step;
            break;
        }
        if (pending >= 0) record_preconditioner(plan, pending, rep, record);
    }
    gan_buffers_free(&g);
    return SGK_OK;
}

/* Lattice point p = i0 * grid + i1 at (lo_0 + i0 h_0, lo_1 + i1 h_1) over the bounding box
 * of the real samples enlarged by 10 % of its side on each side, h_k = side_k / (grid - 1).
 * A side of length 0 counts as length 1; one point per side sits at the box centre. */
static void lattice(const sgk_dataset *real, int grid, double *points)
{
    double lo[2], hi[2];

    for (int k = 0; k < 2; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
        for (long i = 0; i < real->n_train; i++) {
            lo[k] = fmin(lo[k], real->x[i * 2 + k]);
            hi[k] = fmax(hi[k], real->x[i * 2 + k]);
        }
        double side = hi[k] > lo[k] ? hi[k] - lo[k] : 1.0;
        lo[k] -= 0.1 * side;
        hi[k] += 0.1 * side;
    }
    for (int i0 = 0; i0 < grid; i0++)
        for (int i1 = 0; i1 < grid; i1++) {
            double *point = points + ((size_t)i0 * grid + i1) * 2;
            point[0] = grid > 1 ? lo[0] + i0 * (hi[0] - lo[0]) / (grid - 1) : 0.5 * (lo[0] + hi[0]);
            point[1] = grid > 1 ? lo[1] + i1 * (hi[1] - lo[1]) / (grid - 1) : 0.5 * (lo[1] + hi[1]);
        }
}

sgk_status sgk_gan_field(const sgk_ensemble *ensemble, const sgk_grid *grid, const int *dropped,
                         long n_accepted, sgk_gan_results *gan)
{
    const sgk_train_plan *plan = ensemble->plan;
    const sgk_gan_plan *gp = plan->gan;
    long n = gan->n_grid;
    size_t per_replica = (size_t)plan->n_checkpoints * gp->n_params;
    size_t last = (size_t)(plan->n_checkpoints - 1) * gp->n_params + gp->n_gen_params;
    double *points = malloc(sizeof(double) * (n * 2 + 1));
    double *sums = calloc((size_t)n * 3 + 1, sizeof(double)); /* D, then grad_x D */
    double *values = malloc(sizeof(double) * (n + 1));
    double *gradient = malloc(sizeof(double) * (n * 2 + 1));
    double *ones = malloc(sizeof(double) * (n + 1));
    sgk_mlp_work work;
    sgk_status status = SGK_OK;

    if (n == 0) goto done;
    memset(&work, 0, sizeof work);
    if (!points || !sums || !values || !gradient || !ones
        || sgk_mlp_work_alloc(&gp->disc, (int)n, &work) != SGK_OK)
        status = sgk_error(SGK_ERR_IO, "out of memory for the discriminator field of %ld "
                           "points", n);
    if (status == SGK_OK) {
        lattice(gp->real, plan->config->gan.grid, points);
        for (long p = 0; p < n; p++) ones[p] = 1.0;
        for (long r = 0; r < ensemble->n_local; r++) {
            const double *v = ensemble->weights_local + (size_t)r * per_replica + last;

            if (dropped[ensemble->first + r]) continue;
            sgk_mlp_forward(&gp->disc, v, points, (int)n, &work, values);
            sgk_mlp_input_gradient(&gp->disc, v, ones, (int)n, &work, gradient);
            for (long p = 0; p < n; p++) sums[p] += values[p];
            for (long k = 0; k < 2 * n; k++) sums[n + k] += gradient[k];
        }
    }
    sgk_mlp_work_free(&work);
    status = sgk_grid_agree(grid, status, "computing the discriminator field");
    if (status != SGK_OK) goto done;
    if (MPI_Reduce(grid->rank == 0 ? MPI_IN_PLACE : sums, sums, (int)(3 * n), MPI_DOUBLE,
                   MPI_SUM, 0, grid->comm) != MPI_SUCCESS)
        status = sgk_error(SGK_ERR_IO, "MPI_Reduce of the discriminator field failed");
    if (status == SGK_OK && grid->rank == 0) {
        memcpy(gan->disc_grid, points, sizeof(double) * n * 2);
        for (long p = 0; p < n; p++) gan->disc_value[p] = sums[p] / (double)n_accepted;
        for (long k = 0; k < 2 * n; k++) gan->disc_gradient[k] = sums[n + k] / (double)n_accepted;
    }
    status = sgk_grid_agree(grid, status, "reducing the discriminator field");
done:
    free(points);
    free(sums);
    free(values);
    free(gradient);
    free(ones);
    return status;
}
