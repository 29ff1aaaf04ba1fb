/*
 * xor_backend.h - test backends that keep device memory XOR-encoded (xor_backend.c).
 */
#ifndef CS_TEST_XOR_BACKEND_H
#define CS_TEST_XOR_BACKEND_H

#include "engine/backend.h"

/* "xor" (every operator) or "xor-half" (those whose name hashes even), else NULL. */
const cs__backend *cs_test_xor_backend(const char *name);

#endif
