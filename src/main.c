/* sgk-ensemble: command-line driver. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sgk/sgk.h"
#include "sgk/weights.h"
#include "control.h"
#include "snapshot.h"

/* Exit status after a signal stopped the run and a snapshot was written (EX_TEMPFAIL of
 * sysexits.h): the job can be resubmitted with --restart. */
enum { EXIT_INTERRUPTED = 75 };

static void print_usage(FILE *stream)
{
    fputs("Usage: sgk-ensemble [OPTION]... [CONFIG]\n"
          "Train an ensemble of MLP replicas, assemble their stochastic gradient kernel\n"
          "and store it with its spectrum in a NetCDF-4 file.\n"
          "Without CONFIG, runs the built-in default experiment.\n"
          "\n"
          "  --set SECTION.KEY=VALUE  override one configuration key (repeatable;\n"
          "                           overrides apply after CONFIG, in order)\n"
          "  --restart FOLDER         resume the run whose snapshot is in FOLDER\n"
          "                           (<output file>.ckpt); the configuration comes from\n"
          "                           the snapshot, and CONFIG or --set must agree with it\n"
          "  --force                  replace an existing output file\n"
          "  --dry-run                validate the configuration and the data, print\n"
          "                           the estimated memory per rank and run time, and exit\n"
          "  --quiet                  print errors and warnings only\n"
          "  --verbose                print per-replica details too\n"
          "  --help                   print this help and exit\n"
          "  --version                print the version and exit\n"
          "\n"
          "Run it under MPI, e.g. `mpirun -n 4 sgk-ensemble run.ini`: replicas are spread\n"
          "over the ranks. SIGTERM or SIGUSR1 to any rank writes a snapshot and stops.\n"
          "Exit status: 0 success, 1 bad usage or configuration, 2 bad input data,\n"
          "3 numerical failure, 4 I/O failure, 75 stopped by a signal after a snapshot.\n",
          stream);
}

/* Parsed command line. */
typedef struct {
    const char *config_path;    /* NULL: built-in default */
    const char **overrides;     /* "section.key=value" */
    int n_overrides;
    const char *restart;        /* snapshot folder, or NULL */
    int force;
    int dry_run;
    int show_help;
    int show_version;
    sgk_log_level log_level;
} options;

static sgk_status parse_options(int argc, char **argv, options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->log_level = SGK_LOG_INFO;
    opts->overrides = calloc((size_t)argc, sizeof(char *));
    if (!opts->overrides) return sgk_error(SGK_ERR_IO, "out of memory for the command line");

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            opts->show_help = 1;
        } else if (strcmp(arg, "--version") == 0) {
            opts->show_version = 1;
        } else if (strcmp(arg, "--dry-run") == 0) {
            opts->dry_run = 1;
        } else if (strcmp(arg, "--force") == 0) {
            opts->force = 1;
        } else if (strcmp(arg, "--quiet") == 0) {
            opts->log_level = SGK_LOG_WARN;
        } else if (strcmp(arg, "--verbose") == 0) {
            opts->log_level = SGK_LOG_DEBUG;
        } else if (strcmp(arg, "--set") == 0 || strcmp(arg, "--restart") == 0) {
            if (i + 1 >= argc)
                return sgk_error(SGK_ERR_USAGE, "%s needs an argument; see sgk-ensemble --help",
                                 arg);
            if (arg[2] == 's') opts->overrides[opts->n_overrides++] = argv[++i];
            else opts->restart = argv[++i];
        } else if (strncmp(arg, "--set=", 6) == 0) {
            opts->overrides[opts->n_overrides++] = arg + 6;
        } else if (strncmp(arg, "--restart=", 10) == 0) {
            opts->restart = arg + 10;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return sgk_error(SGK_ERR_USAGE, "unknown option '%s'; see sgk-ensemble --help", arg);
        } else if (opts->config_path != NULL) {
            return sgk_error(SGK_ERR_USAGE,
                             "more than one configuration file given ('%s' and '%s'); pass one",
                             opts->config_path, arg);
        } else {
            opts->config_path = arg;
        }
    }
    return SGK_OK;
}

/* Resolve the configuration: defaults, then the file, then the overrides in order. */
static sgk_status resolve_config(const options *opts, const char *base_file, sgk_config *config)
{
    sgk_config_defaults(config);
    if (base_file) SGK_CHECK(sgk_config_load_file(config, base_file));
    if (opts->config_path) SGK_CHECK(sgk_config_load_file(config, opts->config_path));
    for (int i = 0; i < opts->n_overrides; i++)
        SGK_CHECK(sgk_config_override(config, opts->overrides[i]));
    return sgk_config_validate(config);
}

/* The first line of `a` that differs from `b`, for the restart refusal message. */
static void first_difference(const char *a, const char *b, char *line, size_t size)
{
    const char *line_start = a;

    while (*a && *a == *b) {
        if (*a == '\n') line_start = a + 1;
        a++;
        b++;
    }
    size_t length = strcspn(line_start, "\n");
    if (length >= size) length = size - 1;
    memcpy(line, line_start, length);
    line[length] = '\0';
}

/* With --restart: take the configuration from the snapshot, check that the command line
 * agrees with it and that the rank count matches. */
static sgk_status resolve_restart(const options *opts, int n_ranks, sgk_config *config,
                                  sgk_snapshot_manifest *manifest)
{
    char path[SGK_PATH_LEN + 64];
    char *stored, *requested;

    SGK_CHECK(sgk_snapshot_read_manifest(opts->restart, manifest));
    if (strcmp(manifest->version, sgk_version()) != 0)
        return sgk_error(SGK_ERR_USAGE, "snapshot '%s' was written by sgk-ensemble %s, this is %s; "
                         "resume it with the same version", opts->restart, manifest->version,
                         sgk_version());
    if (manifest->n_ranks != n_ranks)
        return sgk_error(SGK_ERR_USAGE, "snapshot '%s' was written by %d ranks, this run has %d; "
                         "resume with %d ranks, because the replica blocks of each rank and the "
                         "order of the kernel sums depend on the rank count",
                         opts->restart, manifest->n_ranks, n_ranks, manifest->n_ranks);
    snprintf(path, sizeof path, "%s/configuration.ini", opts->restart);
    SGK_CHECK(resolve_config(opts, path, config));
    stored = manifest->config_ini;
    requested = sgk_config_to_ini(config);
    if (!requested) return sgk_error(SGK_ERR_IO, "out of memory for the configuration");
    if (strcmp(stored, requested) != 0) {
        char line[256];
        first_difference(requested, stored, line, sizeof line);
        free(requested);
        return sgk_error(SGK_ERR_USAGE, "the configuration differs from the one in snapshot '%s' "
                         "(first difference: '%s'); a restart must continue the same run: drop "
                         "the changed CONFIG or --set", opts->restart, line);
    }
    free(requested);
    return SGK_OK;
}

static char *join_arguments(int argc, char **argv)
{
    size_t length = 1;
    char *text;

    for (int i = 0; i < argc; i++) length += strlen(argv[i]) + 1;
    text = malloc(length);
    if (!text) return NULL;
    text[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i > 0) strcat(text, " ");
        strcat(text, argv[i]);
    }
    return text;
}

/* Resident memory of this process in bytes (VmRSS of /proc/self/status), 0 if unknown. */
static double resident_bytes(void)
{
    FILE *file = fopen("/proc/self/status", "r");
    char line[256];
    double kilobytes = 0.0;

    if (!file) return 0.0;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmRSS: %lf kB", &kilobytes) == 1) break;
    fclose(file);
    return 1024.0 * kilobytes;
}

/* Fingerprint of the evaluation set: a restart must see the same data. */
static uint64_t hash_dataset(const sgk_dataset *data)
{
    uint64_t hash = SGK_HASH_START;

    hash = sgk_hash_bytes(hash, data->x, sizeof(double) * data->n_samples * data->n_features);
    hash = sgk_hash_bytes(hash, data->y, sizeof(double) * data->n_samples * data->n_outputs);
    return sgk_hash_bytes(hash, data->split, sizeof(int) * data->n_samples);
}

/* Measured dgemm rate of this process in floating-point operations per second, from a
 * product of 256 x 256 matrices: the scale of the layer products in training. */
static double measure_dgemm_rate(void)
{
    const int n = 256;
    double *a = malloc(sizeof(double) * n * n), *c = malloc(sizeof(double) * n * n);
    double rate = 1e9, start;

    if (!a || !c) {
        free(a);
        free(c);
        return rate;
    }
    for (int i = 0; i < n * n; i++) a[i] = (double)(i % 7) / 7.0;
    start = sgk_seconds();
    for (int repeat = 0; repeat < 4; repeat++)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, a, n, a, n, 0.0, c, n);
    double elapsed = sgk_seconds() - start;
    if (elapsed > 0.0) rate = 4.0 * 2.0 * n * n * (double)n / elapsed;
    free(a);
    free(c);
    return rate;
}

/* Seconds of one optimizer step of the run's network on a minibatch: forward and backward
 * passes timed on random inputs, the mean over repeats that take at least 0.05 s. Small
 * networks spend their steps in call overhead, which no flop rate predicts. With
 * `factor_seconds`, also the seconds of the tangent factors of `points` points, which the
 * drift takes at every step. Returns 0 when the network or its buffers cannot be set up. */
static double measure_step_seconds(const sgk_config *config, const sgk_dataset *data,
                                   long batch, long points, double *factor_seconds)
{
    sgk_mlp net;
    sgk_mlp_work work;
    sgk_rng rng;
    double seconds = 0.0;

    if (batch > 4096) batch = 4096;
    if (points > 4096) points = 4096;
    if (factor_seconds) *factor_seconds = 0.0;
    if (sgk_run_network(config, data, &net) != SGK_OK) {
        sgk_error_clear();
        return 0.0;
    }
    int inputs = net.dims[0], outputs = net.dims[net.n_layers];
    double *w = malloc(sizeof(double) * net.n_params);
    double *grad = malloc(sizeof(double) * net.n_params);
    double *x = malloc(sizeof(double) * batch * inputs);
    double *f = malloc(sizeof(double) * batch * outputs);
    if (w && grad && x && f && sgk_mlp_work_alloc(&net, (int)batch, &work) == SGK_OK) {
        sgk_rng_init(&rng, config->ensemble.seed, 0, SGK_RNG_INIT);
        sgk_mlp_init_params(&net, &rng, w);
        for (long k = 0; k < batch * inputs; k++) x[k] = sgk_rng_normal(&rng);
        double start = sgk_seconds(), elapsed = 0.0;
        long repeats = 0;
        while (elapsed < 0.05 && repeats < 10000) {
            sgk_mlp_forward(&net, w, x, (int)batch, &work, f);
            sgk_mlp_backward(&net, w, f, (int)batch, &work, grad);
            repeats++;
            elapsed = sgk_seconds() - start;
        }
        seconds = elapsed / (double)repeats;
        sgk_mlp_work_free(&work);

        /* The factors of `points` points, on the same inputs repeated. */
        sgk_factors factors;
        double *px = malloc(sizeof(double) * points * inputs);
        if (factor_seconds && px && sgk_mlp_work_alloc(&net, (int)points, &work) == SGK_OK) {
            if (sgk_factors_alloc(&net, (int)points, &factors) == SGK_OK) {
                for (long k = 0; k < points * inputs; k++) px[k] = x[k % (batch * inputs)];
                start = sgk_seconds();
                elapsed = 0.0;
                repeats = 0;
                while (elapsed < 0.05 && repeats < 10000) {
                    sgk_mlp_tangent_factors(&net, w, px, (int)points, &work, &factors, NULL);
                    repeats++;
                    elapsed = sgk_seconds() - start;
                }
                *factor_seconds = elapsed / (double)repeats;
                sgk_factors_free(&factors);
            }
            sgk_mlp_work_free(&work);
        }
        free(px);
        sgk_error_clear();
    } else {
        sgk_error_clear();
    }
    free(w);
    free(grad);
    free(x);
    free(f);
    return seconds;
}

/* Estimates for --dry-run: peak bytes per rank and seconds, from the sizes and operation
 * counts of each phase and the measured time of one training step. They are estimates:
 * the measured rate of a small dgemm replaces the rate of every other BLAS call, and
 * communication is ignored. */
static void estimate_run(const sgk_config *config, const sgk_dataset *data, int n_ranks,
                         double *bytes, double *seconds)
{
    /* The kernel's points and the network's shape: the denoise network also takes the
     * noise level, and a GAN's kernel is over latent points of its generator, which maps
     * latent_dim inputs to the data's features. */
    double n = (double)data->n_samples, n_train = (double)data->n_train;
    int inputs = data->n_features, n_outputs = data->n_outputs;
    if (config->train.task == SGK_TASK_DENOISE) inputs++;
    if (config->train.task == SGK_TASK_GAN) {
        n = n_train = (double)config->gan.latent_points;
        inputs = config->gan.latent_dim;
        n_outputs = data->n_features;
    }
    double outputs = n_outputs;
    double replicas_per_rank = ceil((double)config->ensemble.replicas / n_ranks);
    double batch = config->train.batch_size > 0 ? (double)config->train.batch_size
                                                 : (double)data->n_train;
    double widths = inputs + outputs, layer_products = 0.0, factor_width = 0.0;
    double layer_params = 0.0;
    int dims[SGK_MAX_HIDDEN + 2];
    int n_dims = 0;

    dims[n_dims++] = inputs;
    for (int l = 0; l < config->model.n_hidden; l++) dims[n_dims++] = config->model.widths[l];
    dims[n_dims++] = n_outputs;
    for (int l = 1; l < n_dims; l++) {
        layer_products += (double)dims[l] * dims[l - 1];
        layer_params += (double)dims[l] * (dims[l - 1] + 1);
        factor_width += outputs * dims[l] + dims[l - 1];
        if (l < n_dims - 1) widths += dims[l];
    }

    /* Memory: the parameters (and preconditioners) stored at every checkpoint of this
     * rank's replicas, the local part of the kernel and of its cached input Gram (N^2 / p each),
     * the drift pairs (N x n x O, twice under the drop policy), factors and work buffers
     * of N points, stored outputs, and the spectrum analysis (solved in the kernel's
     * training block: its saved lower triangle, the eigenvectors and PDSYEVD's workspace,
     * about 3.5 n^2 / p, then K[all, train] V, N n / p). */
    double drift_pairs = sgk_config_drift(config) ? n * n_train * outputs : 0.0;
    if (config->train.on_divergence == SGK_DIVERGENCE_DROP) drift_pairs *= 2.0;
    double stored_params = replicas_per_rank * config->kernel.checkpoints * layer_params
                           * (sgk_optimizer_preconditions(config->train.optimizer) ? 2.0 : 1.0);
    *bytes = 8.0 * (stored_params + 2.0 * n * n / n_ranks + drift_pairs + n * widths * (3.0 + outputs)
                    + n * factor_width
                    + replicas_per_rank * config->kernel.checkpoints * n * outputs
                    + (3.5 * n_train * n_train + n * n_train) / n_ranks);

    /* Operations: per replica of this rank, forward and backward passes of the minibatch,
     * the N-point outputs at every checkpoint, and with drift the tangent factors of the N
     * points at every path node of every step plus the drift products; then, for every
     * replica of the ensemble, the assembly of this rank's kernel blocks; then the
     * eigen-solve of K_n and the analysis products. */
    double steps = (double)config->train.steps;
    double per_replica = config->kernel.checkpoints * 2.0 * n * layer_products;
    if (sgk_config_drift(config)) per_replica += steps * 2.0 * n * batch * factor_width;
    double side = n / sqrt((double)n_ranks);
    double assembly = (double)config->ensemble.replicas * config->kernel.checkpoints
                      * (2.0 * side * layer_products * (1.0 + outputs)
                         + 2.0 * n * n * factor_width / n_ranks);
    double operations = replicas_per_rank * per_replica + assembly
                        + (10.0 * n_train * n_train * n_train + 2.0 * n * n_train * n_train) / n_ranks;
    /* The denoise task keeps one kernel per noise level besides the total, assembles each
     * with the level as an extra input, and solves each level's spectrum. */
    if (config->train.task == SGK_TASK_DENOISE) {
        double levels = config->denoise.levels;
        *bytes += 8.0 * levels * n * n / n_ranks;
        operations += (levels - 1.0) * assembly
                      + levels * 10.0 * n_train * n_train * n_train / n_ranks;
    }
    /* Training steps, timed: a GAN step also takes the discriminator's forward and
     * backward passes on real and generated samples, counted as two more steps (an
     * estimate, since the discriminator's size differs). */
    double factor_seconds = 0.0;
    double step_seconds = measure_step_seconds(config, data, (long)batch, (long)n,
                                               sgk_config_drift(config) ? &factor_seconds : NULL);
    if (config->train.task == SGK_TASK_GAN) step_seconds *= 3.0;
    /* The drift takes the factors of all N points at every path node of every step. The
     * timing covers at most 4096 points, so it is scaled linearly beyond. */
    if (n > 4096) factor_seconds *= n / 4096.0;
    step_seconds += config->kernel.path_nodes * factor_seconds;
    *seconds = operations / measure_dgemm_rate() + replicas_per_rank * steps * step_seconds;
}

/* Collective. Write the results under a temporary name and rename it when complete, so
 * that an interrupted run never leaves a file that looks finished. */
static sgk_status write_output(const sgk_config *config, const sgk_dataset *data,
                               const sgk_results *results, const sgk_grid *grid,
                               const sgk_run_info *info)
{
    const char *path = config->output.file;
    char temporary[SGK_PATH_LEN + 16];
    int failed = 0, any_failed = 0;
    sgk_status status;

    snprintf(temporary, sizeof temporary, "%s.incomplete", path);
    status = sgk_output_write_with_analysis(temporary, config, data, results, &results->analysis,
                                            grid, info);
    if (status != SGK_OK) return status;
    if (grid->rank == 0 && rename(temporary, path) != 0) {
        failed = 1;
        sgk_error(SGK_ERR_IO, "cannot rename '%s' to '%s': %s", temporary, path, strerror(errno));
    }
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, grid->comm);
    if (any_failed && !failed) sgk_error_clear();
    return any_failed ? SGK_ERR_IO : SGK_OK;
}

/* Rank 0 reads the initial-weights file and broadcasts it. */
static sgk_status read_initial_weights(const sgk_config *config, const sgk_dataset *data,
                                       double **weights)
{
    sgk_mlp net;
    int rank, status_code;
    sgk_status status;

    *weights = NULL;
    if (config->model.init_file[0] == '\0') return SGK_OK;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    status = sgk_run_network(config, data, &net);
    if (status == SGK_OK) {
        *weights = malloc(sizeof(double) * net.n_params);
        if (!*weights) status = sgk_error(SGK_ERR_IO, "out of memory for the initial weights");
    }
    if (status == SGK_OK && rank == 0) status = sgk_weights_read(config->model.init_file, &net, *weights);
    status_code = (int)status;
    MPI_Bcast(&status_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status_code != SGK_OK) {
        if (rank != 0) sgk_error_clear();
        free(*weights);
        *weights = NULL;
        return (sgk_status)status_code;
    }
    MPI_Bcast(*weights, (int)net.n_params, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return SGK_OK;
}

/* Rank 0 writes replica 0's final weights; every rank learns the status. */
static sgk_status write_final_weights(const sgk_config *config, const sgk_dataset *data,
                                      const sgk_results *results, int rank)
{
    sgk_status status = SGK_OK;
    int status_code;

    if (config->output.weights_file[0] == '\0') return SGK_OK;
    if (rank == 0) {
        sgk_mlp net;
        status = sgk_run_network(config, data, &net);
        if (status == SGK_OK && results->final_weights == NULL)
            status = sgk_error(SGK_ERR_NUMERIC, "replica 0 diverged, so [output] weights_file = "
                               "%s was not written", config->output.weights_file);
        if (status == SGK_OK)
            status = sgk_weights_write(config->output.weights_file, &net, results->final_weights);
    }
    status_code = (int)status;
    MPI_Bcast(&status_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return (sgk_status)status_code;
}

/* Collective. Print the error once and leave. Rank 0 prints when it has a message
 * (errors that every rank sees alike); otherwise each rank that failed prints its own. */
static int finish(sgk_status status)
{
    int rank, rank0_has_message;

    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    rank0_has_message = status != SGK_OK && sgk_error_message()[0] != '\0';
    MPI_Bcast(&rank0_has_message, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status != SGK_OK && sgk_error_message()[0] != '\0' && (rank == 0 || !rank0_has_message))
        sgk_log_any(SGK_LOG_ERROR, "%s", sgk_error_message());
    MPI_Finalize();
    return (int)status;
}

/* A batch job that asked for several tasks but started one process per task without MPI
 * wiring (a plain `srun` without --mpi=pmix, say) gives each process a world of 1, and
 * they would all run the whole experiment. */
static sgk_status check_launch(int n_ranks)
{
    const char *tasks = getenv("SLURM_NTASKS");
    const char *step = getenv("SLURM_STEP_ID");

    if (n_ranks != 1 || tasks == NULL || step == NULL) return SGK_OK;
    long count = strtol(tasks, NULL, 10);
    if (count > 1)
        return sgk_error(SGK_ERR_USAGE, "SLURM started this step with %ld tasks (SLURM_NTASKS), "
                         "but MPI reports a world of 1 rank: the tasks are not connected. Launch "
                         "with `srun --mpi=pmix` or `mpirun`", count);
    return SGK_OK;
}

static int file_exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

/* Check before training that the output can be written: its folder exists and is
 * writable, and the path is not a folder. */
static sgk_status check_output_path(const char *path)
{
    char folder[SGK_PATH_LEN];
    const char *slash = strrchr(path, '/');
    struct stat info;

    if (stat(path, &info) == 0 && S_ISDIR(info.st_mode))
        return sgk_error(SGK_ERR_USAGE, "[output] file = %s is a folder; name a file", path);
    if (slash == NULL) {
        strcpy(folder, ".");
    } else {
        size_t length = (size_t)(slash - path);
        if (length == 0) length = 1;
        memcpy(folder, path, length);
        folder[length] = '\0';
    }
    if (stat(folder, &info) != 0 || !S_ISDIR(info.st_mode))
        return sgk_error(SGK_ERR_IO, "the folder %s of [output] file = %s does not exist; create "
                         "it or choose another path", folder, path);
    if (access(folder, W_OK) != 0)
        return sgk_error(SGK_ERR_IO, "the folder %s of [output] file = %s is not writable: %s",
                         folder, path, strerror(errno));
    return SGK_OK;
}

int main(int argc, char **argv)
{
    options opts;
    sgk_config config;
    sgk_dataset data;
    sgk_grid grid;
    sgk_results results;
    sgk_run_info info;
    sgk_run_options run_options;
    sgk_snapshot_manifest manifest;
    char start_time[32], host[256], snapshot_folder[SGK_PATH_LEN + 8];
    char *config_ini = NULL, *command_line = NULL;
    double *initial_weights = NULL;
    time_t now = time(NULL);
    int rank, n_ranks;
    sgk_status status;
    double start, data_seconds;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    sgk_control_install_signals();
    strftime(start_time, sizeof start_time, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    memset(&manifest, 0, sizeof manifest);

    /* 1. Command line and configuration. Every rank parses the same input, so every rank
     *    reaches the same verdict; only rank 0 prints it. */
    status = parse_options(argc, argv, &opts);
    sgk_log_setup(rank, status == SGK_OK ? opts.log_level : SGK_LOG_INFO);
    if (status != SGK_OK) {
        if (rank == 0) fprintf(stderr, "sgk-ensemble: %s\n", sgk_error_message());
        MPI_Finalize();
        return (int)status;
    }
    if (opts.show_help || opts.show_version) {
        if (rank == 0 && opts.show_help) print_usage(stdout);
        if (rank == 0 && opts.show_version) printf("sgk-ensemble %s\n", sgk_version());
        MPI_Finalize();
        return 0;
    }
    status = check_launch(n_ranks);
    if (status == SGK_OK)
        status = opts.restart ? resolve_restart(&opts, n_ranks, &config, &manifest)
                              : resolve_config(&opts, NULL, &config);
    if (status == SGK_OK) status = check_output_path(config.output.file);
    /* A dry run writes nothing, so an existing output only earns a warning there. */
    if (status == SGK_OK && !opts.force && !config.output.overwrite
        && file_exists(config.output.file)) {
        if (opts.dry_run)
            sgk_log(SGK_LOG_WARN, "output file '%s' exists; the run would need --force or "
                    "[output] overwrite = yes to replace it", config.output.file);
        else
            status = sgk_error(SGK_ERR_USAGE, "output file '%s' exists; pass --force or set "
                               "[output] overwrite = yes to replace it, or choose another "
                               "[output] file", config.output.file);
    }
    snprintf(snapshot_folder, sizeof snapshot_folder, "%s.ckpt", config.output.file);
    if (status == SGK_OK && !opts.restart && !opts.dry_run) {
        char manifest_path[SGK_PATH_LEN + 32];
        snprintf(manifest_path, sizeof manifest_path, "%s/manifest", snapshot_folder);
        if (file_exists(manifest_path) && !opts.force)
            status = sgk_error(SGK_ERR_USAGE, "'%s' contains the snapshot of an interrupted run; "
                               "resume it with --restart %s, or pass --force to start over and "
                               "discard it", snapshot_folder, snapshot_folder);
    }
    if (status != SGK_OK) {
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        sgk_snapshot_manifest_free(&manifest);
        MPI_Finalize();
        return (int)status;
    }
    /* --force starts over: an old snapshot must not mix with the new run's. */
    if (!opts.restart && !opts.dry_run) sgk_snapshot_remove(MPI_COMM_WORLD, snapshot_folder);
    const char *config_source = "built-in default";
    if (opts.config_path) config_source = opts.config_path;
    if (opts.restart) config_source = opts.restart;
    sgk_log(SGK_LOG_INFO, "sgk-ensemble %s on %d ranks, configuration %s", sgk_version(), n_ranks,
            config_source);

    /* 2. Data: rank 0 reads and broadcasts. */
    start = sgk_seconds();
    status = sgk_dataset_load(&config, MPI_COMM_WORLD, &data);
    if (status == SGK_OK && config.train.task == SGK_TASK_DENOISE)
        status = sgk_denoise_targets(&data);
    data_seconds = sgk_seconds() - start;
    if (status != SGK_OK) {
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        sgk_snapshot_manifest_free(&manifest);
        MPI_Finalize();
        return (int)status;
    }
    if (config.train.task == SGK_TASK_GAN)
        sgk_log(SGK_LOG_INFO, "data: %ld real samples of %d features for the GAN (test and ood "
                "points are not used)", data.n_train, data.n_features);
    else
        sgk_log(SGK_LOG_INFO, "data: %ld train, %ld test, %ld ood points, %d features, %d "
                "outputs", data.n_train, data.n_test, data.n_ood, data.n_features,
                data.n_outputs);
    if (opts.restart && manifest.data_hash != hash_dataset(&data))
        status = sgk_error(SGK_ERR_DATA, "the data differ from those of snapshot '%s': the data "
                           "files changed since the run started", opts.restart);
    if (status == SGK_OK) status = read_initial_weights(&config, &data, &initial_weights);
    if (status != SGK_OK) {
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        sgk_dataset_free(&data);
        sgk_snapshot_manifest_free(&manifest);
        MPI_Finalize();
        return (int)status;
    }
    if (opts.dry_run) {
        double bytes, seconds, resident = resident_bytes();
        estimate_run(&config, &data, n_ranks, &bytes, &seconds);
        /* The dry run's report is what was asked for, so --quiet does not hide it. */
        if (rank == 0) {
            printf("dry run: configuration and data are valid\n");
            printf("estimated peak memory per rank = %.3g MB (%.3g MB already resident: MPI, "
                   "libraries and data; %.3g MB of run arrays)\n", (resident + bytes) / 1e6,
                   resident / 1e6, bytes / 1e6);
            printf("estimated run time = %.3g s on %d ranks (from this machine's dgemm rate "
                   "and a timed training step; an estimate)\n", seconds, n_ranks);
            printf("output would go to %s\n", config.output.file);
        }
        free(initial_weights);
        sgk_dataset_free(&data);
        MPI_Finalize();
        return 0;
    }

    /* 3. Process grid, training, kernel and spectrum. */
    status = sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid);
    if (status != SGK_OK) {
        sgk_dataset_free(&data);
        return finish(status);
    }
    sgk_log(SGK_LOG_INFO, "process grid %d x %d, block size %d", grid.n_prow, grid.n_pcol,
            config.kernel.block_size);
    config_ini = sgk_config_to_ini(&config);
    run_options = (sgk_run_options){ .snapshot_folder = opts.restart ? opts.restart : snapshot_folder,
                                     .restart_generation = opts.restart ? manifest.generation : 0,
                                     .config_ini = config_ini ? config_ini : "",
                                     .data_hash = hash_dataset(&data),
                                     .progress = opts.log_level >= SGK_LOG_INFO,
                                     .initial_weights = initial_weights,
                                     .keep_first_weights = config.output.weights_file[0] != '\0' };
    status = sgk_run_experiment(&config, &data, &grid, &run_options, &results);
    results.phase_seconds[SGK_PHASE_DATA] = data_seconds;

    /* 4. Output, or the note that a snapshot waits for --restart. */
    if (status == SGK_OK && results.interrupted) {
        sgk_log(SGK_LOG_WARN, "stopped by a signal; snapshot in %s; resume with the same rank "
                "count: mpirun -n %d sgk-ensemble --restart %s", run_options.snapshot_folder,
                n_ranks, run_options.snapshot_folder);
        free(config_ini);
        free(initial_weights);
        free(opts.overrides);
        sgk_snapshot_manifest_free(&manifest);
        sgk_results_free(&results);
        sgk_dataset_free(&data);
        sgk_grid_free(&grid);
        finish(SGK_OK);
        return EXIT_INTERRUPTED;
    }
    if (status == SGK_OK) {
        double output_start = sgk_seconds();
        command_line = join_arguments(argc, argv);
        if (gethostname(host, sizeof host) != 0) strcpy(host, "unknown");
        host[sizeof host - 1] = '\0';
        info = (sgk_run_info){ config_ini ? config_ini : "", command_line ? command_line : "",
                               start_time, host };
        status = write_output(&config, &data, &results, &grid, &info);
        if (status == SGK_OK) status = write_final_weights(&config, &data, &results, rank);
        results.phase_seconds[SGK_PHASE_OUTPUT] = sgk_seconds() - output_start;
        if (status == SGK_OK) {
            sgk_snapshot_remove(MPI_COMM_WORLD, run_options.snapshot_folder);
            sgk_log(SGK_LOG_INFO, "wrote %s", config.output.file);
            for (int p = 0; p < SGK_N_PHASES; p++)
                sgk_log(SGK_LOG_INFO, "wall_time_%s = %.3f s", sgk_phase_name(p),
                        results.phase_seconds[p]);
        }
    }
    free(config_ini);
    free(command_line);
    free(initial_weights);
    free(opts.overrides);
    sgk_snapshot_manifest_free(&manifest);
    sgk_results_free(&results);
    sgk_dataset_free(&data);
    sgk_grid_free(&grid);
    return finish(status);
}
