#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "control.h"
#include "sgk/log.h"
#include "sgk/tangent.h"

/* Cache the input Gram of the local entries when it needs at most this many doubles
 * (16 MB). Beyond that, every checkpoint recomputes it inside the first layer's product,
 * so that memory per rank stays near the local kernel's N^2 / p. */
static const size_t INPUT_GRAM_CACHE_LIMIT = (size_t)2 << 20;

/* Row points whose factors are held at once: the factors of a panel of rows meet those
 * of all local columns in one Gram product. */
static const long ROW_PANEL = 512;

/* What one rank needs for its part of the kernel. */
typedef struct {
    long n_rows, n_cols;        /* local rows and columns of the block-cyclic matrix */
    const double *x_rows, *x_cols; /* inputs of those evaluation points, read only */
    double *rows_copy, *cols_copy; /* their own copies, or NULL where the data set serves */
    double *input_gram;         /* n_cols x n_rows, <x_col, x_row>, or NULL */
    int *diagonal;              /* n_cols flags: the column's diagonal entry is local */
    double *weights;            /* C x n_params of the replica being assembled */
    double *precond;            /* C x n_params preconditioners (Adam, RMSProp), or NULL */
    sgk_mlp_work work;
    sgk_factors rows, cols;
} local_part;

static void local_part_free(local_part *part)
{
    free(part->rows_copy);
    free(part->cols_copy);
    free(part->diagonal);
    free(part->input_gram);
    free(part->weights);
    free(part->precond);
    sgk_mlp_work_free(&part->work);
    sgk_factors_free(&part->rows);
    sgk_factors_free(&part->cols);
}

static sgk_status local_part_create(const sgk_ensemble *ensemble, const sgk_dmatrix *kernel,
                                    int conditioned, local_part *part)
{
    const sgk_train_plan *plan = ensemble->plan;
    const sgk_dataset *data = plan->data;
    int d = data->n_features;
    long n_points;

    memset(part, 0, sizeof *part);
    part->n_rows = kernel->local_rows;
    part->n_cols = kernel->local_cols;
    long panel = part->n_rows < ROW_PANEL ? part->n_rows : ROW_PANEL;
    n_points = panel > part->n_cols ? panel : part->n_cols;
    part->weights = malloc(sizeof(double) * plan->n_checkpoints * plan->net->n_params);
    if (ensemble->precond_local)
        part->precond = malloc(sizeof(double) * plan->n_checkpoints * plan->net->n_params);
    if (!part->weights || (ensemble->precond_local && !part->precond))
        return sgk_error(SGK_ERR_IO, "out of memory for checkpoint parameters");
    if (part->n_rows == 0 || part->n_cols == 0) return SGK_OK;

    /* 1. Inputs of the local rows and columns. With one process row (column) a rank
     *    owns every row (column) in global order, so the data set's inputs serve as
     *    they are: on a 1 x p grid this saves a copy of all N inputs on every rank.
     *    Conditioned parts rewrite the last input, so they always work on copies. */
    int rows_shared = !conditioned && kernel->grid->n_prow == 1;
    int cols_shared = !conditioned && kernel->grid->n_pcol == 1;
    if (!rows_shared) part->rows_copy = malloc(sizeof(double) * part->n_rows * d);
    if (!cols_shared) part->cols_copy = malloc(sizeof(double) * part->n_cols * d);
    if ((!rows_shared && !part->rows_copy) || (!cols_shared && !part->cols_copy))
        return sgk_error(SGK_ERR_IO, "out of memory for the inputs of the local kernel blocks");
    for (long i = 0; !rows_shared && i < part->n_rows; i++)
        memcpy(part->rows_copy + i * d, data->x + sgk_dmatrix_global_row(kernel, (int)i) * d,
               sizeof(double) * d);
    for (long j = 0; !cols_shared && j < part->n_cols; j++)
        memcpy(part->cols_copy + j * d, data->x + sgk_dmatrix_global_col(kernel, (int)j) * d,
               sizeof(double) * d);
    part->x_rows = rows_shared ? data->x : part->rows_copy;
    part->x_cols = cols_shared ? data->x : part->cols_copy;
    part->diagonal = calloc((size_t)part->n_cols, sizeof(int));
    if (!part->diagonal)
        return sgk_error(SGK_ERR_IO, "out of memory for the local diagonal of the kernel");
    /* Row g lives on process row (g / nb) mod p_r, so this rank owns the diagonal entry
     * of a local column exactly when its process row owns that column's index. */
    for (long j = 0; j < part->n_cols; j++) {
        long global = sgk_dmatrix_global_col(kernel, (int)j);
        part->diagonal[j] = (global / kernel->nb) % kernel->grid->n_prow == kernel->grid->my_prow;
    }

    /* 2. The first layer's activation Gram does not change during training: keep it when
     *    it is small enough. A conditioning input changes it from part to part. */
    if (!conditioned && (size_t)part->n_rows * part->n_cols <= INPUT_GRAM_CACHE_LIMIT) {
        part->input_gram = malloc(sizeof(double) * part->n_rows * part->n_cols);
        if (part->input_gram)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)part->n_cols,
                        (int)part->n_rows, d, 1.0, part->x_cols, d, part->x_rows, d, 0.0,
                        part->input_gram, (int)part->n_rows);
    }

    /* 3. Work buffers for the factors of the local points. */
    if (sgk_mlp_work_alloc(plan->net, (int)n_points, &part->work) != SGK_OK
        || sgk_factors_alloc(plan->net, (int)panel, &part->rows) != SGK_OK
        || sgk_factors_alloc(plan->net, (int)part->n_cols, &part->cols) != SGK_OK)
        return sgk_error(SGK_ERR_IO, "out of memory for the tangent factors of %ld x %ld local "
                         "kernel points", part->n_rows, part->n_cols);
    return SGK_OK;
}

/* NOTE: every rank recomputes the factors of its N / p_r + N / p_c points for every
 * replica and checkpoint, about 2 P (1 + O) operations per point, next to its
 * N^2 / p Gram entries. For small N on many ranks (N below about P sqrt(p) / sum of
 * widths) the recomputation dominates. Broadcasting each factor set from the rank that
 * trained the replica would then be cheaper. */

/* One point of a factor set, as a factor set of its own. */
static void factor_view(const sgk_factors *factors, int point, sgk_factors *view)
{
    *view = *factors;
    view->m = 1;
    view->capacity = 1;
    for (int l = 0; l < factors->n_layers; l++) {
        view->act[l] = factors->act[l] + (size_t)point * factors->dims[l];
        view->delta[l] = factors->delta[l] + (size_t)point * factors->n_outputs * factors->dims[l + 1];
    }
}

/* Add weight * tr_o Theta at parameters w to the local entries, column-major with leading
 * dimension lld: the Gram is formed with the columns' points first, so its row-major
 * layout is the local column-major layout. The kernel is symmetric in its two points.
 * With `trace`, also add to it the unweighted tr_o Theta(a, a) of every point a whose
 * diagonal entry this rank owns, from the columns' factors. Weight 0 takes the trace alone. */
static sgk_status add_checkpoint(const sgk_train_plan *plan, local_part *part, const double *w,
                                 const double *preconditioner, double weight,
                                 sgk_dmatrix *kernel, double *trace)
{
    int d = plan->data->n_features;

    if (preconditioner != NULL) {
        if (weight != 0.0)
            SGK_CHECK(sgk_tangent_gram_preconditioned(plan->net, w, part->x_cols,
                                                      (int)part->n_cols, part->x_rows,
                                                      (int)part->n_rows, preconditioner, weight,
                                                      kernel->local, kernel->lld));
    } else {
        sgk_mlp_tangent_factors(plan->net, w, part->x_cols, (int)part->n_cols, &part->work,
                                &part->cols, NULL);
        for (long i0 = 0; weight != 0.0 && i0 < part->n_rows; i0 += ROW_PANEL) {
            long rows = part->n_rows - i0 < ROW_PANEL ? part->n_rows - i0 : ROW_PANEL;
            sgk_mlp_tangent_factors(plan->net, w, part->x_rows + i0 * d, (int)rows, &part->work,
                                    &part->rows, NULL);
            SGK_CHECK(sgk_tangent_gram(plan->net, &part->cols, &part->rows,
                                       part->input_gram ? part->input_gram + i0 : NULL,
                                       (int)part->n_rows, weight, kernel->local + i0,
                                       kernel->lld));
        }
    }
    if (trace == NULL) return SGK_OK;

    /* The diagonal: a local column whose global index is also a local row. */
    for (long j = 0; j < part->n_cols; j++) {
        if (!part->diagonal[j]) continue;

        double value = 0.0;
        const double *x = part->x_cols + j * d;
        if (preconditioner != NULL) {
            SGK_CHECK(sgk_tangent_gram_preconditioned(plan->net, w, x, 1, x, 1, preconditioner,
                                                      1.0, &value, 1));
        } else {
            sgk_factors view;
            factor_view(&part->cols, (int)j, &view);
            SGK_CHECK(sgk_tangent_gram(plan->net, &view, &view, NULL, 1, 1.0, &value, 1));
        }
        *trace += value;
    }
    return SGK_OK;
}

/* Set the last input of every local row and column point to `value`, in the copies that
 * conditioned parts always make (local_part_create), never in the data set. */
static void set_condition(local_part *part, int d, double value)
{
    for (long i = 0; i < part->n_rows; i++) part->rows_copy[i * d + d - 1] = value;
    for (long j = 0; j < part->n_cols; j++) part->cols_copy[j * d + d - 1] = value;
}

sgk_status sgk_assemble_by_replica(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                   const int *dropped, double *weights, double *preconditioners,
                                   sgk_replica_visit visit, void *context, int *stopped)
{
    long n_replicas = ensemble->plan->config->ensemble.replicas;
    size_t per_replica = (size_t)ensemble->plan->n_checkpoints
                         * sgk_train_plan_params(ensemble->plan);
    sgk_status status = SGK_OK;

    /* A rank whose own work failed keeps taking part in the broadcasts, so that no rank
     * waits for it. The caller agrees on the status after the loop. */
    *stopped = 0;
    for (long r = 0; r < n_replicas; r++) {
        if (dropped[r]) continue;

        /* A stop signal to any rank ends the assembly between replicas; the caller then
         * snapshots the trained ensemble, and a restart assembles again. */
        if (ensemble->snapshot_folder != NULL) {
            int seen = sgk_control_signal_seen(), any = 0;
            MPI_Allreduce(&seen, &any, 1, MPI_INT, MPI_MAX, grid->comm);
            if (any) {
                *stopped = 1;
                break;
            }
        }
        int owner = sgk_replica_owner(n_replicas, grid->n_ranks, r);
        size_t offset = (size_t)(r - ensemble->first) * per_replica;
        if (grid->rank == owner)
            memcpy(weights, ensemble->weights_local + offset, sizeof(double) * per_replica);
        if (MPI_Bcast(weights, (int)per_replica, MPI_DOUBLE, owner, grid->comm) != MPI_SUCCESS)
            status = sgk_error(SGK_ERR_IO, "MPI_Bcast of replica %ld's parameters failed", r);
        if (preconditioners != NULL) {
            if (grid->rank == owner)
                memcpy(preconditioners, ensemble->precond_local + offset,
                       sizeof(double) * per_replica);
            if (MPI_Bcast(preconditioners, (int)per_replica, MPI_DOUBLE, owner, grid->comm)
                != MPI_SUCCESS)
                status = sgk_error(SGK_ERR_IO, "MPI_Bcast of replica %ld's preconditioners "
                                   "failed", r);
        }
        if (status == SGK_OK) status = visit(context, r, weights, preconditioners);
    }
    return status;
}

/* The kernel parts of one replica, checkpoint by checkpoint, part by part, so every entry
 * receives its terms in the same order on every grid. */
typedef struct {
    const sgk_train_plan *plan;
    const sgk_assembly_terms *terms;
    local_part *part;
} terms_visit;

static sgk_status add_replica_terms(void *context, long r, const double *weights,
                                    const double *preconditioners)
{
    const terms_visit *visit = context;
    const sgk_train_plan *plan = visit->plan;
    const sgk_assembly_terms *terms = visit->terms;
    local_part *part = visit->part;
    int n_checkpoints = plan->n_checkpoints;
    int n_parts = terms->n_parts;
    int d = plan->data->n_features;
    sgk_status status = SGK_OK;

    if (part->n_rows == 0 || part->n_cols == 0) return SGK_OK;
    for (int c = 0; c < n_checkpoints && status == SGK_OK; c++) {
        size_t offset = (size_t)c * plan->net->n_params;
        const double *w = weights + offset;
        const double *precond = preconditioners ? preconditioners + offset : NULL;
        for (int p = 0; p < n_parts && status == SGK_OK; p++) {
            double weight = terms->per_replica
                                ? terms->weight[((size_t)r * n_checkpoints + c) * n_parts + p]
                                : terms->weight[(size_t)c * n_parts + p];
            double *trace = terms->trace ? &terms->trace[(size_t)c * n_parts + p] : NULL;
            if (terms->condition != NULL) set_condition(part, d, terms->condition[p]);
            if (weight != 0.0 || trace != NULL)
                status = add_checkpoint(plan, part, w, precond, terms->scale * weight,
                                        &terms->kernels[p], trace);
        }
    }
    return status;
}

/* Collective. What both entry points share. */
static sgk_status assemble_terms(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                 const int *dropped, const sgk_assembly_terms *terms,
                                 double *seconds, int *stopped)
{
    int n_checkpoints = ensemble->plan->n_checkpoints;
    int n_parts = terms->n_parts;
    local_part part;
    sgk_status status;
    double start = sgk_seconds();

    status = local_part_create(ensemble, &terms->kernels[0], terms->condition != NULL, &part);
    status = sgk_grid_agree(grid, status, "preparing the kernel assembly");
    if (status != SGK_OK) {
        local_part_free(&part);
        return status;
    }
    sgk_log(SGK_LOG_INFO, "kernel assembly: local blocks %ld x %ld on rank 0, input Gram %s, "
            "%d part%s", part.n_rows, part.n_cols,
            part.input_gram ? "cached" : "recomputed per checkpoint", n_parts,
            n_parts == 1 ? "" : "s");
    if (terms->trace != NULL)
        memset(terms->trace, 0, sizeof(double) * n_checkpoints * n_parts);

    terms_visit visit = { .plan = ensemble->plan, .terms = terms, .part = &part };
    status = sgk_assemble_by_replica(ensemble, grid, dropped, part.weights, part.precond,
                                     add_replica_terms, &visit, stopped);
    status = sgk_grid_agree(grid, status, "assembling the kernel");
    local_part_free(&part);
    if (status == SGK_OK && terms->trace != NULL
        && MPI_Allreduce(MPI_IN_PLACE, terms->trace, n_checkpoints * n_parts, MPI_DOUBLE,
                         MPI_SUM, grid->comm) != MPI_SUCCESS)
        status = sgk_error(SGK_ERR_IO, "MPI_Allreduce of the kernel traces failed");
    *seconds = sgk_seconds() - start;
    return status;
}

sgk_status sgk_kernel_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                               const int *dropped, const double *quadrature_weight,
                               double scale, sgk_dmatrix *kernel, double *seconds, int *stopped)
{
    sgk_assembly_terms terms = { .n_parts = 1,
                                 .kernels = kernel,
                                 .weight = quadrature_weight,
                                 .per_replica = 0,
                                 .scale = scale,
                                 .condition = NULL,
                                 .trace = NULL };

    return assemble_terms(ensemble, grid, dropped, &terms, seconds, stopped);
}

sgk_status sgk_kernel_assemble_parts(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                     const int *dropped, const sgk_assembly_terms *terms,
                                     double *seconds, int *stopped)
{
    return assemble_terms(ensemble, grid, dropped, terms, seconds, stopped);
}
