/*
 * numfmt.h - numbers to and from decimal text, fast and exactly as the C library does it.
 *
 * JSON inference requests and answers are mostly numbers, and printf("%.9g")/strtod were
 * about a seventh of a small model's request under load (perf). These give the same bytes and the
 * same values (tests compare them against the C library on millions of inputs) through exact
 * integer arithmetic, and fall back to the C library where the fast path would not be exact.
 */
#ifndef CS_BASE_NUMFMT_H
#define CS_BASE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any number these write, NUL included. */
#define CS_NUMFMT_MAX 32

/* Writes v as printf's "%.9g" does (9 significant digits: enough for a float to read back
 * unchanged) into buf, NUL-terminated; returns the length. */
size_t cs_numfmt_f32(char *buf, float v);
/* Decimal integers, as "%" PRId64 / PRIu64. */
size_t cs_numfmt_i64(char *buf, int64_t v);
size_t cs_numfmt_u64(char *buf, uint64_t v);

/* Reads the number that fills [p, end) exactly as strtod would (same value, same rounding);
 * returns 0, or -1 when strtod would stop before end or read nothing. The text needs no NUL
 * terminator. */
int cs_numfmt_parse_f64(const char *p, const char *end, double *out);

#endif
