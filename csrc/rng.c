/* Philox4x32-10 (Salmon et al., SC'11): counter-based, so a draw depends only
 * on (key, stream, position) and any stream can be regenerated on any thread. */
#include "kernels.h"

#include <math.h>

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void philox4x32_10(const uint32_t counter[4], const uint32_t key_in[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void rng_init(rng_stream *rng, uint64_t seed, uint32_t domain, uint64_t stream) {
    uint64_t key = splitmix64(splitmix64(seed) ^ ((uint64_t)domain * 0xD6E8FEB86659FD93ull));
    rng->key[0] = (uint32_t)key;
    rng->key[1] = (uint32_t)(key >> 32);
    rng->counter[0] = 0; /* counter[0..1]: block index within the stream */
    rng->counter[1] = 0;
    rng->counter[2] = (uint32_t)stream;
    rng->counter[3] = (uint32_t)(stream >> 32);
    rng->used = 4;
}

uint32_t rng_u32(rng_stream *rng) {
    if (rng->used == 4) {
        philox4x32_10(rng->counter, rng->key, rng->block);
        if (++rng->counter[0] == 0) ++rng->counter[1];
        rng->used = 0;
    }
    return rng->block[rng->used++];
}

double rng_uniform(rng_stream *rng) {
    uint32_t a = rng_u32(rng) >> 5, b = rng_u32(rng) >> 6;
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

double rng_normal(rng_stream *rng) {
    /* 1 - u lies in (0, 1], so the logarithm is finite. */
    double u1 = 1.0 - rng_uniform(rng), u2 = rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
