/*
 * npy.h - NumPy .npy files: read versions 1.0, 2.0 and 3.0, write version 1.0.
 *
 * Supported: little-endian, C-order arrays of f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 (the
 * engine's dtypes that NumPy can hold). Everything else - Fortran order, big-endian data,
 * object or complex dtypes, truncated files - fails with a message that says what was
 * found and how to convert it.
 */
#ifndef CS_CLI_NPY_H
#define CS_CLI_NPY_H

#include <stddef.h>

#include "capstan/engine.h"

/* Decodes a whole .npy image. On success t describes the array and t->data is a new
 * cs_malloc'd copy of its elements (free with cs_free); on failure t->data is NULL. */
cs_status cs_npy_decode(const void *buf, size_t len, cs_tensor *t, cs_error *err);

/* Reads and decodes a file; as cs_npy_decode, with the path in error messages. */
cs_status cs_npy_load(const char *path, cs_tensor *t, cs_error *err);

/* Writes t to path as a version 1.0 .npy file (replacing it). Fails with
 * CS_ERR_UNSUPPORTED for dtypes NumPy cannot hold (string, bfloat16). */
cs_status cs_npy_save(const char *path, const cs_tensor *t, cs_error *err);

#endif
