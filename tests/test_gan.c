/* GAN mode: the generator kernel against its closed form for linear networks and against
 * explicit Jacobians for MLPs, the losses and the discriminator field. Collective: every
 * rank runs every test, and the kernels are compared after a gather, so each rank count
 * checks its own distribution against the same serial reference. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "gan.h"
#include "mpi_test.h"
#include "sgk/sgk.h"

static sgk_grid grid;
static int rank;

typedef struct {
    sgk_config config;
    sgk_dataset data;
    sgk_results results;
    double *sgk;   /* gathered kernel, rank 0 */
} run_case;

static sgk_status run_with(const char *const *overrides, int count, run_case *run)
{
    sgk_status status;

    memset(run, 0, sizeof *run);
    status = sgk_test_configure(overrides, count, &run->config);
    if (status != SGK_OK) return status;
    status = sgk_dataset_load(&run->config, grid.comm, &run->data);
    if (status != SGK_OK) return status;
    status = sgk_run_experiment(&run->config, &run->data, &grid, NULL, &run->results);
    if (status != SGK_OK) {
        if (sgk_error_message()[0] != '\0') fprintf(stderr, "run: %s\n", sgk_error_message());
        return status;
    }
    long n = run->results.sgk.n;
    run->sgk = rank == 0 ? malloc(sizeof(double) * n * n) : NULL;
    return sgk_dmatrix_gather(&run->results.sgk, 0, run->sgk);
}

static void run_free(run_case *run)
{
    free(run->sgk);
    sgk_results_free(&run->results);
    sgk_dataset_free(&run->data);
}

#define RUN(run, ...)                                                                        \
    run_with((const char *const[]){ __VA_ARGS__ },                                           \
             (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)), run)

static double softplus(double s)
{
    return (s > 0.0 ? s : 0.0) + log1p(exp(-fabs(s)));
}

/* Linear generator G(z) = W z + b against the fixed linear discriminator D(x) = a.x + b_D
 * (standard parametrization): g = a everywhere and J_G(z) J_G(z')^T = (z.z' + 1) I, so
 * K(z, z') = (1/R) sum_r |a_r|^2 (z.z' + 1) T with T = steps * lr, the sum of the
 * trapezoid weights. a_r is drawn here from the discriminator's documented stream. The
 * same run checks the latent points, the checkpoint-0 losses and the field.
 * Tolerance 1e-12 relative to the largest entry, because entries with z.z' near -1 are
 * near 0: both sides sum a few O(1) terms in different orders, a rounding error of
 * order 1e-15 of that scale. */
static void test_linear_closed_form(void)
{
    const long steps = 12, replicas = 3;
    const double lr = 0.05;
    const int latent_dim = 3, n_latent = 10, side = 3;
    run_case run;
    sgk_status status = RUN(&run, "data.source=teacher", "data.n_train=20", "data.n_test=0",
                            "data.teacher_inputs=2", "model.widths=",
                            "model.parametrization=standard", "train.task=gan", "train.lr=0.05",
                            "train.batch_size=5", "train.steps=12", "ensemble.replicas=3",
                            "gan.latent_dim=3", "gan.latent_points=10", "gan.disc_widths=",
                            "gan.disc_lr=0", "gan.grid=3", "kernel.checkpoints=4",
                            "kernel.block_size=3");
    CU_ASSERT_EQUAL_FATAL(status, SGK_OK);
    CU_ASSERT_EQUAL(run.results.sgk.n, n_latent);
    CU_ASSERT_EQUAL(run.results.gan.n_grid, side * side);
    if (rank != 0) {
        run_free(&run);
        return;
    }

    const sgk_config *config = &run.config;
    const sgk_gan_results *gan = &run.results.gan;
    const double *z = gan->latent.x;
    sgk_mlp gen, disc;
    double v[3], w[8], a_norm2[3], mean_a[2] = { 0.0, 0.0 };
    sgk_rng rng;

    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&gen, latent_dim, NULL, 0, 2, config->model.activation,
                                         SGK_PARAM_STANDARD), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&disc, 2, NULL, 0, 1, config->model.activation,
                                         SGK_PARAM_STANDARD), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(gen.n_params, 8);
    CU_ASSERT_EQUAL_FATAL(disc.n_params, 3);

    /* 1. The latent points are the documented stream, row by row. */
    sgk_rng_init(&rng, config->data.seed, 0, SGK_RNG_LATENT_POINTS);
    long latent_mismatches = 0;
    for (int k = 0; k < n_latent * latent_dim; k++)
        latent_mismatches += z[k] != sgk_rng_normal(&rng);
    CU_ASSERT_EQUAL(latent_mismatches, 0);

    /* 2. The kernel against the closed form. */
    for (long r = 0; r < replicas; r++) {
        sgk_rng_init(&rng, config->ensemble.seed, (uint64_t)r, SGK_RNG_DISC_INIT);
        sgk_mlp_init_params(&disc, &rng, v);
        a_norm2[r] = v[0] * v[0] + v[1] * v[1];
        mean_a[0] += v[0] / replicas;
        mean_a[1] += v[1] / replicas;
        CU_ASSERT_EQUAL(v[2], 0.0); /* standard parametrization: zero bias */
    }
    double mean_norm2 = (a_norm2[0] + a_norm2[1] + a_norm2[2]) / replicas;
    double t_final = lr * steps, scale = 0.0, error = 0.0;
    for (int i = 0; i < n_latent; i++)
        for (int j = 0; j < n_latent; j++) {
            double dot = 1.0;
            for (int k = 0; k < latent_dim; k++)
                dot += z[i * latent_dim + k] * z[j * latent_dim + k];
            double expected = mean_norm2 * dot * t_final;
            scale = fmax(scale, fabs(expected));
            error = fmax(error, fabs(run.sgk[(size_t)i * n_latent + j] - expected));
        }
    CU_ASSERT(scale > 0.0);
    CU_ASSERT(error <= 1e-12 * scale);

    /* 3. Checkpoint-0 losses of replica 0 from its initial networks: the discriminator
     *    loss over real and generated points, and the generator loss. */
    sgk_rng_init(&rng, config->ensemble.seed, 0, SGK_RNG_INIT);
    sgk_mlp_init_params(&gen, &rng, w);
    sgk_rng_init(&rng, config->ensemble.seed, 0, SGK_RNG_DISC_INIT);
    sgk_mlp_init_params(&disc, &rng, v);
    double real_sum = 0.0, fake_sum = 0.0, generator_sum = 0.0;
    for (long i = 0; i < run.data.n_train; i++)
        real_sum += softplus(-(v[0] * run.data.x[2 * i] + v[1] * run.data.x[2 * i + 1] + v[2]));
    for (int i = 0; i < n_latent; i++) {
        double x[2];
        for (int o = 0; o < 2; o++) {
            x[o] = w[6 + o];
            for (int k = 0; k < latent_dim; k++)
                x[o] += w[o * latent_dim + k] * z[i * latent_dim + k];
        }
        double d = v[0] * x[0] + v[1] * x[1] + v[2];
        fake_sum += softplus(d);
        generator_sum += softplus(-d);
    }
    double loss_train = real_sum / run.data.n_train + fake_sum / n_latent;
    double loss_test = generator_sum / n_latent;
    CU_ASSERT_DOUBLE_EQUAL(run.results.loss_train[0], loss_train, 1e-12 * loss_train);
    CU_ASSERT_DOUBLE_EQUAL(run.results.loss_test[0], loss_test, 1e-12 * loss_test);

    /* 4. The real samples and the field: D(x) = mean a . x on a lattice over the enlarged
     *    bounding box, with gradient mean a everywhere. */
    double lo[2] = { INFINITY, INFINITY }, hi[2] = { -INFINITY, -INFINITY };
    CU_ASSERT_EQUAL(gan->n_real, run.data.n_train);
    CU_ASSERT_EQUAL(memcmp(gan->real_x, run.data.x, sizeof(double) * 2 * gan->n_real), 0);
    for (long i = 0; i < run.data.n_train; i++)
        for (int k = 0; k < 2; k++) {
            lo[k] = fmin(lo[k], run.data.x[2 * i + k]);
            hi[k] = fmax(hi[k], run.data.x[2 * i + k]);
        }
    for (int i0 = 0; i0 < side; i0++)
        for (int i1 = 0; i1 < side; i1++) {
            int p = i0 * side + i1;
            double x0 = lo[0] - 0.1 * (hi[0] - lo[0]) + i0 * 0.6 * (hi[0] - lo[0]);
            double x1 = lo[1] - 0.1 * (hi[1] - lo[1]) + i1 * 0.6 * (hi[1] - lo[1]);
            double value = mean_a[0] * x0 + mean_a[1] * x1;

            CU_ASSERT_DOUBLE_EQUAL(gan->disc_grid[2 * p], x0, 1e-12 * (1.0 + fabs(x0)));
            CU_ASSERT_DOUBLE_EQUAL(gan->disc_grid[2 * p + 1], x1, 1e-12 * (1.0 + fabs(x1)));
            CU_ASSERT_DOUBLE_EQUAL(gan->disc_value[p], value, 1e-12 * (1.0 + fabs(value)));
            CU_ASSERT_DOUBLE_EQUAL(gan->disc_gradient[2 * p], mean_a[0], 1e-12);
            CU_ASSERT_DOUBLE_EQUAL(gan->disc_gradient[2 * p + 1], mean_a[1], 1e-12);
        }
    run_free(&run);
}

/* splitmix64 in [-1, 1): test-local parameters, the same on every rank. */
static uint64_t test_state;

static double uniform_pm1(void)
{
    uint64_t x = (test_state += 0x9e3779b97f4a7c15ULL);

    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return 2.0 * ((double)(x >> 11) / 9007199254740992.0) - 1.0;
}

/* Sizes of the assembly case. */
enum { N_LATENT = 11, LATENT_DIM = 2, N_OUT = 2, N_REPLICAS = 3, N_CHECKPOINTS = 2 };

/* Reference kernel entry of one checkpoint: (J_G(z_a)^T g_a) . (J_G(z_b)^T g_b), from the
 * explicit Jacobian (rows o, P_G columns) and the discriminator input gradient g. */
static void reference_features(const sgk_mlp *gen, const sgk_mlp *disc, const double *w,
                               const double *v, const double *z, int use_fd, double *features)
{
    sgk_mlp_work gen_work, disc_work;
    double jacobian[N_OUT * 256], x[N_OUT], g[N_OUT], one = 1.0;
    long n_params = gen->n_params;

    CU_ASSERT_FATAL(n_params <= 256);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(gen, 1, &gen_work) == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(disc, 1, &disc_work) == SGK_OK);
    for (int a = 0; a < N_LATENT; a++) {
        sgk_mlp_forward(gen, w, z + a * LATENT_DIM, 1, &gen_work, x);
        if (use_fd) {
            /* Central differences: step 1e-5 gives truncation h^2 |D'''| / 6 ~ 1e-11 and
             * rounding eps |D| / h ~ 1e-11 for the O(1) discriminators here. */
            const double h = 1e-5;
            for (int o = 0; o < N_OUT; o++) {
                double saved = x[o], plus, minus;
                x[o] = saved + h;
                sgk_mlp_forward(disc, v, x, 1, &disc_work, &plus);
                x[o] = saved - h;
                sgk_mlp_forward(disc, v, x, 1, &disc_work, &minus);
                x[o] = saved;
                g[o] = (plus - minus) / (2.0 * h);
            }
        } else {
            sgk_mlp_forward(disc, v, x, 1, &disc_work, NULL);
            sgk_mlp_input_gradient(disc, v, &one, 1, &disc_work, g);
        }
        sgk_mlp_jacobian(gen, w, z + a * LATENT_DIM, 1, &gen_work, jacobian);
        for (long p = 0; p < n_params; p++) {
            double sum = 0.0;
            for (int o = 0; o < N_OUT; o++) sum += g[o] * jacobian[o * n_params + p];
            features[a * n_params + p] = sum;
        }
    }
    sgk_mlp_work_free(&gen_work);
    sgk_mlp_work_free(&disc_work);
}

/* The assembly of gan_assemble.c on parameters set by the test (tanh MLPs of one hidden
 * layer each, NTK parametrization so the scales enter), one replica dropped, against
 * sum_r sum_c scale omega_c (J_G^T g)(z_a) . (J_G^T g)(z_b) computed serially on rank 0:
 *   - with g = sgk_mlp_input_gradient, tolerance 1e-12 relative: the two sides form the
 *     same O(P) dot products in different orders;
 *   - with g by finite differences, tolerance 1e-7 relative: the O(1e-11) error of each
 *     difference quotient, amplified by O(10) Jacobian sums, stays far below it. */
static void check_assembly(int preconditioned)
{
    static const int gen_widths[] = { 5 }, disc_widths[] = { 4 };
    static const double omega[N_CHECKPOINTS] = { 0.3, 0.7 };
    static const int dropped[N_REPLICAS] = { 0, 1, 0 };
    const double scale = 0.5;
    sgk_config config;
    sgk_dataset latent, real;
    sgk_mlp gen;
    sgk_gan_plan gan_plan;
    sgk_train_plan plan;
    sgk_ensemble ensemble;
    sgk_dmatrix kernel;
    double real_x[2 * 3];

    sgk_config_defaults(&config);
    config.ensemble.replicas = N_REPLICAS;
    config.gan.disc_widths[0] = disc_widths[0];
    config.gan.disc_n_hidden = 1;
    config.model.activation = SGK_ACT_TANH;
    config.model.parametrization = SGK_PARAM_NTK;

    /* 1. Latent and real points, the networks and the stored parameters. */
    test_state = 12345;
    memset(&latent, 0, sizeof latent);
    memset(&real, 0, sizeof real);
    double z[N_LATENT * LATENT_DIM];
    for (int k = 0; k < N_LATENT * LATENT_DIM; k++) z[k] = 1.5 * uniform_pm1();
    for (int k = 0; k < 6; k++) real_x[k] = uniform_pm1();
    latent.n_samples = latent.n_train = N_LATENT;
    latent.n_features = LATENT_DIM;
    latent.n_outputs = N_OUT;
    latent.x = z;
    real.n_samples = real.n_train = 3;
    real.n_features = N_OUT;
    real.x = real_x;
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&gen, LATENT_DIM, gen_widths, 1, N_OUT, SGK_ACT_TANH,
                                         SGK_PARAM_NTK), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_gan_plan_create(&config, &real, &gen, &gan_plan), SGK_OK);
    long n_params = gan_plan.n_params;
    double *all = malloc(sizeof(double) * N_REPLICAS * N_CHECKPOINTS * n_params);
    CU_ASSERT_FATAL(all != NULL);
    for (long k = 0; k < N_REPLICAS * N_CHECKPOINTS * n_params; k++) all[k] = uniform_pm1();
    /* Adam's or RMSProp's diagonal preconditioners per replica and checkpoint: positive,
     * spread over a factor of 4 so that a kernel that left them out would differ. */
    double *precond = NULL;
    if (preconditioned) {
        precond = malloc(sizeof(double) * N_REPLICAS * N_CHECKPOINTS * n_params);
        CU_ASSERT_FATAL(precond != NULL);
        for (long k = 0; k < N_REPLICAS * N_CHECKPOINTS * n_params; k++)
            precond[k] = 1.25 + 0.75 * uniform_pm1();
    }

    memset(&plan, 0, sizeof plan);
    plan.config = &config;
    plan.data = &latent;
    plan.net = &gen;
    plan.n_checkpoints = N_CHECKPOINTS;
    plan.gan = &gan_plan;
    memset(&ensemble, 0, sizeof ensemble);
    ensemble.plan = &plan;
    sgk_replica_block(N_REPLICAS, grid.n_ranks, grid.rank, &ensemble.first, &ensemble.n_local);
    ensemble.weights_local = all + ensemble.first * N_CHECKPOINTS * n_params;
    if (precond) ensemble.precond_local = precond + ensemble.first * N_CHECKPOINTS * n_params;

    /* 2. The distributed assembly, on blocks of 2 so every rank owns several. */
    double seconds;
    int stopped;
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_create(&grid, N_LATENT, 2, &kernel), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_gan_kernel_assemble(&ensemble, &grid, dropped, omega, scale,
                                                  &kernel, &seconds, &stopped), SGK_OK);
    CU_ASSERT_EQUAL(stopped, 0);
    double *gathered = rank == 0 ? malloc(sizeof(double) * N_LATENT * N_LATENT) : NULL;
    CU_ASSERT_EQUAL_FATAL(sgk_dmatrix_gather(&kernel, 0, gathered), SGK_OK);
    sgk_dmatrix_free(&kernel);

    /* 3. Serial references on rank 0. */
    if (rank == 0) {
        long n_gen = gan_plan.n_gen_params;
        double *features = malloc(sizeof(double) * N_LATENT * n_gen);
        double exact[N_LATENT * N_LATENT] = { 0 }, fd[N_LATENT * N_LATENT] = { 0 };
        double max_entry = 0.0, error_exact = 0.0, error_fd = 0.0;

        CU_ASSERT_FATAL(features != NULL && gathered != NULL);
        for (int use_fd = 0; use_fd < 2; use_fd++) {
            double *reference = use_fd ? fd : exact;
            for (int r = 0; r < N_REPLICAS; r++) {
                if (dropped[r]) continue;
                for (int c = 0; c < N_CHECKPOINTS; c++) {
                    const double *w = all + ((size_t)r * N_CHECKPOINTS + c) * n_params;
                    const double *pc =
                        precond ? precond + ((size_t)r * N_CHECKPOINTS + c) * n_params : NULL;
                    reference_features(&gen, &gan_plan.disc, w, w + n_gen, z, use_fd, features);
                    for (int a = 0; a < N_LATENT; a++)
                        for (int b = 0; b < N_LATENT; b++) {
                            double dot = 0.0;
                            for (long p = 0; p < n_gen; p++)
                                dot += features[a * n_gen + p] * (pc ? pc[p] : 1.0)
                                       * features[b * n_gen + p];
                            reference[a * N_LATENT + b] += scale * omega[c] * dot;
                        }
                }
            }
        }
        /* The kernel is column-major after the gather, and symmetric. */
        for (int k = 0; k < N_LATENT * N_LATENT; k++) {
            max_entry = fmax(max_entry, fabs(exact[k]));
            error_exact = fmax(error_exact, fabs(gathered[k] - exact[k]));
            error_fd = fmax(error_fd, fabs(gathered[k] - fd[k]));
        }
        CU_ASSERT(max_entry > 0.0);
        CU_ASSERT(error_exact <= 1e-12 * max_entry);
        CU_ASSERT(error_fd <= 1e-7 * max_entry);
        if (error_exact > 1e-12 * max_entry || error_fd > 1e-7 * max_entry)
            fprintf(stderr, "GAN kernel: max entry %.3g, error %.3g (analytic g), %.3g "
                    "(finite differences)\n", max_entry, error_exact, error_fd);
        free(features);
    }
    free(gathered);
    free(all);
    free(precond);
}

/* The seeded kernel against explicit features, without and with a preconditioner. */
static void test_assembly_matches_jacobians(void)
{
    check_assembly(0);
}

static void test_preconditioned_assembly(void)
{
    check_assembly(1);
}

/* A replica that starts fresh and one restored mid-run from its own state reach the same
 * parameters bit for bit: the latents and real batches are positioned by step, and the
 * optimizer views keep Adam's moments per network. */
static void test_replica_restart_bitwise(void)
{
    sgk_config config;
    sgk_dataset real;
    sgk_results results;
    sgk_mlp gen;
    sgk_gan_plan gan_plan;
    sgk_train_plan plan;
    long checkpoint_step[2] = { 0, 20 };

    if (rank != 0) return;
    sgk_config_defaults(&config);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "data.source=teacher"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "data.teacher_inputs=2"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "data.n_train=30"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "data.n_test=0"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "train.task=gan"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "train.optimizer=adam"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "train.batch_size=8"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "train.steps=20"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "model.widths=6"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "gan.disc_widths=5"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_config_override(&config, "gan.latent_points=7"), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_dataset_load(&config, MPI_COMM_SELF, &real), SGK_OK);
    memset(&results, 0, sizeof results);
    CU_ASSERT_EQUAL_FATAL(sgk_gan_results_prepare(&config, &real, 0, &results.gan), SGK_OK);
    const sgk_dataset *latent = &results.gan.latent;
    CU_ASSERT_EQUAL_FATAL(sgk_mlp_create(&gen, latent->n_features, config.model.widths,
                                         config.model.n_hidden, latent->n_outputs,
                                         config.model.activation, config.model.parametrization),
                          SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_gan_plan_create(&config, &real, &gen, &gan_plan), SGK_OK);
    memset(&plan, 0, sizeof plan);
    plan.config = &config;
    plan.data = latent;
    plan.net = &gen;
    plan.n_checkpoints = 2;
    plan.checkpoint_step = checkpoint_step;
    plan.gan = &gan_plan;

    long n_params = gan_plan.n_params;
    size_t per_record = (size_t)latent->n_samples * latent->n_outputs;
    double f[2][2 * 7 * 2], loss_train[2][2], loss_test[2][2];
    double *weights[2], *final[2];
    sgk_replica_record record[2];
    for (int k = 0; k < 2; k++) {
        weights[k] = malloc(sizeof(double) * 2 * n_params);
        final[k] = malloc(sizeof(double) * n_params);
        CU_ASSERT_FATAL(weights[k] && final[k]);
        record[k] = (sgk_replica_record){ .f = f[k], .loss_train = loss_train[k],
                                          .loss_test = loss_test[k], .weights = weights[k] };
        sgk_replica_record_reset(&plan, &record[k]);
    }
    CU_ASSERT_FATAL(per_record == 14);

    /* 1. Straight through. */
    sgk_replica straight, first_half, resumed;
    int paused;
    CU_ASSERT_EQUAL_FATAL(sgk_replica_start(&plan, 1, &straight), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_replica_run(&plan, &straight, NULL, &record[0], NULL, NULL, &paused),
                          SGK_OK);
    CU_ASSERT_EQUAL(record[0].diverged_step, -1);
    memcpy(final[0], straight.b.w, sizeof(double) * n_params);

    /* 2. Stop after 9 steps by hand, then copy the state into a new replica, the way a
     *    snapshot restore does, and finish. */
    CU_ASSERT_EQUAL_FATAL(sgk_replica_start(&plan, 1, &first_half), SGK_OK);
    config.train.steps = 9;
    CU_ASSERT_EQUAL_FATAL(sgk_replica_run(&plan, &first_half, NULL, &record[1], NULL, NULL,
                                          &paused), SGK_OK);
    config.train.steps = 20;
    CU_ASSERT_EQUAL_FATAL(sgk_replica_start(&plan, 1, &resumed), SGK_OK);
    memcpy(resumed.b.w, first_half.b.w, sizeof(double) * n_params);
    memcpy(resumed.optimizer.velocity, first_half.optimizer.velocity, sizeof(double) * n_params);
    memcpy(resumed.optimizer.second_moment, first_half.optimizer.second_moment,
           sizeof(double) * n_params);
    resumed.step = first_half.step;
    resumed.next_checkpoint = first_half.next_checkpoint;
    resumed.optimizer.step = first_half.optimizer.step;
    CU_ASSERT_EQUAL(resumed.step, 9);
    CU_ASSERT_EQUAL(resumed.optimizer.step, 9);
    CU_ASSERT_EQUAL_FATAL(sgk_replica_run(&plan, &resumed, NULL, &record[1], NULL, NULL, &paused),
                          SGK_OK);
    memcpy(final[1], resumed.b.w, sizeof(double) * n_params);
    CU_ASSERT_EQUAL(memcmp(final[0], final[1], sizeof(double) * n_params), 0);
    CU_ASSERT_EQUAL(memcmp(f[0], f[1], sizeof f[0]), 0);
    CU_ASSERT_EQUAL(memcmp(loss_test[0], loss_test[1], sizeof loss_test[0]), 0);

    /* 3. Both networks moved: disc_lr > 0 trains the discriminator too. */
    double *start = weights[0];
    double moved_gen = 0.0, moved_disc = 0.0;
    for (long p = 0; p < n_params; p++) {
        double change = fabs(final[0][p] - start[p]);
        if (p < gan_plan.n_gen_params) moved_gen = fmax(moved_gen, change);
        else moved_disc = fmax(moved_disc, change);
    }
    CU_ASSERT(moved_gen > 0.0);
    CU_ASSERT(moved_disc > 0.0);

    sgk_replica_free(&straight);
    sgk_replica_free(&first_half);
    sgk_replica_free(&resumed);
    for (int k = 0; k < 2; k++) {
        free(weights[k]);
        free(final[k]);
    }
    sgk_gan_results_free(&results.gan);
    sgk_dataset_free(&real);
}

/* One replica's GAN setup without the ensemble: data, latent set, networks and plan. */
typedef struct {
    sgk_config config;
    sgk_dataset real;
    sgk_gan_results gan;
    sgk_mlp gen;
    sgk_gan_plan gan_plan;
    sgk_train_plan plan;
    long checkpoint_step[2];
} replica_fixture;

static int fixture_open(replica_fixture *fx, const char *const *overrides, int count)
{
    memset(fx, 0, sizeof *fx);
    if (sgk_test_configure(overrides, count, &fx->config) != SGK_OK
        || sgk_dataset_load(&fx->config, MPI_COMM_SELF, &fx->real) != SGK_OK
        || sgk_gan_results_prepare(&fx->config, &fx->real, 0, &fx->gan) != SGK_OK)
        return 0;
    const sgk_dataset *latent = &fx->gan.latent;
    if (sgk_run_network(&fx->config, &fx->real, &fx->gen) != SGK_OK
        || sgk_gan_plan_create(&fx->config, &fx->real, &fx->gen, &fx->gan_plan) != SGK_OK)
        return 0;
    fx->checkpoint_step[0] = 0;
    fx->checkpoint_step[1] = fx->config.train.steps;
    fx->plan.config = &fx->config;
    fx->plan.data = latent;
    fx->plan.net = &fx->gen;
    fx->plan.n_checkpoints = 2;
    fx->plan.checkpoint_step = fx->checkpoint_step;
    fx->plan.gan = &fx->gan_plan;
    return 1;
}

static void fixture_close(replica_fixture *fx)
{
    sgk_gan_results_free(&fx->gan);
    sgk_dataset_free(&fx->real);
}

/* L_D(v) = (1/B) sum_i softplus(-D(x_i)) + (1/B) sum_j softplus(D(x_fake_j)). */
static double discriminator_loss(const sgk_mlp *disc, const double *v, const double *x_real,
                                 const double *x_fake, int batch, sgk_mlp_work *work)
{
    double out[16], loss = 0.0;

    sgk_mlp_forward(disc, v, x_real, batch, work, out);
    for (int i = 0; i < batch; i++) loss += softplus(-out[i]);
    sgk_mlp_forward(disc, v, x_fake, batch, work, out);
    for (int j = 0; j < batch; j++) loss += softplus(out[j]);
    return loss / batch;
}

/* L_G(w) = (1/B) sum_j softplus(-D(G(z_j; w))). */
static double generator_loss(const sgk_mlp *gen, const double *w, const sgk_mlp *disc,
                             const double *v, const double *z, int batch, sgk_mlp_work *gen_work,
                             sgk_mlp_work *disc_work)
{
    double x_fake[16 * 2], out[16], loss = 0.0;

    sgk_mlp_forward(gen, w, z, batch, gen_work, x_fake);
    sgk_mlp_forward(disc, v, x_fake, batch, disc_work, out);
    for (int j = 0; j < batch; j++) loss += softplus(-out[j]);
    return loss / batch;
}

/* One SGD step of a replica against the documented step: the discriminator moves by
 * -disc_lr grad L_D on the real batch and the generated samples of the step's latents
 * (stream SGK_RNG_LATENT at substream 0), then the generator by -lr grad L_G with the
 * updated discriminator. The gradients here are central differences of the losses, with
 * step 1e-6 for these O(1) tanh networks: error about 1e-9, so 1e-7 per unit of
 * (1 + |gradient|) separates rounding from a wrong sign, factor or order of the steps. */
static void test_training_step_matches_losses(void)
{
    static const char *const overrides[] = {
        "data.source=teacher", "data.teacher_inputs=2", "data.n_train=6", "data.n_test=0",
        "train.task=gan", "train.batch_size=full", "train.steps=1", "train.lr=0.1",
        "model.widths=4", "model.activation=tanh", "gan.disc_widths=3", "gan.disc_lr=0.05",
        "gan.latent_dim=2", "gan.latent_points=5", "kernel.checkpoints=2"
    };
    const double h = 1e-6, tolerance = 1e-7;
    replica_fixture fx;

    if (rank != 0) return;
    CU_ASSERT_FATAL(fixture_open(&fx, overrides, (int)(sizeof overrides / sizeof *overrides)));
    const sgk_mlp *gen = &fx.gen, *disc = &fx.gan_plan.disc;
    long n_gen = fx.gan_plan.n_gen_params, n_params = fx.gan_plan.n_params;
    int batch = (int)fx.real.n_train, latent_dim = fx.config.gan.latent_dim;
    double f[2 * 5 * 2], loss_train[2], loss_test[2];
    double *weights = malloc(sizeof(double) * 2 * n_params);
    double *expected = malloc(sizeof(double) * n_params);
    double z[6 * 2], x_fake[6 * 2];
    sgk_mlp_work gen_work, disc_work;
    sgk_replica replica;
    sgk_rng rng;
    int paused;

    CU_ASSERT_FATAL(weights && expected && batch == 6);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(gen, batch, &gen_work) == SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(disc, batch, &disc_work) == SGK_OK);
    sgk_replica_record record = { .f = f, .loss_train = loss_train, .loss_test = loss_test,
                                  .weights = weights };
    sgk_replica_record_reset(&fx.plan, &record);
    CU_ASSERT_EQUAL_FATAL(sgk_replica_start(&fx.plan, 2, &replica), SGK_OK);
    CU_ASSERT_EQUAL_FATAL(sgk_replica_run(&fx.plan, &replica, NULL, &record, NULL, NULL, &paused),
                          SGK_OK);
    CU_ASSERT_EQUAL(record.diverged_step, -1);

    /* 1. The step's latents and generated samples at w_0. */
    const double *w0 = weights, *v0 = weights + n_gen, *stepped = weights + n_params;
    sgk_rng_init(&rng, fx.config.ensemble.seed, 2, SGK_RNG_LATENT);
    sgk_rng_seek(&rng, 0);
    for (int k = 0; k < batch * latent_dim; k++) z[k] = sgk_rng_normal(&rng);
    sgk_mlp_forward(gen, w0, z, batch, &gen_work, x_fake);

    /* 2. Discriminator: v_1 = v_0 - disc_lr grad L_D(v_0). */
    memcpy(expected, w0, sizeof(double) * n_params);
    for (long p = n_gen; p < n_params; p++) {
        double plus, minus;
        expected[p] = v0[p - n_gen] + h;
        plus = discriminator_loss(disc, expected + n_gen, fx.real.x, x_fake, batch, &disc_work);
        expected[p] = v0[p - n_gen] - h;
        minus = discriminator_loss(disc, expected + n_gen, fx.real.x, x_fake, batch, &disc_work);
        expected[p] = v0[p - n_gen];
        double gradient = (plus - minus) / (2.0 * h);
        CU_ASSERT_DOUBLE_EQUAL(stepped[p], v0[p - n_gen] - fx.config.gan.disc_lr * gradient,
                               fx.config.gan.disc_lr * tolerance * (1.0 + fabs(gradient)));
    }

    /* 3. Generator: w_1 = w_0 - lr grad L_G(w_0), with the discriminator v_1 as stepped. */
    const double *v1 = stepped + n_gen;
    for (long p = 0; p < n_gen; p++) {
        double plus, minus;
        expected[p] = w0[p] + h;
        plus = generator_loss(gen, expected, disc, v1, z, batch, &gen_work, &disc_work);
        expected[p] = w0[p] - h;
        minus = generator_loss(gen, expected, disc, v1, z, batch, &gen_work, &disc_work);
        expected[p] = w0[p];
        double gradient = (plus - minus) / (2.0 * h);
        CU_ASSERT_DOUBLE_EQUAL(stepped[p], w0[p] - fx.config.train.lr * gradient,
                               fx.config.train.lr * tolerance * (1.0 + fabs(gradient)));
    }

    sgk_replica_free(&replica);
    sgk_mlp_work_free(&gen_work);
    sgk_mlp_work_free(&disc_work);
    free(weights);
    free(expected);
    fixture_close(&fx);
}

int main(int argc, char **argv)
{
    CU_pSuite suite;
    int failed;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid) != SGK_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    sgk_log_setup(rank, SGK_LOG_WARN);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);

    suite = CU_add_suite("gan", NULL, NULL);
    CU_add_test(suite, "linear closed form", test_linear_closed_form);
    CU_add_test(suite, "assembly matches jacobians", test_assembly_matches_jacobians);
    CU_add_test(suite, "preconditioned assembly", test_preconditioned_assembly);
    CU_add_test(suite, "replica restart bitwise", test_replica_restart_bitwise);
    CU_add_test(suite, "training step matches losses", test_training_step_matches_losses);

    failed = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();
    sgk_grid_free(&grid);
    MPI_Finalize();
    return failed;
}
