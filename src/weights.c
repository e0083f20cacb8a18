/* Initial-weights file: reading and writing the W<l>, b<l> variables of sgk/weights.h
 * with the serial NetCDF API. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netcdf.h>

#include "sgk/weights.h"

/* Room for "W" or "b" and a layer number up to SGK_MAX_LAYERS. */
enum { VAR_NAME_BYTES = 16, ATTRIBUTE_BYTES = 64 };

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* The spellings of the configuration keys, indexed by the enum values of sgk/config.h. */
static const char *const activation_names[] = { "relu", "tanh", "erf", "gelu" };
static const char *const parametrization_names[] = { "standard", "ntk" };

static const char *activation_name(sgk_activation activation)
{
    int index = (int)activation;
    return index >= 0 && index < COUNT(activation_names) ? activation_names[index] : "unknown";
}

static const char *parametrization_name(sgk_parametrization parametrization)
{
    int index = (int)parametrization;
    return index >= 0 && index < COUNT(parametrization_names) ? parametrization_names[index]
                                                              : "unknown";
}

/* ---- reading ---- */

/* Shape of a variable as text, "(3, 5)" or "(3)". */
static void format_shape(const size_t *lengths, int n_dims, char *text, size_t size)
{
    size_t used = 0;

    text[0] = '\0';
    for (int k = 0; k < n_dims && used < size; k++) {
        int n = snprintf(text + used, size - used, "%s%zu", k ? ", " : "(", lengths[k]);
        if (n < 0) return;
        used += (size_t)n;
    }
    if (used < size) snprintf(text + used, size - used, "%s", n_dims == 0 ? "() scalar" : ")");
}

/* Check that variable `name` exists with a numeric type and the shape `expected`
 * (n_dims lengths), and store its id. */
static sgk_status find_variable(int ncid, const char *path, const char *name,
                                const size_t *expected, int n_dims, int *varid)
{
    int dimids[NC_MAX_VAR_DIMS];
    size_t found[NC_MAX_VAR_DIMS];
    char expected_text[64];
    char found_text[256];
    nc_type type;
    int found_dims = 0;

    format_shape(expected, n_dims, expected_text, sizeof expected_text);
    int result = nc_inq_varid(ncid, name, varid);
    if (result == NC_ENOTVAR)
        return sgk_error(SGK_ERR_DATA,
                         "weights file '%s' has no variable %s; it needs %s "
                         "with shape %s for this network",
                         path, name, name, expected_text);
    if (result == NC_NOERR)
        result = nc_inq_var(ncid, *varid, NULL, &type, &found_dims, dimids, NULL);
    for (int k = 0; result == NC_NOERR && k < found_dims; k++)
        result = nc_inq_dimlen(ncid, dimids[k], &found[k]);
    if (result != NC_NOERR)
        return sgk_error(SGK_ERR_IO, "reading variable %s of weights file '%s' failed: %s", name,
                         path, nc_strerror(result));

    if (type < NC_BYTE || type > NC_UINT64 || type == NC_CHAR) {
        char type_name[NC_MAX_NAME + 1] = "user-defined";
        nc_inq_type(ncid, type, type_name, NULL);
        return sgk_error(SGK_ERR_DATA,
                         "variable %s in weights file '%s' has type %s, which "
                         "is not numeric; store it as double or float",
                         name, path, type_name);
    }

    format_shape(found, found_dims, found_text, sizeof found_text);
    int same = found_dims == n_dims;
    for (int k = 0; same && k < n_dims; k++) same = found[k] == expected[k];
    if (!same)
        return sgk_error(SGK_ERR_DATA,
                         "variable %s in weights file '%s' has shape %s, but "
                         "this network needs %s (layer widths from model.widths and the "
                         "data)",
                         name, path, found_text, expected_text);
    return SGK_OK;
}

/* Read variable `name` of `count` values into `values` and check them finite. */
static sgk_status read_values(int ncid, const char *path, const char *name, int varid, size_t count,
                              double *values)
{
    int result = nc_get_var_double(ncid, varid, values);
    if (result != NC_NOERR)
        return sgk_error(result == NC_ERANGE ? SGK_ERR_DATA : SGK_ERR_IO,
                         "reading variable %s of weights file '%s' failed: %s", name, path,
                         nc_strerror(result));

    for (size_t k = 0; k < count; k++) {
        if (!isfinite(values[k]))
            return sgk_error(SGK_ERR_DATA,
                             "variable %s in weights file '%s' has the "
                             "non-finite value %g at flat index %zu (row-major); every "
                             "weight must be finite",
                             name, path, values[k], k);
    }
    return SGK_OK;
}

/* Reject a variable `name` in the file, which belongs to a layer the network lacks. */
static sgk_status reject_extra_layer(int ncid, const char *path, const char *name, int n_layers)
{
    int varid;

    if (nc_inq_varid(ncid, name, &varid) == NC_NOERR)
        return sgk_error(SGK_ERR_DATA,
                         "weights file '%s' has variable %s, but this network "
                         "has %d layers (W1..W%d); the file belongs to a deeper network, so "
                         "check model.widths",
                         path, name, n_layers, n_layers);
    return SGK_OK;
}

/* Compare global text attribute `name`, when present, with `expected`. */
static sgk_status check_attribute(int ncid, const char *path, const char *name,
                                  const char *expected)
{
    char text[ATTRIBUTE_BYTES] = { 0 };
    nc_type type;
    size_t length = 0;

    if (nc_inq_att(ncid, NC_GLOBAL, name, &type, &length) != NC_NOERR) return SGK_OK;
    if (type != NC_CHAR || length >= sizeof text)
        return sgk_error(SGK_ERR_DATA,
                         "weights file '%s' has a global attribute %s that is "
                         "not a short text; expected \"%s\"",
                         path, name, expected);

    int result = nc_get_att_text(ncid, NC_GLOBAL, name, text);
    if (result != NC_NOERR)
        return sgk_error(SGK_ERR_IO, "reading attribute %s of weights file '%s' failed: %s", name,
                         path, nc_strerror(result));
    if (strcmp(text, expected) != 0)
        return sgk_error(SGK_ERR_DATA,
                         "weights file '%s' has %s = \"%s\", but the network "
                         "uses model.%s = %s; the same parameters give a different network "
                         "function, so set model.%s = %s or use a file written for %s = %s",
                         path, name, text, name, expected, name, text, name, expected);
    return SGK_OK;
}

static sgk_status read_layers(int ncid, const char *path, const sgk_mlp *net, double *w)
{
    char name[VAR_NAME_BYTES];
    int varid;

    SGK_CHECK(check_attribute(ncid, path, "activation", activation_name(net->activation)));
    SGK_CHECK(
        check_attribute(ncid, path, "parametrization", parametrization_name(net->parametrization)));

    for (int l = 1; l <= net->n_layers; l++) {
        size_t rows = (size_t)net->dims[l];
        size_t shape[2] = { rows, (size_t)net->dims[l - 1] };

        snprintf(name, sizeof name, "W%d", l);
        SGK_CHECK(find_variable(ncid, path, name, shape, 2, &varid));
        SGK_CHECK(
            read_values(ncid, path, name, varid, shape[0] * shape[1], w + net->w_offset[l - 1]));

        snprintf(name, sizeof name, "b%d", l);
        SGK_CHECK(find_variable(ncid, path, name, &rows, 1, &varid));
        SGK_CHECK(read_values(ncid, path, name, varid, rows, w + net->b_offset[l - 1]));
    }

    snprintf(name, sizeof name, "W%d", net->n_layers + 1);
    SGK_CHECK(reject_extra_layer(ncid, path, name, net->n_layers));
    snprintf(name, sizeof name, "b%d", net->n_layers + 1);
    return reject_extra_layer(ncid, path, name, net->n_layers);
}

sgk_status sgk_weights_read(const char *path, const sgk_mlp *net, double *w)
{
    int ncid;

    int result = nc_open(path, NC_NOWRITE, &ncid);
    if (result != NC_NOERR)
        return sgk_error(SGK_ERR_DATA, "cannot open weights file '%s': %s; model.init_file must name a "
                         "NetCDF file with variables W1, b1, ..., W%d, b%d",
                         path, nc_strerror(result), net->n_layers, net->n_layers);

    sgk_status status = read_layers(ncid, path, net, w);
    nc_close(ncid);
    return status;
}

/* ---- writing ---- */

static sgk_status write_failed(const char *path, const char *what, int result)
{
    return sgk_error(SGK_ERR_IO, "writing weights file '%s' failed while %s: %s", path, what,
                     nc_strerror(result));
}

/* Define dimensions d0..dL, variables W<l>, b<l> and the attributes; store the
 * variable ids, W<l> at index 2(l-1) and b<l> after it. */
static sgk_status define_file(int ncid, const char *path, const sgk_mlp *net, int *varids)
{
    int dimids[SGK_MAX_LAYERS + 1];
    char name[VAR_NAME_BYTES];
    int result = NC_NOERR;

    for (int l = 0; result == NC_NOERR && l <= net->n_layers; l++) {
        snprintf(name, sizeof name, "d%d", l);
        result = nc_def_dim(ncid, name, (size_t)net->dims[l], &dimids[l]);
    }
    if (result != NC_NOERR) return write_failed(path, "defining dimensions", result);

    for (int l = 1; result == NC_NOERR && l <= net->n_layers; l++) {
        int shape[2] = { dimids[l], dimids[l - 1] };
        snprintf(name, sizeof name, "W%d", l);
        result = nc_def_var(ncid, name, NC_DOUBLE, 2, shape, &varids[2 * (l - 1)]);
        if (result == NC_NOERR) {
            snprintf(name, sizeof name, "b%d", l);
            result = nc_def_var(ncid, name, NC_DOUBLE, 1, &dimids[l], &varids[2 * l - 1]);
        }
    }
    if (result != NC_NOERR) return write_failed(path, "defining variables", result);

    const char *activation = activation_name(net->activation);
    const char *parametrization = parametrization_name(net->parametrization);
    result = nc_put_att_text(ncid, NC_GLOBAL, "activation", strlen(activation), activation);
    if (result == NC_NOERR)
        result = nc_put_att_text(ncid, NC_GLOBAL, "parametrization", strlen(parametrization),
                                 parametrization);
    if (result != NC_NOERR) return write_failed(path, "writing attributes", result);

    result = nc_enddef(ncid);
    if (result != NC_NOERR) return write_failed(path, "ending define mode", result);
    return SGK_OK;
}

static sgk_status write_layers(int ncid, const char *path, const sgk_mlp *net, const double *w)
{
    int varids[2 * SGK_MAX_LAYERS];

    SGK_CHECK(define_file(ncid, path, net, varids));
    for (int l = 1; l <= net->n_layers; l++) {
        int result = nc_put_var_double(ncid, varids[2 * (l - 1)], w + net->w_offset[l - 1]);
        if (result == NC_NOERR)
            result = nc_put_var_double(ncid, varids[2 * l - 1], w + net->b_offset[l - 1]);
        if (result != NC_NOERR) return write_failed(path, "writing the values", result);
    }
    return SGK_OK;
}

sgk_status sgk_weights_write(const char *path, const sgk_mlp *net, const double *w)
{
    int ncid;

    int result = nc_create(path, NC_CLOBBER | NC_NETCDF4, &ncid);
    if (result != NC_NOERR)
        return sgk_error(SGK_ERR_IO, "cannot create weights file '%s': %s", path,
                         nc_strerror(result));

    sgk_status status = write_layers(ncid, path, net, w);
    result = nc_close(ncid);
    if (status == SGK_OK && result != NC_NOERR)
        status = write_failed(path, "closing the file", result);
    if (status != SGK_OK) unlink(path);
    return status;
}
