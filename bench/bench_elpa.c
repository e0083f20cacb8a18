/* `make bench`, part 8: ELPA as a candidate eigen-solver backend, against PDSYEVD.
 *
 * Usage: mpiexec -n P sgk-bench-elpa [N]   (default 4096)
 * A scratch evaluation, not part of libsgk: it is built only when pkg-config finds ELPA
 * (Debian: libelpa-dev). The matrix is the Gaussian kernel of bench_eigen.c, block size 64,
 * on the default grid of sgk_grid_create. Three solvers compute every eigenpair of a fresh
 * copy each: sgk_spectrum_eigh (PDSYEVD), ELPA 1-stage and ELPA 2-stage. ELPA's eigenvalues
 * must match PDSYEVD's to rounding. Times run from a barrier to the slowest rank's return. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elpa/elpa.h>
#include <mpi.h>

#include "sgk/kernel.h"
#include "sgk/spectrum.h"

enum { BLOCK_SIZE = 64, POINT_DIMS = 8 };

/* The point hash of bench_eigen.c, so that both programs solve the same matrices. */
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

static double slowest_since(MPI_Comm comm, double start)
{
    double seconds = MPI_Wtime() - start, slowest = 0.0;

    MPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
    return slowest;
}

/* Solve a with ELPA's `solver` (ELPA_SOLVER_1STAGE or _2STAGE) into ascending eigenvalues
 * and the eigenvector matrix q; returns the time, or a negative value after printing the
 * ELPA error on rank 0. */
static double elpa_solve(const sgk_grid *grid, sgk_dmatrix *a, sgk_dmatrix *q, int solver,
                         double *eigenvalues)
{
    int error = ELPA_OK, failed = 0;
    elpa_t handle = elpa_allocate(&error);

    if (error == ELPA_OK) {
        elpa_set_integer(handle, "na", (int)a->n, &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "nev", (int)a->n, &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "local_nrows", a->local_rows, &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "local_ncols", a->local_cols, &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "nblk", a->nb, &error);
        if (error == ELPA_OK)
            elpa_set_integer(handle, "mpi_comm_parent", (int)MPI_Comm_c2f(grid->comm), &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "process_row", grid->my_prow, &error);
        if (error == ELPA_OK) elpa_set_integer(handle, "process_col", grid->my_pcol, &error);
        if (error == ELPA_OK) error = elpa_setup(handle);
        if (error == ELPA_OK) elpa_set_integer(handle, "solver", solver, &error);
    }
    MPI_Barrier(grid->comm);
    double start = MPI_Wtime();
    if (error == ELPA_OK) elpa_eigenvectors(handle, a->local, eigenvalues, q->local, &error);
    double seconds = slowest_since(grid->comm, start);

    failed = error != ELPA_OK;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, grid->comm);
    if (failed && grid->rank == 0)
        fprintf(stderr, "sgk-bench-elpa: ELPA %d-stage failed: %s\n", solver,
                error != ELPA_OK ? elpa_strerr(error) : "on another rank");
    if (handle) elpa_deallocate(handle, &error);
    return failed ? -1.0 : seconds;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 4096;
    double *reference, *values;
    sgk_dmatrix a, q;
    sgk_grid grid;
    int exit_status = 0;

    MPI_Init(&argc, &argv);
    if (n < 1) {
        fprintf(stderr, "sgk-bench-elpa: invalid size '%s'; expected an integer >= 1\n", argv[1]);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (elpa_init(ELPA_API_VERSION) != ELPA_OK) {
        fprintf(stderr, "sgk-bench-elpa: the ELPA library does not support API version %d\n",
                ELPA_API_VERSION);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    reference = malloc(sizeof(double) * (size_t)n);
    values = malloc(sizeof(double) * (size_t)n);
    if (!reference || !values || sgk_grid_create(MPI_COMM_WORLD, 0, 0, &grid) != SGK_OK
        || sgk_dmatrix_create(&grid, n, BLOCK_SIZE, &a) != SGK_OK
        || sgk_dmatrix_create(&grid, n, BLOCK_SIZE, &q) != SGK_OK) {
        fprintf(stderr, "sgk-bench-elpa: setup failed: %s\n", sgk_error_message());
        MPI_Abort(MPI_COMM_WORLD, 4);
    }

    /* 1. PDSYEVD through libsgk, eigenvalues in descending order. */
    fill_kernel(&a);
    MPI_Barrier(grid.comm);
    double start = MPI_Wtime();
    sgk_status status = sgk_spectrum_eigh(&a, reference, &q);
    double pdsyevd_seconds = slowest_since(grid.comm, start);
    if (status != SGK_OK) {
        if (grid.rank == 0) fprintf(stderr, "sgk-bench-elpa: %s\n", sgk_error_message());
        MPI_Abort(MPI_COMM_WORLD, (int)status);
    }
    if (grid.rank == 0) {
        printf("%-14s %5s %10s %14s\n", "solver", "N", "seconds", "max |dlambda|");
        printf("%-14s %5ld %10.2f %14s\n", "PDSYEVD", n, pdsyevd_seconds, "reference");
        printf("RESULT elpa_pdsyevd_seconds_%ld %.3f\n", n, pdsyevd_seconds);
        fflush(stdout);
    }

    /* 2. ELPA, both solvers; ELPA returns ascending eigenvalues. Both sides carry errors
     *    of about n * 1e-16 * lambda_max from the reduction to tridiagonal form, so a gap
     *    above 1e-9 lambda_max means a wrong spectrum. */
    for (int solver = ELPA_SOLVER_1STAGE; solver <= ELPA_SOLVER_2STAGE; solver++) {
        fill_kernel(&a);
        double seconds = elpa_solve(&grid, &a, &q, solver, values);
        if (seconds < 0.0) {
            exit_status = 3;
            continue;
        }
        double gap = 0.0;
        for (long k = 0; k < n; k++) gap = fmax(gap, fabs(values[n - 1 - k] - reference[k]));
        if (grid.rank == 0) {
            printf("ELPA %d-stage   %5ld %10.2f %14.3e\n", solver, n, seconds, gap);
            printf("RESULT elpa_%dstage_seconds_%ld %.3f\n", solver, n, seconds);
            fflush(stdout);
        }
        if (gap > 1e-9 * fabs(reference[0])) {
            if (grid.rank == 0)
                fprintf(stderr, "sgk-bench-elpa: ELPA %d-stage eigenvalues differ from PDSYEVD's "
                        "by %.3g\n", solver, gap);
            exit_status = 3;
        }
    }

    sgk_dmatrix_free(&a);
    sgk_dmatrix_free(&q);
    sgk_grid_free(&grid);
    free(reference);
    free(values);
    int error;
    elpa_uninit(&error);
    MPI_Finalize();
    return exit_status;
}
