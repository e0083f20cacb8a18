/* sgk-ensemble: command-line driver. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sgk/sgk.h"

static void print_usage(FILE *stream)
{
    fputs("Usage: sgk-ensemble [OPTION]... [CONFIG]\n"
          "Train an ensemble of MLP replicas, assemble their stochastic gradient kernel\n"
          "and store it with its spectrum in a NetCDF-4 file.\n"
          "Without CONFIG, runs the built-in default experiment.\n"
          "\n"
          "  --set SECTION.KEY=VALUE  override one configuration key (repeatable;\n"
          "                           overrides apply after CONFIG, in order)\n"
          "  --dry-run                validate the configuration and the data, print\n"
          "                           the plan, and exit without training\n"
          "  --quiet                  print errors and warnings only\n"
          "  --verbose                print per-replica details too\n"
          "  --help                   print this help and exit\n"
          "  --version                print the version and exit\n"
          "\n"
          "Run it under MPI, e.g. `mpirun -n 4 sgk-ensemble run.ini`: replicas are spread\n"
          "over the ranks. Exit status: 0 success, 1 bad usage or configuration, 2 bad\n"
          "input data, 3 numerical failure, 4 I/O failure.\n",
          stream);
}

/* Parsed command line. */
typedef struct {
    const char *config_path;    /* NULL: built-in default */
    const char **overrides;     /* "section.key=value" */
    int n_overrides;
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
        } else if (strcmp(arg, "--quiet") == 0) {
            opts->log_level = SGK_LOG_WARN;
        } else if (strcmp(arg, "--verbose") == 0) {
            opts->log_level = SGK_LOG_DEBUG;
        } else if (strcmp(arg, "--set") == 0) {
            if (i + 1 >= argc)
                return sgk_error(SGK_ERR_USAGE, "--set needs an argument SECTION.KEY=VALUE");
            opts->overrides[opts->n_overrides++] = argv[++i];
        } else if (strncmp(arg, "--set=", 6) == 0) {
            opts->overrides[opts->n_overrides++] = arg + 6;
        } else if (strcmp(arg, "--restart") == 0 || strncmp(arg, "--restart=", 10) == 0) {
            return sgk_error(SGK_ERR_USAGE,
                             "--restart is not available in this version; rerun the experiment");
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
static sgk_status resolve_config(const options *opts, sgk_config *config)
{
    sgk_config_defaults(config);
    if (opts->config_path) SGK_CHECK(sgk_config_load_file(config, opts->config_path));
    for (int i = 0; i < opts->n_overrides; i++)
        SGK_CHECK(sgk_config_override(config, opts->overrides[i]));
    return sgk_config_validate(config);
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

/* Rough peak memory of one rank in bytes: the partial kernel and input Gram (N x N each),
 * the tangent factors and work buffers of N points, stored outputs, and the local part of
 * the distributed kernel with its eigen-solver copies. */
static double estimate_memory_bytes(const sgk_config *config, const sgk_dataset *data,
                                    int n_ranks)
{
    double n = (double)data->n_samples;
    double widths = data->n_features + data->n_outputs;
    double replicas_per_rank = ceil((double)config->ensemble.replicas / n_ranks);

    for (int l = 0; l < config->model.n_hidden; l++) widths += config->model.widths[l];
    return 8.0 * (2.0 * n * n + n * widths * (3.0 + data->n_outputs)
                  + replicas_per_rank * config->kernel.checkpoints * n * data->n_outputs
                  + 4.0 * n * n / n_ranks);
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
    status = sgk_output_write(temporary, config, data, results, grid, info);
    if (status != SGK_OK) return status;
    if (grid->rank == 0 && rename(temporary, path) != 0) {
        failed = 1;
        sgk_error(SGK_ERR_IO, "cannot rename '%s' to '%s': %s", temporary, path, strerror(errno));
    }
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, grid->comm);
    if (any_failed && !failed) sgk_error(SGK_ERR_IO, "rank 0 could not rename the output file");
    return any_failed ? SGK_ERR_IO : SGK_OK;
}

/* Collective. Print the error once and leave. Rank 0 prints when it holds a message
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

int main(int argc, char **argv)
{
    options opts;
    sgk_config config;
    sgk_dataset data;
    sgk_grid grid;
    sgk_results results;
    sgk_run_info info;
    char start_time[32], host[256];
    char *config_ini = NULL, *command_line = NULL;
    time_t now = time(NULL);
    int rank, n_ranks;
    sgk_status status;
    double start, data_seconds;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    strftime(start_time, sizeof start_time, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

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
    status = resolve_config(&opts, &config);
    if (status != SGK_OK) {
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        MPI_Finalize();
        return (int)status;
    }
    sgk_log(SGK_LOG_INFO, "sgk-ensemble %s on %d ranks, configuration %s", sgk_version(), n_ranks,
            opts.config_path ? opts.config_path : "built-in default");

    /* 2. Data: rank 0 reads and broadcasts. */
    start = sgk_seconds();
    status = sgk_dataset_load(&config, MPI_COMM_WORLD, &data);
    data_seconds = sgk_seconds() - start;
    if (status != SGK_OK) {
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        MPI_Finalize();
        return (int)status;
    }
    sgk_log(SGK_LOG_INFO, "data: %ld train, %ld test, %ld ood points, %d features, %d outputs",
            data.n_train, data.n_test, data.n_ood, data.n_features, data.n_outputs);
    if (config.train.batch_size > data.n_train) {
        sgk_error(SGK_ERR_USAGE, "[train] batch_size = %ld exceeds the %ld training points",
                  config.train.batch_size, data.n_train);
        sgk_log(SGK_LOG_ERROR, "%s", sgk_error_message());
        sgk_dataset_free(&data);
        MPI_Finalize();
        return SGK_ERR_USAGE;
    }
    if (opts.dry_run) {
        sgk_log(SGK_LOG_INFO, "dry run: configuration and data are valid; estimated peak memory "
                "per rank %.3g MB; output would go to %s",
                estimate_memory_bytes(&config, &data, n_ranks) / 1e6, config.output.file);
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
    status = sgk_run_experiment(&config, &data, &grid, &results);
    results.phase_seconds[SGK_PHASE_DATA] = data_seconds;

    /* 4. Output. */
    if (status == SGK_OK) {
        double output_start = sgk_seconds();
        config_ini = sgk_config_to_ini(&config);
        command_line = join_arguments(argc, argv);
        if (gethostname(host, sizeof host) != 0) strcpy(host, "unknown");
        host[sizeof host - 1] = '\0';
        info = (sgk_run_info){ config_ini ? config_ini : "", command_line ? command_line : "",
                               start_time, host };
        status = write_output(&config, &data, &results, &grid, &info);
        results.phase_seconds[SGK_PHASE_OUTPUT] = sgk_seconds() - output_start;
        if (status == SGK_OK) {
            sgk_log(SGK_LOG_INFO, "wrote %s", config.output.file);
            for (int p = 0; p < SGK_N_PHASES; p++)
                sgk_log(SGK_LOG_INFO, "wall_time_%s = %.3f s", sgk_phase_name(p),
                        results.phase_seconds[p]);
        }
    }
    free(config_ini);
    free(command_line);
    free(opts.overrides);
    sgk_results_free(&results);
    sgk_dataset_free(&data);
    sgk_grid_free(&grid);
    return finish(status);
}
