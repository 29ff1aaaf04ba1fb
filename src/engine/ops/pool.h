/*
 * pool.h - what the pool family's schemas (ops/pool.c) and its kernels (cpu/pool.c) share
 * (internal): which pool a node is and its window geometry.
 */
#ifndef CS_ENGINE_OPS_POOL_H
#define CS_ENGINE_OPS_POOL_H

#include "engine/ops/window.h"

typedef enum cs__pool_kind { CS__POOL_MAX, CS__POOL_AVG, CS__POOL_LP } cs__pool_kind;

typedef struct cs__pool_op {
    const char *name;
    cs__pool_kind kind;
    bool global;
} cs__pool_op;

/* The pool a node runs, by its op_type; borrowed from a static table. */
const cs__pool_op *cs__pool_op_of(const cs__node *n);

/* The window geometry of X [N, C, spatial...] under the node's attributes: the whole plane
 * for Global pools. */
cs_status cs__pool_window(const cs__node *n, const cs_tensor *x, cs__window *w, cs_error *err);

#endif
