/*
 * ytree.c - libyaml events to trees and back; see ytree.h.
 *
 * Parsing walks libyaml's event stream with an explicit stack (bounded by
 * CS_YTREE_MAX_DEPTH), collecting each open collection's children in a growable vector
 * and copying them into the stream's arena when the collection ends, so a stream costs
 * O(input) time and one arena. Writing YAML goes through libyaml's emitter, which picks
 * safe quoting; JSON is written directly (a tree is already JSON's shape).
 */
#include "devices/ytree.h"

#include "base/vec.h"

#include <string.h>
#include <yaml.h>

typedef struct frame {
    cs_ynode *node;
    cs_vec keys, items; /* const char *, cs_ynode * */
    const char *pending_key;
} frame;

static cs_status set_mark_error(cs_error *err, const yaml_mark_t *m, const char *what)
{
    return cs_error_set(err, CS_ERR_PARSE, "line %zu: %s", m->line + 1, what);
}

/* Adds child to the innermost open collection: a key, a value or an item. */
static cs_status attach(frame *top, cs_ynode *child, cs_error *err)
{
    if (top->node->kind == CS_YNODE_SEQ) {
        if (cs_vec_push(&top->items, &child) != CS_OK) goto nomem;
        return CS_OK;
    }
    if (!top->pending_key) {
        if (child->kind != CS_YNODE_SCALAR)
            return cs_error_set(err, CS_ERR_PARSE, "line %d: map keys must be scalars",
                                child->line);
        for (size_t i = 0; i < top->keys.len; i++)
            if (strcmp(*(const char **)cs_vec_at(&top->keys, i), child->s) == 0)
                return cs_error_set(err, CS_ERR_PARSE, "line %d: duplicate key '%s'", child->line,
                                    child->s);
        top->pending_key = child->s;
        return CS_OK;
    }
    if (cs_vec_push(&top->keys, &top->pending_key) != CS_OK ||
        cs_vec_push(&top->items, &child) != CS_OK)
        goto nomem;
    top->pending_key = NULL;
    return CS_OK;
nomem:
    return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
}

/* Moves a finished collection's children from the frame's vectors into the arena; the
 * vectors are released whatever happens. */
static cs_status close_frame(cs_arena *a, frame *f, cs_error *err)
{
    cs_ynode *n = f->node;
    cs_status rc = CS_OK;
    n->n = n->cap = f->items.len;
    if (n->n) {
        n->items = cs_arena_alloc(a, n->n * sizeof *n->items, _Alignof(cs_ynode *));
        if (n->kind == CS_YNODE_MAP)
            n->keys = cs_arena_alloc(a, n->n * sizeof *n->keys, _Alignof(const char *));
        if (!n->items || (n->kind == CS_YNODE_MAP && !n->keys)) {
            n->n = n->cap = 0;
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
        } else {
            memcpy(n->items, f->items.data, n->n * sizeof *n->items);
            if (n->kind == CS_YNODE_MAP) memcpy(n->keys, f->keys.data, n->n * sizeof *n->keys);
        }
    }
    cs_vec_free(&f->keys);
    cs_vec_free(&f->items);
    return rc;
}

/* Releases the open collections' vectors after an error. */
static void free_frames(frame *stack, int depth)
{
    for (int i = 0; i < depth; i++) {
        cs_vec_free(&stack[i].keys);
        cs_vec_free(&stack[i].items);
    }
}

static cs_status parse_events(yaml_parser_t *p, cs_ystream *s, cs_vec *docs, frame *stack,
                              cs_error *err)
{
    int depth = 0;
    size_t nodes = 0;
    cs_ynode *root = NULL;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            const yaml_mark_t *m =
                p->problem_mark.line || !p->context_mark.line ? &p->problem_mark : &p->context_mark;
            free_frames(stack, depth);
            return set_mark_error(err, m, p->problem ? p->problem : "malformed YAML");
        }
        cs_status rc = CS_OK;
        cs_ynode *node = NULL;
        int line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: yaml_event_delete(&ev); return CS_OK;
        case YAML_DOCUMENT_START_EVENT: root = NULL; break;
        case YAML_DOCUMENT_END_EVENT:
            if (root && cs_vec_push(docs, &root) != CS_OK)
                rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
            break;
        case YAML_ALIAS_EVENT:
            rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                              "line %d: YAML aliases (*name) are not supported", line);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            const unsigned char *anchor = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.anchor
                                          : ev.type == YAML_MAPPING_START_EVENT
                                              ? ev.data.mapping_start.anchor
                                              : ev.data.sequence_start.anchor;
            if (anchor) {
                rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                                  "line %d: YAML anchors (&name) are not supported", line);
                break;
            }
            if (++nodes > CS_YTREE_MAX_NODES) {
                rc = cs_error_set(err, CS_ERR_LIMIT, "line %d: more than %d YAML nodes", line,
                                  CS_YTREE_MAX_NODES);
                break;
            }
            node = cs_arena_zalloc(&s->arena, sizeof *node, _Alignof(cs_ynode));
            if (!node) {
                rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
                break;
            }
            node->line = line;
            if (ev.type == YAML_SCALAR_EVENT) {
                node->kind = CS_YNODE_SCALAR;
                node->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
                node->s = cs_arena_strndup(&s->arena, (const char *)ev.data.scalar.value,
                                           ev.data.scalar.length);
                if (!node->s) {
                    rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
                    break;
                }
                if (strlen(node->s) != ev.data.scalar.length) {
                    rc = cs_error_set(err, CS_ERR_PARSE, "line %d: NUL byte in a scalar", line);
                    break;
                }
            } else {
                node->kind = ev.type == YAML_MAPPING_START_EVENT ? CS_YNODE_MAP : CS_YNODE_SEQ;
            }
            if (depth > 0)
                rc = attach(&stack[depth - 1], node, err);
            else
                root = node;
            if (rc == CS_OK && node->kind != CS_YNODE_SCALAR) {
                if (depth == CS_YTREE_MAX_DEPTH) {
                    rc = cs_error_set(err, CS_ERR_LIMIT, "line %d: nesting deeper than %d", line,
                                      CS_YTREE_MAX_DEPTH);
                    break;
                }
                frame *f = &stack[depth++];
                f->node = node;
                f->pending_key = NULL;
                cs_vec_init(&f->keys, sizeof(const char *));
                cs_vec_init(&f->items, sizeof(cs_ynode *));
            }
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: rc = close_frame(&s->arena, &stack[--depth], err); break;
        default: break;
        }
        yaml_event_delete(&ev);
        if (rc != CS_OK) {
            free_frames(stack, depth);
            return rc;
        }
    }
}

cs_status cs_ystream_parse(cs_ystream *s, const char *text, size_t len, cs_error *err)
{
    memset(s, 0, sizeof *s);
    cs_arena_init(&s->arena, 64 * 1024);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    cs_vec docs;
    cs_vec_init(&docs, sizeof(cs_ynode *));
    frame *stack = cs_arena_alloc(&s->arena, CS_YTREE_MAX_DEPTH * sizeof *stack, _Alignof(frame));
    cs_status rc = stack ? parse_events(&p, s, &docs, stack, err)
                         : cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
    yaml_parser_delete(&p);
    if (rc == CS_OK && docs.len) {
        s->docs = cs_arena_alloc(&s->arena, docs.len * sizeof *s->docs, _Alignof(cs_ynode *));
        if (!s->docs)
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory reading YAML");
        else
            memcpy(s->docs, docs.data, docs.len * sizeof *s->docs);
    }
    if (rc == CS_OK) s->n_docs = docs.len;
    cs_vec_free(&docs);
    if (rc != CS_OK) {
        cs_ystream_free(s);
        cs_arena_init(&s->arena, 64 * 1024);
    }
    return rc;
}

void cs_ystream_free(cs_ystream *s)
{
    cs_arena_free(&s->arena);
    s->docs = NULL;
    s->n_docs = 0;
}

cs_ynode *cs_ynode_get(const cs_ynode *m, const char *key)
{
    if (!m || m->kind != CS_YNODE_MAP) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return m->items[i];
    return NULL;
}

const char *cs_ynode_str(const cs_ynode *m, const char *key)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    return v && v->kind == CS_YNODE_SCALAR ? v->s : NULL;
}

cs_ynode *cs_ynode_scalar(cs_arena *a, const char *s, bool quoted)
{
    cs_ynode *n = cs_arena_zalloc(a, sizeof *n, _Alignof(cs_ynode));
    if (!n) return NULL;
    n->kind = CS_YNODE_SCALAR;
    n->quoted = quoted;
    n->s = s;
    return n;
}

cs_ynode *cs_ynode_new(cs_arena *a, cs_ynode_kind kind, size_t cap)
{
    cs_ynode *n = cs_arena_zalloc(a, sizeof *n, _Alignof(cs_ynode));
    if (!n) return NULL;
    n->kind = kind;
    n->cap = cap;
    if (cap) {
        n->items = cs_arena_zalloc(a, cap * sizeof *n->items, _Alignof(cs_ynode *));
        if (!n->items) return NULL;
        if (kind == CS_YNODE_MAP) {
            n->keys = cs_arena_zalloc(a, cap * sizeof *n->keys, _Alignof(const char *));
            if (!n->keys) return NULL;
        }
    }
    return n;
}

void cs_ynode_put(cs_ynode *m, const char *key, cs_ynode *v)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) {
            m->items[i] = v;
            return;
        }
    if (m->n < m->cap) {
        m->keys[m->n] = key;
        m->items[m->n++] = v;
    }
}

void cs_ynode_append(cs_ynode *seq, cs_ynode *v)
{
    if (seq->n < seq->cap) seq->items[seq->n++] = v;
}

/* True when plain text s would read back as something other than a string (YAML 1.1 as
 * Kubernetes' decoder reads it: numbers, booleans, null). */
static bool looks_typed(const char *s)
{
    static const char *const words[] = {
        "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL",  "~",
        "yes",  "Yes",  "YES",  "no",    "No",    "NO",    "on",   "On",   "ON",    "off",
        "Off",  "OFF",  "y",    "Y",     "n",     "N",     ".inf", ".nan", "-.inf", ""};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(s, words[i]) == 0) return true;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    bool digits = false, other = false;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits = true;
        else if (!strchr(".eExXoO_abcdefABCDEF+-", *p))
            other = true;
    }
    return digits && !other;
}

/* ---- YAML output through libyaml's emitter ---- */

static int sbuf_writer(void *ud, unsigned char *buf, size_t size)
{
    return cs_sbuf_append(ud, (const char *)buf, size) == CS_OK;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool quoted)
{
    yaml_event_t ev;
    int plain = !(quoted && looks_typed(s));
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, 1,
                                 YAML_ANY_SCALAR_STYLE);
    return yaml_emitter_emit(e, &ev);
}

/* Recursion depth is bounded by the tree's depth (CS_YTREE_MAX_DEPTH for parsed trees). */
static int emit_node(yaml_emitter_t *e, const cs_ynode *n)
{
    yaml_event_t ev;
    if (n->kind == CS_YNODE_SCALAR) return emit_scalar(e, n->s, n->quoted);
    if (n->kind == CS_YNODE_MAP)
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    else
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (!yaml_emitter_emit(e, &ev)) return 0;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == CS_YNODE_MAP && !emit_scalar(e, n->keys[i], true)) return 0;
        if (!emit_node(e, n->items[i])) return 0;
    }
    if (n->kind == CS_YNODE_MAP)
        yaml_mapping_end_event_initialize(&ev);
    else
        yaml_sequence_end_event_initialize(&ev);
    return yaml_emitter_emit(e, &ev);
}

cs_status cs_ynode_write_yaml(const cs_ynode *root, cs_sbuf *out)
{
    yaml_emitter_t e;
    if (!yaml_emitter_initialize(&e)) return CS_ERR_NOMEM;
    yaml_emitter_set_output(&e, sbuf_writer, out);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_event_t ev;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    int ok = yaml_emitter_emit(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0);
    ok = ok && yaml_emitter_emit(&e, &ev) && emit_node(&e, root);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    return ok ? CS_OK : CS_ERR_NOMEM;
}

/* ---- JSON output ---- */

static cs_status json_string(cs_sbuf *out, const char *s)
{
    cs_status rc = cs_sbuf_puts(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; rc == CS_OK && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = cs_sbuf_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            rc = cs_sbuf_printf(out, "\\u%04x", *p);
        else
            rc = cs_sbuf_append(out, (const char *)p, 1);
    }
    return rc == CS_OK ? cs_sbuf_puts(out, "\"") : rc;
}

/* JSON's own number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return false;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    return *p == '\0';
}

static cs_status json_scalar(cs_sbuf *out, const cs_ynode *n)
{
    if (!n->quoted) {
        const char *s = n->s;
        if (json_number(s)) return cs_sbuf_puts(out, s);
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
            return cs_sbuf_puts(out, "true");
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
            return cs_sbuf_puts(out, "false");
        if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
            !strcmp(s, "NULL"))
            return cs_sbuf_puts(out, "null");
    }
    return json_string(out, n->s);
}

static cs_status json_node(cs_sbuf *out, const cs_ynode *n, int indent)
{
    if (n->kind == CS_YNODE_SCALAR) return json_scalar(out, n);
    bool map = n->kind == CS_YNODE_MAP;
    cs_status rc = cs_sbuf_puts(out, map ? "{" : "[");
    for (size_t i = 0; rc == CS_OK && i < n->n; i++) {
        rc = cs_sbuf_printf(out, "%s\n%*s", i ? "," : "", indent + 2, "");
        if (rc == CS_OK && map) rc = json_string(out, n->keys[i]);
        if (rc == CS_OK && map) rc = cs_sbuf_puts(out, ": ");
        if (rc == CS_OK) rc = json_node(out, n->items[i], indent + 2);
    }
    if (rc == CS_OK && n->n) rc = cs_sbuf_printf(out, "\n%*s", indent, "");
    return rc == CS_OK ? cs_sbuf_puts(out, map ? "}" : "]") : rc;
}

cs_status cs_ynode_write_json(const cs_ynode *root, cs_sbuf *out)
{
    return json_node(out, root, 0);
}
