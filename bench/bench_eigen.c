/* `make bench`, part 5: time of sgk_spectrum_eigh (ScaLAPACK PDSYEVD) on the default grid.
 *
 * Usage: mpiexec -n P sgk-bench-eigen [N]...   (default 2048 4096)
 * Each matrix is a Gaussian kernel exp(-|z_i - z_j|^2 / 2) on N points z_i drawn uniformly
 * from [0, 1)^8, a positive semi-definite matrix whose spectrum decays fast, as the
 * stochastic gradient kernel's does. Block size 64, the [kernel] block_size default.
 * The time runs from a barrier before the call to the slowest rank's return and covers
 * the eigenvectors too, which PDSYEVD always computes. Self-check: the eigenvalues must
 * sum to the trace N. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "sgk/kernel.h"
#include "sgk/spectrum.h"

enum { BLOCK_SIZE = 64, POINT_DIMS = 8 };

/* Coordinate k of point i: a hash of (i, k) mapped to [0, 1), so every rank computes the
 * same points without communication. */
static double coordinate(long i, int k)
{
    unsigned long long h = (unsigned long long)i * 0x9E3779B97F4A7C15ULL + (unsigned long long)k;

    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 32;
    return (double)(h >> 11) / 9007199254740992.0;
}

/* Fill this rank's part of the Gaussian kernel, both triangles. */
static void fill_kernel(sgk_dmatrix *a)
{
    for (int j = 0; j < a->local_cols; j++) {
        long gj = sgk_dmatrix_global_col(a, j);
        for (int i = 0; i < a->local_rows; i++) {
            long gi = sgk_dmatrix_global_row(a, i);
            double distance2 = 0.0;
            for (int k = 0; k < POINT_DIMS; k++) {
                double d = coordinate(gi, k) - coordinate(gj, k);
                distance2 += d * d;
            }
            a->local[(size_t)j * a->lld + i] = exp(-0.5 * distance2);
        }
    }
}

/* Time one size; returns 0, or an sgk_status after rank 0 printed why. */
static int run_size(const sgk_grid *grid, long n)
{
    sgk_dmatrix a;
    double *eigenvalues = malloc(sizeof(double) * (size_t)n);
    sgk_status status = eigenvalues ? SGK_OK : sgk_error(SGK_ERR_IO, "out of memory for %ld "
                                                         "eigenvalues", n);

    status = sgk_grid_agree(grid, status, "allocating the eigenvalues");
    if (status == SGK_OK) status = sgk_dmatrix_create(grid, n, BLOCK_SIZE, &a);
    if (status != SGK_OK) {
        if (grid->rank == 0) fprintf(stderr, "sgk-bench-eigen: %s\n", sgk_error_message());
        free(eigenvalues);
        return (int)status;
    }
    fill_kernel(&a);

    MPI_Barrier(grid->comm);
    double start = MPI_Wtime();
    status = sgk_spectrum_eigh(&a, eigenvalues, NULL);
    double seconds = MPI_Wtime() - start, slowest = 0.0;
    MPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, grid->comm);
    sgk_dmatrix_free(&a);
    if (status != SGK_OK) {
        if (grid->rank == 0) fprintf(stderr, "sgk-bench-eigen: %s\n", sgk_error_message());
        free(eigenvalues);
        return (int)status;
    }

    /* The diagonal is exp(0) = 1, so the trace is n. Summing n eigenvalues of size up to
     * about n in double precision leaves an error near n * 1e-16 * n; 1e-9 relative flags
     * only a wrong spectrum. */
    double sum = 0.0;
    for (long k = 0; k < n; k++) sum += eigenvalues[k];
    double trace_error = fabs(sum - (double)n) / (double)n;
    if (grid->rank == 0) {
        printf("%6ld %5d x %-3d %10.2f %12.5g %12.3e %10.1e\n", n, grid->n_prow, grid->n_pcol,
               slowest, eigenvalues[0], eigenvalues[n - 1], trace_error);
        printf("RESULT eigh_seconds_%ld %.3f\n", n, slowest);
        fflush(stdout);
    }
    free(eigenvalues);
    if (trace_error > 1e-9) {
        if (grid->rank == 0)
            fprintf(stderr, "sgk-bench-eigen: the eigenvalues at N = %ld sum to %.17g, not the "
                    "trace %ld\n", n, sum, n);
        return SGK_ERR_NUMERIC;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const long default_sizes[] = { 2048, 4096 };
    int n_sizes = argc > 1 ? argc - 1 : 2;
    int exit_status = 0;
    sgk_grid grid;

    MPI_Init(&argc, &argv);
    if (sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid) != SGK_OK) {
        fprintf(stderr, "sgk-bench-eigen: %s\n", sgk_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (grid.rank == 0)
        printf("%6s %11s %10s %12s %12s %10s\n", "N", "grid", "seconds", "lambda_max",
               "lambda_min", "trace err");
    for (int k = 0; k < n_sizes && exit_status == 0; k++) {
        long n = argc > 1 ? atol(argv[k + 1]) : default_sizes[k];
        if (n < 1) {
            if (grid.rank == 0)
                fprintf(stderr, "sgk-bench-eigen: invalid size '%s'; expected an integer >= 1\n",
                        argv[k + 1]);
            exit_status = 1;
            break;
        }
        exit_status = run_size(&grid, n);
    }
    sgk_grid_free(&grid);
    MPI_Finalize();
    return exit_status;
}
