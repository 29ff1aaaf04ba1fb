/*
 * ytree.h - YAML documents as plain trees (maps, sequences, scalars) with line numbers.
 *
 * The DRA object reader decodes Kubernetes objects from these trees, and the writers turn
 * trees back into YAML or JSON. Keeping the document as a tree (rather than only as typed
 * structs) is what lets capstan write an object back with every field it does not
 * interpret - metadata, annotations, future API fields - exactly as it came in.
 *
 * Limits: nesting depth 64 and CS_YTREE_MAX_NODES nodes per stream; anchors and aliases
 * are refused (they let a few bytes expand exponentially).
 */
#ifndef CS_DEVICES_YTREE_H
#define CS_DEVICES_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/sbuf.h"
#include "capstan/status.h"

#define CS_YTREE_MAX_DEPTH 64
#define CS_YTREE_MAX_NODES 1000000

typedef enum cs_ynode_kind {
    CS_YNODE_SCALAR,
    CS_YNODE_MAP,
    CS_YNODE_SEQ,
} cs_ynode_kind;

typedef struct cs_ynode cs_ynode;
struct cs_ynode {
    cs_ynode_kind kind;
    bool quoted;   /* SCALAR written in quotes or as a block: always a string */
    int line;      /* 1-based line where the node starts */
    const char *s; /* SCALAR text (NUL-terminated) */
    size_t n, cap; /* MAP: pairs; SEQ: items; cap: room for builders */
    const char **keys;
    cs_ynode **items; /* MAP: values, parallel to keys; SEQ: items */
};

/* A parsed stream: one root per document. Everything lives in `arena`. */
typedef struct cs_ystream {
    cs_arena arena;
    cs_ynode **docs;
    size_t n_docs;
} cs_ystream;

/* Parses a multi-document YAML stream. On failure err says "line L: ..." and s is left
 * empty (still to be freed). Empty documents are skipped. Cost: O(input), one arena. */
cs_status cs_ystream_parse(cs_ystream *s, const char *text, size_t len, cs_error *err);
void cs_ystream_free(cs_ystream *s);

/* Map lookup; NULL when absent or when m is not a map. O(keys). */
cs_ynode *cs_ynode_get(const cs_ynode *m, const char *key);
/* The scalar text at key, or NULL when absent or not a scalar. */
const char *cs_ynode_str(const cs_ynode *m, const char *key);

/* Node builders for writers; they allocate in a (NULL on out of memory). A map or sequence
 * is built with a fixed capacity and filled with cs_ynode_put / cs_ynode_append. */
cs_ynode *cs_ynode_scalar(cs_arena *a, const char *s, bool quoted);
cs_ynode *cs_ynode_new(cs_arena *a, cs_ynode_kind kind, size_t cap);
void cs_ynode_put(cs_ynode *m, const char *key, cs_ynode *v);
void cs_ynode_append(cs_ynode *seq, cs_ynode *v);

/* Writes one document to out: YAML (with a leading "---" line) or JSON. Scalars that are
 * not quoted keep YAML's plain-scalar types in JSON (ints, floats, true/false, null).
 * Fails only on out of memory or out's bound. */
cs_status cs_ynode_write_yaml(const cs_ynode *root, cs_sbuf *out);
cs_status cs_ynode_write_json(const cs_ynode *root, cs_sbuf *out);

#endif
