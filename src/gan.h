/* GAN mode, [train] task = gan (private to libsgk; doc/generative.md, "GAN mode").
 *
 * The generator is the [model] MLP from latent_dim inputs to the data dimension O, and
 * the discriminator an MLP from O inputs to one output with hidden layers [gan]
 * disc_widths. A replica's state is one parameter vector [w_G ; v_D], generator first,
 * so that the checkpoint store, snapshots and restarts carry both networks. The
 * evaluation set of the kernel is a fixed set of latent points. */
#ifndef SGK_GAN_H
#define SGK_GAN_H

#include "ensemble.h"
#include "sgk/kernel.h"
#include "sgk/run.h"

typedef struct sgk_gan_plan {
    const sgk_dataset *real;  /* the data source: its n_train training points are the real
                               * samples */
    sgk_mlp disc;             /* discriminator, O inputs, one output */
    long n_gen_params;        /* P_G: the generator's part, first in the state */
    long n_params;            /* P_G + P_D */
} sgk_gan_plan;

/* Describe the discriminator for the real samples of `real` and the state layout next
 * to `generator`. Errors as sgk_mlp_create, naming [gan] disc_widths. */
sgk_status sgk_gan_plan_create(const sgk_config *config, const sgk_dataset *real,
                               const sgk_mlp *generator, sgk_gan_plan *plan);

/* Draw replica `replica`'s initial discriminator parameters v (P_D entries) from the
 * SGK_RNG_DISC_INIT stream keyed by ([ensemble] seed, replica), or by replica 0 when
 * [ensemble] vary lacks init, the way sgk_mlp_init_params draws the generator's. */
void sgk_gan_disc_init(const sgk_config *config, const sgk_mlp *disc, long replica, double *v);

/* Fill results->gan for a GAN run on the data source `real`: the latent evaluation set
 * (every rank), the real samples (rank 0) and the field's size. The latent points are
 * [gan] latent_points rows of latent_dim standard normals, drawn in row order from the
 * SGK_RNG_LATENT_POINTS stream keyed by ([data] seed, 0). */
sgk_status sgk_gan_results_prepare(const sgk_config *config, const sgk_dataset *real, int rank,
                                   sgk_gan_results *gan);

void sgk_gan_results_free(sgk_gan_results *gan);

/* Allocate the replica's state, optimizer and streams, and draw its initial parameters:
 * the generator from SGK_RNG_INIT as in the other tasks, the discriminator with
 * sgk_gan_disc_init. */
sgk_status sgk_gan_replica_start(const sgk_train_plan *plan, long replica, sgk_replica *rep);

/* Train from the replica's current step to the end, the GAN counterpart of
 * sgk_replica_run: record the generated samples, the two losses and the parameters at
 * every checkpoint; stop early when the replica diverges or the hook pauses it. */
sgk_status sgk_gan_replica_run(const sgk_train_plan *plan, sgk_replica *rep,
                               sgk_replica_record *record, sgk_step_hook hook, void *context,
                               int *paused);

/* Collective. The GAN counterpart of sgk_kernel_assemble, with the same arguments and
 * distribution: K += scale * sum over accepted replicas r and checkpoints c of
 * omega_c g_{r,c}(z)^T J_G(z) J_G(z')^T g_{r,c}(z'), where g is the discriminator's
 * input gradient at the generated sample G(z). */
sgk_status sgk_gan_kernel_assemble(const sgk_ensemble *ensemble, const sgk_grid *grid,
                                   const int *dropped, const double *quadrature_weight,
                                   double scale, sgk_dmatrix *kernel, double *seconds,
                                   int *stopped);

/* Collective. The discriminator field on rank 0: D and grad_x D on the lattice, averaged
 * over the n_accepted replicas not marked in `dropped`, at the last checkpoint. Does
 * nothing when gan->n_grid = 0. */
sgk_status sgk_gan_field(const sgk_ensemble *ensemble, const sgk_grid *grid, const int *dropped,
                         long n_accepted, sgk_gan_results *gan);

#endif
