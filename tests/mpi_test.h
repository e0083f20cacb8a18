/* CUnit under MPI: every rank runs the registered suites, and every rank exits with
 * the same status. */
#ifndef SGK_MPI_TEST_H
#define SGK_MPI_TEST_H

#include <mpi.h>

#include "sgk/config.h"

/* Collective over `comm`. Run every registered CUnit suite on every rank. Rank 0
 * prints the CUnit summary; other ranks print their own failed assertions, tagged
 * with their rank. Returns 0 when no rank recorded a failure or a CUnit framework
 * error, and 1 otherwise, the same on every rank. */
int sgk_test_mpi_run(MPI_Comm comm);

/* Fill `config` with the defaults, apply the `count` overrides "section.key=value" and
 * validate it. A failure prints the override or the validation message and returns its
 * status. */
sgk_status sgk_test_configure(const char *const *overrides, int count, sgk_config *config);

#endif
