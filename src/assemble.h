/* Assembly of the stochastic gradient kernel into its block-cyclic matrix (private to
 * libsgk). */
#ifndef SGK_ASSEMBLE_H
#define SGK_ASSEMBLE_H

#include "ensemble.h"
#include "sgk/kernel.h"

/* Collective. K += scale * sum over the accepted replicas r and checkpoints c of
 * omega_c tr_o Theta_{r,c}, where Theta_{r,c} is the tangent kernel at replica r's stored
 * parameters of checkpoint c. Each rank computes only the entries it owns: it takes the
 * tangent factors of its block rows' and block columns' evaluation points and forms their
 * Gram with one BLAS-3 product per layer. Parameters travel from the rank that trained a
 * replica to all ranks, replica by replica, so no rank allocates an N x N array, and the
 * operations on every entry do not depend on the rank count or the grid.
 * `dropped` (R flags) marks replicas left out; `quadrature_weight` contains omega_c.
 * When the ensemble has a snapshot folder, a SIGTERM or SIGUSR1 seen by any rank stops
 * the assembly between replicas with *stopped = 1 and K incomplete. */
sgk_status sgk_kernel_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                               const int *dropped, const double *quadrature_weight,
                               double scale, sgk_dmatrix *kernel, double *seconds,
                               int *stopped);

#endif
