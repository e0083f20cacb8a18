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
    double *x_rows, *x_cols;    /* inputs of those evaluation points */
    int rows_shared, cols_shared; /* x_rows, x_cols point into the data set: not freed */
    double *input_gram;         /* n_cols x n_rows, <x_col, x_row>, or NULL */
    double *weights;            /* C x n_params of the replica being assembled */
    double *precond;            /* C x n_params preconditioners (Adam, RMSProp), or NULL */
    sgk_mlp_work work;
    sgk_factors rows, cols;
} local_part;

static void local_part_free(local_part *part)
{
    if (!part->rows_shared) free(part->x_rows);
    if (!part->cols_shared) free(part->x_cols);
    free(part->input_gram);
    free(part->weights);
    free(part->precond);
    sgk_mlp_work_free(&part->work);
    sgk_factors_free(&part->rows);
    sgk_factors_free(&part->cols);
}

static sgk_status local_part_create(const sgk_ensemble *ensemble, const sgk_dmatrix *kernel,
                                    local_part *part)
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
     *    they are: on a 1 x p grid this saves a copy of all N inputs on every rank. */
    part->rows_shared = kernel->grid->n_prow == 1;
    part->cols_shared = kernel->grid->n_pcol == 1;
    part->x_rows = part->rows_shared ? data->x : malloc(sizeof(double) * part->n_rows * d);
    part->x_cols = part->cols_shared ? data->x : malloc(sizeof(double) * part->n_cols * d);
    if (!part->x_rows || !part->x_cols)
        return sgk_error(SGK_ERR_IO, "out of memory for the inputs of the local kernel blocks");
    for (long i = 0; !part->rows_shared && i < part->n_rows; i++)
        memcpy(part->x_rows + i * d, data->x + sgk_dmatrix_global_row(kernel, (int)i) * d,
               sizeof(double) * d);
    for (long j = 0; !part->cols_shared && j < part->n_cols; j++)
        memcpy(part->x_cols + j * d, data->x + sgk_dmatrix_global_col(kernel, (int)j) * d,
               sizeof(double) * d);

    /* 2. The first layer's activation Gram does not change during training: keep it when
     *    it is small enough. */
    if ((size_t)part->n_rows * part->n_cols <= INPUT_GRAM_CACHE_LIMIT) {
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

/* Add weight * tr_o Theta at parameters w to the local entries, column-major with leading
 * dimension lld: the Gram is formed with the columns' points first, so its row-major
 * layout is the local column-major layout. The kernel is symmetric in its two points. */
static sgk_status add_checkpoint(const sgk_train_plan *plan, local_part *part, const double *w,
                                 const double *preconditioner, double weight, sgk_dmatrix *kernel)
{
    int d = plan->data->n_features;

    if (preconditioner != NULL)
        return sgk_tangent_gram_preconditioned(plan->net, w, part->x_cols, (int)part->n_cols,
                                               part->x_rows, (int)part->n_rows, preconditioner,
                                               weight, kernel->local, kernel->lld);
    sgk_mlp_tangent_factors(plan->net, w, part->x_cols, (int)part->n_cols, &part->work,
                            &part->cols, NULL);
    for (long i0 = 0; i0 < part->n_rows; i0 += ROW_PANEL) {
        long rows = part->n_rows - i0 < ROW_PANEL ? part->n_rows - i0 : ROW_PANEL;
        sgk_mlp_tangent_factors(plan->net, w, part->x_rows + i0 * d, (int)rows, &part->work,
                                &part->rows, NULL);
        SGK_CHECK(sgk_tangent_gram(plan->net, &part->cols, &part->rows,
                                   part->input_gram ? part->input_gram + i0 : NULL,
                                   (int)part->n_rows, weight, kernel->local + i0, kernel->lld));
    }
    return SGK_OK;
}

sgk_status sgk_kernel_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                               const int *dropped, const double *quadrature_weight,
                               double scale, sgk_dmatrix *kernel, double *seconds, int *stopped)
{
    const sgk_train_plan *plan = ensemble->plan;
    long n_replicas = plan->config->ensemble.replicas;
    int n_checkpoints = plan->n_checkpoints;
    size_t per_replica = (size_t)n_checkpoints * plan->net->n_params;
    local_part part;
    sgk_status status;
    double start = sgk_seconds();

    status = local_part_create(ensemble, kernel, &part);
    status = sgk_grid_agree(grid, status, "preparing the kernel assembly");
    if (status != SGK_OK) {
        local_part_free(&part);
        return status;
    }
    sgk_log(SGK_LOG_INFO, "kernel assembly: local blocks %ld x %ld on rank 0, input Gram %s",
            part.n_rows, part.n_cols, part.input_gram ? "cached" : "recomputed per checkpoint");

    /* Replica by replica in index order, checkpoint by checkpoint: every entry receives its
     * terms in the same order on every grid. */
    /* A rank whose own work failed keeps taking part in the broadcasts, so that no rank
     * waits for it. The status is agreed after the loop. */
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
        if (grid->rank == owner)
            memcpy(part.weights, ensemble->weights_local + (size_t)(r - ensemble->first) * per_replica,
                   sizeof(double) * per_replica);
        if (MPI_Bcast(part.weights, (int)per_replica, MPI_DOUBLE, owner, grid->comm) != MPI_SUCCESS)
            status = sgk_error(SGK_ERR_IO, "MPI_Bcast of replica %ld's parameters failed", r);
        if (part.precond != NULL) {
            if (grid->rank == owner)
                memcpy(part.precond,
                       ensemble->precond_local + (size_t)(r - ensemble->first) * per_replica,
                       sizeof(double) * per_replica);
            if (MPI_Bcast(part.precond, (int)per_replica, MPI_DOUBLE, owner, grid->comm)
                != MPI_SUCCESS)
                status = sgk_error(SGK_ERR_IO, "MPI_Bcast of replica %ld's preconditioners "
                                   "failed", r);
        }
        for (int c = 0; c < n_checkpoints && status == SGK_OK; c++) {
            size_t offset = (size_t)c * plan->net->n_params;
            if (part.n_rows == 0 || part.n_cols == 0) break;
            status = add_checkpoint(plan, &part, part.weights + offset,
                                    part.precond ? part.precond + offset : NULL,
                                    scale * quadrature_weight[c], kernel);
        }
    }
    status = sgk_grid_agree(grid, status, "assembling the kernel");
    local_part_free(&part);
    *seconds = sgk_seconds() - start;
    return status;
}
