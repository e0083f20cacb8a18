/* Kernel-evolution metrics of the probe kernels, one checkpoint at a time. Every metric
 * costs O(P^2 O) except the eigenvalues, one DSYEVD of O(P^3) per checkpoint. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/evolution.h"

/* LAPACK routine of OpenBLAS, which ships no LAPACK prototype on Debian. Integers are
 * 32-bit (LP64 build), and the trailing size_t arguments are gfortran's hidden
 * CHARACTER lengths. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

/* DSYEVD buffers for one P x P kernel, reused across checkpoints. */
typedef struct {
    int n;
    double *matrix;      /* n x n column-major: the kernel's symmetric part, destroyed */
    double *eigenvalues; /* n, ascending as DSYEVD returns them */
    double *work;
    int *iwork;
    int lwork, liwork;
} eigen_workspace;

/* Divide with a zero denominator mapped to NaN: every zero denominator in this module
 * is a zero norm or a zero time step, where the metric is undefined. */
static double ratio(double numerator, double denominator)
{
    return denominator != 0.0 ? numerator / denominator : NAN;
}

static int all_finite(const double *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!isfinite(values[k])) return 0;
    return 1;
}

static double trace(const double *kernel, long n)
{
    double sum = 0.0;

    for (long i = 0; i < n; i++) sum += kernel[i * n + i];
    return sum;
}

/* Frobenius inner product <a, b>_F of two arrays of `count` entries. */
static double frobenius_inner(const double *a, const double *b, size_t count)
{
    double sum = 0.0;

    for (size_t k = 0; k < count; k++) sum += a[k] * b[k];
    return sum;
}

static double frobenius_distance(const double *a, const double *b, size_t count)
{
    double sum = 0.0;

    for (size_t k = 0; k < count; k++) sum += (a[k] - b[k]) * (a[k] - b[k]);
    return sqrt(sum);
}

/* Target Gram Y Y^T (n x n, row-major) of targets y (n x n_outputs, row-major), so that
 * sum_o y_o^T K y_o = <K, Y Y^T>_F. */
static void target_gram(const double *y, long n, int n_outputs, double *gram)
{
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            double sum = 0.0;
            for (int o = 0; o < n_outputs; o++) sum += y[i * n_outputs + o] * y[j * n_outputs + o];
            gram[i * n + j] = sum;
        }
}

/* |H K H|_F with H = I - 11^T / n: entry (i, j) of H K H is K_ij minus the mean of
 * row i, minus the mean of column j, plus the mean of all entries. `means` has room
 * for 2 n values. */
static double centered_frobenius(const double *kernel, long n, double *means)
{
    double *row_mean = means, *column_mean = means + n;
    double grand_mean = 0.0, sum = 0.0;

    memset(means, 0, sizeof(double) * 2 * (size_t)n);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            row_mean[i] += kernel[i * n + j];
            column_mean[j] += kernel[i * n + j];
        }
    for (long i = 0; i < n; i++) {
        row_mean[i] /= n;
        column_mean[i] /= n;
        grand_mean += row_mean[i];
    }
    grand_mean /= n;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            double entry = kernel[i * n + j] - row_mean[i] - column_mean[j] + grand_mean;
            sum += entry * entry;
        }
    return sqrt(sum);
}

/* Copy y (n x n_outputs) with the mean over points of each output subtracted: H y. */
static void center_targets(const double *y, long n, int n_outputs, double *centered)
{
    for (int o = 0; o < n_outputs; o++) {
        double mean = 0.0;
        for (long i = 0; i < n; i++) mean += y[i * n_outputs + o];
        mean /= n;
        for (long i = 0; i < n; i++) centered[i * n_outputs + o] = y[i * n_outputs + o] - mean;
    }
}

static sgk_status check_arguments(int n_checkpoints, long n_probe, int n_outputs,
                                  const double *probe_mean, const double *y_probe,
                                  const double *checkpoint_time, int n_top,
                                  const sgk_evolution *evolution)
{
    if (evolution == NULL)
        return sgk_error(SGK_ERR_USAGE, "sgk_evolution_compute: the output struct is NULL");
    if (n_checkpoints < 1 || n_outputs < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_evolution_compute: n_checkpoints = %d and n_outputs = %d "
                         "must both be at least 1",
                         n_checkpoints, n_outputs);
    /* DSYEVD takes n as a 32-bit int. The bound on the product keeps the size in bytes
     * of all kernels within size_t. */
    if (n_probe < 1 || n_probe > INT_MAX ||
        (size_t)n_probe * (size_t)n_probe > SIZE_MAX / sizeof(double) / (size_t)n_checkpoints)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_evolution_compute: n_probe = %ld with %d checkpoints is "
                         "invalid; accepted are 1 to %d probe points whose kernels fit in "
                         "memory",
                         n_probe, n_checkpoints, INT_MAX);
    if (n_top < 0 || n_top > n_probe)
        return sgk_error(SGK_ERR_USAGE,
                         "sgk_evolution_compute: n_top = %d eigenvalues is invalid; "
                         "accepted are 0 to n_probe = %ld",
                         n_top, n_probe);
    if (probe_mean == NULL || y_probe == NULL || checkpoint_time == NULL)
        return sgk_error(SGK_ERR_USAGE, "sgk_evolution_compute: the %s array is NULL",
                         probe_mean == NULL ? "probe_mean"
                         : y_probe == NULL  ? "y_probe"
                                            : "checkpoint_time");
    for (int c = 0; c < n_checkpoints; c++) {
        if (!isfinite(checkpoint_time[c]))
            return sgk_error(SGK_ERR_USAGE,
                             "sgk_evolution_compute: checkpoint_time[%d] = %g is not finite", c,
                             checkpoint_time[c]);
        if (c > 0 && checkpoint_time[c] < checkpoint_time[c - 1])
            return sgk_error(SGK_ERR_USAGE,
                             "sgk_evolution_compute: checkpoint_time[%d] = %g is below "
                             "checkpoint_time[%d] = %g; diffusion times must not decrease",
                             c, checkpoint_time[c], c - 1, checkpoint_time[c - 1]);
    }
    return SGK_OK;
}

static sgk_status allocate_metrics(int n_checkpoints, int n_top, sgk_evolution *evolution)
{
    double **metrics[] = { &evolution->trace,          &evolution->frobenius,
                           &evolution->alignment,      &evolution->alignment_centered,
                           &evolution->distance,       &evolution->velocity,
                           &evolution->effective_rank, &evolution->spread };
    size_t count = sizeof metrics / sizeof metrics[0];

    evolution->n_checkpoints = n_checkpoints;
    evolution->n_top = n_top;
    for (size_t m = 0; m < count; m++) {
        *metrics[m] = malloc(sizeof(double) * (size_t)n_checkpoints);
        if (*metrics[m] == NULL)
            return sgk_error(SGK_ERR_IO,
                             "out of memory: kernel-evolution metrics for %d checkpoints",
                             n_checkpoints);
    }
    if (n_top > 0) {
        evolution->top_eigenvalues = malloc(sizeof(double) * (size_t)n_checkpoints * n_top);
        if (evolution->top_eigenvalues == NULL)
            return sgk_error(SGK_ERR_IO, "out of memory: %d x %d top eigenvalues", n_checkpoints,
                             n_top);
    }
    return SGK_OK;
}

static void eigen_workspace_free(eigen_workspace *space)
{
    free(space->matrix);
    free(space->eigenvalues);
    free(space->work);
    free(space->iwork);
    memset(space, 0, sizeof *space);
}

/* Allocate the buffers and ask DSYEVD (LWORK = LIWORK = -1) for its workspace sizes
 * with JOBZ = 'N', eigenvalues only. */
static sgk_status eigen_workspace_create(int n, eigen_workspace *space)
{
    double work_query = 0.0;
    int iwork_query = 0, query = -1, info = 0;

    memset(space, 0, sizeof *space);
    space->n = n;
    space->matrix = malloc(sizeof(double) * (size_t)n * (size_t)n);
    space->eigenvalues = malloc(sizeof(double) * (size_t)n);
    if (space->matrix == NULL || space->eigenvalues == NULL)
        return sgk_error(SGK_ERR_IO, "out of memory: a %d x %d probe-kernel copy for DSYEVD", n, n);
    dsyevd_("N", "L", &n, space->matrix, &n, space->eigenvalues, &work_query, &query, &iwork_query,
            &query, &info, 1, 1);
    if (info != 0)
        return sgk_error(SGK_ERR_NUMERIC,
                         "DSYEVD workspace query for n = %d rejected argument %d "
                         "(INFO = %d)",
                         n, -info, info);
    space->lwork = (int)work_query;
    space->liwork = iwork_query;
    space->work = malloc(sizeof(double) * (size_t)space->lwork);
    space->iwork = malloc(sizeof(int) * (size_t)space->liwork);
    if (space->work == NULL || space->iwork == NULL)
        return sgk_error(SGK_ERR_IO, "out of memory: DSYEVD workspace of %d doubles and %d ints",
                         space->lwork, space->liwork);
    return SGK_OK;
}

/* Compute the eigenvalues, ascending, of the symmetric part (K + K^T) / 2 of one kernel
 * (n x n, row-major). Averaging the triangles removes the rounding asymmetry of an
 * ensemble mean, so the result does not depend on which triangle DSYEVD reads. */
static sgk_status eigen_solve(eigen_workspace *space, const double *kernel, int checkpoint)
{
    int n = space->n, info = 0;

    /* Column-major lower triangle: entry (i, j), i >= j, at i + j n. */
    for (long j = 0; j < n; j++)
        for (long i = j; i < n; i++)
            space->matrix[i + j * n] = 0.5 * (kernel[i * n + j] + kernel[j * n + i]);
    dsyevd_("N", "L", &n, space->matrix, &n, space->eigenvalues, space->work, &space->lwork,
            space->iwork, &space->liwork, &info, 1, 1);
    if (info < 0)
        return sgk_error(SGK_ERR_NUMERIC,
                         "DSYEVD rejected argument %d for the probe kernel of checkpoint %d "
                         "(INFO = %d)",
                         -info, checkpoint, info);
    if (info > 0)
        return sgk_error(SGK_ERR_NUMERIC,
                         "DSYEVD failed to converge on the %d x %d probe kernel of checkpoint "
                         "%d: %d off-diagonal elements of its tridiagonal form did not reach "
                         "zero (INFO = %d)",
                         n, n, checkpoint, info, info);
    return SGK_OK;
}

/* Set every metric of checkpoint c to NaN, for a kernel with a NaN or Inf entry. */
static void mark_undefined(sgk_evolution *evolution, int c)
{
    evolution->trace[c] = NAN;
    evolution->frobenius[c] = NAN;
    evolution->alignment[c] = NAN;
    evolution->alignment_centered[c] = NAN;
    evolution->distance[c] = NAN;
    evolution->velocity[c] = NAN;
    evolution->effective_rank[c] = NAN;
    evolution->spread[c] = NAN;
    for (int k = 0; k < evolution->n_top; k++)
        evolution->top_eigenvalues[(size_t)c * evolution->n_top + k] = NAN;
}

/* Compute the eigenvalue metrics of checkpoint c: the n_top largest eigenvalues and the
 * effective rank. */
static sgk_status spectral_metrics(eigen_workspace *space, const double *kernel, int c,
                                   sgk_evolution *evolution)
{
    int n = space->n;
    double sum = 0.0, sum_squares = 0.0;

    SGK_CHECK(eigen_solve(space, kernel, c));
    for (int k = 0; k < n; k++) {
        sum += space->eigenvalues[k];
        sum_squares += space->eigenvalues[k] * space->eigenvalues[k];
    }
    evolution->effective_rank[c] = ratio(sum * sum, sum_squares);
    for (int k = 0; k < evolution->n_top; k++)
        evolution->top_eigenvalues[(size_t)c * evolution->n_top + k] =
            space->eigenvalues[n - 1 - k];
    return SGK_OK;
}

/* Compute sqrt(sum_ij var_ij) / |Theta|_F. An unbiased variance from sums of squares
 * can come out slightly negative by cancellation, so a negative total counts as zero.
 * NaN entries (one replica) make the spread NaN. */
static double replica_spread(const double *variance, size_t count, double frobenius)
{
    double total = 0.0;

    if (variance == NULL) return NAN;
    for (size_t k = 0; k < count; k++) total += variance[k];
    if (total < 0.0) total = 0.0;
    return ratio(sqrt(total), frobenius);
}

sgk_status sgk_evolution_compute(int n_checkpoints, long n_probe, int n_outputs,
                                 const double *probe_mean, const double *probe_var,
                                 const double *y_probe, const double *checkpoint_time, int n_top,
                                 sgk_evolution *evolution)
{
    size_t entries = (size_t)n_probe * (size_t)n_probe; /* per checkpoint kernel */
    double target_norm2 = 0.0;                          /* sum_o |y_o|^2 = tr(Y Y^T) */
    double centered_target_norm2 = 0.0;                 /* sum_o |H y_o|^2 */
    double *centered_y = NULL;                          /* H Y, P x O */
    double *gram = NULL;                                /* Y Y^T, P x P */
    double *centered_gram = NULL;                       /* (H Y)(H Y)^T, P x P */
    double *means = NULL; /* row and column means of one kernel, 2 P */
    int *finite = NULL;   /* per checkpoint: no NaN or Inf in Theta_c */
    eigen_workspace space;
    sgk_status status;

    /* 1. Arguments, output arrays and scratch. */
    memset(&space, 0, sizeof space);
    if (evolution != NULL) memset(evolution, 0, sizeof *evolution);
    status = check_arguments(n_checkpoints, n_probe, n_outputs, probe_mean, y_probe,
                             checkpoint_time, n_top, evolution);
    if (status != SGK_OK) return status;
    status = allocate_metrics(n_checkpoints, n_top, evolution);
    if (status == SGK_OK) status = eigen_workspace_create((int)n_probe, &space);
    if (status == SGK_OK) {
        centered_y = calloc((size_t)n_probe * (size_t)n_outputs, sizeof(double));
        gram = malloc(sizeof(double) * entries);
        centered_gram = malloc(sizeof(double) * entries);
        means = malloc(sizeof(double) * 2 * (size_t)n_probe);
        finite = malloc(sizeof(int) * (size_t)n_checkpoints);
        if (!centered_y || !gram || !centered_gram || !means || !finite)
            status = sgk_error(SGK_ERR_IO,
                               "out of memory: scratch for %ld probe points and "
                               "%d outputs",
                               n_probe, n_outputs);
    }

    /* 2. Target Grams and norms, shared by every checkpoint. Because H is idempotent,
     *    (H y)^T (H K H) (H y) = (H y)^T K (H y), so the centered numerator needs only
     *    the centered targets; the centered kernel enters through its norm alone. */
    if (status == SGK_OK) {
        center_targets(y_probe, n_probe, n_outputs, centered_y);
        target_gram(y_probe, n_probe, n_outputs, gram);
        target_gram(centered_y, n_probe, n_outputs, centered_gram);
        target_norm2 = trace(gram, n_probe);
        centered_target_norm2 = trace(centered_gram, n_probe);
    }

    /* 3. Metrics of each kernel on its own. */
    for (int c = 0; status == SGK_OK && c < n_checkpoints; c++) {
        const double *kernel = probe_mean + (size_t)c * entries;
        const double *variance = probe_var ? probe_var + (size_t)c * entries : NULL;

        finite[c] = all_finite(kernel, entries);
        if (!finite[c]) {
            mark_undefined(evolution, c);
            continue;
        }
        double norm = sqrt(frobenius_inner(kernel, kernel, entries));
        evolution->trace[c] = trace(kernel, n_probe);
        evolution->frobenius[c] = norm;
        evolution->alignment[c] =
            ratio(frobenius_inner(kernel, gram, entries), norm * target_norm2);
        evolution->alignment_centered[c] =
            ratio(frobenius_inner(kernel, centered_gram, entries),
                  centered_frobenius(kernel, n_probe, means) * centered_target_norm2);
        evolution->spread[c] = replica_spread(variance, entries, norm);
        status = spectral_metrics(&space, kernel, c, evolution);
    }

    /* 4. Metrics that compare two kernels: distance to checkpoint 0 and velocity from
     *    the previous checkpoint, both NaN when either kernel is not finite. */
    for (int c = 0; status == SGK_OK && c < n_checkpoints; c++) {
        const double *kernel = probe_mean + (size_t)c * entries;

        evolution->distance[c] = NAN;
        if (finite[0] && finite[c])
            evolution->distance[c] = 1.0 - ratio(frobenius_inner(probe_mean, kernel, entries),
                                                 evolution->frobenius[0] * evolution->frobenius[c]);
        evolution->velocity[c] = NAN;
        if (c > 0 && finite[c - 1] && finite[c])
            evolution->velocity[c] = ratio(frobenius_distance(kernel, kernel - entries, entries),
                                           checkpoint_time[c] - checkpoint_time[c - 1]);
    }

    free(centered_y);
    free(gram);
    free(centered_gram);
    free(means);
    free(finite);
    eigen_workspace_free(&space);
    if (status != SGK_OK) sgk_evolution_free(evolution);
    return status;
}

void sgk_evolution_free(sgk_evolution *evolution)
{
    if (evolution == NULL) return;
    free(evolution->trace);
    free(evolution->frobenius);
    free(evolution->alignment);
    free(evolution->alignment_centered);
    free(evolution->distance);
    free(evolution->velocity);
    free(evolution->effective_rank);
    free(evolution->spread);
    free(evolution->top_eigenvalues);
    memset(evolution, 0, sizeof *evolution);
}
