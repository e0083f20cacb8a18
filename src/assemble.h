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

/* Called on every rank for each accepted replica with its checkpoint parameters (C x P,
 * P = sgk_train_plan_params) and preconditioners (or NULL). */
typedef sgk_status (*sgk_replica_visit)(void *context, long replica, const double *weights,
                                        const double *preconditioners);

/* Collective. The replica loop of every assembly: for each replica not `dropped`, in index
 * order, broadcast its stored parameters (and preconditioners, when `preconditioners` is
 * not NULL) from the rank that trained it into these C x P buffers, then call `visit`.
 * After a failure a rank keeps taking part in the broadcasts but visits no more; the
 * caller agrees on the status. With a snapshot folder, a SIGTERM or SIGUSR1 seen by any
 * rank stops the loop between replicas with *stopped = 1. */
sgk_status sgk_assemble_by_replica(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                   const int *dropped, double *weights, double *preconditioners,
                                   sgk_replica_visit visit, void *context, int *stopped);

/* Several kernels assembled in one pass over the replicas, for kernels split into parts
 * (the noise levels of the denoise task). Part p receives
 * scale * sum over accepted r and c of weight(r, c, p) tr_o Theta_{r,c}, with the last input
 * of every evaluation point set to condition[p] when `condition` is not NULL. */
typedef struct {
    int n_parts;
    sgk_dmatrix *kernels;    /* n_parts matrices with the same layout */
    const double *weight;    /* R x C x n_parts when per_replica, else C x n_parts */
    int per_replica;
    double scale;
    const double *condition; /* n_parts values of the last input, or NULL */
    double *trace;           /* C x n_parts: receives sum over accepted replicas of the
                              * unweighted tr Theta over all evaluation points, or NULL */
} sgk_assembly_terms;

/* Collective. sgk_kernel_assemble for several parts at once (see sgk_assembly_terms); a
 * term of weight 0 is skipped, but its trace is still taken. */
sgk_status sgk_kernel_assemble_parts(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                     const int *dropped, const sgk_assembly_terms *terms,
                                     double *seconds, int *stopped);

#endif
