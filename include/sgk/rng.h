/* Counter-based random streams (Random123 Philox4x64-10).
 *
 * A stream is keyed by (seed, replica, purpose), so the numbers a replica draws do
 * not depend on the rank that trains it or on how many replicas came before. Within a
 * stream, `sgk_rng_seek` positions at a substream (for example the step index), which
 * makes every step's draws independent of the draws of earlier steps. */
#ifndef SGK_RNG_H
#define SGK_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SGK_RNG_INIT = 1,    /* initial weights */
    SGK_RNG_BATCH = 2,   /* minibatch selection */
    SGK_RNG_NOISE = 3,   /* Langevin noise */
    SGK_RNG_DATA = 4,    /* which examples are drawn from a data set */
    SGK_RNG_TEACHER = 5, /* synthetic teacher network and its inputs */
    SGK_RNG_DISC_INIT = 6,     /* GAN: the discriminator's initial weights */
    SGK_RNG_LATENT = 7,        /* GAN: the latent inputs of a training step */
    SGK_RNG_LATENT_POINTS = 8, /* GAN: the latent evaluation points, keyed by [data] seed */
    SGK_RNG_LEVEL = 9          /* denoise: each step's noise level and noise draws */
} sgk_rng_purpose;

typedef struct {
    uint64_t key[2];     /* (seed, replica) */
    uint64_t counter[4]; /* (purpose, substream, block index, 0) */
    uint64_t buffer[4];  /* last Philox output block */
    int used;            /* words of `buffer` already returned */
    int has_spare_normal;
    double spare_normal;
} sgk_rng;

/* Start the stream for (seed, replica, purpose) at substream 0. */
void sgk_rng_init(sgk_rng *rng, uint64_t seed, uint64_t replica, sgk_rng_purpose purpose);

/* Jump to the start of `substream` of the same key and purpose. The cached normal is
 * dropped, so the draws that follow do not depend on earlier draws. */
void sgk_rng_seek(sgk_rng *rng, uint64_t substream);

uint64_t sgk_rng_u64(sgk_rng *rng);

/* Uniform in [0, 1) with 53 random bits. */
double sgk_rng_uniform(sgk_rng *rng);

/* Standard normal by the Box-Muller transform. Every other call consumes two uniforms
 * and caches the second normal of the pair, which the next call returns. */
double sgk_rng_normal(sgk_rng *rng);

/* Uniform integer in [0, bound), without modulo bias; bound > 0. */
uint64_t sgk_rng_below(sgk_rng *rng, uint64_t bound);

/* Draw `count` distinct indices from [0, population) in random order, by a
 * partial Fisher-Yates shuffle on `scratch`, which must hold `population` longs.
 * Requires 0 <= count <= population. */
void sgk_rng_sample(sgk_rng *rng, long population, long count, long *scratch, long *out);

#ifdef __cplusplus
}
#endif
#endif
