/* CUnit under MPI: the failure counts of all ranks are summed so that a check that
 * fails on one rank fails the program on every rank. */
#include <stdio.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "mpi_test.h"
#include "sgk/status.h"

int sgk_test_mpi_run(MPI_Comm comm)
{
    int rank = 0;
    long local_failures = 0;
    long total_failures = 0;

    /* CU_basic_run_tests prints its summary even in silent mode, so the other
     * ranks use the plain runner, which prints nothing. */
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        if (CU_basic_run_tests() != CUE_SUCCESS) local_failures++;
    } else if (CU_run_all_tests() != CUE_SUCCESS) {
        local_failures++;
    }
    local_failures += (long)CU_get_number_of_failures();

    /* Rank 0's failures appear in its CUnit report; the others would stay silent. */
    if (rank != 0) {
        for (CU_pFailureRecord f = CU_get_failure_list(); f != NULL; f = f->pNext)
            fprintf(stderr, "[rank %d] %s:%u: %s: %s\n", rank, f->strFileName,
                    f->uiLineNumber, f->pTest != NULL ? f->pTest->pName : "?",
                    f->strCondition);
    }

    MPI_Allreduce(&local_failures, &total_failures, 1, MPI_LONG, MPI_SUM, comm);
    if (rank == 0)
        printf("\nfailed assertions over all ranks: %ld\n", total_failures);
    return total_failures == 0 ? 0 : 1;
}

sgk_status sgk_test_configure(const char *const *overrides, int count, sgk_config *config)
{
    sgk_status status;

    sgk_config_defaults(config);
    for (int i = 0; i < count; i++) {
        status = sgk_config_override(config, overrides[i]);
        if (status != SGK_OK) {
            fprintf(stderr, "override %s: %s\n", overrides[i], sgk_error_message());
            return status;
        }
    }
    status = sgk_config_validate(config);
    if (status != SGK_OK) fprintf(stderr, "validate: %s\n", sgk_error_message());
    return status;
}
