/* sgk-check-eigen: check the stored spectrum of an sgk-ensemble output file with
 * an independent serial eigen-solve.
 *
 *   sgk-check-eigen FILE.nc [--rtol R]
 *
 * Reads the train dimension n, split and sgk, takes the leading n x n block of
 * sgk (training points come first, which split confirms), divides it by n and
 * computes all its eigenvalues with LAPACK dsyevd. The check passes when
 * max_k |lambda_stored[k] - lambda_lapack[k]| <= R * lambda_max over the stored
 * eigenvalues, both in descending order, where lambda_max is the largest
 * eigenvalue magnitude from LAPACK. R defaults to 1e-10. dsyevd and ScaLAPACK's
 * pdsyevd are both backward stable, so their eigenvalue errors are of order
 * n * eps * lambda_max, about 2e-13 * lambda_max for n = 1000. The default leaves
 * a wide margin for that rounding and still catches a wrong matrix or scaling.
 *
 * Exit status: 0 pass, 1 the eigenvalues differ or the file breaks the output
 * contract (training points not first, more stored eigenvalues than n), 2 bad
 * usage or a missing file, dimension or variable.
 *
 * It uses the serial NetCDF API of the MPI-enabled library, which needs no
 * MPI_Init for nc_open and nc_get_vara (checked with Debian's netCDF 4.9.0). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netcdf.h>

/* LAPACK (from OpenBLAS). The trailing arguments are the lengths of the character
 * arguments, which gfortran-compiled LAPACK expects. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_length, size_t uplo_length);

#define DEFAULT_RTOL 1e-10

enum { EXIT_PASS = 0, EXIT_FAIL = 1, EXIT_TROUBLE = 2 };

/* Contents of the file that the check needs. */
typedef struct {
    size_t n_train;
    size_t n_eig;
    double *block;        /* n_train x n_train, the leading block of sgk divided by n_train */
    double *eigenvalues;  /* n_eig stored eigenvalues */
} stored_spectrum;

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: sgk-check-eigen FILE.nc [--rtol R]\n"
            "Solve the leading n x n block of sgk, divided by n, with LAPACK dsyevd and\n"
            "compare with the stored eigenvalues: max |difference| <= R * lambda_max.\n"
            "R defaults to %g. Exit status: 0 pass, 1 mismatch, 2 bad usage or a\n"
            "missing file, dimension or variable.\n",
            DEFAULT_RTOL);
}

static int dim_length(int ncid, const char *path, const char *name, size_t *length)
{
    int dimid, rc;

    rc = nc_inq_dimid(ncid, name, &dimid);
    if (rc == NC_NOERR) rc = nc_inq_dimlen(ncid, dimid, length);
    if (rc != NC_NOERR) {
        fprintf(stderr, "sgk-check-eigen: %s has no dimension %s: %s\n", path, name,
                nc_strerror(rc));
        return EXIT_TROUBLE;
    }
    return EXIT_PASS;
}

static int var_id(int ncid, const char *path, const char *name, int *varid)
{
    int rc = nc_inq_varid(ncid, name, varid);

    if (rc != NC_NOERR) {
        fprintf(stderr, "sgk-check-eigen: %s has no variable %s: %s\n", path, name,
                nc_strerror(rc));
        return EXIT_TROUBLE;
    }
    return EXIT_PASS;
}

static int read_error(const char *path, const char *name, int rc)
{
    fprintf(stderr, "sgk-check-eigen: cannot read %s from %s: %s\n", name, path, nc_strerror(rc));
    return EXIT_TROUBLE;
}

/* Check that the first n_train entries of split are 0 (train), so that the leading
 * block of sgk is the training kernel. */
static int check_split(int ncid, const char *path, size_t n_train)
{
    size_t start[1] = {0}, count[1] = {n_train}, i;
    int varid, rc, status = EXIT_PASS;
    int *split;

    if ((status = var_id(ncid, path, "split", &varid)) != EXIT_PASS) return status;
    split = malloc(n_train * sizeof *split);
    if (!split) {
        fprintf(stderr, "sgk-check-eigen: out of memory for %zu split entries\n", n_train);
        return EXIT_TROUBLE;
    }
    rc = nc_get_vara_int(ncid, varid, start, count, split);
    if (rc != NC_NOERR) status = read_error(path, "split", rc);
    for (i = 0; status == EXIT_PASS && i < n_train; i++) {
        if (split[i] != 0) {
            printf("FAILED: split[%zu] = %d in %s, but the first %zu points must be training "
                   "points (split 0)\n", i, split[i], path, n_train);
            status = EXIT_FAIL;
        }
    }
    free(split);
    return status;
}

/* Read the leading n x n block of sgk divided by n, and the stored eigenvalues. */
static int read_spectrum(int ncid, const char *path, stored_spectrum *spectrum)
{
    size_t start[2] = {0, 0}, count[2], k, n;
    int sgk_id, eig_id, rc, status;

    if ((status = dim_length(ncid, path, "train", &spectrum->n_train)) != EXIT_PASS) return status;
    if ((status = dim_length(ncid, path, "eig", &spectrum->n_eig)) != EXIT_PASS) return status;
    if ((status = var_id(ncid, path, "sgk", &sgk_id)) != EXIT_PASS) return status;
    if ((status = var_id(ncid, path, "eigenvalues", &eig_id)) != EXIT_PASS) return status;
    n = spectrum->n_train;
    if (n == 0 || n > 46340) { /* n * n must fit the int that LAPACK takes */
        fprintf(stderr, "sgk-check-eigen: train = %zu in %s; this check handles 1 to 46340 "
                "training points\n", n, path);
        return EXIT_TROUBLE;
    }
    if (spectrum->n_eig > n) {
        printf("FAILED: %s stores %zu eigenvalues but K_n has only n = %zu\n", path,
               spectrum->n_eig, n);
        return EXIT_FAIL;
    }
    if ((status = check_split(ncid, path, n)) != EXIT_PASS) return status;

    spectrum->block = malloc(n * n * sizeof *spectrum->block);
    spectrum->eigenvalues = malloc((spectrum->n_eig ? spectrum->n_eig : 1) * sizeof(double));
    if (!spectrum->block || !spectrum->eigenvalues) {
        fprintf(stderr, "sgk-check-eigen: out of memory for a %zu x %zu block\n", n, n);
        return EXIT_TROUBLE;
    }
    count[0] = count[1] = n;
    rc = nc_get_vara_double(ncid, sgk_id, start, count, spectrum->block);
    if (rc != NC_NOERR) return read_error(path, "sgk", rc);
    rc = nc_get_var_double(ncid, eig_id, spectrum->eigenvalues);
    if (rc != NC_NOERR) return read_error(path, "eigenvalues", rc);
    for (k = 0; k < n * n; k++) spectrum->block[k] /= (double)n;
    return EXIT_PASS;
}

static int descending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x < y) - (x > y);
}

/* All eigenvalues of the symmetric n x n `a` (destroyed), in descending order. The
 * array is row-major, which LAPACK reads as the transpose, so 'L' here uses the
 * upper triangle of the stored kernel. */
static int solve(double *a, int n, double *w)
{
    int lwork = -1, liwork = -1, iwork_query = 0, info = 0;
    double work_query = 0.0;
    double *work;
    int *iwork;

    dsyevd_("N", "L", &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    if (info != 0) {
        fprintf(stderr, "sgk-check-eigen: dsyevd workspace query failed, info = %d\n", info);
        return EXIT_TROUBLE;
    }
    lwork = (int)work_query;
    liwork = iwork_query;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        fprintf(stderr, "sgk-check-eigen: out of memory for the dsyevd workspace\n");
        free(work);
        free(iwork);
        return EXIT_TROUBLE;
    }
    dsyevd_("N", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0) {
        fprintf(stderr, "sgk-check-eigen: dsyevd failed, info = %d (%s)\n", info,
                info < 0 ? "invalid argument" : "the algorithm did not converge");
        return EXIT_TROUBLE;
    }
    qsort(w, (size_t)n, sizeof *w, descending);
    return EXIT_PASS;
}

/* Largest |a[i][j] - a[j][i]| relative to the largest |a[i][j]|: dsyevd reads one
 * triangle only, so an asymmetric kernel would go unnoticed without this. */
static double relative_asymmetry(const double *a, size_t n)
{
    double max_diff = 0.0, max_abs = 0.0;
    size_t i, j;

    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            if (fabs(a[i * n + j]) > max_abs) max_abs = fabs(a[i * n + j]);
            if (fabs(a[i * n + j] - a[j * n + i]) > max_diff)
                max_diff = fabs(a[i * n + j] - a[j * n + i]);
        }
    return max_abs > 0.0 ? max_diff / max_abs : max_diff;
}

static int compare(const char *path, const stored_spectrum *spectrum, const double *lapack,
                   double asymmetry, double rtol)
{
    const size_t n = spectrum->n_train;
    double lambda_max = fabs(lapack[0]) > fabs(lapack[n - 1]) ? fabs(lapack[0]) : fabs(lapack[n - 1]);
    double max_dev = 0.0;
    size_t k, worst = 0;
    int pass;

    for (k = 0; k < spectrum->n_eig; k++) {
        double dev = fabs(spectrum->eigenvalues[k] - lapack[k]);

        if (isnan(dev)) { /* a NaN stored eigenvalue fails the check */
            max_dev = dev;
            worst = k;
            break;
        }
        if (dev > max_dev) {
            max_dev = dev;
            worst = k;
        }
    }
    pass = max_dev <= rtol * lambda_max && asymmetry <= rtol;
    printf("%s: n = %zu, %zu stored eigenvalues, lambda_max = %.6e, max |stored - lapack| = "
           "%.3e at k = %zu (stored %.15e, lapack %.15e), relative %.3e, kernel asymmetry "
           "%.3e, rtol %.1e: %s\n",
           path, n, spectrum->n_eig, lambda_max, max_dev, worst,
           spectrum->n_eig ? spectrum->eigenvalues[worst] : NAN, lapack[worst],
           lambda_max > 0.0 ? max_dev / lambda_max : max_dev, asymmetry, rtol,
           pass ? "PASSED" : "FAILED");
    return pass ? EXIT_PASS : EXIT_FAIL;
}

static int parse_arguments(int argc, char **argv, const char **path, double *rtol)
{
    int i;

    *path = NULL;
    *rtol = DEFAULT_RTOL;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(EXIT_PASS);
        } else if (strcmp(argv[i], "--rtol") == 0) {
            char *end;

            if (i + 1 >= argc) {
                fprintf(stderr, "sgk-check-eigen: --rtol needs a value, e.g. --rtol 1e-10\n");
                return EXIT_TROUBLE;
            }
            errno = 0;
            *rtol = strtod(argv[++i], &end);
            if (errno != 0 || end == argv[i] || *end != '\0' || !(*rtol >= 0.0) || !isfinite(*rtol)) {
                fprintf(stderr, "sgk-check-eigen: invalid --rtol value '%s'; expected a finite "
                        "number >= 0, e.g. 1e-10\n", argv[i]);
                return EXIT_TROUBLE;
            }
        } else if (strncmp(argv[i], "--", 2) == 0 || *path) {
            fprintf(stderr, "sgk-check-eigen: unexpected argument %s\n", argv[i]);
            usage(stderr);
            return EXIT_TROUBLE;
        } else {
            *path = argv[i];
        }
    }
    if (!*path) {
        usage(stderr);
        return EXIT_TROUBLE;
    }
    return EXIT_PASS;
}

int main(int argc, char **argv)
{
    stored_spectrum spectrum = {0, 0, NULL, NULL};
    const char *path;
    double rtol, asymmetry, *lapack = NULL;
    int ncid, rc, status;

    if ((status = parse_arguments(argc, argv, &path, &rtol)) != EXIT_PASS) return status;
    rc = nc_open(path, NC_NOWRITE, &ncid);
    if (rc != NC_NOERR) {
        fprintf(stderr, "sgk-check-eigen: cannot open %s: %s\n", path, nc_strerror(rc));
        return EXIT_TROUBLE;
    }
    status = read_spectrum(ncid, path, &spectrum);
    nc_close(ncid);

    if (status == EXIT_PASS) {
        asymmetry = relative_asymmetry(spectrum.block, spectrum.n_train);
        lapack = malloc(spectrum.n_train * sizeof *lapack);
        if (!lapack) {
            fprintf(stderr, "sgk-check-eigen: out of memory for %zu eigenvalues\n",
                    spectrum.n_train);
            status = EXIT_TROUBLE;
        }
        if (status == EXIT_PASS) status = solve(spectrum.block, (int)spectrum.n_train, lapack);
        if (status == EXIT_PASS) status = compare(path, &spectrum, lapack, asymmetry, rtol);
    }
    free(lapack);
    free(spectrum.block);
    free(spectrum.eigenvalues);
    return status;
}
