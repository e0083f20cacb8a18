/* CUnit under MPI: every rank runs the registered suites, and every rank exits with
 * the same status. */
#ifndef SGK_MPI_TEST_H
#define SGK_MPI_TEST_H

#include <mpi.h>

/* Collective over `comm`. Run every registered CUnit suite on every rank. Rank 0
 * prints the CUnit summary; other ranks print their own failed assertions, tagged
 * with their rank. Returns 0 when no rank recorded a failure or a CUnit framework
 * error, and 1 otherwise, the same on every rank. */
int sgk_test_mpi_run(MPI_Comm comm);

#endif
