/*
 * pbtxt.c - a reader of protobuf's text format (the subset Triton's config.pbtxt files use)
 * into JSON; see pbtxt.h for the mapping.
 *
 * Grammar: a message is a sequence of fields, each `name: scalar`, `name [:] { message }` (or
 * `< message >`), or `name [:] [ value, ... ]`, optionally followed by `,` or `;`; `#` starts
 * a comment. Scalars are strings ("..." or '...', C escapes, adjacent ones joined), numbers
 * (decimal or 0x hex, with sign, fraction, exponent), and identifiers (true, false, enum
 * names). A recursive descent bounded by CS_PBTXT_MAX_DEPTH; one pass, no backtracking.
 */
#include "api/pbtxt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *p, *end;
    int line, depth;
    cs_error *err;
} parser;

static bool fail(parser *s, cs_status code, const char *what)
{
    cs_error_set(s->err, code, "line %d: %s", s->line, what);
    return false;
}

/* Skips white space and comments, counting lines. */
static void ws(parser *s)
{
    while (s->p < s->end) {
        if (*s->p == '#') {
            while (s->p < s->end && *s->p != '\n') s->p++;
        } else if (isspace((unsigned char)*s->p)) {
            s->line += *s->p == '\n';
            s->p++;
        } else {
            return;
        }
    }
}

static bool is_ident(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || (!first && isdigit((unsigned char)c));
}

/* An identifier into buf (cap bytes); false when there is none or it is too long. */
static bool ident(parser *s, char *buf, size_t cap)
{
    const char *b = s->p;
    if (b >= s->end || !is_ident(*b, true)) return false;
    while (s->p < s->end && is_ident(*s->p, false)) s->p++;
    size_t n = (size_t)(s->p - b);
    if (n >= cap) return fail(s, CS_ERR_PARSE, "a field or enum name is too long");
    memcpy(buf, b, n);
    buf[n] = '\0';
    return true;
}

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* One quoted string (the quote at s->p) appended to *out (grown with realloc). */
static bool quoted(parser *s, char **out, size_t *n)
{
    char q = *s->p++;
    size_t cap = *n + (size_t)(s->end - s->p) + 1; /* unescaped is never longer */
    char *o = realloc(*out, cap);
    if (!o) return fail(s, CS_ERR_NOMEM, "out of memory");
    *out = o;
    while (s->p < s->end && *s->p != q) {
        char c = *s->p++;
        if (c == '\n') return fail(s, CS_ERR_PARSE, "a string runs past the end of its line");
        if (c == '\\') {
            if (s->p >= s->end) break;
            c = *s->p++;
            if (c >= '0' && c <= '7') { /* up to three octal digits */
                int v = c - '0';
                for (int k = 0; k < 2 && s->p < s->end && *s->p >= '0' && *s->p <= '7'; k++)
                    v = v * 8 + (*s->p++ - '0');
                c = (char)v;
            } else if (c == 'x') {
                if (s->p >= s->end || !isxdigit((unsigned char)*s->p))
                    return fail(s, CS_ERR_PARSE, "\\x needs a hex digit");
                int v = hexval(*s->p++);
                if (s->p < s->end && isxdigit((unsigned char)*s->p)) v = v * 16 + hexval(*s->p++);
                c = (char)v;
            } else if (c == 'n' || c == 't' || c == 'r') {
                c = c == 'n' ? '\n' : c == 't' ? '\t' : '\r';
            } /* \\ \' \" \? and the rest stand for themselves */
        }
        o[(*n)++] = c;
    }
    if (s->p >= s->end) return fail(s, CS_ERR_PARSE, "a string is not closed");
    s->p++;
    o[*n] = '\0';
    return true;
}

/* A number, an identifier or (adjacent) strings, as JSON. */
static json_t *scalar(parser *s)
{
    if (s->p < s->end && (*s->p == '"' || *s->p == '\'')) {
        char *buf = NULL;
        size_t n = 0;
        bool ok = true;
        while (ok && s->p < s->end && (*s->p == '"' || *s->p == '\'')) {
            ok = quoted(s, &buf, &n);
            if (ok) ws(s);
        }
        json_t *j = ok ? json_stringn(buf, n) : NULL;
        free(buf);
        if (ok && !j) fail(s, CS_ERR_PARSE, "a string is not valid UTF-8");
        return j;
    }
    char word[128];
    const char *b = s->p;
    while (s->p < s->end && (isalnum((unsigned char)*s->p) || strchr("+-._", *s->p))) s->p++;
    size_t n = (size_t)(s->p - b);
    if (n == 0 || n >= sizeof word) {
        fail(s, CS_ERR_PARSE, n ? "a value is too long" : "expected a value");
        return NULL;
    }
    memcpy(word, b, n);
    word[n] = '\0';
    if (is_ident(word[0], true)) {
        for (size_t i = 0; i < n; i++)
            if (!is_ident(word[i], false)) {
                fail(s, CS_ERR_PARSE, "an enum name holds only letters, digits and '_'");
                return NULL;
            }
        /* true/false and enum names; jansson's constants cost no allocation */
        if (!strcmp(word, "true") || !strcmp(word, "True")) return json_true();
        if (!strcmp(word, "false") || !strcmp(word, "False")) return json_false();
        json_t *j = json_string(word);
        if (!j) fail(s, CS_ERR_NOMEM, "out of memory");
        return j;
    }
    char *e;
    errno = 0;
    long long i = strtoll(word, &e, 0);
    json_t *j = NULL;
    if (*e == '\0' && errno == 0) {
        j = json_integer(i);
    } else {
        errno = 0;
        double d = strtod(word, &e);
        bool ok =
            (*e == '\0' || ((*e == 'f' || *e == 'F') && e[1] == '\0')) && errno == 0 && isfinite(d);
        if (!ok) {
            fail(s, CS_ERR_PARSE, "expected a finite number, a string or a name");
            return NULL;
        }
        j = json_real(d);
    }
    if (!j) fail(s, CS_ERR_NOMEM, "out of memory");
    return j;
}

static bool message(parser *s, json_t *obj, char close);

/* A value after a field's name (and its optional colon). */
static json_t *value(parser *s, bool colon, bool in_list)
{
    ws(s);
    if (s->p >= s->end) {
        fail(s, CS_ERR_PARSE, "expected a value");
        return NULL;
    }
    char c = *s->p;
    if (c == '{' || c == '<' || (c == '[' && !in_list)) {
        if (++s->depth > CS_PBTXT_MAX_DEPTH) {
            fail(s, CS_ERR_LIMIT, "nested deeper than 32 levels");
            return NULL;
        }
        s->p++;
        json_t *j = c == '[' ? json_array() : json_object();
        if (!j) {
            fail(s, CS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        bool ok;
        if (c == '[') {
            ws(s);
            ok = true;
            while (ok && (ws(s), s->p < s->end && *s->p != ']')) {
                json_t *v = value(s, true, true);
                ok = v && json_array_append_new(j, v) == 0;
                ws(s);
                if (ok && s->p < s->end && *s->p == ',')
                    s->p++;
                else if (ok && (s->p >= s->end || *s->p != ']'))
                    ok = fail(s, CS_ERR_PARSE, "expected ',' or ']' in a list");
            }
            if (ok && s->p >= s->end) ok = fail(s, CS_ERR_PARSE, "a list is not closed with ']'");
            if (ok) s->p++;
        } else {
            ok = message(s, j, c == '{' ? '}' : '>');
        }
        s->depth--;
        if (!ok) json_decref(j), j = NULL;
        return j;
    }
    if (!colon) {
        fail(s, CS_ERR_PARSE, "expected ':' after a field name");
        return NULL;
    }
    return scalar(s);
}

/* Appends v (taken) to the array a: its elements when v is an array itself. */
static int append(json_t *a, json_t *v)
{
    if (!json_is_array(v)) return json_array_append_new(a, v);
    int rc = json_array_extend(a, v);
    json_decref(v);
    return rc;
}

/* Adds name = v (taken) to obj: a field seen before becomes an array of every value. */
static bool put(parser *s, json_t *obj, const char *name, json_t *v)
{
    json_t *old = json_object_get(obj, name);
    int rc;
    if (!old) {
        rc = json_object_set_new(obj, name, v);
    } else if (json_is_array(old)) {
        rc = append(old, v);
    } else {
        json_t *a = json_array();
        rc = a && json_array_append(a, old) == 0 ? append(a, v) : (json_decref(v), -1);
        rc = rc == 0 ? json_object_set_new(obj, name, a) : (json_decref(a), -1);
    }
    return rc == 0 || fail(s, CS_ERR_NOMEM, "out of memory");
}

/* Fields up to `close` ('\0': the end of the text). */
static bool message(parser *s, json_t *obj, char close)
{
    for (;;) {
        ws(s);
        if (s->p >= s->end) {
            if (close) return fail(s, CS_ERR_PARSE, "a message is not closed");
            return true;
        }
        if (*s->p == close) {
            s->p++;
            return true;
        }
        char name[128];
        if (!ident(s, name, sizeof name)) {
            if (s->err->code != CS_OK) return false;
            return fail(s, CS_ERR_PARSE, "expected a field name");
        }
        ws(s);
        bool colon = s->p < s->end && *s->p == ':';
        if (colon) s->p++;
        ws(s);
        json_t *v = value(s, colon, false);
        if (!v || !put(s, obj, name, v)) return false;
        ws(s);
        if (s->p < s->end && (*s->p == ',' || *s->p == ';')) s->p++;
    }
}

cs_status cs_pbtxt_parse(const char *text, size_t len, json_t **out, cs_error *err)
{
    *out = NULL;
    cs_error_clear(err);
    parser s = {text, text + len, 1, 0, err};
    json_t *obj = json_object();
    if (!obj) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    if (!message(&s, obj, '\0')) {
        json_decref(obj);
        return err->code;
    }
    *out = obj;
    return CS_OK;
}
