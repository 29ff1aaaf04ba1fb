/*
 * quantity.h - Kubernetes resource quantities ("40Gi", "1.5", "100m", "2e3").
 *
 * A quantity is kept as an integer count of milli-units, which covers every value device
 * capacities and CEL selectors use (up to about 9.2e15 units, 8 PiB) exactly, plus the
 * format it was written in so that it prints back the way Kubernetes would.
 */
#ifndef CS_DEVICES_QUANTITY_H
#define CS_DEVICES_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"

typedef enum cs_qty_format {
    CS_QTY_DECIMAL_SI,  /* 1500, 1.5k, 100m, 2M */
    CS_QTY_BINARY_SI,   /* 40Gi, 512Mi */
    CS_QTY_DECIMAL_EXP, /* 2e3 */
} cs_qty_format;

typedef struct cs_quantity {
    int64_t milli;
    cs_qty_format format;
} cs_quantity;

/* Parses Kubernetes quantity syntax. Values that are not a whole number of milli-units are
 * rounded up, as Kubernetes does; out-of-range values fail with CS_ERR_INVALID. */
cs_status cs_quantity_parse(const char *s, cs_quantity *out, cs_error *err);

/* Canonical text ("40Gi", "100m", "1500"); returns the length written, as snprintf. */
int cs_quantity_format(cs_quantity q, char *buf, size_t cap);

/* -1, 0 or 1. */
int cs_quantity_cmp(cs_quantity a, cs_quantity b);

/* Multiplies the n decimal digits dig[] (most significant first, one per byte) by 1024^times
 * in place, for binary suffixes; returns the new count (at most 4 more digits per factor: the
 * buffer must have room). Shared with CEL's exact quantities (cel_quantity.c). */
int cs__digits_times_1024(unsigned char *dig, int n, int times);

#endif
