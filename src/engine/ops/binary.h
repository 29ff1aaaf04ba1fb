/*
 * binary.h - what the schemas of the broadcasting elementwise operators (ops/binary.c)
 * share with their kernels (internal): the pre-opset-7 broadcasting rule.
 */
#ifndef CS_ENGINE_OPS_BINARY_H
#define CS_ENGINE_OPS_BINARY_H

#include "engine/op.h"

/* Opsets before 7 broadcast only B onto A, only when the `broadcast` attribute is 1, and
 * `axis` places B's dims inside A's rather than at its end; PRelu then applied a 1-D slope
 * along the channel axis (1). Sets *view to B reshaped (padded with 1s) so that numpy
 * broadcasting gives the same result. */
cs_status cs__binary_legacy_view(const cs__node *n, const cs_tensor *a, const cs_tensor *b,
                                 cs_tensor *view, cs_error *err);

#endif
