/*
 * pbtxt.h - protobuf's text format, as Triton's config.pbtxt files use it, read into JSON.
 *
 * No schema is known here, so a field's shape comes from the text: a message becomes an
 * object, a scalar a number (integer when it has no fraction or exponent), a string, a bool
 * (true/false) or, for an enum name such as TYPE_FP32, a string; a field given more than once,
 * or with list syntax ([a, b]), becomes an array. A reader of the result accepts an object or
 * a scalar wherever it expects a repeated field of one element.
 */
#ifndef CS_API_PBTXT_H
#define CS_API_PBTXT_H

#include <jansson.h>
#include <stddef.h>

#include "capstan/status.h"

#define CS_PBTXT_MAX_DEPTH 32 /* nested messages and lists */

/* Parses text[0, len) (need not be NUL-terminated) into *out, a JSON object the caller owns.
 * CS_ERR_PARSE with the line and what was expected; CS_ERR_LIMIT past CS_PBTXT_MAX_DEPTH;
 * CS_ERR_NOMEM. O(len) time; memory of the order of len. */
cs_status cs_pbtxt_parse(const char *text, size_t len, json_t **out, cs_error *err);

#endif
