/* Assembly of the GAN generator kernel into its block-cyclic matrix, distributed like
 * assemble.c.
 *
 * At one replica's checkpoint, with generator parameters w and discriminator parameters v,
 * the contribution between latent points z and z' is
 *   g(z)^T J_G(z) J_G(z')^T g(z'),   g(z) = grad_x D(G(z; w); v),
 * the tangent kernel of the scalar output g(z) . G(z; w) with g held fixed. Its layer
 * factors are those of a backward pass seeded with g instead of a unit output vector:
 * with a_{l-1} the activations and delta_l the seeded sensitivities of layer l,
 *   sum_l <delta_l(z), delta_l(z')> (c_l^2 <a_{l-1}(z), a_{l-1}(z')> + beta_l^2).
 * Adam's and RMSProp's diagonal preconditioner P of the step breaks that factorization:
 * then the seeded gradients are formed explicitly, scaled by sqrt(P), and multiplied,
 * g^T J_G(z) P J_G(z')^T g', at N P_G operations per point instead of the layer widths. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "gan.h"
#include "sgk/log.h"

/* Row points whose factors are held at once, as in assemble.c. */
static const long ROW_PANEL = 512;

/* Seeded factors of up to `capacity` points: act[l-1] is m x d_{l-1}, delta[l-1] m x d_l. */
typedef struct {
    int m;
    double *act[SGK_MAX_LAYERS];
    double *delta[SGK_MAX_LAYERS];
} seeded_factors;

/* What one rank needs for its part of the kernel. */
typedef struct {
    long n_rows, n_cols;        /* local rows and columns of the block-cyclic matrix */
    double *z_rows, *z_cols;    /* latent points of those rows and columns */
    double *weights;            /* C x (P_G + P_D) of the replica being assembled */
    double *precond;            /* C x (P_G + P_D) preconditioners (Adam, RMSProp), or NULL */
    double *jac_rows, *jac_cols;/* sqrt(P)-scaled seeded gradients of a panel and the columns */
    double *generated;          /* G(z) of a batch of points */
    double *disc_seed;          /* ones: D has one output */
    double *input_gradient;     /* g(z) of a batch of points */
    double *gen_grad;           /* parameter gradient the backward pass also forms (unused) */
    double *gram_delta, *gram_act; /* n_cols x panel products of one layer */
    sgk_mlp_work gen_work, disc_work;
    seeded_factors rows, cols;
} local_part;

static void factors_free(seeded_factors *f)
{
    for (int l = 0; l < SGK_MAX_LAYERS; l++) {
        free(f->act[l]);
        free(f->delta[l]);
    }
    memset(f, 0, sizeof *f);
}

static int factors_alloc(const sgk_mlp *net, long capacity, seeded_factors *f)
{
    int ok = 1;

    memset(f, 0, sizeof *f);
    for (int l = 1; l <= net->n_layers; l++) {
        f->act[l - 1] = malloc(sizeof(double) * (capacity * net->dims[l - 1] + 1));
        f->delta[l - 1] = malloc(sizeof(double) * (capacity * net->dims[l] + 1));
        ok = ok && f->act[l - 1] && f->delta[l - 1];
    }
    return ok;
}

static void local_part_free(local_part *part)
{
    free(part->z_rows);
    free(part->z_cols);
    free(part->weights);
    free(part->precond);
    free(part->jac_rows);
    free(part->jac_cols);
    free(part->generated);
    free(part->disc_seed);
    free(part->input_gradient);
    free(part->gen_grad);
    free(part->gram_delta);
    free(part->gram_act);
    sgk_mlp_work_free(&part->gen_work);
    sgk_mlp_work_free(&part->disc_work);
    factors_free(&part->rows);
    factors_free(&part->cols);
}

static sgk_status local_part_create(const sgk_ensemble *ensemble, const sgk_dmatrix *kernel,
                                    local_part *part)
{
    const sgk_train_plan *plan = ensemble->plan;
    const sgk_gan_plan *gan = plan->gan;
    const sgk_dataset *latent = plan->data;
    int k = latent->n_features, n_outputs = latent->n_outputs;
    long panel, n_points;

    memset(part, 0, sizeof *part);
    part->n_rows = kernel->local_rows;
    part->n_cols = kernel->local_cols;
    panel = part->n_rows < ROW_PANEL ? part->n_rows : ROW_PANEL;
    n_points = panel > part->n_cols ? panel : part->n_cols;
    part->weights = malloc(sizeof(double) * plan->n_checkpoints * gan->n_params);
    if (ensemble->precond_local)
        part->precond = malloc(sizeof(double) * plan->n_checkpoints * gan->n_params);
    if (!part->weights || (ensemble->precond_local && !part->precond))
        return sgk_error(SGK_ERR_IO, "out of memory for checkpoint parameters");
    if (part->n_rows == 0 || part->n_cols == 0) return SGK_OK;
    if (part->precond) {
        part->jac_rows = malloc(sizeof(double) * panel * gan->n_gen_params);
        part->jac_cols = malloc(sizeof(double) * part->n_cols * gan->n_gen_params);
        if (!part->jac_rows || !part->jac_cols)
            return sgk_error(SGK_ERR_IO, "out of memory for the seeded gradients of %ld x %ld "
                             "local kernel points", panel, part->n_cols);
    }

    part->z_rows = malloc(sizeof(double) * part->n_rows * k);
    part->z_cols = malloc(sizeof(double) * part->n_cols * k);
    part->generated = malloc(sizeof(double) * n_points * n_outputs);
    part->disc_seed = malloc(sizeof(double) * n_points);
    part->input_gradient = malloc(sizeof(double) * n_points * n_outputs);
    part->gen_grad = malloc(sizeof(double) * gan->n_gen_params);
    part->gram_delta = malloc(sizeof(double) * part->n_cols * panel);
    part->gram_act = malloc(sizeof(double) * part->n_cols * panel);
    if (!part->z_rows || !part->z_cols || !part->generated || !part->disc_seed
        || !part->input_gradient || !part->gen_grad || !part->gram_delta || !part->gram_act
        || sgk_mlp_work_alloc(plan->net, (int)n_points, &part->gen_work) != SGK_OK
        || sgk_mlp_work_alloc(&gan->disc, (int)n_points, &part->disc_work) != SGK_OK
        || !factors_alloc(plan->net, panel, &part->rows)
        || !factors_alloc(plan->net, part->n_cols, &part->cols))
        return sgk_error(SGK_ERR_IO, "out of memory for the seeded factors of %ld x %ld local "
                         "kernel points", part->n_rows, part->n_cols);
    for (long i = 0; i < part->n_rows; i++)
        memcpy(part->z_rows + i * k, latent->x + sgk_dmatrix_global_row(kernel, (int)i) * k,
               sizeof(double) * k);
    for (long j = 0; j < part->n_cols; j++)
        memcpy(part->z_cols + j * k, latent->x + sgk_dmatrix_global_col(kernel, (int)j) * k,
               sizeof(double) * k);
    for (long p = 0; p < n_points; p++) part->disc_seed[p] = 1.0;
    return SGK_OK;
}

/* Seeded factors of m latent points z at generator parameters w and discriminator
 * parameters v: G(z), then g = grad_x D(G(z)), then the generator's backward pass seeded
 * with g, whose sensitivities sgk_mlp_backward leaves in gen_work.delta[l] for l < L. */
static void seeded_factors_compute(const sgk_train_plan *plan, local_part *part, const double *w,
                                   const double *v, const double *z, int m, seeded_factors *out)
{
    const sgk_mlp *gen = plan->net;
    int n_layers = gen->n_layers;

    out->m = m;
    sgk_mlp_forward(gen, w, z, m, &part->gen_work, part->generated);
    sgk_mlp_forward(&plan->gan->disc, v, part->generated, m, &part->disc_work, NULL);
    sgk_mlp_input_gradient(&plan->gan->disc, v, part->disc_seed, m, &part->disc_work,
                           part->input_gradient);
    sgk_mlp_backward(gen, w, part->input_gradient, m, &part->gen_work, part->gen_grad);
    for (int l = 1; l <= n_layers; l++) {
        const double *delta = l < n_layers ? part->gen_work.delta[l] : part->input_gradient;

        memcpy(out->act[l - 1], part->gen_work.a[l - 1],
               sizeof(double) * (size_t)m * gen->dims[l - 1]);
        memcpy(out->delta[l - 1], delta, sizeof(double) * (size_t)m * gen->dims[l]);
    }
}

/* The seeded gradients of f's m points, one row of P_G entries each, scaled by sqrt(P):
 * d(g . G)/dW_l[j][k] = c_l delta_l[j] a_{l-1}[k] and d(g . G)/db_l[j] = beta_l delta_l[j]. */
static void scaled_gradients(const sgk_mlp *gen, const seeded_factors *f,
                             const double *preconditioner, double *rows)
{
    long n_gen = gen->n_params;

    for (int i = 0; i < f->m; i++) {
        double *row = rows + (size_t)i * n_gen;
        for (int l = 1; l <= gen->n_layers; l++) {
            int d_out = gen->dims[l], d_in = gen->dims[l - 1];
            const double *delta = f->delta[l - 1] + (size_t)i * d_out;
            const double *act = f->act[l - 1] + (size_t)i * d_in;
            long w0 = gen->w_offset[l - 1], b0 = gen->b_offset[l - 1];
            for (int j = 0; j < d_out; j++) {
                double c_delta = gen->weight_scale[l - 1] * delta[j];
                for (int k = 0; k < d_in; k++) {
                    long p = w0 + (long)j * d_in + k;
                    row[p] = c_delta * act[k] * sqrt(preconditioner[p]);
                }
                row[b0 + j] = gen->bias_scale[l - 1] * delta[j] * sqrt(preconditioner[b0 + j]);
            }
        }
    }
}

/* add_checkpoint with the generator part of the preconditioner P. */
static void add_preconditioned_checkpoint(const sgk_train_plan *plan, local_part *part,
                                          const double *w, const double *preconditioner,
                                          double weight, sgk_dmatrix *kernel)
{
    const sgk_mlp *gen = plan->net;
    const double *v = w + plan->gan->n_gen_params;
    int k = plan->data->n_features;
    int n_cols = (int)part->n_cols;
    int n_gen = (int)gen->n_params;

    seeded_factors_compute(plan, part, w, v, part->z_cols, n_cols, &part->cols);
    scaled_gradients(gen, &part->cols, preconditioner, part->jac_cols);
    for (long i0 = 0; i0 < part->n_rows; i0 += ROW_PANEL) {
        int rows = (int)(part->n_rows - i0 < ROW_PANEL ? part->n_rows - i0 : ROW_PANEL);

        seeded_factors_compute(plan, part, w, v, part->z_rows + i0 * k, rows, &part->rows);
        scaled_gradients(gen, &part->rows, preconditioner, part->jac_rows);
        /* Row-major (columns x rows) is the local column-major layout. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_cols, rows, n_gen, weight,
                    part->jac_cols, n_gen, part->jac_rows, n_gen, 1.0, kernel->local + i0,
                    kernel->lld);
    }
}

/* Add weight * the seeded kernel at the checkpoint's parameters to the local entries,
 * column-major with leading dimension lld. Each Gram is formed with the columns' points
 * first, so its row-major layout matches the local column-major layout. */
static void add_checkpoint(const sgk_train_plan *plan, local_part *part, const double *w,
                           double weight, sgk_dmatrix *kernel)
{
    const sgk_mlp *gen = plan->net;
    const double *v = w + plan->gan->n_gen_params;
    int k = plan->data->n_features;
    int n_cols = (int)part->n_cols;

    seeded_factors_compute(plan, part, w, v, part->z_cols, n_cols, &part->cols);
    for (long i0 = 0; i0 < part->n_rows; i0 += ROW_PANEL) {
        int rows = (int)(part->n_rows - i0 < ROW_PANEL ? part->n_rows - i0 : ROW_PANEL);

        seeded_factors_compute(plan, part, w, v, part->z_rows + i0 * k, rows, &part->rows);
        for (int l = 1; l <= gen->n_layers; l++) {
            int d_out = gen->dims[l], d_in = gen->dims[l - 1];
            double c2 = gen->weight_scale[l - 1] * gen->weight_scale[l - 1];
            double b2 = gen->bias_scale[l - 1] * gen->bias_scale[l - 1];

            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_cols, rows, d_out, 1.0,
                        part->cols.delta[l - 1], d_out, part->rows.delta[l - 1], d_out, 0.0,
                        part->gram_delta, rows);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_cols, rows, d_in, 1.0,
                        part->cols.act[l - 1], d_in, part->rows.act[l - 1], d_in, 0.0,
                        part->gram_act, rows);
            for (int j = 0; j < n_cols; j++) {
                double *target = kernel->local + (size_t)j * kernel->lld + i0;
                const double *gd = part->gram_delta + (size_t)j * rows;
                const double *ga = part->gram_act + (size_t)j * rows;

                for (int i = 0; i < rows; i++) target[i] += weight * gd[i] * (c2 * ga[i] + b2);
            }
        }
    }
}

/* The checkpoints of one replica. */
typedef struct {
    const sgk_train_plan *plan;
    local_part *part;
    const double *quadrature_weight;
    double scale;
    sgk_dmatrix *kernel;
} replica_visit;

static sgk_status add_replica(void *context, long replica, const double *weights,
                              const double *preconditioners)
{
    const replica_visit *visit = context;
    long n_params = visit->plan->gan->n_params;

    (void)replica;
    if (visit->part->n_rows == 0 || visit->part->n_cols == 0) return SGK_OK;
    for (int c = 0; c < visit->plan->n_checkpoints; c++) {
        double weight = visit->scale * visit->quadrature_weight[c];
        if (preconditioners != NULL)
            add_preconditioned_checkpoint(visit->plan, visit->part,
                                          weights + (size_t)c * n_params,
                                          preconditioners + (size_t)c * n_params, weight,
                                          visit->kernel);
        else
            add_checkpoint(visit->plan, visit->part, weights + (size_t)c * n_params, weight,
                           visit->kernel);
    }
    return SGK_OK;
}

sgk_status sgk_gan_kernel_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                   const int *dropped, const double *quadrature_weight,
                                   double scale, sgk_dmatrix *kernel, double *seconds,
                                   int *stopped)
{
    local_part part;
    sgk_status status;
    double start = sgk_seconds();

    status = local_part_create(ensemble, kernel, &part);
    status = sgk_grid_agree(grid, status, "preparing the GAN kernel assembly");
    if (status != SGK_OK) {
        local_part_free(&part);
        return status;
    }

    /* The shared replica loop visits the replicas in index order, so every entry receives
     * its terms in the same order on every grid. */
    replica_visit visit = { .plan = ensemble->plan,
                            .part = &part,
                            .quadrature_weight = quadrature_weight,
                            .scale = scale,
                            .kernel = kernel };
    status = sgk_assemble_by_replica(ensemble, grid, dropped, part.weights, part.precond,
                                     add_replica, &visit, stopped);
    status = sgk_grid_agree(grid, status, "assembling the GAN kernel");
    local_part_free(&part);
    *seconds = sgk_seconds() - start;
    return status;
}
