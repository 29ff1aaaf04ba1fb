/*
 * balance.h - picking an instance for a request, and the restart back-off of a failed one.
 *
 * Pure functions over caller-owned arrays: no locks, no allocation, no clock reads. The
 * caller (the deployment's router) holds whatever lock guards its instance table.
 */
#ifndef CS_RUNTIME_BALANCE_H
#define CS_RUNTIME_BALANCE_H

#include <stdbool.h>
#include <stdint.h>

/* One instance as the balancer sees it: whether it is Ready and how many requests it has
 * outstanding (admitted and not yet answered). */
typedef struct cs_balance_inst {
    bool ready;
    int outstanding;
} cs_balance_inst;

/* A seeded xorshift64* generator, so that tests and replays are deterministic. The state must
 * be non-zero; cs_rng_seed maps 0 to a fixed non-zero value. */
typedef struct cs_rng {
    uint64_t s;
} cs_rng;

void cs_rng_seed(cs_rng *r, uint64_t seed);
uint64_t cs_rng_next(cs_rng *r);

/* Power of two choices: two distinct eligible instances drawn at random, the one with fewer
 * outstanding requests wins (ties go to the first draw). Eligible means ready and, when
 * limit > 0 (containerConcurrency), outstanding < limit: the limit is hard. Returns the
 * index, or -1 when none is eligible ("none available": the caller queues or answers 503).
 * O(n) to count the eligible ones; n is the instance count of one deployment. */
int cs_balance_pick(const cs_balance_inst *insts, int n, int limit, cs_rng *rng);

/* Restart back-off as the kubelet's CrashLoopBackOff: initial, doubling per restart, capped
 * at max, and back to initial once the instance has run healthy for reset. */
typedef struct cs_backoff_policy {
    int64_t initial_ms; /* 10 s */
    int64_t max_ms;     /* 300 s */
    int64_t reset_ms;   /* 10 min */
} cs_backoff_policy;

#define CS_BACKOFF_INITIAL_MS 10000
#define CS_BACKOFF_MAX_MS     300000
#define CS_BACKOFF_RESET_MS   600000

/* The defaults above. */
cs_backoff_policy cs_backoff_default(void);

typedef struct cs_backoff {
    int restarts;     /* restarts counted since the last reset */
    int64_t delay_ms; /* the delay before the latest restart (0 before any failure) */
} cs_backoff;

/* The instance failed after running healthy for ran_ms: returns the delay before the next
 * start and updates b. ran_ms ≥ policy.reset_ms resets the sequence first, so that this
 * failure waits the initial delay again. */
int64_t cs_backoff_next(cs_backoff *b, const cs_backoff_policy *p, int64_t ran_ms);

#endif
