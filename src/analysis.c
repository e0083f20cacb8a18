/* Spectrum of K_n = K[train, train] / n, projections of the training targets on its
 * eigenvectors, kernel-target alignment and the memory residual of every evaluation
 * point, all from the distributed kernel; doc/theory-as-implemented.md derives the
 * formulas.
 *
 * Every quantity here is a sum over matrix entries. Each rank adds up the entries of
 * its own blocks and one MPI_Allreduce completes the sum, so no rank ever holds a
 * full matrix, and ranks that own no block still take part in every reduction with
 * zeros. The one product with real work, W = K[all, train] V, is PDGEMM. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "sgk/analysis.h"
#include "sgk/log.h"
#include "sgk/spectrum.h"
#include "snapshot.h"

/* ScaLAPACK and PBLAS Fortran routines, declared here because no C header ships.
 * The size_t arguments are gfortran's hidden CHARACTER lengths. */
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
                      const int *irsrc, const int *icsrc, const int *context, const int *lld,
                      int *info);
extern void pdgemm_(const char *transa, const char *transb, const int *m, const int *n,
                    const int *k, const double *alpha, const double *a, const int *ia,
                    const int *ja, const int *desca, const double *b, const int *ib, const int *jb,
                    const int *descb, const double *beta, double *c, const int *ic, const int *jc,
                    const int *descc, size_t transa_len, size_t transb_len);

/* Doubles per MPI_Allreduce call, far below INT_MAX. */
#define REDUCE_CHUNK (1L << 26)

/* Stand-in for the local array of a process that owns no entry. */
static double empty_local;

/* The N x k product W = K[all, train] V in the block-cyclic layout of `sgk`: its rows
 * are distributed like the rows of the kernel, its columns like the eigenvector
 * columns, so for global row < n and column < k its local entry (i, j) sits at the
 * same (i, j) as the matching entry of V. */
typedef struct {
    int local_rows, local_cols, lld;
    int desc[9];
    double *local;
} product_panel;

static sgk_status mpi_check(int rc, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (rc == MPI_SUCCESS) return SGK_OK;
    MPI_Error_string(rc, text, &length);
    return sgk_error(SGK_ERR_IO, "%s failed: %s", call, text);
}

static const double *local_or_empty(const double *local)
{
    return local != NULL ? local : &empty_local;
}

/* Collective. Sum `values` over every rank of the grid, in place. */
static sgk_status sum_over_grid(const sgk_grid *grid, double *values, long count, const char *what)
{
    for (long first = 0; first < count; first += REDUCE_CHUNK) {
        int chunk = (int)(count - first < REDUCE_CHUNK ? count - first : REDUCE_CHUNK);
        int rc =
            MPI_Allreduce(MPI_IN_PLACE, values + first, chunk, MPI_DOUBLE, MPI_SUM, grid->comm);

        if (rc != MPI_SUCCESS) return mpi_check(rc, what);
    }
    return SGK_OK;
}

/* Check the inputs every rank shares, so all ranks take the same branch. */
static sgk_status check_inputs(const sgk_config *config, const sgk_dataset *data,
                               const sgk_dmatrix *sgk)
{
    double tolerance = config->spectrum.tolerance;

    if (data->n_train < 1 || data->n_outputs < 1 || data->y == NULL || data->split == NULL)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_analysis_run: the data set needs training points, outputs, "
                         "targets and a split array (n_train = %ld, n_outputs = %d)",
                         data->n_train, data->n_outputs);
    if (sgk->n != data->n_samples || data->n_train > data->n_samples)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_analysis_run: the kernel is %ld x %ld but the data set has %ld "
                         "evaluation points (%ld training points first)",
                         sgk->n, sgk->n, data->n_samples, data->n_train);
    if (config->spectrum.eigenpairs < 0 || config->spectrum.eigenpairs > data->n_train)
        return sgk_error(SGK_ERR_USAGE,
                         "[spectrum] eigenpairs = %ld is out of range for %ld training points: "
                         "use all, or a count from 1 to %ld",
                         config->spectrum.eigenpairs, data->n_train, data->n_train);
    if (!(tolerance >= 0.0 && tolerance < 1.0))
        return sgk_error(SGK_ERR_USAGE,
                         "[spectrum] tolerance = %g is invalid: it must be in [0, 1)", tolerance);
    return SGK_OK;
}

/* Collective. Allocate the arrays every rank holds. */
static sgk_status allocate_arrays(const sgk_grid *grid, sgk_analysis *analysis)
{
    size_t k = (size_t)analysis->n_eig;
    size_t outputs = (size_t)analysis->n_outputs;
    sgk_status status = SGK_OK;

    analysis->eigenvalues = malloc(k * sizeof(double));
    analysis->target_coeff = malloc(k * outputs * sizeof(double));
    analysis->captured_energy = malloc(k * outputs * sizeof(double));
    analysis->null_space_energy = malloc(outputs * sizeof(double));
    analysis->remaining_energy = malloc(outputs * sizeof(double));
    analysis->alignment = malloc(outputs * sizeof(double));
    analysis->alignment_centered = malloc(outputs * sizeof(double));
    analysis->memory_residual = malloc((size_t)analysis->n_samples * sizeof(double));
    if (!analysis->eigenvalues || !analysis->target_coeff || !analysis->captured_energy ||
        !analysis->null_space_energy || !analysis->remaining_energy || !analysis->alignment ||
        !analysis->alignment_centered || !analysis->memory_residual)
        status = sgk_error(SGK_ERR_IO,
                           "out of memory for the spectrum analysis of %ld "
                           "eigenpairs and %ld evaluation points on rank %d",
                           analysis->n_eig, analysis->n_samples, grid->rank);
    return sgk_grid_agree(grid, status, "allocating the spectrum analysis");
}

/* Number of the global indices [0, g) that process p of np owns, blocks of nb, first
 * block on process 0. Local indices follow global order, so on a process these are
 * the first ones. */
static long owned_below(long g, int nb, int p, int np)
{
    long full_blocks = g / nb;
    long count = (full_blocks / np) * nb;
    long extra_blocks = full_blocks % np;

    if (p < extra_blocks)
        count += nb;
    else if (p == extra_blocks)
        count += g % nb;
    return count;
}

/* FNV-1a hash of the strict upper triangle of this rank's part of `block`: in local
 * column j, the rows above the diagonal are the first owned_below(column) ones. */
static uint64_t hash_upper_triangle(const sgk_dmatrix *block)
{
    const sgk_grid *grid = block->grid;
    uint64_t hash = SGK_HASH_START;

    for (int j = 0; j < block->local_cols; j++) {
        long above = owned_below(sgk_dmatrix_global_col(block, j), block->nb, grid->my_prow,
                                 grid->n_prow);

        if (above > block->local_rows) above = block->local_rows;
        hash = sgk_hash_bytes(hash, block->local + (size_t)j * block->lld,
                              (size_t)above * sizeof(double));
    }
    return hash;
}

/* Copy the lower triangle with the diagonal of this rank's part of `block` to or from
 * `saved`, column by column, or only count its entries when `saved` is NULL. When
 * saving with `scale` != 1, also multiply those entries of `block` by it. Returns the
 * number of entries. */
static size_t move_lower_triangle(sgk_dmatrix *block, double *saved, int restore, double scale)
{
    const sgk_grid *grid = block->grid;
    size_t offset = 0;

    for (int j = 0; j < block->local_cols; j++) {
        long above = owned_below(sgk_dmatrix_global_col(block, j), block->nb, grid->my_prow,
                                 grid->n_prow);
        double *column = block->local + (size_t)j * block->lld;
        long count;

        if (above > block->local_rows) above = block->local_rows;
        count = block->local_rows - above;
        if (saved != NULL && restore)
            memcpy(column + above, saved + offset, (size_t)count * sizeof(double));
        else if (saved != NULL)
            memcpy(saved + offset, column + above, (size_t)count * sizeof(double));
        for (long i = above; !restore && scale != 1.0 && i < block->local_rows; i++)
            column[i] *= scale;
        offset += (size_t)count;
    }
    return offset;
}

/* Collective. All eigenpairs of K_n, solved in the kernel's own leading n x n block
 * instead of a copy, which saves half a local part of K_n. ScaLAPACK documents that
 * PDSYEVD (UPLO = 'L') reads and destroys the lower triangle with the diagonal, and
 * tests/test_spectrum.c checks that it writes nothing else. So that triangle is saved,
 * scaled by 1 / n in place and restored afterwards, and the solver reads bitwise the
 * entries of a scaled copy. The strict upper triangle is hashed before and after, so
 * that a solver that wrote there fails the run instead of leaving a corrupt kernel. */
static sgk_status solve_in_place(sgk_dmatrix *sgk, sgk_analysis *analysis)
{
    const sgk_grid *grid = sgk->grid;
    int n = (int)analysis->n_train, nb = sgk->nb, zero = 0, info = 0;
    sgk_dmatrix block = *sgk;
    double *saved = NULL;
    uint64_t upper_before = 0, upper_after = 0;
    int changed = 0, changed_anywhere = 0;
    sgk_status status = SGK_OK;

    /* 1. The view: K's local array and leading dimension, the sizes of an n x n matrix.
     *    Both start at process (0, 0) with block size nb, so entry (i, j) of the block
     *    is at the same local place as entry (i, j) of K. */
    block.n = n;
    block.local_rows = numroc_(&n, &nb, &grid->my_prow, &zero, &grid->n_prow);
    block.local_cols = numroc_(&n, &nb, &grid->my_pcol, &zero, &grid->n_pcol);
    descinit_(block.desc, &n, &n, &nb, &nb, &zero, &zero, &grid->context, &block.lld, &info);
    if (info != 0)
        status = sgk_error(SGK_ERR_USAGE, "DESCINIT rejected argument %d for the n = %d "
                           "training block of the kernel", -info, n);
    if (status == SGK_OK && block.local_rows > 0 && block.local_cols > 0) {
        size_t count = move_lower_triangle(&block, NULL, 0, 1.0);

        saved = malloc((count > 0 ? count : 1) * sizeof *saved);
        if (saved == NULL)
            status = sgk_error(SGK_ERR_IO, "out of memory: saving the lower triangle of K_n "
                               "needs %zu bytes on rank %d", count * sizeof *saved, grid->rank);
    }
    status = sgk_grid_agree(grid, status, "preparing the eigen-solve of K_n");
    if (status != SGK_OK) return status;

    /* 2. Save and scale the lower triangle, solve, restore. */
    if (saved != NULL) {
        upper_before = hash_upper_triangle(&block);
        move_lower_triangle(&block, saved, 0, 1.0 / (double)n);
    }
    status = sgk_spectrum_eigh(&block, analysis->eigenvalues, &analysis->vectors);
    if (saved != NULL) {
        move_lower_triangle(&block, saved, 1, 1.0);
        upper_after = hash_upper_triangle(&block);
        changed = upper_after != upper_before;
    }
    free(saved);

    /* 3. Every rank learns whether any part of the upper triangle changed. */
    if (MPI_Allreduce(&changed, &changed_anywhere, 1, MPI_INT, MPI_MAX, grid->comm)
        != MPI_SUCCESS && status == SGK_OK)
        status = sgk_error(SGK_ERR_IO, "MPI_Allreduce of the kernel check failed");
    if (status != SGK_OK && changed_anywhere)
        sgk_log(SGK_LOG_ERROR, "besides the failure below, PDSYEVD changed the strict upper "
                "triangle of the kernel's training block, so the kernel is invalid");
    if (status == SGK_OK && changed_anywhere)
        status = sgk_error(SGK_ERR_NUMERIC,
                           "PDSYEVD changed the strict upper triangle of the kernel's "
                           "training block, which it must leave unchanged, so the kernel is "
                           "invalid. Set [spectrum] eigenpairs below %d to solve a copy "
                           "with PDSYEVR instead", n);
    return status;
}

/* Collective. Eigenpairs of K_n into analysis->eigenvalues and analysis->vectors. All
 * of them are solved in place in the kernel (solve_in_place); the largest k < n are
 * solved by PDSYEVR in a copy of K_n, because it negates the matrix. */
static sgk_status solve_spectrum(sgk_dmatrix *sgk, sgk_analysis *analysis)
{
    long n = analysis->n_train;
    sgk_dmatrix block;
    sgk_status status;

    SGK_CHECK(sgk_dmatrix_create(sgk->grid, n, sgk->nb, &analysis->vectors));
    if (analysis->n_eig == n) return solve_in_place(sgk, analysis);
    status = sgk_dmatrix_leading_block(sgk, n, 1.0 / (double)n, &block);
    if (status != SGK_OK) return status;
    status = sgk_spectrum_eigh_largest(&block, analysis->n_eig, analysis->eigenvalues,
                                       &analysis->vectors);
    sgk_dmatrix_free(&block);
    return status;
}

/* Compute what the eigenvalues alone give, and warn about negative eigenvalues. */
static void summarize_eigenvalues(sgk_analysis *analysis)
{
    const double *lambda = analysis->eigenvalues;
    double cut = analysis->tolerance * lambda[0];
    double sum = 0.0, sum_squares = 0.0;

    analysis->n_negative = 0;
    analysis->n_retained = 0;
    analysis->most_negative = lambda[analysis->n_eig - 1];
    for (long j = 0; j < analysis->n_eig; j++) {
        sum += lambda[j];
        sum_squares += lambda[j] * lambda[j];
        if (lambda[j] < -cut) analysis->n_negative++;
        /* Descending order, so the retained eigenvalues are a leading run. */
        if (lambda[j] > 0.0 && lambda[j] >= cut && analysis->n_retained == j)
            analysis->n_retained++;
    }
    analysis->effective_rank = sum_squares > 0.0 ? sum * sum / sum_squares : NAN;

    if (analysis->n_negative > 0)
        sgk_log(SGK_LOG_WARN,
                "%ld eigenvalues of K_n are below -tolerance * lambda_1 = %.3g, the most "
                "negative %.6g: the kernel is not positive semidefinite to this tolerance "
                "(rounding in its assembly, or a broken kernel); they are stored unchanged",
                analysis->n_negative, -cut, analysis->most_negative);
    if (analysis->n_eig < analysis->n_train)
        sgk_log(SGK_LOG_INFO,
                "only the largest %ld of %ld eigenpairs were computed: effective rank, "
                "null-space energy and memory residual use those alone, and negative "
                "eigenvalues below them are not seen",
                analysis->n_eig, analysis->n_train);
}

/* Collective. Allocate W (N x k) and compute W = K[all, train] V[:, 0..k-1]. */
static sgk_status multiply_kernel_vectors(const sgk_dmatrix *sgk, const sgk_analysis *analysis,
                                          product_panel *w)
{
    const sgk_grid *grid = sgk->grid;
    int n_samples = (int)sgk->n, n = (int)analysis->n_train, k = (int)analysis->n_eig;
    int nb = sgk->nb, zero = 0, one = 1, info = 0;
    double alpha = 1.0, beta = 0.0;
    size_t count = 0;
    sgk_status status = SGK_OK;

    memset(w, 0, sizeof *w);
    w->local_rows = numroc_(&n_samples, &nb, &grid->my_prow, &zero, &grid->n_prow);
    w->local_cols = numroc_(&k, &nb, &grid->my_pcol, &zero, &grid->n_pcol);
    w->lld = w->local_rows > 1 ? w->local_rows : 1;
    descinit_(w->desc, &n_samples, &k, &nb, &nb, &zero, &zero, &grid->context, &w->lld, &info);
    if (info != 0)
        status = sgk_error(SGK_ERR_USAGE,
                           "DESCINIT rejected argument %d for the %d x %d "
                           "product K V",
                           -info, n_samples, k);
    count = (size_t)w->local_rows * (size_t)w->local_cols;
    if (status == SGK_OK && count > 0) {
        w->local = malloc(count * sizeof *w->local);
        if (w->local == NULL)
            status = sgk_error(SGK_ERR_IO,
                               "out of memory: the product K V needs %zu bytes on "
                               "rank %d",
                               count * sizeof(double), grid->rank);
    }
    SGK_CHECK(sgk_grid_agree(grid, status, "allocating the product K V"));

    /* PDGEMM has no INFO argument and reports a bad argument only on stderr. Every
     * argument here comes from descriptors that DESCINIT accepted. */
    pdgemm_("N", "N", &n_samples, &k, &n, &alpha, local_or_empty(sgk->local), &one, &one, sgk->desc,
            local_or_empty(analysis->vectors.local), &one, &one, analysis->vectors.desc, &beta,
            w->local != NULL ? w->local : &empty_local, &one, &one, w->desc, 1, 1);
    return SGK_OK;
}

/* Global row or column of local index `local` in a block-cyclic dimension. */
static long global_index(int local, int nb, int my_process, int n_processes)
{
    return ((long)(local / nb) * n_processes + my_process) * nb + local % nb;
}

/* Collective. Self-check of the solver: residual max_j |K_n v_j - lambda_j v_j|_2
 * relative to max_j |lambda_j|, with K_n v_j = W[train, j] / n. */
static sgk_status check_eigenpairs(const sgk_grid *grid, const product_panel *w,
                                   sgk_analysis *analysis)
{
    const sgk_dmatrix *v = &analysis->vectors;
    long n = analysis->n_train, k = analysis->n_eig;
    double *squares = calloc((size_t)k, sizeof *squares);
    double worst = 0.0, scale = 0.0;
    sgk_status status = SGK_OK;

    if (squares == NULL)
        status = sgk_error(SGK_ERR_IO, "out of memory for %ld eigenpair residuals", k);
    SGK_CHECK(sgk_grid_agree(grid, status, "checking the eigenpairs"));
    for (int j = 0; j < w->local_cols; j++) {
        long column = global_index(j, v->nb, grid->my_pcol, grid->n_pcol);

        for (int i = 0; i < v->local_rows; i++) {
            double r = w->local[i + (size_t)j * w->lld] / (double)n -
                       analysis->eigenvalues[column] * v->local[i + (size_t)j * v->lld];

            squares[column] += r * r;
        }
    }
    status = sum_over_grid(grid, squares, k, "MPI_Allreduce of the eigenpair residuals");
    for (long j = 0; status == SGK_OK && j < k; j++) {
        worst = fmax(worst, sqrt(squares[j]));
        scale = fmax(scale, fabs(analysis->eigenvalues[j]));
    }
    free(squares);
    if (status != SGK_OK) return status;

    /* A zero kernel has zero eigenvalues, so its residual stays absolute. */
    analysis->eigen_residual = scale > 0.0 ? worst / scale : worst;
    sgk_log(SGK_LOG_INFO,
            "eigen-solver check: max_j |K_n v_j - lambda_j v_j| / max |lambda| = "
            "%.3g (limit %.0e)",
            analysis->eigen_residual, SGK_EIGEN_RESIDUAL_LIMIT);
    if (!(analysis->eigen_residual <= SGK_EIGEN_RESIDUAL_LIMIT))
        return sgk_error(SGK_ERR_NUMERIC,
                         "the eigenpairs of K_n fail the solver check: residual %.3g exceeds "
                         "%.0e, so the eigenvectors are wrong; try another [kernel] block_size "
                         "or [spectrum] eigenpairs = all",
                         analysis->eigen_residual, SGK_EIGEN_RESIDUAL_LIMIT);
    return SGK_OK;
}

/* Collective. s(x) = 1 - sum_{j < r} W[x, j]^2 / lambda_j / (n K(x, x)) for every
 * evaluation point, with r = n_retained. NaN where K(x, x) <= 0. */
static sgk_status compute_memory_residual(const sgk_dmatrix *sgk, const product_panel *w,
                                          sgk_analysis *analysis)
{
    const sgk_grid *grid = sgk->grid;
    long n_samples = analysis->n_samples;
    double *sums = calloc(2 * (size_t)n_samples, sizeof *sums);
    double *quadratic = sums, *diagonal = sums + n_samples;
    sgk_status status = SGK_OK;

    if (sums == NULL)
        status = sgk_error(SGK_ERR_IO, "out of memory for %ld memory residuals", n_samples);
    SGK_CHECK(sgk_grid_agree(grid, status, "computing the memory residual"));

    for (int j = 0; j < w->local_cols; j++) {
        long column = global_index(j, sgk->nb, grid->my_pcol, grid->n_pcol);

        if (column >= analysis->n_retained) continue;
        for (int i = 0; i < w->local_rows; i++) {
            double z = w->local[i + (size_t)j * w->lld];

            quadratic[sgk_dmatrix_global_row(sgk, i)] += z * z / analysis->eigenvalues[column];
        }
    }
    for (int j = 0; j < sgk->local_cols; j++) {
        long column = sgk_dmatrix_global_col(sgk, j);

        for (int i = 0; i < sgk->local_rows; i++)
            if (sgk_dmatrix_global_row(sgk, i) == column)
                diagonal[column] = sgk->local[i + (size_t)j * sgk->lld];
    }
    status = sum_over_grid(grid, sums, 2 * n_samples, "MPI_Allreduce of the memory residual");
    for (long x = 0; status == SGK_OK && x < n_samples; x++)
        analysis->memory_residual[x] =
            diagonal[x] > 0.0 ? 1.0 - quadratic[x] / ((double)analysis->n_train * diagonal[x])
                              : NAN;
    free(sums);
    return status;
}

/* Collective. c_jo = v_j . y_o / |y_o|, cumulative captured energy, null-space
 * energy below tau * lambda_1 and the energy outside the computed eigenvectors. */
static sgk_status project_targets(const sgk_dataset *data, sgk_analysis *analysis)
{
    const sgk_dmatrix *v = &analysis->vectors;
    const sgk_grid *grid = v->grid;
    long k = analysis->n_eig;
    int outputs = analysis->n_outputs;
    double cut = analysis->tolerance * analysis->eigenvalues[0];
    double *c = analysis->target_coeff;

    memset(c, 0, (size_t)k * (size_t)outputs * sizeof *c);
    for (int j = 0; j < v->local_cols; j++) {
        long column = sgk_dmatrix_global_col(v, j);

        if (column >= k) continue;
        for (int i = 0; i < v->local_rows; i++) {
            const double *y = data->y + sgk_dmatrix_global_row(v, i) * outputs;
            double value = v->local[i + (size_t)j * v->lld];

            for (int o = 0; o < outputs; o++) c[column * outputs + o] += value * y[o];
        }
    }
    SGK_CHECK(sum_over_grid(grid, c, k * outputs, "MPI_Allreduce of the target coefficients"));

    for (int o = 0; o < outputs; o++) {
        double norm_squared = 0.0, captured = 0.0, null_space = 0.0;

        for (long i = 0; i < analysis->n_train; i++)
            norm_squared += data->y[i * outputs + o] * data->y[i * outputs + o];
        for (long j = 0; j < k; j++) {
            double coeff = norm_squared > 0.0 ? c[j * outputs + o] / sqrt(norm_squared) : NAN;

            c[j * outputs + o] = coeff;
            captured += coeff * coeff;
            analysis->captured_energy[j * outputs + o] = captured;
            if (analysis->eigenvalues[j] < cut) null_space += coeff * coeff;
        }
        analysis->null_space_energy[o] = null_space;
        analysis->remaining_energy[o] = 1.0 - captured;
    }
    return SGK_OK;
}

/* Collective. Kernel-target alignment on the training block, plain and centered.
 * Pass 1 sums |K|_F^2, y^T K y, yc^T K yc and the row and column sums; pass 2 needs
 * those sums for |H K H|_F^2 = sum_ij (K_ij - r_i / n - c_j / n + t / n^2)^2, computed
 * directly to avoid the cancellation of the expanded form. yc^T (H K H) yc equals
 * yc^T K yc because H yc = yc. */
static sgk_status compute_alignment(const sgk_dataset *data, const sgk_dmatrix *sgk,
                                    sgk_analysis *analysis)
{
    const sgk_grid *grid = sgk->grid;
    long n = analysis->n_train;
    int outputs = analysis->n_outputs;
    size_t length = 1 + 2 * (size_t)outputs + 2 * (size_t)n;
    double *sums = calloc(length, sizeof *sums);
    double *mean = calloc((size_t)outputs, sizeof *mean);
    double *frobenius = sums, *plain = sums + 1, *centered = plain + outputs;
    double *row_sum = centered + outputs, *col_sum = row_sum + n;
    double frobenius_centered = 0.0, total = 0.0;
    sgk_status status = SGK_OK;

    if (sums == NULL || mean == NULL)
        status = sgk_error(SGK_ERR_IO, "out of memory for the kernel-target alignment");
    status = sgk_grid_agree(grid, status, "computing the kernel-target alignment");
    if (status != SGK_OK) {
        free(sums);
        free(mean);
        return status;
    }
    for (long i = 0; i < n; i++)
        for (int o = 0; o < outputs; o++) mean[o] += data->y[i * outputs + o] / (double)n;

    /* 1. Sums over this rank's entries of the training block. */
    for (int j = 0; j < sgk->local_cols; j++) {
        long col = sgk_dmatrix_global_col(sgk, j);

        if (col >= n) continue;
        for (int i = 0; i < sgk->local_rows; i++) {
            long row = sgk_dmatrix_global_row(sgk, i);
            double value = sgk->local[i + (size_t)j * sgk->lld];

            if (row >= n) continue;
            *frobenius += value * value;
            row_sum[row] += value;
            col_sum[col] += value;
            for (int o = 0; o < outputs; o++) {
                double y_row = data->y[row * outputs + o], y_col = data->y[col * outputs + o];

                plain[o] += value * y_row * y_col;
                centered[o] += value * (y_row - mean[o]) * (y_col - mean[o]);
            }
        }
    }
    status = sum_over_grid(grid, sums, (long)length, "MPI_Allreduce of the alignment sums");

    /* 2. The centered Frobenius norm. */
    for (long i = 0; status == SGK_OK && i < n; i++) total += row_sum[i];
    for (int j = 0; status == SGK_OK && j < sgk->local_cols; j++) {
        long col = sgk_dmatrix_global_col(sgk, j);

        if (col >= n) continue;
        for (int i = 0; i < sgk->local_rows; i++) {
            long row = sgk_dmatrix_global_row(sgk, i);
            double entry;

            if (row >= n) continue;
            entry = sgk->local[i + (size_t)j * sgk->lld] - row_sum[row] / (double)n -
                    col_sum[col] / (double)n + total / ((double)n * (double)n);
            frobenius_centered += entry * entry;
        }
    }
    if (status == SGK_OK)
        status = sum_over_grid(grid, &frobenius_centered, 1,
                               "MPI_Allreduce of the centered Frobenius norm");

    /* 3. Normalize. A zero kernel or zero targets leave the alignment undefined. */
    for (int o = 0; status == SGK_OK && o < outputs; o++) {
        double y_squared = 0.0, yc_squared = 0.0;

        for (long i = 0; i < n; i++) {
            double y = data->y[i * outputs + o];

            y_squared += y * y;
            yc_squared += (y - mean[o]) * (y - mean[o]);
        }
        analysis->alignment[o] =
            *frobenius > 0.0 && y_squared > 0.0 ? plain[o] / (sqrt(*frobenius) * y_squared) : NAN;
        analysis->alignment_centered[o] =
            frobenius_centered > 0.0 && yc_squared > 0.0
                ? centered[o] / (sqrt(frobenius_centered) * yc_squared)
                : NAN;
    }
    free(sums);
    free(mean);
    return status;
}

/* Rank 0. Generalization errors and their correlation with the memory residual over
 * the test points. */
static sgk_status measure_generalization(const sgk_dataset *data, const double *f_mean_final,
                                         const double *f_replica_final, long n_replicas,
                                         sgk_analysis *analysis)
{
    const sgk_generalization *g = &analysis->generalization;
    double *residual = NULL, *error = NULL;
    long count = 0;

    SGK_CHECK(sgk_generalization_compute(data, f_mean_final, f_replica_final, n_replicas,
                                         &analysis->generalization));
    residual = malloc(((size_t)g->n_test + 1) * sizeof *residual);
    error = malloc(((size_t)g->n_test + 1) * sizeof *error);
    if (!residual || !error) {
        free(residual);
        free(error);
        return sgk_error(SGK_ERR_IO, "out of memory for %ld test points", g->n_test);
    }
    for (long x = 0; x < data->n_samples; x++) {
        if (data->split[x] != SGK_SPLIT_TEST) continue;
        residual[count] = analysis->memory_residual[x];
        error[count] = g->point_error[x];
        count++;
    }
    analysis->residual_error_correlation = sgk_pearson_correlation(residual, error, count);
    free(residual);
    free(error);
    return SGK_OK;
}

/* NaN in every target quantity, for an evaluation set without targets. */
static void fill_without_targets(sgk_analysis *analysis)
{
    size_t k = (size_t)analysis->n_eig, outputs = (size_t)analysis->n_outputs;

    for (size_t v = 0; v < k * outputs; v++) {
        analysis->target_coeff[v] = NAN;
        analysis->captured_energy[v] = NAN;
    }
    for (size_t o = 0; o < outputs; o++) {
        analysis->null_space_energy[o] = NAN;
        analysis->remaining_energy[o] = NAN;
        analysis->alignment[o] = NAN;
        analysis->alignment_centered[o] = NAN;
    }
}

/* Rank 0 prints: the spectrum, projections and memory residuals. */
static void log_analysis(const sgk_dataset *data, const sgk_analysis *analysis)
{
    double sum[3] = { 0.0, 0.0, 0.0 };
    long count[3] = { 0, 0, 0 };
    static const char *const split_name[3] = { "training", "test", "out-of-distribution" };

    sgk_log(SGK_LOG_INFO,
            "spectrum of K_n: %ld of %ld eigenpairs, lambda_1 = %.6g, lambda_%ld = %.6g, "
            "effective rank %.4g, %ld eigenvalues >= tolerance * lambda_1 = %.3g",
            analysis->n_eig, analysis->n_train, analysis->eigenvalues[0], analysis->n_eig,
            analysis->eigenvalues[analysis->n_eig - 1], analysis->effective_rank,
            analysis->n_retained, analysis->tolerance * analysis->eigenvalues[0]);
    for (int o = 0; !analysis->without_targets && o < analysis->n_outputs; o++)
        sgk_log(SGK_LOG_INFO,
                "output %d: null-space energy %.4g, energy outside the computed eigenvectors "
                "%.3g, alignment %.4g, centered alignment %.4g",
                o, analysis->null_space_energy[o], analysis->remaining_energy[o],
                analysis->alignment[o], analysis->alignment_centered[o]);
    for (long x = 0; x < data->n_samples; x++) {
        int split = data->split[x];

        if (split < 0 || split > 2 || isnan(analysis->memory_residual[x])) continue;
        sum[split] += analysis->memory_residual[x];
        count[split]++;
    }
    for (int split = 0; split < 3; split++)
        if (count[split] > 0)
            sgk_log(SGK_LOG_INFO, "memory residual: mean %.4g over %ld %s points",
                    sum[split] / (double)count[split], count[split], split_name[split]);
}

/* Rank 0 prints: the generalization numbers. */
static void log_generalization(const sgk_analysis *analysis)
{
    const sgk_generalization *g = &analysis->generalization;
    double low = INFINITY, high = -INFINITY, sum = 0.0;

    if (g->n_test == 0) {
        sgk_log(SGK_LOG_INFO, "no test points: the test error is undefined (NaN)");
        return;
    }
    sgk_log(SGK_LOG_INFO,
            "test error (%s) of the ensemble mean: %.6g over %ld points; "
            "correlation with the memory residual: %.4g",
            sgk_error_kind_name(g->kind), g->test_error_mean, g->n_test,
            analysis->residual_error_correlation);
    for (long r = 0; g->test_error_replica != NULL && r < g->n_replicas; r++) {
        low = fmin(low, g->test_error_replica[r]);
        high = fmax(high, g->test_error_replica[r]);
        sum += g->test_error_replica[r];
    }
    if (g->test_error_replica != NULL && g->n_replicas > 0)
        sgk_log(SGK_LOG_INFO, "test error of single replicas: mean %.6g, min %.6g, max %.6g",
                sum / (double)g->n_replicas, low, high);
}

sgk_status sgk_analysis_run(const sgk_config *config, const sgk_dataset *data,
                            sgk_dmatrix *sgk, const double *f_mean_final,
                            const double *f_replica_final, long n_replicas, sgk_analysis *analysis)
{
    const sgk_grid *grid = sgk->grid;
    product_panel w;
    int with_generalization = 0;
    sgk_status status = SGK_OK;

    /* 1. Sizes; every rank checks the same values. */
    memset(analysis, 0, sizeof *analysis);
    memset(&w, 0, sizeof w);
    analysis->residual_error_correlation = NAN;
    SGK_CHECK(check_inputs(config, data, sgk));
    analysis->n_train = data->n_train;
    analysis->n_samples = data->n_samples;
    analysis->n_outputs = data->n_outputs;
    analysis->n_eig =
        config->spectrum.eigenpairs == 0 ? data->n_train : config->spectrum.eigenpairs;
    analysis->tolerance = config->spectrum.tolerance;
    status = allocate_arrays(grid, analysis);

    /* 2. Eigenpairs of K_n, and what the eigenvalues alone give. */
    if (status == SGK_OK) status = solve_spectrum(sgk, analysis);
    if (status == SGK_OK) summarize_eigenvalues(analysis);

    /* 3. W = K[all, train] V: the eigen-solver check and the memory residual. */
    if (status == SGK_OK) status = multiply_kernel_vectors(sgk, analysis, &w);
    if (status == SGK_OK) status = check_eigenpairs(grid, &w, analysis);
    if (status == SGK_OK) status = compute_memory_residual(sgk, &w, analysis);
    free(w.local);

    /* 4. Target projections and alignments; a GAN's latent points have no targets. */
    analysis->without_targets = config->train.task == SGK_TASK_GAN;
    if (status == SGK_OK && !analysis->without_targets) status = project_targets(data, analysis);
    if (status == SGK_OK && !analysis->without_targets)
        status = compute_alignment(data, sgk, analysis);
    if (status == SGK_OK && analysis->without_targets) fill_without_targets(analysis);
    if (status == SGK_OK && grid->rank == 0) log_analysis(data, analysis);

    /* 5. Generalization on rank 0, which holds the network outputs. */
    if (status == SGK_OK) {
        with_generalization = grid->rank == 0 && f_mean_final != NULL
                              && !analysis->without_targets;
        status = mpi_check(MPI_Bcast(&with_generalization, 1, MPI_INT, 0, grid->comm),
                           "MPI_Bcast of the generalization flag");
    }
    if (status == SGK_OK && with_generalization) {
        sgk_status local = SGK_OK;

        if (grid->rank == 0)
            local =
                measure_generalization(data, f_mean_final, f_replica_final, n_replicas, analysis);
        if (local == SGK_OK && grid->rank == 0) log_generalization(analysis);
        status = sgk_grid_agree(grid, local, "measuring the generalization error");
        analysis->has_generalization = status == SGK_OK;
    }

    /* 6. Keep the eigenvectors only when the output stores them. */
    analysis->has_vectors = status == SGK_OK && config->spectrum.eigenvectors;
    if (!analysis->has_vectors) sgk_dmatrix_free(&analysis->vectors);
    if (status != SGK_OK) sgk_analysis_free(analysis);
    return status;
}

void sgk_analysis_free(sgk_analysis *analysis)
{
    free(analysis->eigenvalues);
    free(analysis->target_coeff);
    free(analysis->captured_energy);
    free(analysis->null_space_energy);
    free(analysis->remaining_energy);
    free(analysis->alignment);
    free(analysis->alignment_centered);
    free(analysis->memory_residual);
    sgk_dmatrix_free(&analysis->vectors);
    sgk_generalization_free(&analysis->generalization);
    memset(analysis, 0, sizeof *analysis);
}
