/* sgk-nccompare: compare double variables of two NetCDF files within a relative
 * tolerance.
 *
 *   sgk-nccompare A.nc B.nc [--rtol R] VAR...
 *
 * A variable passes when max |a - b| <= R * max |a| over all its elements, where a
 * comes from A.nc and b from B.nc. NaN equals NaN, and an infinity equals the
 * same infinity, because a run stores NaN where a value is undefined (f_var with
 * one replica, loss_test without test points). The program prints one line per
 * variable with the maximum relative deviation.
 *
 * Exit status, as cmp(1) uses it: 0 every variable passes, 1 a variable differs
 * or the shapes differ, 2 bad usage or a file or variable that is missing or not
 * of type double.
 *
 * It uses the serial NetCDF API of the MPI-enabled library, which needs no
 * MPI_Init for nc_open and nc_get_vara (checked with Debian's netCDF 4.9.0). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netcdf.h>

#define DEFAULT_RTOL 1e-12
/* Elements per read, so memory stays bounded for a large sgk (2^22 doubles = 32 MiB
 * per file). */
#define SLAB_ELEMENTS ((size_t)1 << 22)

enum { EXIT_SAME = 0, EXIT_DIFFERENT = 1, EXIT_TROUBLE = 2 };

typedef struct {
    const char *path;
    int ncid;
} nc_file;

/* Shape of one variable. */
typedef struct {
    int varid;
    int n_dims;
    size_t length[NC_MAX_VAR_DIMS];
} var_shape;

/* Maxima over all elements compared so far. */
typedef struct {
    double max_diff;   /* max |a - b| */
    double max_ref;    /* max |a| over finite a */
    int nan_mismatch;  /* NaN or infinity in one file but not at the same place in the other */
} deviation;

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: sgk-nccompare A.nc B.nc [--rtol R] VAR...\n"
            "Compare the named double variables of A.nc and B.nc. A variable passes when\n"
            "max |a - b| <= R * max |a|; R defaults to %g.\n"
            "Exit status: 0 all pass, 1 a variable differs or shapes differ,\n"
            "2 bad usage or a missing file or variable.\n",
            DEFAULT_RTOL);
}

/* Return EXIT_SAME after filling `shape`, or EXIT_TROUBLE with a message naming the
 * file and the variable. */
static int inquire_var(const nc_file *file, const char *name, var_shape *shape)
{
    int dimids[NC_MAX_VAR_DIMS], d, rc;
    nc_type type;

    rc = nc_inq_varid(file->ncid, name, &shape->varid);
    if (rc != NC_NOERR) {
        fprintf(stderr, "sgk-nccompare: %s has no variable %s: %s\n", file->path, name,
                nc_strerror(rc));
        return EXIT_TROUBLE;
    }
    rc = nc_inq_var(file->ncid, shape->varid, NULL, &type, &shape->n_dims, dimids, NULL);
    if (rc != NC_NOERR) {
        fprintf(stderr, "sgk-nccompare: cannot read the shape of %s in %s: %s\n", name,
                file->path, nc_strerror(rc));
        return EXIT_TROUBLE;
    }
    if (type != NC_DOUBLE) {
        fprintf(stderr, "sgk-nccompare: variable %s in %s is not of type double; only double "
                "variables are compared\n", name, file->path);
        return EXIT_TROUBLE;
    }
    for (d = 0; d < shape->n_dims; d++) {
        rc = nc_inq_dimlen(file->ncid, dimids[d], &shape->length[d]);
        if (rc != NC_NOERR) {
            fprintf(stderr, "sgk-nccompare: cannot read dimension %d of %s in %s: %s\n", d,
                    name, file->path, nc_strerror(rc));
            return EXIT_TROUBLE;
        }
    }
    return EXIT_SAME;
}

static int same_shape(const var_shape *a, const var_shape *b)
{
    int d;

    if (a->n_dims != b->n_dims) return 0;
    for (d = 0; d < a->n_dims; d++)
        if (a->length[d] != b->length[d]) return 0;
    return 1;
}

static void print_shape(FILE *stream, const var_shape *shape)
{
    int d;

    fputc('(', stream);
    for (d = 0; d < shape->n_dims; d++) fprintf(stream, d ? ", %zu" : "%zu", shape->length[d]);
    fputc(')', stream);
}

static void accumulate(const double *a, const double *b, size_t count, deviation *dev)
{
    size_t k;

    for (k = 0; k < count; k++) {
        if (!isfinite(a[k]) || !isfinite(b[k])) {
            /* Equal NaNs, or equal infinities, count as agreement. */
            int both_nan = isnan(a[k]) && isnan(b[k]);
            if (!both_nan && a[k] != b[k]) dev->nan_mismatch = 1;
            continue;
        }
        if (fabs(a[k] - b[k]) > dev->max_diff) dev->max_diff = fabs(a[k] - b[k]);
        if (fabs(a[k]) > dev->max_ref) dev->max_ref = fabs(a[k]);
    }
}

/* Read both variables slab by slab along their first dimension and accumulate the
 * deviation. Returns EXIT_SAME or EXIT_TROUBLE. */
static int compare_values(const nc_file *fa, const nc_file *fb, const char *name,
                          const var_shape *sa, const var_shape *sb, deviation *dev)
{
    size_t start[NC_MAX_VAR_DIMS] = {0}, count[NC_MAX_VAR_DIMS];
    size_t row_elements = 1, rows_per_slab, rows, row;
    double *a, *b;
    int d, rc = NC_NOERR, status = EXIT_SAME;

    for (d = 1; d < sa->n_dims; d++) row_elements *= sa->length[d];
    rows = sa->n_dims > 0 ? sa->length[0] : 1;
    if (row_elements == 0 || rows == 0) return EXIT_SAME;
    rows_per_slab = SLAB_ELEMENTS / row_elements > 0 ? SLAB_ELEMENTS / row_elements : 1;
    if (rows_per_slab > rows) rows_per_slab = rows;

    a = malloc(rows_per_slab * row_elements * sizeof *a);
    b = malloc(rows_per_slab * row_elements * sizeof *b);
    if (!a || !b) {
        fprintf(stderr, "sgk-nccompare: out of memory for %zu elements of %s\n",
                rows_per_slab * row_elements, name);
        free(a);
        free(b);
        return EXIT_TROUBLE;
    }
    for (d = 1; d < sa->n_dims; d++) count[d] = sa->length[d];

    for (row = 0; row < rows && status == EXIT_SAME; row += rows_per_slab) {
        size_t slab_rows = rows - row < rows_per_slab ? rows - row : rows_per_slab;

        if (sa->n_dims > 0) {
            start[0] = row;
            count[0] = slab_rows;
        }
        rc = nc_get_vara_double(fa->ncid, sa->varid, start, count, a);
        if (rc != NC_NOERR) {
            fprintf(stderr, "sgk-nccompare: cannot read %s from %s: %s\n", name, fa->path,
                    nc_strerror(rc));
            status = EXIT_TROUBLE;
            break;
        }
        rc = nc_get_vara_double(fb->ncid, sb->varid, start, count, b);
        if (rc != NC_NOERR) {
            fprintf(stderr, "sgk-nccompare: cannot read %s from %s: %s\n", name, fb->path,
                    nc_strerror(rc));
            status = EXIT_TROUBLE;
            break;
        }
        accumulate(a, b, slab_rows * row_elements, dev);
    }
    free(a);
    free(b);
    return status;
}

/* Compare one variable and print its result line. Returns an exit status. */
static int compare_variable(const nc_file *fa, const nc_file *fb, const char *name, double rtol)
{
    var_shape sa, sb;
    deviation dev = {0.0, 0.0, 0};
    double relative;
    int status, pass;

    if ((status = inquire_var(fa, name, &sa)) != EXIT_SAME) return status;
    if ((status = inquire_var(fb, name, &sb)) != EXIT_SAME) return status;
    if (!same_shape(&sa, &sb)) {
        printf("%s: shapes differ: ", name);
        print_shape(stdout, &sa);
        printf(" in %s, ", fa->path);
        print_shape(stdout, &sb);
        printf(" in %s\n", fb->path);
        return EXIT_DIFFERENT;
    }
    if ((status = compare_values(fa, fb, name, &sa, &sb, &dev)) != EXIT_SAME) return status;

    if (dev.max_ref > 0.0)
        relative = dev.max_diff / dev.max_ref;
    else
        relative = dev.max_diff > 0.0 ? INFINITY : 0.0;
    pass = !dev.nan_mismatch && dev.max_diff <= rtol * dev.max_ref;
    printf("%s: max relative deviation %.3e (max |a - b| = %.6e, max |a| = %.6e, rtol %.1e)%s: %s\n",
           name, relative, dev.max_diff, dev.max_ref, rtol,
           dev.nan_mismatch ? ", NaN or infinity at different places" : "",
           pass ? "ok" : "DIFFERS");
    return pass ? EXIT_SAME : EXIT_DIFFERENT;
}

static int parse_rtol(const char *text, double *rtol)
{
    char *end;

    errno = 0;
    *rtol = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(*rtol >= 0.0) || !isfinite(*rtol)) {
        fprintf(stderr, "sgk-nccompare: invalid --rtol value '%s'; expected a finite number "
                ">= 0, e.g. 1e-12\n", text);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *positional[2] = {NULL, NULL};
    const char **names;
    double rtol = DEFAULT_RTOL;
    int n_positional = 0, n_names = 0, i, worst = EXIT_SAME, rc;
    nc_file files[2];

    names = malloc(sizeof *names * (size_t)argc);
    if (!names) return EXIT_TROUBLE;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(names);
            return EXIT_SAME;
        } else if (strcmp(argv[i], "--rtol") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sgk-nccompare: --rtol needs a value, e.g. --rtol 1e-12\n");
                free(names);
                return EXIT_TROUBLE;
            }
            if (!parse_rtol(argv[++i], &rtol)) {
                free(names);
                return EXIT_TROUBLE;
            }
        } else if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "sgk-nccompare: unknown option %s\n", argv[i]);
            usage(stderr);
            free(names);
            return EXIT_TROUBLE;
        } else if (n_positional < 2) {
            positional[n_positional++] = argv[i];
        } else {
            names[n_names++] = argv[i];
        }
    }
    if (n_positional < 2 || n_names == 0) {
        usage(stderr);
        free(names);
        return EXIT_TROUBLE;
    }

    for (i = 0; i < 2; i++) {
        files[i].path = positional[i];
        rc = nc_open(positional[i], NC_NOWRITE, &files[i].ncid);
        if (rc != NC_NOERR) {
            fprintf(stderr, "sgk-nccompare: cannot open %s: %s\n", positional[i], nc_strerror(rc));
            if (i == 1) nc_close(files[0].ncid);
            free(names);
            return EXIT_TROUBLE;
        }
    }
    for (i = 0; i < n_names; i++) {
        int status = compare_variable(&files[0], &files[1], names[i], rtol);
        if (status > worst) worst = status;
    }
    nc_close(files[0].ncid);
    nc_close(files[1].ncid);
    free(names);
    return worst;
}
