/* Tests of the initial-weights file (sgk/weights.h). Serial.
 *
 * Files with known values are written here with the NetCDF API directly, so the
 * reader's layout is checked independently of sgk_weights_write. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <netcdf.h>

#include "sgk/mlp.h"
#include "sgk/rng.h"
#include "sgk/weights.h"

enum { PATH_BYTES = 512, N_POINTS = 6 };

static char folder[256] = "/tmp/sgk-test-weights-XXXXXX";

/* The network of most tests: 4 inputs, hidden widths 5 and 3, 2 outputs. */
static const int WIDTHS[2] = { 5, 3 };

static void path_of(const char *name, char *path)
{
    snprintf(path, PATH_BYTES, "%s/%s", folder, name);
}

static int create_net(sgk_mlp *net, int n_hidden, int n_outputs, sgk_activation activation,
                      sgk_parametrization parametrization)
{
    return sgk_mlp_create(net, 4, WIDTHS, n_hidden, n_outputs, activation, parametrization) ==
           SGK_OK;
}

/* Parameters of `net` drawn from the init stream of `seed`. The caller frees them. */
static double *random_params(const sgk_mlp *net, uint64_t seed)
{
    double *w = malloc((size_t)net->n_params * sizeof *w);
    sgk_rng rng;

    if (w) {
        sgk_rng_init(&rng, seed, 0, SGK_RNG_INIT);
        sgk_mlp_init_params(net, &rng, w);
        /* Standard parametrization draws no biases; nonzero biases test their layout. */
        for (int l = 0; l < net->n_layers; l++)
            for (int j = 0; j < net->dims[l + 1]; j++) w[net->b_offset[l] + j] += 0.01 * (j + 1);
    }
    return w;
}

static int contains(const char *text, const char *fragment)
{
    int found = strstr(text, fragment) != NULL;
    if (!found) fprintf(stderr, "\n    message lacks '%s': %s\n", fragment, text);
    return found;
}

/* ---- files written with the NetCDF API ---- */

/* Value of entry (j, k) of W<layer>, or entry j of b<layer> with k = 0. Eighths are
 * exact in float, so a float variable must read back to exactly this value. */
static double param_value(int layer, int j, int k, int is_bias)
{
    return (is_bias ? -100.0 : 100.0) * layer + j + k / 8.0;
}

/* One variable of a hand-written file: W<layer> when cols > 0, else b<layer>. */
typedef struct {
    const char *name;
    int layer;
    size_t rows;
    size_t cols;
    nc_type type;
    long nan_index; /* flat index that gets NaN, or -1 */
} raw_var;

static int write_raw(const char *name, const raw_var *vars, int n_vars)
{
    char path[PATH_BYTES];
    int ncid;
    int ok;

    path_of(name, path);
    if (nc_create(path, NC_CLOBBER | NC_NETCDF4, &ncid) != NC_NOERR) return -1;
    ok = 1;
    int varids[16];
    for (int v = 0; ok && v < n_vars; v++) {
        char dim_name[64];
        int dims[2];
        int n_dims = vars[v].cols > 0 ? 2 : 1;
        snprintf(dim_name, sizeof dim_name, "%s_rows", vars[v].name);
        ok = nc_def_dim(ncid, dim_name, vars[v].rows, &dims[0]) == NC_NOERR;
        snprintf(dim_name, sizeof dim_name, "%s_cols", vars[v].name);
        if (ok && n_dims == 2) ok = nc_def_dim(ncid, dim_name, vars[v].cols, &dims[1]) == NC_NOERR;
        ok = ok &&
             nc_def_var(ncid, vars[v].name, vars[v].type, n_dims, dims, &varids[v]) == NC_NOERR;
    }
    ok = ok && nc_enddef(ncid) == NC_NOERR;

    for (int v = 0; ok && v < n_vars; v++) {
        size_t cols = vars[v].cols > 0 ? vars[v].cols : 1;
        double *values = malloc(vars[v].rows * cols * sizeof *values);
        ok = values != NULL;
        for (size_t j = 0; ok && j < vars[v].rows; j++)
            for (size_t k = 0; k < cols; k++)
                values[j * cols + k] =
                    param_value(vars[v].layer, (int)j, (int)k, vars[v].cols == 0);
        if (ok && vars[v].nan_index >= 0) values[vars[v].nan_index] = NAN;
        ok = ok && nc_put_var_double(ncid, varids[v], values) == NC_NOERR;
        free(values);
    }
    return nc_close(ncid) == NC_NOERR && ok ? 0 : -1;
}

/* The variables of the test network, W1 stored as float. */
static void network_vars(raw_var *vars)
{
    const raw_var all[6] = {
        { "W1", 1, 5, 4, NC_FLOAT, -1 },  { "b1", 1, 5, 0, NC_DOUBLE, -1 },
        { "W2", 2, 3, 5, NC_DOUBLE, -1 }, { "b2", 2, 3, 0, NC_DOUBLE, -1 },
        { "W3", 3, 2, 3, NC_DOUBLE, -1 }, { "b3", 3, 2, 0, NC_DOUBLE, -1 },
    };
    memcpy(vars, all, sizeof all);
}

/* ---- tests ---- */

static void test_write_read_identical(void)
{
    char path[PATH_BYTES];
    sgk_mlp net;

    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_TANH, SGK_PARAM_NTK));
    double *w = random_params(&net, 7);
    double *back = calloc((size_t)net.n_params, sizeof *back);
    CU_ASSERT_FATAL(w && back);

    path_of("round-trip.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_write(path, &net, w), SGK_OK);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, back), SGK_OK);
    CU_ASSERT_EQUAL(memcmp(w, back, (size_t)net.n_params * sizeof *w), 0);
    free(w);
    free(back);
}

/* Dimensions d0..dL and the two attributes, read with the NetCDF API. */
static void test_written_format(void)
{
    static const size_t lengths[4] = { 4, 5, 3, 2 };
    char path[PATH_BYTES];
    char text[32];
    size_t length;
    int ncid, dimid;
    sgk_mlp net;

    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_GELU, SGK_PARAM_STANDARD));
    double *w = random_params(&net, 3);
    CU_ASSERT_FATAL(w != NULL);
    path_of("format.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_write(path, &net, w), SGK_OK);
    free(w);

    CU_ASSERT_FATAL(nc_open(path, NC_NOWRITE, &ncid) == NC_NOERR);
    for (int l = 0; l < 4; l++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", l);
        CU_ASSERT(nc_inq_dimid(ncid, name, &dimid) == NC_NOERR &&
                  nc_inq_dimlen(ncid, dimid, &length) == NC_NOERR && length == lengths[l]);
    }
    memset(text, 0, sizeof text);
    CU_ASSERT_EQUAL(nc_get_att_text(ncid, NC_GLOBAL, "activation", text), NC_NOERR);
    CU_ASSERT_STRING_EQUAL(text, "gelu");
    memset(text, 0, sizeof text);
    CU_ASSERT_EQUAL(nc_get_att_text(ncid, NC_GLOBAL, "parametrization", text), NC_NOERR);
    CU_ASSERT_STRING_EQUAL(text, "standard");
    nc_close(ncid);
}

/* A file from another tool (no attributes, W1 as float) lands in the layout of
 * sgk/mlp.h: W_l row-major, then b_l. */
static void test_layout_of_foreign_file(void)
{
    raw_var vars[6];
    char path[PATH_BYTES];
    sgk_mlp net;
    int mismatches = 0;

    network_vars(vars);
    CU_ASSERT_FATAL(write_raw("foreign.nc", vars, 6) == 0);
    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));
    double *w = calloc((size_t)net.n_params, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);

    path_of("foreign.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_OK);
    for (int l = 1; l <= net.n_layers; l++) {
        int rows = net.dims[l];
        int cols = net.dims[l - 1];
        for (int j = 0; j < rows; j++) {
            for (int k = 0; k < cols; k++)
                mismatches += w[net.w_offset[l - 1] + j * cols + k] != param_value(l, j, k, 0);
            mismatches += w[net.b_offset[l - 1] + j] != param_value(l, j, 0, 1);
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    free(w);
}

/* The network read from a file computes the outputs of the network that wrote it.
 * Same parameters and same code path, so the outputs agree bit for bit. */
static void test_same_outputs(void)
{
    char path[PATH_BYTES];
    double x[N_POINTS * 4];
    double f_original[N_POINTS * 2];
    double f_loaded[N_POINTS * 2];
    sgk_mlp_work work;
    sgk_mlp net;
    sgk_rng rng;

    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_ERF, SGK_PARAM_NTK));
    double *w = random_params(&net, 11);
    double *loaded = calloc((size_t)net.n_params, sizeof *loaded);
    CU_ASSERT_FATAL(w && loaded);
    sgk_rng_init(&rng, 5, 0, SGK_RNG_DATA);
    for (int k = 0; k < N_POINTS * 4; k++) x[k] = sgk_rng_normal(&rng);

    path_of("outputs.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_write(path, &net, w), SGK_OK);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, loaded), SGK_OK);
    CU_ASSERT_FATAL(sgk_mlp_work_alloc(&net, N_POINTS, &work) == SGK_OK);
    sgk_mlp_forward(&net, w, x, N_POINTS, &work, f_original);
    sgk_mlp_forward(&net, loaded, x, N_POINTS, &work, f_loaded);
    CU_ASSERT_EQUAL(memcmp(f_original, f_loaded, sizeof f_original), 0);

    /* Guard against a vacuous pass: the outputs depend on the parameters. */
    loaded[net.w_offset[1]] += 1.0;
    sgk_mlp_forward(&net, loaded, x, N_POINTS, &work, f_loaded);
    CU_ASSERT_NOT_EQUAL(memcmp(f_original, f_loaded, sizeof f_original), 0);

    sgk_mlp_work_free(&work);
    free(w);
    free(loaded);
}

static void test_missing_variable(void)
{
    raw_var vars[6];
    char path[PATH_BYTES];
    sgk_mlp net;
    double w[128];

    network_vars(vars);
    memmove(&vars[3], &vars[4], 2 * sizeof vars[0]); /* drop b2 */
    CU_ASSERT_FATAL(write_raw("no-b2.nc", vars, 5) == 0);
    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));
    CU_ASSERT_FATAL(net.n_params <= 128);

    path_of("no-b2.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "no-b2.nc"));
    CU_ASSERT(contains(sgk_error_message(), "no variable b2"));
    CU_ASSERT(contains(sgk_error_message(), "(3)"));
}

static void test_wrong_shape(void)
{
    raw_var vars[6];
    char path[PATH_BYTES];
    sgk_mlp net;
    double w[128];

    network_vars(vars);
    vars[2].cols = 4; /* W2 (3, 4) where the network needs (3, 5) */
    CU_ASSERT_FATAL(write_raw("w2-shape.nc", vars, 6) == 0);
    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));

    path_of("w2-shape.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "w2-shape.nc"));
    CU_ASSERT(contains(sgk_error_message(), "W2"));
    CU_ASSERT(contains(sgk_error_message(), "shape (3, 4)"));
    CU_ASSERT(contains(sgk_error_message(), "needs (3, 5)"));

    /* A bias stored as a matrix has the wrong rank. */
    network_vars(vars);
    vars[1].cols = 1;
    CU_ASSERT_FATAL(write_raw("b1-rank.nc", vars, 6) == 0);
    path_of("b1-rank.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "b1"));
    CU_ASSERT(contains(sgk_error_message(), "shape (5, 1)"));
    CU_ASSERT(contains(sgk_error_message(), "needs (5)"));
}

/* A file of a 3-layer network read by the 2-layer network 4 -> 5 -> 3, whose two
 * layers have the same shapes. */
static void test_extra_layer(void)
{
    raw_var vars[6];
    char path[PATH_BYTES];
    sgk_mlp net;
    double w[128];

    network_vars(vars);
    CU_ASSERT_FATAL(write_raw("deeper.nc", vars, 6) == 0);
    CU_ASSERT_FATAL(create_net(&net, 1, 3, SGK_ACT_RELU, SGK_PARAM_STANDARD));

    path_of("deeper.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "deeper.nc"));
    CU_ASSERT(contains(sgk_error_message(), "W3"));
}

static void test_network_mismatch(void)
{
    char path[PATH_BYTES];
    sgk_mlp tanh_net, relu_net, ntk_net;

    CU_ASSERT_FATAL(create_net(&tanh_net, 2, 2, SGK_ACT_TANH, SGK_PARAM_STANDARD));
    CU_ASSERT_FATAL(create_net(&relu_net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));
    CU_ASSERT_FATAL(create_net(&ntk_net, 2, 2, SGK_ACT_TANH, SGK_PARAM_NTK));
    double *w = random_params(&tanh_net, 1);
    CU_ASSERT_FATAL(w != NULL);
    path_of("tanh.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_write(path, &tanh_net, w), SGK_OK);

    CU_ASSERT_EQUAL(sgk_weights_read(path, &relu_net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "activation = \"tanh\""));
    CU_ASSERT(contains(sgk_error_message(), "model.activation = relu"));

    CU_ASSERT_EQUAL(sgk_weights_read(path, &ntk_net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "parametrization = \"standard\""));
    CU_ASSERT(contains(sgk_error_message(), "model.parametrization = ntk"));
    free(w);
}

static void test_non_finite_weight(void)
{
    raw_var vars[6];
    char path[PATH_BYTES];
    sgk_mlp net;
    double w[128];

    network_vars(vars);
    vars[1].nan_index = 2;
    CU_ASSERT_FATAL(write_raw("nan.nc", vars, 6) == 0);
    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));

    path_of("nan.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "nan.nc"));
    CU_ASSERT(contains(sgk_error_message(), "b1"));
    CU_ASSERT(contains(sgk_error_message(), "index 2"));
}

static void test_unusable_paths(void)
{
    char path[PATH_BYTES];
    sgk_mlp net;
    double w[128] = { 0 };

    CU_ASSERT_FATAL(create_net(&net, 2, 2, SGK_ACT_RELU, SGK_PARAM_STANDARD));

    path_of("absent.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "absent.nc"));

    path_of("text.nc", path);
    FILE *file = fopen(path, "w");
    CU_ASSERT_FATAL(file != NULL);
    fputs("not NetCDF\n", file);
    fclose(file);
    CU_ASSERT_EQUAL(sgk_weights_read(path, &net, w), SGK_ERR_DATA);
    CU_ASSERT(contains(sgk_error_message(), "text.nc"));

    path_of("no-such-folder/out.nc", path);
    CU_ASSERT_EQUAL(sgk_weights_write(path, &net, w), SGK_ERR_IO);
    CU_ASSERT(contains(sgk_error_message(), "no-such-folder/out.nc"));
}

static void remove_files(void)
{
    static const char *const names[] = { "round-trip.nc", "format.nc",   "foreign.nc", "outputs.nc",
                                         "no-b2.nc",      "w2-shape.nc", "b1-rank.nc", "deeper.nc",
                                         "tanh.nc",       "nan.nc",      "text.nc" };
    char path[PATH_BYTES];

    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        path_of(names[k], path);
        unlink(path);
    }
    rmdir(folder);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        { "write read identical", test_write_read_identical },
        { "written format", test_written_format },
        { "layout of foreign file", test_layout_of_foreign_file },
        { "same outputs", test_same_outputs },
        { "missing variable", test_missing_variable },
        { "wrong shape", test_wrong_shape },
        { "extra layer", test_extra_layer },
        { "network mismatch", test_network_mismatch },
        { "non-finite weight", test_non_finite_weight },
        { "unusable paths", test_unusable_paths },
    };

    if (!mkdtemp(folder)) {
        fprintf(stderr, "test_weights: cannot create a folder under /tmp\n");
        return 1;
    }

    unsigned failures = 1;
    if (CU_initialize_registry() == CUE_SUCCESS) {
        CU_pSuite suite = CU_add_suite("weights", NULL, NULL);
        int registered = suite != NULL;
        for (size_t t = 0; registered && t < sizeof tests / sizeof tests[0]; t++)
            registered = CU_add_test(suite, tests[t].name, tests[t].function) != NULL;
        if (registered) {
            CU_basic_set_mode(CU_BRM_VERBOSE);
            CU_basic_run_tests();
            failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
        }
        CU_cleanup_registry();
    }

    remove_files();
    return failures == 0 ? 0 : 1;
}
