/* The denoise task: noise schedule, noisy minibatches, per-level kernels and their
 * spectra and locality profiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "denoise_run.h"
#include "sgk/log.h"
#include "sgk/rng.h"
#include "sgk/spectrum.h"

double sgk_denoise_sigma(const sgk_config *config, int level)
{
    int n_levels = config->denoise.levels;
    double high = config->denoise.sigma_max;
    double low = config->denoise.sigma_min;

    if (n_levels <= 1 || level <= 0) return high;
    if (level >= n_levels - 1) return low;
    return high * pow(low / high, (double)level / (double)(n_levels - 1));
}

sgk_status sgk_denoise_targets(sgk_dataset *data)
{
    size_t count = (size_t)data->n_samples * data->n_features;
    double *y = malloc(sizeof(double) * (count + 1));

    if (!y) return sgk_error(SGK_ERR_IO, "out of memory for the denoising targets");
    memcpy(y, data->x, sizeof(double) * count);
    free(data->y);
    data->y = y;
    data->n_outputs = data->n_features;
    return SGK_OK;
}

int sgk_denoise_perturb(const sgk_config *config, long replica, long step, double *x, long m,
                        int d)
{
    sgk_rng rng;
    uint64_t key = (config->ensemble.vary & SGK_VARY_BATCH) ? (uint64_t)replica : 0;

    sgk_rng_init(&rng, config->ensemble.seed, key, SGK_RNG_LEVEL);
    sgk_rng_seek(&rng, (uint64_t)step);
    int level = (int)sgk_rng_below(&rng, (uint64_t)config->denoise.levels);
    if (x == NULL) return level;

    double sigma = sgk_denoise_sigma(config, level);
    for (long i = 0; i < m; i++) {
        double *row = x + i * (d + 1);
        for (int j = 0; j < d; j++) row[j] += sigma * sgk_rng_normal(&rng);
        row[d] = sigma;
    }
    return level;
}

void sgk_denoise_results_free(sgk_denoise_results *results)
{
    if (results->level_kernel != NULL)
        for (int l = 0; l < results->n_levels; l++) sgk_dmatrix_free(&results->level_kernel[l]);
    free(results->level_kernel);
    free(results->noise_level);
    free(results->level_time);
    free(results->level_trace);
    free(results->level_eigenvalues);
    free(results->bin_center);
    free(results->bin_count);
    free(results->profile);
    free(results->profile_normalized);
    free(results->width);
    memset(results, 0, sizeof *results);
}

/* ------------------------------------------------------------------------- */

sgk_status sgk_denoise_condition_data(const sgk_config *config, const sgk_dataset *data,
                                      sgk_dataset *conditioned)
{
    int d = data->n_features;
    long n = data->n_samples;
    double sigma = sgk_denoise_sigma(config, config->denoise.levels - 1);

    if (data->n_outputs != d)
        return sgk_error(SGK_ERR_USAGE, "train.task = denoise needs the clean points as "
                         "targets (%d outputs for %d features, found %d); call "
                         "sgk_denoise_targets after loading the data", d, d, data->n_outputs);
    *conditioned = *data;
    conditioned->n_features = d + 1;
    conditioned->x = malloc(sizeof(double) * (size_t)n * (d + 1) + 1);
    if (!conditioned->x) {
        memset(conditioned, 0, sizeof *conditioned);
        return sgk_error(SGK_ERR_IO, "out of memory for the conditioned evaluation points");
    }
    for (long a = 0; a < n; a++) {
        memcpy(conditioned->x + a * (d + 1), data->x + a * d, sizeof(double) * d);
        conditioned->x[a * (d + 1) + d] = sigma;
    }
    return SGK_OK;
}

sgk_status sgk_denoise_level_weights(const sgk_config *config, int n_checkpoints,
                                     const long *checkpoint_step, double step_time,
                                     long replica, double *weight, double *time)
{
    int n_levels = config->denoise.levels;
    double *interval = calloc((size_t)n_checkpoints * n_levels, sizeof(double));

    if (!interval)
        return sgk_error(SGK_ERR_IO, "out of memory for the level times of %d checkpoints",
                         n_checkpoints);

    /* interval[c][l]: time spent on level l between checkpoints c and c + 1. */
    for (int c = 0; c + 1 < n_checkpoints; c++)
        for (long k = checkpoint_step[c]; k < checkpoint_step[c + 1]; k++) {
            int level = sgk_denoise_perturb(config, replica, k, NULL, 0, 0);
            interval[(size_t)c * n_levels + level] += step_time;
        }
    for (int c = 0; c < n_checkpoints; c++)
        for (int l = 0; l < n_levels; l++) {
            double left = c > 0 ? interval[(size_t)(c - 1) * n_levels + l] : 0.0;
            double right = c + 1 < n_checkpoints ? interval[(size_t)c * n_levels + l] : 0.0;
            weight[(size_t)c * n_levels + l] = 0.5 * (left + right);
            time[(size_t)c * n_levels + l] =
                (c > 0 ? time[(size_t)(c - 1) * n_levels + l] : 0.0) + left;
        }
    free(interval);
    return SGK_OK;
}

sgk_status sgk_denoise_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                const int *dropped, long n_accepted, const sgk_results *base,
                                double step_time, sgk_dmatrix *total, sgk_denoise_results *out,
                                double *seconds, int *stopped)
{
    const sgk_config *config = ensemble->plan->config;
    long n_replicas = config->ensemble.replicas;
    int n_levels = config->denoise.levels;
    int n_checkpoints = base->n_checkpoints;
    size_t per_replica = (size_t)n_checkpoints * n_levels;
    double *weight = malloc(sizeof(double) * per_replica * n_replicas);
    double *time = malloc(sizeof(double) * per_replica);
    sgk_status status = SGK_OK;

    memset(out, 0, sizeof *out);
    out->n_levels = n_levels;
    out->noise_level = malloc(sizeof(double) * n_levels);
    out->level_time = calloc(per_replica, sizeof(double));
    out->level_trace = calloc(per_replica, sizeof(double));
    out->level_kernel = calloc((size_t)n_levels, sizeof(sgk_dmatrix));
    if (!weight || !time || !out->noise_level || !out->level_time
        || !out->level_trace || !out->level_kernel)
        status = sgk_error(SGK_ERR_IO, "out of memory for the level weights of %d noise levels",
                           n_levels);

    /* 1. Per replica, the trapezoid weights of the time spent on each level; every rank
     *    draws the level sequences itself, which is cheaper than sending them. */
    for (long r = 0; status == SGK_OK && r < n_replicas; r++) {
        status = sgk_denoise_level_weights(config, n_checkpoints, base->checkpoint_step,
                                           step_time, r, weight + r * per_replica, time);
        if (status != SGK_OK || dropped[r]) continue;
        for (size_t i = 0; i < per_replica; i++)
            out->level_time[i] += time[i] / (double)n_accepted;
    }
    /* The network's last input is the noise level itself. */
    for (int l = 0; status == SGK_OK && l < n_levels; l++)
        out->noise_level[l] = sgk_denoise_sigma(config, l);
    /* Every rank must enter the same number of collective matrix creations. */
    status = sgk_grid_agree(grid, status, "preparing the level weights");
    for (int l = 0; status == SGK_OK && l < n_levels; l++)
        status = sgk_dmatrix_create(grid, total->n, total->nb, &out->level_kernel[l]);

    /* 2. Every level's kernel in one pass over the replicas, then their sum. */
    if (status == SGK_OK) {
        sgk_assembly_terms terms = { .n_parts = n_levels,
                                     .kernels = out->level_kernel,
                                     .weight = weight,
                                     .per_replica = 1,
                                     .scale = 1.0 / (double)n_accepted,
                                     .condition = out->noise_level,
                                     .trace = out->level_trace };
        status = sgk_kernel_assemble_parts(ensemble, grid, dropped, &terms, seconds, stopped);
    }
    if (status == SGK_OK && !*stopped) {
        for (size_t i = 0; i < per_replica; i++) out->level_trace[i] /= (double)n_accepted;
        size_t local = (size_t)total->local_rows * total->local_cols;
        for (size_t i = 0; total->local != NULL && i < local; i++) {
            double sum = 0.0;
            for (int l = 0; l < n_levels; l++) sum += out->level_kernel[l].local[i];
            total->local[i] = sum;
        }
    }
    free(weight);
    free(time);
    return status;
}

/* ------------------------------------------------------------------------- */

/* Collective. The diagonal of a block-cyclic matrix on every rank. */
static sgk_status gather_diagonal(const sgk_dmatrix *matrix, double *diagonal)
{
    memset(diagonal, 0, sizeof(double) * matrix->n);
    for (int j = 0; j < matrix->local_cols; j++) {
        long global = sgk_dmatrix_global_col(matrix, j);
        for (int i = 0; i < matrix->local_rows; i++)
            if (sgk_dmatrix_global_row(matrix, i) == global)
                diagonal[global] = matrix->local[(size_t)j * matrix->lld + i];
    }
    if (MPI_Allreduce(MPI_IN_PLACE, diagonal, (int)matrix->n, MPI_DOUBLE, MPI_SUM,
                      matrix->grid->comm) != MPI_SUCCESS)
        return sgk_error(SGK_ERR_IO, "MPI_Allreduce of the kernel diagonal failed");
    return SGK_OK;
}

static double distance(const double *x, const double *y, int d)
{
    double sum = 0.0;
    for (int k = 0; k < d; k++) sum += (x[k] - y[k]) * (x[k] - y[k]);
    return sqrt(sum);
}

/* Half width of a normalized profile: where it first falls to half of its first
 * non-empty bin, interpolated between bin centres. */
static double half_width(const double *profile, const double *center, int n_bins)
{
    int first = 0;
    while (first < n_bins && isnan(profile[first])) first++;
    if (first == n_bins) return NAN;

    double half = 0.5 * profile[first];
    int previous = first;
    for (int b = first + 1; b < n_bins; b++) {
        if (isnan(profile[b])) continue;
        if (profile[b] <= half) {
            double p0 = profile[previous], p1 = profile[b];
            return center[previous] + (p0 - half) / (p0 - p1) * (center[b] - center[previous]);
        }
        previous = b;
    }
    return NAN;
}

/* Collective. Mean kernel values per distance bin over all pairs of distinct evaluation
 * points, for every level. `x` contains the clean points (N x d). */
static sgk_status locality_profiles(const sgk_config *config, const double *x, int d,
                                    sgk_denoise_results *out)
{
    const sgk_dmatrix *first = &out->level_kernel[0];
    MPI_Comm comm = first->grid->comm;
    int n_levels = out->n_levels;
    int n_bins = config->denoise.locality_bins;
    long n = first->n;
    double max_distance = 0.0;
    double *diagonal = malloc(sizeof(double) * n_levels * n);
    double *sums = calloc((size_t)2 * n_levels * n_bins + n_bins, sizeof(double));
    sgk_status status = SGK_OK;

    out->n_bins = n_bins;
    out->bin_center = malloc(sizeof(double) * n_bins);
    out->bin_count = malloc(sizeof(double) * n_bins);
    out->profile = malloc(sizeof(double) * n_levels * n_bins);
    out->profile_normalized = malloc(sizeof(double) * n_levels * n_bins);
    out->width = malloc(sizeof(double) * n_levels);
    if (!diagonal || !sums || !out->bin_center || !out->bin_count || !out->profile
        || !out->profile_normalized || !out->width)
        status = sgk_error(SGK_ERR_IO, "out of memory for the locality profiles");
    status = sgk_grid_agree(first->grid, status, "preparing the locality profiles");

    /* 1. Bin range: the largest distance between two evaluation points. */
    for (int j = 0; status == SGK_OK && j < first->local_cols; j++) {
        long b = sgk_dmatrix_global_col(first, j);
        for (int i = 0; i < first->local_rows; i++) {
            double r = distance(x + sgk_dmatrix_global_row(first, i) * d, x + b * d, d);
            if (r > max_distance) max_distance = r;
        }
    }
    if (status == SGK_OK && MPI_Allreduce(MPI_IN_PLACE, &max_distance, 1, MPI_DOUBLE, MPI_MAX,
                                          comm) != MPI_SUCCESS)
        status = sgk_error(SGK_ERR_IO, "MPI_Allreduce of the largest distance failed");
    for (int l = 0; status == SGK_OK && l < n_levels; l++)
        status = gather_diagonal(&out->level_kernel[l], diagonal + (size_t)l * n);
    double bin_width = max_distance > 0.0 ? max_distance / n_bins : 1.0;

    /* 2. Sums per bin over this rank's entries off the diagonal. */
    double *count = sums + (size_t)2 * n_levels * n_bins;
    for (int j = 0; status == SGK_OK && j < first->local_cols; j++) {
        long b = sgk_dmatrix_global_col(first, j);
        for (int i = 0; i < first->local_rows; i++) {
            long a = sgk_dmatrix_global_row(first, i);
            if (a == b) continue;
            int bin = (int)(distance(x + a * d, x + b * d, d) / bin_width);
            if (bin >= n_bins) bin = n_bins - 1;
            count[bin] += 1.0;
            for (int l = 0; l < n_levels; l++) {
                double k = out->level_kernel[l].local[(size_t)j * first->lld + i];
                double scale = sqrt(diagonal[(size_t)l * n + a] * diagonal[(size_t)l * n + b]);
                sums[(size_t)l * n_bins + bin] += k;
                /* A level never trained has a zero kernel, whose cosine is undefined. */
                sums[(size_t)(n_levels + l) * n_bins + bin] += scale > 0.0 ? k / scale : NAN;
            }
        }
    }
    if (status == SGK_OK
        && MPI_Allreduce(MPI_IN_PLACE, sums, 2 * n_levels * n_bins + n_bins, MPI_DOUBLE,
                         MPI_SUM, comm) != MPI_SUCCESS)
        status = sgk_error(SGK_ERR_IO, "MPI_Allreduce of the locality sums failed");

    /* 3. Means and half widths. */
    for (int bin = 0; status == SGK_OK && bin < n_bins; bin++) {
        out->bin_center[bin] = (bin + 0.5) * bin_width;
        out->bin_count[bin] = count[bin];
        for (int l = 0; l < n_levels; l++) {
            size_t at = (size_t)l * n_bins + bin;
            out->profile[at] = count[bin] > 0.0 ? sums[at] / count[bin] : NAN;
            out->profile_normalized[at] =
                count[bin] > 0.0 ? sums[(size_t)n_levels * n_bins + at] / count[bin] : NAN;
        }
    }
    for (int l = 0; status == SGK_OK && l < n_levels; l++)
        out->width[l] = half_width(out->profile_normalized + (size_t)l * n_bins, out->bin_center,
                                   n_bins);
    free(diagonal);
    free(sums);
    return status;
}

sgk_status sgk_denoise_analyse(const sgk_config *config, const sgk_dataset *data,
                               long n_eig, sgk_denoise_results *out)
{
    int n_levels = out->n_levels;
    int d = data->n_features - 1;
    long n_train = data->n_train;
    double *x = malloc(sizeof(double) * data->n_samples * d + 1);
    sgk_status status = SGK_OK;

    out->n_eig = n_eig;
    out->level_eigenvalues = malloc(sizeof(double) * n_levels * n_eig + 1);
    if (!x || !out->level_eigenvalues)
        status = sgk_error(SGK_ERR_IO, "out of memory for the level spectra");
    status = sgk_grid_agree(out->level_kernel[0].grid, status, "preparing the level spectra");
    if (status != SGK_OK) {
        free(x);
        return status;
    }
    for (long a = 0; a < data->n_samples; a++)
        memcpy(x + a * d, data->x + a * (d + 1), sizeof(double) * d);

    /* 1. Spectrum of each K^(l)_n = K^(l)[train, train] / n. */
    for (int l = 0; status == SGK_OK && l < n_levels; l++) {
        sgk_dmatrix block;
        status = sgk_dmatrix_leading_block(&out->level_kernel[l], n_train, 1.0 / (double)n_train,
                                           &block);
        if (status != SGK_OK) break;
        status = sgk_spectrum_eigh_largest(&block, n_eig, out->level_eigenvalues + l * n_eig,
                                           NULL);
        sgk_dmatrix_free(&block);
    }

    /* 2. Locality profiles over all evaluation points. */
    if (status == SGK_OK) status = locality_profiles(config, x, d, out);
    for (int l = 0; status == SGK_OK && l < n_levels; l++)
        sgk_log(SGK_LOG_INFO, "level %d: sigma %.4g, lambda_1 %.4g, locality half width %.4g",
                l, out->noise_level[l], n_eig > 0 ? out->level_eigenvalues[l * n_eig] : NAN,
                out->width[l]);
    free(x);
    return status;
}
