/* Tests of the NetCDF-4 output module. MPI test: run at 1, 2, 3 and 4 ranks.
 *
 * Every rank writes a small fake run with sgk_output_write. Rank 0 then reopens
 * the file with the serial API and checks every dimension, variable and required
 * attribute against values computed here. The kernel is built by hand on a BLACS
 * grid, so these tests do not depend on the kernel module. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <mpi.h>
#include <netcdf.h>

#include "sgk/sgk.h"
#include "mpi_test.h"

/* BLACS and ScaLAPACK tools; ScaLAPACK ships no C header for them. */
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cfree_blacs_system_handle(int handle);
extern void Cblacs_gridinit(int *context, const char *order, int n_prow, int n_pcol);
extern void Cblacs_gridinfo(int context, int *n_prow, int *n_pcol, int *my_prow, int *my_pcol);
extern void Cblacs_gridexit(int context);
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);

#define N_FEATURES 3
#define N_OUTPUTS 2
#define N_REPLICAS 3
#define N_CHECKPOINTS 4
#define RETRIEVAL_LENGTH 2
#define CONFIG_TEXT "[data]\nsource = teacher\n[kernel]\nblock_size = 2\n"
#define COMMAND_LINE "sgk-ensemble --set kernel.block_size=2 test.ini"
#define START_TIME "2026-01-02T03:04:05Z"
#define DATA_SEED UINT64_C(18446744073709551557) /* above INT64_MAX: checks unsigned storage */
#define ENSEMBLE_SEED UINT64_C(2026)

static int world_rank, world_size;
static char work_dir[256];

/* Element values. Every value is exactly representable and distinct, and sgk is
 * not symmetric, so a transposed or misplaced block shows up as a mismatch. */
static double x_value(long i, int f) { return (double)i + 0.125 * f; }
static double y_value(long i, int o) { return -(double)i - 0.25 * o; }
static double kernel_value(long i, long j) { return 1000.0 * (double)i + (double)j + 0.5; }
static long step_value(int c) { return 10L * c; }
static double time_value(int c) { return 0.5 * c; }
static double loss_value(int r, int c) { return 1.0 / (1.0 + r + c); }
static double f_mean_value(int c, long i, int o) { return c + 0.0625 * (double)i + 0.5 * o; }
static double f_var_value(int c, long i, int o) { return 0.25 * c + 0.03125 * (double)i + o; }
static double phase_value(int phase, int rank) { return phase + 0.5 * rank; }
static double drift_value(long i, int o) { return 0.75 * (double)i - o; }
static double remainder_value(long i, int o) { return 0.015625 * (double)i + 0.25 * o; }
static double kernel_machine_value(long i, int o) { return 3.0 + (double)i + 0.125 * o; }
static int retrieval_index_value(long i, int k) { return (int)((i + k) % 3); }
static double retrieval_weight_value(long i, int k) { return 10.0 - (double)i - 0.5 * k; }
/* Analysis values; the eigenvalues differ from results->eigenvalues, which the
 * analysis replaces. */
static double analysis_eigenvalue(long j) { return 2.0 / (double)(j + 1); }
static double eigenvector_value(long i, long j) { return 100.0 * (double)i + (double)j + 0.25; }
static double coeff_value(long j, int o) { return 0.5 * (double)j - o; }
static double captured_value(long j, int o) { return (double)j + 0.125 * o; }
static double null_space_value(int o) { return 0.25 * o; }
static double remaining_value(int o) { return 0.5 + o; }
static double alignment_value(int o) { return 0.125 * (o + 1); }
static double centered_value(int o) { return -0.25 * (o + 1); }
static double residual_value(long i) { return (double)i / 64.0; }
static double point_error_value(long i) { return (double)(i % 2); }
static double replica_error_value(int r) { return 0.125 * r; }
#define N_EIG_ANALYSIS 3
#define COMPRESSION_LEVEL 4 /* any of 1..9: the values must read back exactly */
#define EFFECTIVE_RANK 3.5
#define TEST_ERROR_MEAN 0.375
#define CORRELATION (-0.5)
#define EIGEN_RESIDUAL 1e-14
#define TOLERANCE 1e-10
#define N_RETAINED 2

/* One fake run: what sgk_output_write receives, with arrays owned here. */
typedef struct {
    sgk_config config;
    sgk_dataset data;
    sgk_results results;
    sgk_grid grid;
    sgk_run_info info;
    char host[64];
    int blacs_handle;
} fake_run;

/* Collective. Create an n_prow x n_pcol BLACS grid over MPI_COMM_WORLD. */
static void make_grid(fake_run *run, int n_prow, int n_pcol)
{
    sgk_grid *grid = &run->grid;

    run->blacs_handle = Csys2blacs_handle(MPI_COMM_WORLD);
    grid->context = run->blacs_handle;
    Cblacs_gridinit(&grid->context, "Row", n_prow, n_pcol);
    Cblacs_gridinfo(grid->context, &grid->n_prow, &grid->n_pcol, &grid->my_prow, &grid->my_pcol);
    grid->comm = MPI_COMM_WORLD;
    grid->n_ranks = world_size;
    grid->rank = world_rank;
}

/* Fill this rank's part of an n x n block-cyclic matrix with kernel_value. */
static void make_kernel(fake_run *run, long n, int nb)
{
    sgk_dmatrix *kernel = &run->results.sgk;
    const sgk_grid *grid = &run->grid;
    int n_int = (int)n, zero = 0, li, lj;

    kernel->grid = grid;
    kernel->n = n;
    kernel->nb = nb;
    kernel->local_rows = numroc_(&n_int, &nb, &grid->my_prow, &zero, &grid->n_prow);
    kernel->local_cols = numroc_(&n_int, &nb, &grid->my_pcol, &zero, &grid->n_pcol);
    kernel->lld = kernel->local_rows > 1 ? kernel->local_rows : 1;
    kernel->local = NULL;
    if (kernel->local_rows == 0 || kernel->local_cols == 0) return;

    kernel->local = malloc(sizeof(double) * (size_t)kernel->lld * (size_t)kernel->local_cols);
    for (lj = 0; lj < kernel->local_cols; lj++) {
        long j = (long)((lj / nb) * grid->n_pcol + grid->my_pcol) * nb + lj % nb;
        for (li = 0; li < kernel->local_rows; li++) {
            long i = (long)((li / nb) * grid->n_prow + grid->my_prow) * nb + li % nb;
            kernel->local[li + (size_t)lj * kernel->lld] = kernel_value(i, j);
        }
    }
}

static void make_dataset(sgk_dataset *data, long n_train, long n_test, long n_ood)
{
    long n = n_train + n_test + n_ood, i;
    int f, o;

    data->n_samples = n;
    data->n_train = n_train;
    data->n_test = n_test;
    data->n_ood = n_ood;
    data->n_features = N_FEATURES;
    data->n_outputs = N_OUTPUTS;
    data->x = malloc(sizeof(double) * (size_t)(n * N_FEATURES));
    data->y = malloc(sizeof(double) * (size_t)(n * N_OUTPUTS));
    data->split = malloc(sizeof(int) * (size_t)n);
    data->label = malloc(sizeof(int) * (size_t)n);
    data->source_index = NULL;
    for (i = 0; i < n; i++) {
        for (f = 0; f < N_FEATURES; f++) data->x[i * N_FEATURES + f] = x_value(i, f);
        for (o = 0; o < N_OUTPUTS; o++) data->y[i * N_OUTPUTS + o] = y_value(i, o);
        data->split[i] = SGK_SPLIT_OOD;
        if (i < n_train + n_test) data->split[i] = SGK_SPLIT_TEST;
        if (i < n_train) data->split[i] = SGK_SPLIT_TRAIN;
        data->label[i] = i % 3 == 2 ? -1 : (int)(i % 5);
    }
}

/* Fill the per-run results; the rank-0-only arrays stay NULL on other ranks, as
 * in sgk_results. */
static void make_results(fake_run *run)
{
    sgk_results *results = &run->results;
    const long n = run->data.n_samples;
    int c, r, o, phase;
    long i;

    results->n_checkpoints = N_CHECKPOINTS;
    results->n_replicas = N_REPLICAS;
    results->checkpoint_step = malloc(sizeof(long) * N_CHECKPOINTS);
    results->checkpoint_time = malloc(sizeof(double) * N_CHECKPOINTS);
    results->quadrature_weight = malloc(sizeof(double) * N_CHECKPOINTS);
    for (c = 0; c < N_CHECKPOINTS; c++) {
        results->checkpoint_step[c] = step_value(c);
        results->checkpoint_time[c] = time_value(c);
        results->quadrature_weight[c] = c == 0 || c == N_CHECKPOINTS - 1 ? 0.25 : 0.5;
    }
    results->has_drift = 1; /* set on every rank, the arrays on rank 0 only */
    results->n_eig = run->data.n_train;
    results->eigenvalues = malloc(sizeof(double) * (size_t)results->n_eig);
    for (i = 0; i < results->n_eig; i++) results->eigenvalues[i] = 1.0 / (double)(i + 1);
    for (phase = 0; phase < SGK_N_PHASES; phase++)
        results->phase_seconds[phase] = phase_value(phase, world_rank);
    if (world_rank != 0) return;

    results->loss_train = malloc(sizeof(double) * N_REPLICAS * N_CHECKPOINTS);
    results->loss_test = malloc(sizeof(double) * N_REPLICAS * N_CHECKPOINTS);
    for (r = 0; r < N_REPLICAS; r++)
        for (c = 0; c < N_CHECKPOINTS; c++) {
            results->loss_train[r * N_CHECKPOINTS + c] = loss_value(r, c);
            results->loss_test[r * N_CHECKPOINTS + c] = c == 1 ? NAN : 2.0 * loss_value(r, c);
        }
    results->has_drift = 1;
    results->retrieval_length = RETRIEVAL_LENGTH;
    results->drift = malloc(sizeof(double) * (size_t)n * N_OUTPUTS);
    results->remainder = malloc(sizeof(double) * (size_t)n * N_OUTPUTS);
    results->kernel_machine = malloc(sizeof(double) * (size_t)n * N_OUTPUTS);
    results->retrieval_index = malloc(sizeof(int) * (size_t)n * RETRIEVAL_LENGTH);
    results->retrieval_weight = malloc(sizeof(double) * (size_t)n * RETRIEVAL_LENGTH);
    for (i = 0; i < n; i++) {
        for (o = 0; o < N_OUTPUTS; o++) {
            results->drift[i * N_OUTPUTS + o] = drift_value(i, o);
            results->remainder[i * N_OUTPUTS + o] = remainder_value(i, o);
            results->kernel_machine[i * N_OUTPUTS + o] = kernel_machine_value(i, o);
        }
        for (r = 0; r < RETRIEVAL_LENGTH; r++) {
            results->retrieval_index[i * RETRIEVAL_LENGTH + r] = retrieval_index_value(i, r);
            results->retrieval_weight[i * RETRIEVAL_LENGTH + r] = retrieval_weight_value(i, r);
        }
    }
    results->f_mean = malloc(sizeof(double) * N_CHECKPOINTS * (size_t)n * N_OUTPUTS);
    results->f_var = malloc(sizeof(double) * N_CHECKPOINTS * (size_t)n * N_OUTPUTS);
    for (c = 0; c < N_CHECKPOINTS; c++)
        for (i = 0; i < n; i++)
            for (o = 0; o < N_OUTPUTS; o++) {
                results->f_mean[(c * n + i) * N_OUTPUTS + o] = f_mean_value(c, i, o);
                results->f_var[(c * n + i) * N_OUTPUTS + o] = f_var_value(c, i, o);
            }
}

/* Collective. Build a complete fake run of n_train + n_test + n_ood points with
 * kernel block size nb on an n_prow x n_pcol grid. */
static void make_run(fake_run *run, long n_train, long n_test, long n_ood, int nb, int n_prow,
                     int n_pcol)
{
    memset(run, 0, sizeof *run);
    run->config.data.seed = DATA_SEED;
    run->config.ensemble.seed = ENSEMBLE_SEED;
    run->config.kernel.block_size = nb;
    make_grid(run, n_prow, n_pcol);
    make_dataset(&run->data, n_train, n_test, n_ood);
    make_results(run);
    make_kernel(run, run->data.n_samples, nb);
    /* Each rank passes its own host name, and the file must store rank 0's. */
    snprintf(run->host, sizeof run->host, "node-%d", world_rank);
    run->info.config_ini = CONFIG_TEXT;
    run->info.command_line = COMMAND_LINE;
    run->info.start_time = START_TIME;
    run->info.host = run->host;
}

static void free_run(fake_run *run)
{
    free(run->data.x);
    free(run->data.y);
    free(run->data.split);
    free(run->data.label);
    free(run->results.checkpoint_step);
    free(run->results.checkpoint_time);
    free(run->results.quadrature_weight);
    free(run->results.loss_train);
    free(run->results.loss_test);
    free(run->results.f_mean);
    free(run->results.f_var);
    free(run->results.eigenvalues);
    free(run->results.drift);
    free(run->results.remainder);
    free(run->results.kernel_machine);
    free(run->results.retrieval_index);
    free(run->results.retrieval_weight);
    free(run->results.sgk.local);
    Cblacs_gridexit(run->grid.context);
    Cfree_blacs_system_handle(run->blacs_handle);
}

/* The default shape of sgk_grid_create: n_prow <= n_pcol, as square as possible. */
static void default_shape(int *n_prow, int *n_pcol)
{
    int p = 1, d;

    for (d = 1; d * d <= world_size; d++)
        if (world_size % d == 0) p = d;
    *n_prow = p;
    *n_pcol = world_size / p;
}

static void output_path(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", work_dir, name);
}

/* ---- Reading helpers, rank 0 only ------------------------------------------ */

static void check_dim(int ncid, const char *name, size_t expected)
{
    int dimid = -1;
    size_t length = 0;

    CU_ASSERT_EQUAL(nc_inq_dimid(ncid, name, &dimid), NC_NOERR);
    CU_ASSERT_EQUAL(nc_inq_dimlen(ncid, dimid, &length), NC_NOERR);
    CU_ASSERT_EQUAL(length, expected);
}

static void check_text_att(int ncid, int varid, const char *name, const char *expected)
{
    size_t length = 0;
    nc_type type = NC_NAT;
    char *text;

    if (nc_inq_att(ncid, varid, name, &type, &length) != NC_NOERR) {
        CU_FAIL("a required text attribute is missing");
        fprintf(stderr, "missing attribute %s on varid %d\n", name, varid);
        return;
    }
    CU_ASSERT_EQUAL(type, NC_CHAR);
    text = calloc(length + 1, 1);
    CU_ASSERT_EQUAL(nc_get_att_text(ncid, varid, name, text), NC_NOERR);
    if (expected) {
        CU_ASSERT_STRING_EQUAL(text, expected);
    } else {
        CU_ASSERT(length > 0);
    }
    free(text);
}

/* Check a variable's type, dimension names and the attributes every contract
 * variable carries; return its id, or -1 when it is missing. */
static int check_var(int ncid, const char *name, nc_type type, int n_dims, const char *const *dims,
                     int has_units)
{
    int varid = -1, actual_dims = -1, dimids[NC_MAX_VAR_DIMS], d;
    nc_type actual_type = NC_NAT;
    char dim_name[NC_MAX_NAME + 1];

    if (nc_inq_varid(ncid, name, &varid) != NC_NOERR) {
        CU_FAIL("a contract variable is missing");
        fprintf(stderr, "missing variable %s\n", name);
        return -1;
    }
    CU_ASSERT_EQUAL(nc_inq_var(ncid, varid, NULL, &actual_type, &actual_dims, dimids, NULL),
                    NC_NOERR);
    CU_ASSERT_EQUAL(actual_type, type);
    CU_ASSERT_EQUAL(actual_dims, n_dims);
    for (d = 0; d < n_dims && d < actual_dims; d++) {
        CU_ASSERT_EQUAL(nc_inq_dimname(ncid, dimids[d], dim_name), NC_NOERR);
        CU_ASSERT_STRING_EQUAL(dim_name, dims[d]);
    }
    check_text_att(ncid, varid, "long_name", NULL);
    check_text_att(ncid, varid, "description", NULL);
    if (has_units) check_text_att(ncid, varid, "units", NULL);
    return varid;
}

static double *read_doubles(int ncid, int varid, size_t count)
{
    double *values = malloc(sizeof(double) * count);

    CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, values), NC_NOERR);
    return values;
}

static void check_dataset_vars(int ncid, const sgk_dataset *data)
{
    static const char *const x_dims[] = {"sample", "feature"};
    static const char *const y_dims[] = {"sample", "output"};
    static const char *const sample_dim[] = {"sample"};
    const long n = data->n_samples;
    int varid, *ints, flags[3] = {-1, -1, -1}, f, o;
    double *values;
    long i;

    if ((varid = check_var(ncid, "x", NC_DOUBLE, 2, x_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * N_FEATURES));
        for (i = 0; i < n; i++)
            for (f = 0; f < N_FEATURES; f++) CU_ASSERT_EQUAL(values[i * N_FEATURES + f], x_value(i, f));
        free(values);
    }
    if ((varid = check_var(ncid, "y", NC_DOUBLE, 2, y_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * N_OUTPUTS));
        for (i = 0; i < n; i++)
            for (o = 0; o < N_OUTPUTS; o++) CU_ASSERT_EQUAL(values[i * N_OUTPUTS + o], y_value(i, o));
        free(values);
    }
    ints = malloc(sizeof(int) * (size_t)n);
    if ((varid = check_var(ncid, "split", NC_INT, 1, sample_dim, 0)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_int(ncid, varid, ints), NC_NOERR);
        /* Literal codes, so a wrong SGK_SPLIT_* value would show up too. */
        for (i = 0; i < data->n_train; i++) CU_ASSERT_EQUAL(ints[i], 0);
        for (; i < data->n_train + data->n_test; i++) CU_ASSERT_EQUAL(ints[i], 1);
        for (; i < n; i++) CU_ASSERT_EQUAL(ints[i], 2);
        CU_ASSERT_EQUAL(nc_get_att_int(ncid, varid, "flag_values", flags), NC_NOERR);
        CU_ASSERT(flags[0] == 0 && flags[1] == 1 && flags[2] == 2);
        check_text_att(ncid, varid, "flag_meanings", "train test ood");
    }
    if ((varid = check_var(ncid, "label", NC_INT, 1, sample_dim, 0)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_int(ncid, varid, ints), NC_NOERR);
        for (i = 0; i < n; i++) CU_ASSERT_EQUAL(ints[i], i % 3 == 2 ? -1 : (int)(i % 5));
    }
    free(ints);
}

static void check_checkpoint_vars(int ncid)
{
    static const char *const checkpoint_dim[] = {"checkpoint"};
    long long steps[N_CHECKPOINTS];
    double values[N_CHECKPOINTS];
    int varid, c;

    if ((varid = check_var(ncid, "checkpoint_step", NC_INT64, 1, checkpoint_dim, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_longlong(ncid, varid, steps), NC_NOERR);
        for (c = 0; c < N_CHECKPOINTS; c++) CU_ASSERT_EQUAL(steps[c], step_value(c));
    }
    if ((varid = check_var(ncid, "checkpoint_time", NC_DOUBLE, 1, checkpoint_dim, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, values), NC_NOERR);
        for (c = 0; c < N_CHECKPOINTS; c++) CU_ASSERT_EQUAL(values[c], time_value(c));
        check_text_att(ncid, varid, "units", "diffusion time (sum of learning rates)");
    }
    if ((varid = check_var(ncid, "quadrature_weight", NC_DOUBLE, 1, checkpoint_dim, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, values), NC_NOERR);
        for (c = 0; c < N_CHECKPOINTS; c++)
            CU_ASSERT_EQUAL(values[c], c == 0 || c == N_CHECKPOINTS - 1 ? 0.25 : 0.5);
    }
}

static void check_loss_vars(int ncid)
{
    static const char *const dims[] = {"replica", "checkpoint"};
    double values[N_REPLICAS * N_CHECKPOINTS];
    int varid, r, c;

    if ((varid = check_var(ncid, "loss_train", NC_DOUBLE, 2, dims, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, values), NC_NOERR);
        for (r = 0; r < N_REPLICAS; r++)
            for (c = 0; c < N_CHECKPOINTS; c++)
                CU_ASSERT_EQUAL(values[r * N_CHECKPOINTS + c], loss_value(r, c));
    }
    if ((varid = check_var(ncid, "loss_test", NC_DOUBLE, 2, dims, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, values), NC_NOERR);
        for (r = 0; r < N_REPLICAS; r++)
            for (c = 0; c < N_CHECKPOINTS; c++) {
                if (c == 1) {
                    CU_ASSERT(isnan(values[r * N_CHECKPOINTS + c]));
                } else {
                    CU_ASSERT_EQUAL(values[r * N_CHECKPOINTS + c], 2.0 * loss_value(r, c));
                }
            }
    }
}

/* f_var is checked only when `with_variance` is set. */
static void check_output_vars(int ncid, long n, int with_variance)
{
    static const char *const dims[] = {"checkpoint", "sample", "output"};
    const size_t count = (size_t)(N_CHECKPOINTS * n * N_OUTPUTS);
    double *values;
    int varid, c, o;
    long i;

    if ((varid = check_var(ncid, "f_mean", NC_DOUBLE, 3, dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, count);
        for (c = 0; c < N_CHECKPOINTS; c++)
            for (i = 0; i < n; i++)
                for (o = 0; o < N_OUTPUTS; o++)
                    CU_ASSERT_EQUAL(values[(c * n + i) * N_OUTPUTS + o], f_mean_value(c, i, o));
        free(values);
    }
    if (with_variance && (varid = check_var(ncid, "f_var", NC_DOUBLE, 3, dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, count);
        for (c = 0; c < N_CHECKPOINTS; c++)
            for (i = 0; i < n; i++)
                for (o = 0; o < N_OUTPUTS; o++)
                    CU_ASSERT_EQUAL(values[(c * n + i) * N_OUTPUTS + o], f_var_value(c, i, o));
        free(values);
    }
}

static void check_kernel_vars(int ncid, long n, long n_eig, int nb)
{
    static const char *const sgk_dims[] = {"sample", "sample"};
    static const char *const eig_dim[] = {"eig"};
    size_t chunk[2] = {0, 0};
    int varid, storage = -1, wrong = 0;
    double *values;
    long i, j;

    if ((varid = check_var(ncid, "sgk", NC_DOUBLE, 2, sgk_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * n));
        for (i = 0; i < n; i++)
            for (j = 0; j < n; j++)
                if (values[i * n + j] != kernel_value(i, j)) wrong++;
        CU_ASSERT_EQUAL(wrong, 0);
        free(values);
        CU_ASSERT_EQUAL(nc_inq_var_chunking(ncid, varid, &storage, chunk), NC_NOERR);
        CU_ASSERT_EQUAL(storage, NC_CHUNKED);
        CU_ASSERT_EQUAL(chunk[0], (size_t)(nb < n ? nb : n));
        CU_ASSERT_EQUAL(chunk[1], (size_t)(nb < n ? nb : n));
    }
    if ((varid = check_var(ncid, "eigenvalues", NC_DOUBLE, 1, eig_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)n_eig);
        for (i = 0; i < n_eig; i++) CU_ASSERT_EQUAL(values[i], 1.0 / (double)(i + 1));
        free(values);
    }
}

static void check_drift_vars(int ncid, long n)
{
    static const char *const output_dims[] = {"sample", "output"};
    static const char *const retrieval_dims[] = {"sample", "rank_k"};
    double *values;
    int varid, o, k, *indices;
    long i;

    if ((varid = check_var(ncid, "drift", NC_DOUBLE, 2, output_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * N_OUTPUTS));
        for (i = 0; i < n; i++)
            for (o = 0; o < N_OUTPUTS; o++)
                CU_ASSERT_EQUAL(values[i * N_OUTPUTS + o], drift_value(i, o));
        free(values);
    }
    if ((varid = check_var(ncid, "remainder", NC_DOUBLE, 2, output_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * N_OUTPUTS));
        for (i = 0; i < n; i++)
            for (o = 0; o < N_OUTPUTS; o++)
                CU_ASSERT_EQUAL(values[i * N_OUTPUTS + o], remainder_value(i, o));
        free(values);
    }
    if ((varid = check_var(ncid, "kernel_machine", NC_DOUBLE, 2, output_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * N_OUTPUTS));
        for (i = 0; i < n; i++)
            for (o = 0; o < N_OUTPUTS; o++)
                CU_ASSERT_EQUAL(values[i * N_OUTPUTS + o], kernel_machine_value(i, o));
        free(values);
    }
    if ((varid = check_var(ncid, "retrieval_index", NC_INT, 2, retrieval_dims, 0)) >= 0) {
        indices = malloc(sizeof(int) * (size_t)n * RETRIEVAL_LENGTH);
        CU_ASSERT_EQUAL(nc_get_var_int(ncid, varid, indices), NC_NOERR);
        for (i = 0; i < n; i++)
            for (k = 0; k < RETRIEVAL_LENGTH; k++)
                CU_ASSERT_EQUAL(indices[i * RETRIEVAL_LENGTH + k], retrieval_index_value(i, k));
        free(indices);
    }
    if ((varid = check_var(ncid, "retrieval_weight", NC_DOUBLE, 2, retrieval_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)(n * RETRIEVAL_LENGTH));
        for (i = 0; i < n; i++)
            for (k = 0; k < RETRIEVAL_LENGTH; k++)
                CU_ASSERT_EQUAL(values[i * RETRIEVAL_LENGTH + k], retrieval_weight_value(i, k));
        free(values);
    }
}

static void check_global_attributes(int ncid, int nb, int n_prow, int n_pcol)
{
    unsigned long long seed = 0;
    int n_ranks = 0, block_size = 0, phase;
    double seconds = -1.0;
    char name[64], grid_text[32];

    check_text_att(ncid, NC_GLOBAL, "program", "sgk-ensemble");
    check_text_att(ncid, NC_GLOBAL, "version", sgk_version());
    check_text_att(ncid, NC_GLOBAL, "configuration", CONFIG_TEXT);
    check_text_att(ncid, NC_GLOBAL, "Conventions", "CF-1.8");
    check_text_att(ncid, NC_GLOBAL, "host", "node-0");
    check_text_att(ncid, NC_GLOBAL, "start_time", START_TIME);
    check_text_att(ncid, NC_GLOBAL, "command_line", COMMAND_LINE);
    snprintf(grid_text, sizeof grid_text, "%dx%d", n_prow, n_pcol);
    check_text_att(ncid, NC_GLOBAL, "process_grid", grid_text);

    CU_ASSERT_EQUAL(nc_get_att_ulonglong(ncid, NC_GLOBAL, "data_seed", &seed), NC_NOERR);
    CU_ASSERT_EQUAL(seed, DATA_SEED);
    CU_ASSERT_EQUAL(nc_get_att_ulonglong(ncid, NC_GLOBAL, "ensemble_seed", &seed), NC_NOERR);
    CU_ASSERT_EQUAL(seed, ENSEMBLE_SEED);
    CU_ASSERT_EQUAL(nc_get_att_int(ncid, NC_GLOBAL, "n_ranks", &n_ranks), NC_NOERR);
    CU_ASSERT_EQUAL(n_ranks, world_size);
    CU_ASSERT_EQUAL(nc_get_att_int(ncid, NC_GLOBAL, "block_size", &block_size), NC_NOERR);
    CU_ASSERT_EQUAL(block_size, nb);
    /* Phase times are the maximum over ranks, which is the last rank's here. */
    for (phase = 0; phase < SGK_N_PHASES; phase++) {
        snprintf(name, sizeof name, "wall_time_%s", sgk_phase_name(phase));
        CU_ASSERT_EQUAL(nc_get_att_double(ncid, NC_GLOBAL, name, &seconds), NC_NOERR);
        CU_ASSERT_EQUAL(seconds, phase_value(phase, world_size - 1));
    }
}

/* Rank 0 only. Reopen `path` and check everything that `run` wrote. */
static void check_file(const char *path, const fake_run *run)
{
    const sgk_dataset *data = &run->data;
    int ncid;

    if (nc_open(path, NC_NOWRITE, &ncid) != NC_NOERR) {
        CU_FAIL("output file cannot be reopened");
        return;
    }
    check_dim(ncid, "sample", (size_t)data->n_samples);
    check_dim(ncid, "train", (size_t)data->n_train);
    check_dim(ncid, "output", N_OUTPUTS);
    check_dim(ncid, "feature", N_FEATURES);
    check_dim(ncid, "replica", N_REPLICAS);
    check_dim(ncid, "checkpoint", N_CHECKPOINTS);
    check_dim(ncid, "eig", (size_t)run->results.n_eig);
    check_dim(ncid, "rank_k", RETRIEVAL_LENGTH);
    check_dataset_vars(ncid, data);
    check_checkpoint_vars(ncid);
    check_loss_vars(ncid);
    check_output_vars(ncid, data->n_samples, 1);
    check_kernel_vars(ncid, data->n_samples, run->results.n_eig, run->results.sgk.nb);
    check_drift_vars(ncid, data->n_samples);
    check_global_attributes(ncid, run->results.sgk.nb, run->grid.n_prow, run->grid.n_pcol);
    CU_ASSERT_EQUAL(nc_close(ncid), NC_NOERR);
}

/* Collective. Fill `analysis` for `run` with the value functions above: k =
 * N_EIG_ANALYSIS eigenpairs, eigenvectors on the run's grid when with_vectors, and
 * the generalization numbers on rank 0 when with_generalization. */
static void make_analysis(const fake_run *run, int with_vectors, int with_generalization,
                          sgk_analysis *analysis)
{
    const long n = run->data.n_train, n_samples = run->data.n_samples;
    const int nb = run->results.sgk.nb;
    sgk_dmatrix *v = &analysis->vectors;
    long i, j;
    int o, r;

    memset(analysis, 0, sizeof *analysis);
    analysis->n_train = n;
    analysis->n_samples = n_samples;
    analysis->n_outputs = N_OUTPUTS;
    analysis->n_eig = N_EIG_ANALYSIS;
    analysis->tolerance = TOLERANCE;
    analysis->eigen_residual = EIGEN_RESIDUAL;
    analysis->n_retained = N_RETAINED;
    analysis->effective_rank = EFFECTIVE_RANK;
    analysis->eigenvalues = malloc(sizeof(double) * N_EIG_ANALYSIS);
    analysis->target_coeff = malloc(sizeof(double) * N_EIG_ANALYSIS * N_OUTPUTS);
    analysis->captured_energy = malloc(sizeof(double) * N_EIG_ANALYSIS * N_OUTPUTS);
    analysis->null_space_energy = malloc(sizeof(double) * N_OUTPUTS);
    analysis->remaining_energy = malloc(sizeof(double) * N_OUTPUTS);
    analysis->alignment = malloc(sizeof(double) * N_OUTPUTS);
    analysis->alignment_centered = malloc(sizeof(double) * N_OUTPUTS);
    analysis->memory_residual = malloc(sizeof(double) * (size_t)n_samples);
    for (j = 0; j < N_EIG_ANALYSIS; j++) {
        analysis->eigenvalues[j] = analysis_eigenvalue(j);
        for (o = 0; o < N_OUTPUTS; o++) {
            analysis->target_coeff[j * N_OUTPUTS + o] = coeff_value(j, o);
            analysis->captured_energy[j * N_OUTPUTS + o] = captured_value(j, o);
        }
    }
    for (o = 0; o < N_OUTPUTS; o++) {
        analysis->null_space_energy[o] = null_space_value(o);
        analysis->remaining_energy[o] = remaining_value(o);
        analysis->alignment[o] = alignment_value(o);
        analysis->alignment_centered[o] = centered_value(o);
    }
    for (i = 0; i < n_samples; i++) analysis->memory_residual[i] = residual_value(i);

    /* An n x n block-cyclic matrix whose first k columns hold eigenvector_value. */
    analysis->has_vectors = with_vectors;
    if (with_vectors) {
        const sgk_grid *grid = &run->grid;
        int n_int = (int)n, zero = 0, li, lj;

        v->grid = grid;
        v->n = n;
        v->nb = nb;
        v->local_rows = numroc_(&n_int, &nb, &grid->my_prow, &zero, &grid->n_prow);
        v->local_cols = numroc_(&n_int, &nb, &grid->my_pcol, &zero, &grid->n_pcol);
        v->lld = v->local_rows > 1 ? v->local_rows : 1;
        if (v->local_rows > 0 && v->local_cols > 0)
            v->local = malloc(sizeof(double) * (size_t)v->lld * (size_t)v->local_cols);
        for (lj = 0; v->local && lj < v->local_cols; lj++) {
            long col = (long)((lj / nb) * grid->n_pcol + grid->my_pcol) * nb + lj % nb;
            for (li = 0; li < v->local_rows; li++) {
                long row = (long)((li / nb) * grid->n_prow + grid->my_prow) * nb + li % nb;
                v->local[li + (size_t)lj * v->lld] =
                    col < N_EIG_ANALYSIS ? eigenvector_value(row, col) : 0.0;
            }
        }
    }

    analysis->has_generalization = with_generalization;
    analysis->residual_error_correlation = CORRELATION;
    if (with_generalization && world_rank == 0) {
        sgk_generalization *g = &analysis->generalization;

        g->kind = SGK_ERROR_ARGMAX;
        g->n_test = run->data.n_test;
        g->test_error_mean = TEST_ERROR_MEAN;
        g->n_replicas = N_REPLICAS;
        g->test_error_replica = malloc(sizeof(double) * N_REPLICAS);
        g->point_error = malloc(sizeof(double) * (size_t)n_samples);
        for (r = 0; r < N_REPLICAS; r++) g->test_error_replica[r] = replica_error_value(r);
        for (i = 0; i < n_samples; i++)
            g->point_error[i] = run->data.split[i] == SGK_SPLIT_OOD ? NAN : point_error_value(i);
    }
}

/* Rank 0 only. Check the values of sgk next to the parallel-written eigenvectors. */
static void check_kernel_values(int ncid, long n)
{
    int varid = -1, wrong = 0;
    double *values;
    long i, j;

    CU_ASSERT_EQUAL_FATAL(nc_inq_varid(ncid, "sgk", &varid), NC_NOERR);
    values = read_doubles(ncid, varid, (size_t)(n * n));
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            if (values[i * n + j] != kernel_value(i, j)) wrong++;
    CU_ASSERT_EQUAL(wrong, 0);
    free(values);
}

/* Rank 0 only. Check the analysis variables and attributes of an open file. */
static void check_analysis_vars(int ncid, const fake_run *run, int with_vectors,
                                int with_generalization)
{
    static const char *const eig_dim[] = {"eig"};
    static const char *const vector_dims[] = {"train", "eig"};
    static const char *const eig_output_dims[] = {"eig", "output"};
    static const char *const output_dim[] = {"output"};
    static const char *const sample_dim[] = {"sample"};
    static const char *const replica_dim[] = {"replica"};
    const long n = run->data.n_train, n_samples = run->data.n_samples;
    double *values, scalar = 0.0;
    long long retained = 0;
    int varid, id, o, r, wrong = 0;
    long i, j;

    check_dim(ncid, "eig", N_EIG_ANALYSIS);
    if ((varid = check_var(ncid, "eigenvalues", NC_DOUBLE, 1, eig_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_EIG_ANALYSIS);
        for (j = 0; j < N_EIG_ANALYSIS; j++) CU_ASSERT_EQUAL(values[j], analysis_eigenvalue(j));
        free(values);
        check_text_att(ncid, varid, "solver", "ScaLAPACK PDSYEVR, largest eigenpairs");
        CU_ASSERT_EQUAL(nc_get_att_double(ncid, varid, "max_residual", &scalar), NC_NOERR);
        CU_ASSERT_EQUAL(scalar, EIGEN_RESIDUAL);
    }
    if (with_vectors) {
        if ((varid = check_var(ncid, "eigenvectors", NC_DOUBLE, 2, vector_dims, 1)) >= 0) {
            values = read_doubles(ncid, varid, (size_t)(n * N_EIG_ANALYSIS));
            for (i = 0; i < n; i++)
                for (j = 0; j < N_EIG_ANALYSIS; j++)
                    if (values[i * N_EIG_ANALYSIS + j] != eigenvector_value(i, j)) wrong++;
            CU_ASSERT_EQUAL(wrong, 0);
            free(values);
        }
    } else {
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "eigenvectors", &id), NC_ENOTVAR);
    }
    if ((varid = check_var(ncid, "target_coeff", NC_DOUBLE, 2, eig_output_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_EIG_ANALYSIS * N_OUTPUTS);
        for (j = 0; j < N_EIG_ANALYSIS; j++)
            for (o = 0; o < N_OUTPUTS; o++)
                CU_ASSERT_EQUAL(values[j * N_OUTPUTS + o], coeff_value(j, o));
        free(values);
    }
    if ((varid = check_var(ncid, "captured_energy", NC_DOUBLE, 2, eig_output_dims, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_EIG_ANALYSIS * N_OUTPUTS);
        for (j = 0; j < N_EIG_ANALYSIS; j++)
            for (o = 0; o < N_OUTPUTS; o++)
                CU_ASSERT_EQUAL(values[j * N_OUTPUTS + o], captured_value(j, o));
        free(values);
    }
    if ((varid = check_var(ncid, "null_space_energy", NC_DOUBLE, 1, output_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_OUTPUTS);
        for (o = 0; o < N_OUTPUTS; o++) CU_ASSERT_EQUAL(values[o], null_space_value(o));
        free(values);
        CU_ASSERT_EQUAL(nc_get_att_double(ncid, varid, "tolerance", &scalar), NC_NOERR);
        CU_ASSERT_EQUAL(scalar, TOLERANCE);
    }
    if ((varid = check_var(ncid, "remaining_energy", NC_DOUBLE, 1, output_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_OUTPUTS);
        for (o = 0; o < N_OUTPUTS; o++) CU_ASSERT_EQUAL(values[o], remaining_value(o));
        free(values);
    }
    if ((varid = check_var(ncid, "alignment", NC_DOUBLE, 1, output_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_OUTPUTS);
        for (o = 0; o < N_OUTPUTS; o++) CU_ASSERT_EQUAL(values[o], alignment_value(o));
        free(values);
    }
    if ((varid = check_var(ncid, "alignment_centered", NC_DOUBLE, 1, output_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_OUTPUTS);
        for (o = 0; o < N_OUTPUTS; o++) CU_ASSERT_EQUAL(values[o], centered_value(o));
        free(values);
    }
    if ((varid = check_var(ncid, "effective_rank", NC_DOUBLE, 0, NULL, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, &scalar), NC_NOERR);
        CU_ASSERT_EQUAL(scalar, EFFECTIVE_RANK);
    }
    if ((varid = check_var(ncid, "memory_residual", NC_DOUBLE, 1, sample_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)n_samples);
        for (i = 0; i < n_samples; i++) CU_ASSERT_EQUAL(values[i], residual_value(i));
        free(values);
        CU_ASSERT_EQUAL(nc_get_att_longlong(ncid, varid, "retained_eigenpairs", &retained),
                        NC_NOERR);
        CU_ASSERT_EQUAL(retained, N_RETAINED);
    }
    if (!with_generalization) {
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "point_error", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "test_error_mean", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "test_error_replica", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "residual_error_correlation", &id), NC_ENOTVAR);
        return;
    }
    if ((varid = check_var(ncid, "point_error", NC_DOUBLE, 1, sample_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, (size_t)n_samples);
        for (i = 0; i < n_samples; i++) {
            if (run->data.split[i] == SGK_SPLIT_OOD) {
                CU_ASSERT_TRUE(isnan(values[i]));
            } else {
                CU_ASSERT_EQUAL(values[i], point_error_value(i));
            }
        }
        free(values);
        check_text_att(ncid, varid, "error_kind", "argmax error rate");
    }
    if ((varid = check_var(ncid, "test_error_mean", NC_DOUBLE, 0, NULL, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, &scalar), NC_NOERR);
        CU_ASSERT_EQUAL(scalar, TEST_ERROR_MEAN);
        check_text_att(ncid, varid, "error_kind", "argmax error rate");
    }
    if ((varid = check_var(ncid, "test_error_replica", NC_DOUBLE, 1, replica_dim, 1)) >= 0) {
        values = read_doubles(ncid, varid, N_REPLICAS);
        for (r = 0; r < N_REPLICAS; r++) CU_ASSERT_EQUAL(values[r], replica_error_value(r));
        free(values);
    }
    if ((varid = check_var(ncid, "residual_error_correlation", NC_DOUBLE, 0, NULL, 1)) >= 0) {
        CU_ASSERT_EQUAL(nc_get_var_double(ncid, varid, &scalar), NC_NOERR);
        CU_ASSERT_EQUAL(scalar, CORRELATION);
    }
}

/* ---- Tests ----------------------------------------------------------------- */

/* Collective. Write a fake run and check the file on rank 0. */
static void write_and_check(long n_train, long n_test, long n_ood, int nb, int n_prow, int n_pcol,
                            const char *name)
{
    fake_run run;
    char path[512];
    sgk_status status;

    output_path(path, sizeof path, name);
    make_run(&run, n_train, n_test, n_ood, nb, n_prow, n_pcol);
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_OK);
    if (status != SGK_OK) fprintf(stderr, "[rank %d] %s\n", world_rank, sgk_error_message());
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0 && status == SGK_OK) {
        check_file(path, &run);
        remove(path);
    }
    free_run(&run);
}

static void test_n7_block2_default_grid(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check(4, 2, 1, 2, n_prow, n_pcol, "n7-default.nc");
}

/* A p x 1 grid puts several process rows under the same columns, the transpose of
 * the default shape. */
static void test_n7_block2_column_grid(void)
{
    write_and_check(4, 2, 1, 2, world_size, 1, "n7-column.nc");
}

/* One 2 x 2 block: every rank but one holds nothing and writes only zero-count blocks. */
static void test_n2_single_block(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check(1, 1, 0, 2, n_prow, n_pcol, "n2-block2.nc");
}

/* Block size 1 on a 2-point kernel: up to four ranks own one entry each. */
static void test_n2_block1(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check(1, 0, 1, 1, n_prow, n_pcol, "n2-block1.nc");
}

/* Results without the optional arrays: their variables and the eig and rank_k
 * dimensions are left out, and the rest of the file is still complete. */
static void test_optional_arrays_absent(void)
{
    fake_run run;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "absent.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    free(run.results.loss_test);
    free(run.results.f_var);
    free(run.results.eigenvalues);
    free(run.results.sgk.local);
    run.results.loss_test = run.results.f_var = run.results.eigenvalues = NULL;
    run.results.n_eig = 0;
    run.results.has_drift = 0; /* the drift arrays stay allocated but must be ignored */
    memset(&run.results.sgk, 0, sizeof run.results.sgk);

    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0 && status == SGK_OK) {
        int ncid, id;

        CU_ASSERT_EQUAL_FATAL(nc_open(path, NC_NOWRITE, &ncid), NC_NOERR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "loss_test", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "f_var", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "sgk", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "eigenvalues", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_dimid(ncid, "eig", &id), NC_EBADDIM);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "drift", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "remainder", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "kernel_machine", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "retrieval_index", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_varid(ncid, "retrieval_weight", &id), NC_ENOTVAR);
        CU_ASSERT_EQUAL(nc_inq_dimid(ncid, "rank_k", &id), NC_EBADDIM);
        check_dataset_vars(ncid, &run.data);
        check_checkpoint_vars(ncid);
        check_output_vars(ncid, run.data.n_samples, 0);
        CU_ASSERT_EQUAL(nc_close(ncid), NC_NOERR);
        remove(path);
    }
    free_run(&run);
}

/* Collective. Write a fake run with an analysis and check the analysis variables
 * on rank 0. */
static void write_and_check_analysis(int with_vectors, int with_generalization, int nb,
                                     int n_prow, int n_pcol, const char *name)
{
    fake_run run;
    sgk_analysis analysis;
    char path[512];
    sgk_status status;

    output_path(path, sizeof path, name);
    make_run(&run, 4, 2, 1, nb, n_prow, n_pcol);
    make_analysis(&run, with_vectors, with_generalization, &analysis);
    status = sgk_output_write_with_analysis(path, &run.config, &run.data, &run.results,
                                            &analysis, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_OK);
    if (status != SGK_OK) fprintf(stderr, "[rank %d] %s\n", world_rank, sgk_error_message());
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0 && status == SGK_OK) {
        int ncid;

        CU_ASSERT_EQUAL_FATAL(nc_open(path, NC_NOWRITE, &ncid), NC_NOERR);
        check_analysis_vars(ncid, &run, with_vectors, with_generalization);
        check_kernel_values(ncid, run.data.n_samples);
        check_dataset_vars(ncid, &run.data);
        CU_ASSERT_EQUAL(nc_close(ncid), NC_NOERR);
        remove(path);
    }
    sgk_analysis_free(&analysis);
    free_run(&run);
}

/* Every analysis variable, with eigenvectors written in parallel: block size 1 puts
 * the 4 x 3 eigenvector block on up to 4 ranks, block size 2 cuts the second block
 * column to one of its two columns, and a column grid stacks the process rows. */
static void test_analysis_variables(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check_analysis(1, 1, 1, n_prow, n_pcol, "analysis-b1.nc");
    write_and_check_analysis(1, 1, 2, n_prow, n_pcol, "analysis-b2.nc");
    write_and_check_analysis(1, 1, 2, world_size, 1, "analysis-column.nc");
}

/* Without eigenvectors and generalization, those variables are left out. */
static void test_analysis_optional_parts_absent(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check_analysis(0, 0, 2, n_prow, n_pcol, "analysis-bare.nc");
}

/* An analysis for another data set is rejected before the file exists. */
static void test_analysis_size_mismatch(void)
{
    fake_run run;
    sgk_analysis analysis;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "analysis-mismatch.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    make_analysis(&run, 1, 1, &analysis);
    analysis.n_train = 5;
    status = sgk_output_write_with_analysis(path, &run.config, &run.data, &run.results,
                                            &analysis, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "train = 5"));
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0) CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    sgk_error_clear();
    sgk_analysis_free(&analysis);
    free_run(&run);
}

/* Rank 0 only. Check that variable `name` is stored shuffled and deflated at
 * `level`, or with neither filter when level is 0. */
static void check_deflate(int ncid, const char *name, int level)
{
    int varid = -1, shuffle = -1, deflate = -1, actual_level = -1;

    CU_ASSERT_EQUAL_FATAL(nc_inq_varid(ncid, name, &varid), NC_NOERR);
    CU_ASSERT_EQUAL(nc_inq_var_deflate(ncid, varid, &shuffle, &deflate, &actual_level), NC_NOERR);
    CU_ASSERT_EQUAL(shuffle, level > 0);
    CU_ASSERT_EQUAL(deflate, level > 0);
    if (level > 0) CU_ASSERT_EQUAL(actual_level, level);
}

/* Collective. Write a fake run with [output] compression = COMPRESSION_LEVEL and
 * check on rank 0 that every value reads back exactly and that sgk, and the
 * eigenvectors when n_train allows an analysis, are deflated. */
static void write_and_check_compressed(long n_train, long n_test, long n_ood, int nb,
                                       int n_prow, int n_pcol, const char *name)
{
    const int with_analysis = n_train >= N_EIG_ANALYSIS;
    fake_run run;
    sgk_analysis analysis;
    char path[512];
    sgk_status status;

    output_path(path, sizeof path, name);
    make_run(&run, n_train, n_test, n_ood, nb, n_prow, n_pcol);
    run.config.output.compression = COMPRESSION_LEVEL;
    if (with_analysis) make_analysis(&run, 1, 1, &analysis);
    status = sgk_output_write_with_analysis(path, &run.config, &run.data, &run.results,
                                            with_analysis ? &analysis : NULL, &run.grid,
                                            &run.info);
    CU_ASSERT_EQUAL(status, SGK_OK);
    if (status != SGK_OK) fprintf(stderr, "[rank %d] %s\n", world_rank, sgk_error_message());
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0 && status == SGK_OK) {
        int ncid;

        if (with_analysis) {
            CU_ASSERT_EQUAL_FATAL(nc_open(path, NC_NOWRITE, &ncid), NC_NOERR);
            check_analysis_vars(ncid, &run, 1, 1);
            check_kernel_values(ncid, run.data.n_samples);
            check_dataset_vars(ncid, &run.data);
            check_deflate(ncid, "eigenvectors", COMPRESSION_LEVEL);
        } else {
            check_file(path, &run);
            CU_ASSERT_EQUAL_FATAL(nc_open(path, NC_NOWRITE, &ncid), NC_NOERR);
        }
        check_deflate(ncid, "sgk", COMPRESSION_LEVEL);
        /* Only the distributed variables are compressed. */
        check_deflate(ncid, "x", 0);
        CU_ASSERT_EQUAL(nc_close(ncid), NC_NOERR);
        remove(path);
    }
    if (with_analysis) sgk_analysis_free(&analysis);
    free_run(&run);
}

/* N = 7 in 2 x 2 blocks: every rank of up to 4 owns blocks, but not the same
 * number, so the ranks with fewer make zero-count collective calls. */
static void test_compressed_n7_block2(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check_compressed(4, 2, 1, 2, n_prow, n_pcol, "compressed-n7.nc");
    write_and_check_compressed(4, 2, 1, 2, world_size, 1, "compressed-n7-column.nc");
}

/* N = 2 in one block: one rank writes it and every other rank only pads. */
static void test_compressed_n2_single_block(void)
{
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    write_and_check_compressed(1, 1, 0, 2, n_prow, n_pcol, "compressed-n2.nc");
}

/* Without [output] compression sgk is stored unfiltered. */
static void test_uncompressed_by_default(void)
{
    fake_run run;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "uncompressed.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0 && status == SGK_OK) {
        int ncid;

        CU_ASSERT_EQUAL_FATAL(nc_open(path, NC_NOWRITE, &ncid), NC_NOERR);
        check_deflate(ncid, "sgk", 0);
        CU_ASSERT_EQUAL(nc_close(ncid), NC_NOERR);
        remove(path);
    }
    free_run(&run);
}

/* A deflate level outside 0..9, possible when a caller fills sgk_config itself, is
 * rejected on every rank before the file exists. */
static void test_compression_level_out_of_range(void)
{
    fake_run run;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "bad-level.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    run.config.output.compression = 10;
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "compression = 10"));
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0) CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    sgk_error_clear();
    free_run(&run);
}

/* A path in a folder that does not exist: SGK_ERR_IO on every rank, and every
 * rank's message names the path. */
static void test_unwritable_path(void)
{
    fake_run run;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "no-such-folder/out.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), path));
    sgk_error_clear();
    free_run(&run);
}

/* A kernel whose size does not match the dataset is rejected on every rank
 * before any file is created. */
static void test_kernel_size_mismatch(void)
{
    fake_run run;
    char path[512];
    sgk_status status;
    int n_prow, n_pcol;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "mismatch.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    run.results.sgk.n = 6;
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), "6 x 6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), path));
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0) CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    sgk_error_clear();
    free_run(&run);
}

/* A bad input on one rank only: every rank returns the error, and the ranks that
 * saw no problem carry the failing rank's message. */
static void test_failure_on_one_rank(void)
{
    fake_run run;
    char path[512], expected[64];
    sgk_status status;
    int n_prow, n_pcol;
    const int bad_rank = world_size - 1;

    default_shape(&n_prow, &n_pcol);
    output_path(path, sizeof path, "one-rank.nc");
    make_run(&run, 4, 2, 1, 2, n_prow, n_pcol);
    /* With N = 7 and nb = 2 every rank of a grid of up to 4 ranks owns entries. */
    CU_ASSERT(run.results.sgk.local_rows > 0 && run.results.sgk.local_cols > 0);
    if (world_rank == bad_rank) {
        free(run.results.sgk.local);
        run.results.sgk.local = NULL;
    }
    status = sgk_output_write(path, &run.config, &run.data, &run.results, &run.grid, &run.info);
    CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
    snprintf(expected, sizeof expected, "rank %d owns", bad_rank);
    CU_ASSERT_PTR_NOT_NULL(strstr(sgk_error_message(), expected));
    sgk_error_clear();
    free_run(&run);
}

/* ---- Driver ---------------------------------------------------------------- */

/* Collective. Create a scratch folder on rank 0 and share its name. */
static int make_work_dir(void)
{
    int ok = 1;

    if (world_rank == 0) {
        snprintf(work_dir, sizeof work_dir, "%s/sgk-test-ncio-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ok = mkdtemp(work_dir) != NULL;
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(work_dir, sizeof work_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    return ok;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        {"n7 block 2 default grid", test_n7_block2_default_grid},
        {"n7 block 2 column grid", test_n7_block2_column_grid},
        {"n2 single block", test_n2_single_block},
        {"n2 block 1", test_n2_block1},
        {"optional arrays absent", test_optional_arrays_absent},
        {"unwritable path", test_unwritable_path},
        {"kernel size mismatch", test_kernel_size_mismatch},
        {"failure on one rank", test_failure_on_one_rank},
        {"analysis variables", test_analysis_variables},
        {"analysis optional parts absent", test_analysis_optional_parts_absent},
        {"analysis size mismatch", test_analysis_size_mismatch},
        {"compressed n7 block 2", test_compressed_n7_block2},
        {"compressed n2 single block", test_compressed_n2_single_block},
        {"uncompressed by default", test_uncompressed_by_default},
        {"compression level out of range", test_compression_level_out_of_range},
    };
    CU_pSuite suite;
    size_t t;
    int result;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (!make_work_dir()) {
        if (world_rank == 0) fprintf(stderr, "test_ncio: cannot create a scratch folder\n");
        MPI_Finalize();
        return 1;
    }

    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    suite = CU_add_suite("ncio", NULL, NULL);
    for (t = 0; t < sizeof tests / sizeof tests[0]; t++)
        CU_add_test(suite, tests[t].name, tests[t].function);
    result = sgk_test_mpi_run(MPI_COMM_WORLD);
    CU_cleanup_registry();

    if (world_rank == 0) rmdir(work_dir);
    MPI_Finalize();
    return result;
}
