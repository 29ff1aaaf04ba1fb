/*
 * dra_state.h - the devices one server hands out: its ResourceSlices, its DeviceClasses and
 * the ResourceClaims allocated so far, behind one lock.
 *
 * The slices are fixed at start (discovered, or read from a YAML file for tests and what-if
 * planning); classes and claims come and go. Creating a claim allocates it at once, with
 * every claim held so far counting as allocated; a claim that cannot be allocated is not
 * kept. Deleting a claim releases its devices, shared capacity and counters. Objects go in
 * as Kubernetes YAML or JSON (resource.k8s.io/v1) and come out as JSON, so the server's
 * /api/v1 endpoints use them; model instances hold claims through placement.h, which
 * builds them as structs on the same state.
 *
 * Thread safety: every function may be called from any thread; see dra_state.c for what
 * the lock costs. Output goes to a caller-owned cs_sbuf.
 */
#ifndef CS_DEVICES_DRA_STATE_H
#define CS_DEVICES_DRA_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sbuf.h"
#include "capstan/status.h"
#include "devices/dra.h"

#define CS_DRA_NAME_MAX       253  /* metadata.name: a DNS subdomain, as Kubernetes requires */
#define CS_DRA_STATE_MAX_OBJS 4096 /* classes, and claims, each; more is CS_ERR_LIMIT */

typedef struct cs_dra_state cs_dra_state;

typedef enum cs_dra_kind { CS_DRA_KIND_CLASS, CS_DRA_KIND_CLAIM } cs_dra_kind;

typedef struct cs_dra_state_options {
    const char *devices_file; /* YAML with ResourceSlices (and DeviceClasses, ResourceClaims);
                                 NULL: discover this machine's devices */
    cs_dra_policy policy;
} cs_dra_state_options;

/* Loads the slices, the classes the file carries plus the defaults gpu.nvidia.com and
 * cpu.capstan.dev (selecting devices by driver) unless the file defines them, and the
 * claims the file carries, allocated in file order; a file claim that cannot be allocated
 * is an error. Errors name the file, object, field and line. Free with cs_dra_state_free. */
cs_status cs_dra_state_new(const cs_dra_state_options *o, cs_dra_state **out, cs_error *err);
void cs_dra_state_free(cs_dra_state *st);

/* The ResourceSlices as a JSON v1 List. Fails only on out of memory or out's bound. */
cs_status cs_dra_state_devices(cs_dra_state *st, cs_sbuf *out);
/* Every class or claim, in creation order, as a JSON v1 List. Same failures. */
cs_status cs_dra_state_list(cs_dra_state *st, cs_dra_kind kind, cs_sbuf *out);
/* One object as JSON; CS_ERR_NOT_FOUND names it. */
cs_status cs_dra_state_get(cs_dra_state *st, cs_dra_kind kind, const char *name, cs_sbuf *out,
                           cs_error *err);
/* Removes an object and writes it to out (NULL: nowhere) as JSON; a claim's devices are
 * free at once.
 * Deleting a class leaves claims allocated through it allocated. CS_ERR_NOT_FOUND. */
cs_status cs_dra_state_delete(cs_dra_state *st, cs_dra_kind kind, const char *name, cs_sbuf *out,
                              cs_error *err);

/* Creates the one object in text (YAML or JSON) and writes it to out as JSON; a claim is
 * allocated first and written with status.allocation. CS_ERR_INVALID with the reader's
 * message for an invalid object (or one of the wrong kind, or a claim that brings its own
 * status.allocation), CS_ERR_EXISTS for a name in use, CS_ERR_LIMIT past
 * CS_DRA_STATE_MAX_OBJS. A claim that cannot be allocated returns CS_OK with *created
 * false (true otherwise) and the reason in err->msg; nothing is kept then. */
cs_status cs_dra_state_create(cs_dra_state *st, cs_dra_kind kind, const char *text, size_t len,
                              cs_sbuf *out, bool *created, cs_error *err);

/* For placement.c: creates a claim like cs_dra_state_create, from a document that build()
 * makes in the set's arena (no text goes between), and calls take() with the allocated
 * claim before anything is kept, while its set still lives. */
typedef struct cs__dra_claim_io {
    cs_status (*build)(cs_arena *a, void *ud, cs_ynode **doc, cs_error *err);
    cs_status (*take)(const cs_dra_claim *claim, void *ud, cs_error *err);
    void *ud;
} cs__dra_claim_io;
cs_status cs__dra_state_claim(cs_dra_state *st, const cs__dra_claim_io *io, bool *created,
                              cs_error *err);

#endif
