/*
 * balance.c - power of two choices across Ready instances, and the restart back-off.
 *
 * Balancing follows ANCHORS.md (Knative's activator and queue-proxy): pick two instances at
 * random and send to the one with fewer requests in flight, which keeps the maximum load
 * close to the mean without scanning every instance's queue (Mitzenmacher). capstan adds a
 * hard containerConcurrency: an instance at its limit is never picked, and when every Ready
 * instance is full the answer is "none available" so that the activator holds the request.
 *
 * The back-off is the kubelet's (ANCHORS.md, Kubernetes workload semantics): 10 s, doubling,
 * capped at 300 s, reset after 10 minutes of healthy running. All three are configurable.
 */
#include "runtime/balance.h"

void cs_rng_seed(cs_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t cs_rng_next(cs_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

static bool eligible(const cs_balance_inst *in, int limit)
{
    return in->ready && (limit <= 0 || in->outstanding < limit);
}

/* The k-th eligible instance's index (k counts from 0). */
static int nth_eligible(const cs_balance_inst *insts, int n, int limit, int k)
{
    for (int i = 0; i < n; i++)
        if (eligible(&insts[i], limit) && k-- == 0) return i;
    return -1;
}

int cs_balance_pick(const cs_balance_inst *insts, int n, int limit, cs_rng *rng)
{
    int m = 0;
    for (int i = 0; i < n; i++) m += eligible(&insts[i], limit);
    if (m == 0) return -1;
    if (m == 1) return nth_eligible(insts, n, limit, 0);
    int a = (int)(cs_rng_next(rng) % (uint64_t)m);
    int b = (int)(cs_rng_next(rng) % (uint64_t)(m - 1));
    if (b >= a) b++; /* two distinct draws */
    int ia = nth_eligible(insts, n, limit, a), ib = nth_eligible(insts, n, limit, b);
    return insts[ib].outstanding < insts[ia].outstanding ? ib : ia;
}

cs_backoff_policy cs_backoff_default(void)
{
    return (cs_backoff_policy){CS_BACKOFF_INITIAL_MS, CS_BACKOFF_MAX_MS, CS_BACKOFF_RESET_MS};
}

int64_t cs_backoff_next(cs_backoff *b, const cs_backoff_policy *p, int64_t ran_ms)
{
    if (ran_ms >= p->reset_ms) *b = (cs_backoff){0};
    int64_t d = b->restarts == 0 ? p->initial_ms : b->delay_ms * 2;
    if (d > p->max_ms) d = p->max_ms;
    b->delay_ms = d;
    b->restarts++;
    return d;
}
