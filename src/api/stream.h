/*
 * stream.h - the event thread behind GET /api/v1/stream (stream.c): the server creates it with
 * itself, stops it before the HTTP daemon stops (it resumes suspended connections, which the
 * daemon must not find at its stop) and frees it after.
 */
#ifndef CS_API_STREAM_H
#define CS_API_STREAM_H

#include "capstan/status.h"

#define CS_API_STREAM_MAX 16 /* dashboard streams open at once */

struct cs_server;
struct cs_api_stream;

cs_status cs__api_stream_new(struct cs_server *s, struct cs_api_stream **out, cs_error *err);
/* Ends every stream (each sends what it has, then ends) and joins the thread; idempotent. */
void cs__api_stream_stop(struct cs_api_stream *h);
/* After the daemon has stopped. NULL is fine. */
void cs__api_stream_free(struct cs_api_stream *h);

#endif
