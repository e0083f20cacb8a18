/* Counter-based random streams on Random123 Philox4x64-10.
 *
 * Philox maps (counter, key) to 256 random bits with no hidden state, so a stream is
 * fully described by its key (seed, replica) and counter (purpose, substream, block, 0).
 * The third counter word counts 4-word blocks within a substream, which gives each
 * substream 2^64 blocks before it would wrap. */
#include <assert.h>
#include <math.h>

#include <Random123/philox.h>

#include "sgk/rng.h"

enum { WORDS_PER_BLOCK = 4 };

/* 2^-53: the spacing of the doubles that sgk_rng_uniform returns. */
static const double UNIT_53 = 1.0 / 9007199254740992.0;

/* Strict C11 headers do not define M_PI. */
static const double TWO_PI = 6.283185307179586476925286766559;

static void refill(sgk_rng *rng)
{
    philox4x64_ctr_t counter = {{rng->counter[0], rng->counter[1], rng->counter[2],
                                 rng->counter[3]}};
    philox4x64_key_t key = {{rng->key[0], rng->key[1]}};
    philox4x64_ctr_t block = philox4x64(counter, key);

    for (int i = 0; i < WORDS_PER_BLOCK; i++)
        rng->buffer[i] = block.v[i];
    rng->counter[2]++;
    rng->used = 0;
}

void sgk_rng_init(sgk_rng *rng, uint64_t seed, uint64_t replica, sgk_rng_purpose purpose)
{
    rng->key[0] = seed;
    rng->key[1] = replica;
    rng->counter[0] = (uint64_t)purpose;
    sgk_rng_seek(rng, 0);
}

void sgk_rng_seek(sgk_rng *rng, uint64_t substream)
{
    rng->counter[1] = substream;
    rng->counter[2] = 0;
    rng->counter[3] = 0;
    for (int i = 0; i < WORDS_PER_BLOCK; i++)
        rng->buffer[i] = 0;

    /* An empty buffer and no cached normal make the next draw depend only on
     * (key, purpose, substream), not on what was drawn before the seek. */
    rng->used = WORDS_PER_BLOCK;
    rng->has_spare_normal = 0;
    rng->spare_normal = 0.0;
}

uint64_t sgk_rng_u64(sgk_rng *rng)
{
    if (rng->used >= WORDS_PER_BLOCK)
        refill(rng);
    return rng->buffer[rng->used++];
}

double sgk_rng_uniform(sgk_rng *rng)
{
    return (double)(sgk_rng_u64(rng) >> 11) * UNIT_53;
}

double sgk_rng_normal(sgk_rng *rng)
{
    if (rng->has_spare_normal) {
        rng->has_spare_normal = 0;
        return rng->spare_normal;
    }

    /* 1 - uniform lies in (0, 1], so the logarithm stays finite. */
    double radius = sqrt(-2.0 * log(1.0 - sgk_rng_uniform(rng)));
    double angle = TWO_PI * sgk_rng_uniform(rng);

    rng->spare_normal = radius * sin(angle);
    rng->has_spare_normal = 1;
    return radius * cos(angle);
}

uint64_t sgk_rng_below(sgk_rng *rng, uint64_t bound)
{
    assert(bound > 0);

    /* 2^64 mod bound, computed in 64-bit arithmetic as (2^64 - bound) mod bound.
     * Words at or above it span a whole multiple of `bound` values, so reducing
     * them modulo `bound` gives every result the same probability. */
    uint64_t threshold = (0 - bound) % bound;

    for (;;) {
        uint64_t word = sgk_rng_u64(rng);
        if (word >= threshold)
            return word % bound;
    }
}

void sgk_rng_sample(sgk_rng *rng, long population, long count, long *scratch, long *out)
{
    assert(count >= 0);
    assert(count <= population);

    for (long i = 0; i < population; i++)
        scratch[i] = i;

    /* Partial Fisher-Yates: after step i, scratch[0..i] is a uniform random
     * ordered sample of i + 1 distinct indices. */
    for (long i = 0; i < count; i++) {
        long j = i + (long)sgk_rng_below(rng, (uint64_t)(population - i));
        long chosen = scratch[j];
        scratch[j] = scratch[i];
        scratch[i] = chosen;
        out[i] = chosen;
    }
}
