/*
 * cel_parse.c - recursive-descent parser and type checker for the CEL selector subset.
 *
 * The grammar is CEL's (cel-spec langdef.md): ?: below ||, below &&, below the relations
 * (== != < <= > >= in), below + -, below * / %, below unary ! and -, below member access
 * and calls. Types are checked while the tree is built, as cel-go's checker would: `1 ==
 * "a"` or `"x".startsWith(1)` fail here with their column, and only values of unknown type
 * (device attributes, which are dyn) wait for evaluation. `device.attributes[...]` paths
 * are resolved into DOMAIN and ATTR nodes so that evaluation never looks up names.
 *
 * Bounds: the source is at most 10 KiB, nesting (parentheses, calls, lists, unary
 * operators) at most 64 and the tree at most 128 deep, so neither this parser's recursion
 * nor the evaluator's can exhaust a thread's stack. && and || chains are built balanced
 * (as cel-go does), so a long list of alternatives stays shallow.
 */
#include "devices/cel_int.h"

#include "base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A variable in scope: a macro's iteration variable or a cel.bind name. */
typedef struct scope_var {
    const char *name; /* in the source */
    size_t n;
    uint8_t slot, type;
    bool capacity; /* its MAPS or DOMAIN value is device.capacity's */
} scope_var;

typedef struct parser {
    cs__cel_lexer lx;
    cs__cel_token tok; /* the current, not yet consumed token */
    cs_cel_program *prog;
    int nest;
    scope_var scope[CS__CEL_MAX_VARS]; /* innermost last */
    int nscope;
    cs_error *err;
} parser;

/* Sets a CS_ERR_PARSE error at byte offset pos and returns NULL for the caller to pass up. */
__attribute__((format(printf, 3, 4))) static cs__cel_node *fail(parser *p, size_t pos,
                                                                const char *fmt, ...)
{
    char where[48], msg[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cs__cel_where(p->lx.src, pos, where, sizeof where);
    cs_error_set(p->err, CS_ERR_PARSE, "%s: %s", where, msg);
    return NULL;
}

static bool advance(parser *p)
{
    return cs__cel_lex(&p->lx, &p->tok, p->err) == CS_OK;
}

/* The current token as the user wrote it, for "expected ... but found ..." messages. */
static void tok_text(const parser *p, char *buf, size_t cap)
{
    if (p->tok.kind == CS__TOK_EOF) {
        snprintf(buf, cap, "the end of the expression");
        return;
    }
    size_t n = p->lx.pos - p->tok.pos;
    snprintf(buf, cap, "'%.*s'", (int)(n > 24 ? 24 : n), p->lx.src + p->tok.pos);
}

static bool expect(parser *p, cs__cel_tok kind, const char *what)
{
    if (p->tok.kind == kind) return advance(p);
    char found[40];
    tok_text(p, found, sizeof found);
    fail(p, p->tok.pos, "expected %s, found %s", what, found);
    return false;
}

static cs__cel_node *mk(parser *p, cs__cel_kind kind, cs__cel_type type, uint32_t pos,
                        uint32_t nkids, cs__cel_node *const *kids)
{
    cs_arena *a = &p->prog->arena;
    cs__cel_node *n = cs_arena_zalloc(a, sizeof *n, _Alignof(cs__cel_node));
    cs__cel_node **k =
        nkids ? cs_arena_alloc(a, nkids * sizeof *k, _Alignof(cs__cel_node *)) : NULL;
    if (!n || (nkids && !k)) {
        cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->type = (uint8_t)type;
    n->pos = pos;
    n->nkids = nkids;
    n->kids = k;
    n->depth = 1;
    for (uint32_t i = 0; i < nkids; i++) {
        k[i] = kids[i];
        if (kids[i]->depth >= n->depth) n->depth = (uint16_t)(kids[i]->depth + 1);
    }
    if (n->depth > CS__CEL_MAX_DEPTH)
        return fail(p, pos, "expression is more than %d levels deep; split it up",
                    CS__CEL_MAX_DEPTH);
    return n;
}

static cs__cel_node *mk_string(parser *p, const char *s, size_t n, uint32_t pos)
{
    cs__cel_node *x = mk(p, CS__N_LIT, CS__CEL_STRING, pos, 0, NULL);
    char *copy = x ? cs_arena_strndup(&p->prog->arena, s, n) : NULL;
    if (x && !copy) {
        cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
        return NULL;
    }
    if (x) {
        x->lit.type = CS__CEL_STRING;
        x->lit.s.p = copy;
        x->lit.s.n = n;
    }
    return x;
}

/* Copies a temporary vector of nodes into the arena as kids of a new node. */
static cs__cel_node *mk_from_vec(parser *p, cs__cel_kind kind, cs__cel_type type, uint32_t pos,
                                 cs_vec *v)
{
    return mk(p, kind, type, pos, (uint32_t)v->len, v->data);
}

static cs__cel_node *parse_expr(parser *p);
static cs__cel_node *parse_unary(parser *p);

static bool is_bool_or_dyn(const cs__cel_node *n)
{
    return n->type == CS__CEL_BOOL || n->type == CS__CEL_DYN;
}

/* Builds a balanced tree of && or || over v[0..n), like cel-go's parser. */
static cs__cel_node *balance(parser *p, cs__cel_kind kind, uint32_t pos, cs__cel_node **v, size_t n)
{
    if (n == 1) return v[0];
    cs__cel_node *kids[2] = {balance(p, kind, pos, v, n / 2), NULL};
    if (kids[0]) kids[1] = balance(p, kind, pos, v + n / 2, n - n / 2);
    return kids[1] ? mk(p, kind, CS__CEL_BOOL, pos, 2, kids) : NULL;
}

/* One level of && or ||: operands from sub, which is the next level down. */
static cs__cel_node *parse_logic(parser *p, cs__cel_tok tok, cs__cel_kind kind,
                                 cs__cel_node *(*sub)(parser *))
{
    cs__cel_node *first = sub(p);
    if (!first || p->tok.kind != tok) return first;
    cs_vec v;
    cs_vec_init(&v, sizeof(cs__cel_node *));
    cs__cel_node *x = first, *out = NULL;
    uint32_t pos = p->tok.pos;
    for (;;) {
        if (!is_bool_or_dyn(x)) {
            fail(p, x->pos, "operands of %s must be bool, not %s", tok == CS__TOK_AND ? "&&" : "||",
                 cs__cel_type_name(x->type));
            goto out;
        }
        if (cs_vec_push(&v, &x) != CS_OK) {
            cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
            goto out;
        }
        if (p->tok.kind != tok) break;
        if (!advance(p) || !(x = sub(p))) goto out;
    }
    out = balance(p, kind, pos, v.data, v.len);
out:
    cs_vec_free(&v);
    return out;
}

/* The element type of a list literal when all elements share one, else DYN. */
static cs__cel_type list_elem_type(const cs__cel_node *list)
{
    if (list->kind != CS__N_LIST || list->nkids == 0) return CS__CEL_DYN;
    for (uint32_t i = 1; i < list->nkids; i++)
        if (list->kids[i]->type != list->kids[0]->type) return CS__CEL_DYN;
    return (cs__cel_type)list->kids[0]->type;
}

static cs__cel_node *maps_needs_domain(parser *p, const cs__cel_node *x)
{
    return fail(p, x->pos, "device.%s needs a domain, e.g. device.%s[\"gpu.nvidia.com\"].name",
                x->capacity ? "capacity" : "attributes", x->capacity ? "capacity" : "attributes");
}

static cs__cel_node *mk_binary(parser *p, cs__cel_op op, uint32_t pos, cs__cel_node *l,
                               cs__cel_node *r)
{
    if (l->type == CS__CEL_MAPS) return maps_needs_domain(p, l);
    if (r->type == CS__CEL_MAPS && op != CS__OP_IN) return maps_needs_domain(p, r);
    cs__cel_type t = cs__cel_binary_type(op, l->type, r->type);
    cs__cel_type elem = op == CS__OP_IN ? list_elem_type(r) : CS__CEL_DYN;
    if (t == CS__CEL_ERROR || (elem != CS__CEL_DYN && l->type != CS__CEL_DYN && l->type != elem))
        return fail(p, pos, "no such overload: %s %s %s%s%s", cs__cel_type_name(l->type),
                    cs__cel_op_name(op), cs__cel_type_name(r->type),
                    elem == CS__CEL_DYN ? "" : " of ",
                    elem == CS__CEL_DYN ? "" : cs__cel_type_name(elem));
    cs__cel_node *kids[2] = {l, r};
    cs__cel_node *n = mk(p, CS__N_BINARY, t, pos, 2, kids);
    if (n) n->op = (uint8_t)op;
    return n;
}

/* Relations, + -, * /: levels 0, 1, 2 of left-associative binary operators. */
static int binary_op_at(cs__cel_tok t, int level)
{
    if (level == 0 && t >= CS__TOK_EQ && t <= CS__TOK_GE) return CS__OP_EQ + (t - CS__TOK_EQ);
    if (level == 0 && t == CS__TOK_IN) return CS__OP_IN;
    if (level == 1 && (t == CS__TOK_ADD || t == CS__TOK_SUB)) return CS__OP_EQ + (t - CS__TOK_EQ);
    if (level == 2 && t >= CS__TOK_MUL && t <= CS__TOK_MOD) return CS__OP_EQ + (t - CS__TOK_EQ);
    return -1;
}

static cs__cel_node *parse_binary(parser *p, int level)
{
    cs__cel_node *l = level == 3 ? parse_unary(p) : parse_binary(p, level + 1);
    for (int op; l && level < 3 && (op = binary_op_at(p->tok.kind, level)) >= 0;) {
        uint32_t pos = p->tok.pos;
        if (!advance(p)) return NULL;
        cs__cel_node *r = parse_binary(p, level + 1);
        l = r ? mk_binary(p, (cs__cel_op)op, pos, l, r) : NULL;
    }
    return l;
}

static cs__cel_node *parse_relation(parser *p)
{
    return parse_binary(p, 0);
}

static cs__cel_node *parse_and(parser *p)
{
    return parse_logic(p, CS__TOK_AND, CS__N_AND, parse_relation);
}

static cs__cel_node *parse_or(parser *p)
{
    return parse_logic(p, CS__TOK_OR, CS__N_OR, parse_and);
}

static cs__cel_node *parse_expr(parser *p)
{
    if (++p->nest > CS__CEL_MAX_NEST)
        return fail(p, p->tok.pos, "expression nested more than %d levels deep", CS__CEL_MAX_NEST);
    cs__cel_node *c = parse_or(p);
    if (c && p->tok.kind == CS__TOK_QUESTION) {
        uint32_t pos = p->tok.pos;
        cs__cel_node *kids[3] = {c, NULL, NULL};
        if (!is_bool_or_dyn(c))
            return fail(p, c->pos, "the condition of ?: must be bool, not %s",
                        cs__cel_type_name(c->type));
        if (!advance(p) || !(kids[1] = parse_or(p)) || !expect(p, CS__TOK_COLON, "':' in ?:") ||
            !(kids[2] = parse_expr(p)))
            return NULL;
        cs__cel_type a = kids[1]->type, b = kids[2]->type;
        if (a != b && a != CS__CEL_DYN && b != CS__CEL_DYN)
            return fail(p, pos, "the branches of ?: have different types (%s and %s)",
                        cs__cel_type_name(a), cs__cel_type_name(b));
        c = mk(p, CS__N_COND, a == b ? a : CS__CEL_DYN, pos, 3, kids);
        if (c) c->capacity = kids[1]->capacity && kids[2]->capacity;
    }
    p->nest--;
    return c;
}

/* Arguments after '(' up to ')', appended to v after the receiver (if any). */
static bool parse_args(parser *p, cs_vec *v)
{
    if (!advance(p)) return false;
    while (p->tok.kind != CS__TOK_RPAREN) {
        cs__cel_node *a = parse_expr(p);
        if (!a) return false;
        if (v->len == 3) {
            fail(p, a->pos, "too many arguments (selector functions take at most two)");
            return false;
        }
        if (cs_vec_push(v, &a) != CS_OK) {
            cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
            return false;
        }
        if (p->tok.kind != CS__TOK_COMMA) break;
        if (!advance(p)) return false;
    }
    return expect(p, CS__TOK_RPAREN, "')' after the argument list");
}

static cs__cel_node *mk_has(parser *p, uint32_t pos, const cs_vec *v)
{
    cs__cel_node *a = v->len == 1 ? *(cs__cel_node **)cs_vec_at(v, 0) : NULL;
    if (!a || !a->selected ||
        (a->kind != CS__N_ATTR && a->kind != CS__N_DRIVER && a->kind != CS__N_MULTI))
        return fail(p, pos,
                    "has() takes one field selection, e.g. has(device.attributes[\"d\"].name)");
    return mk(p, CS__N_HAS, CS__CEL_BOOL, pos, 1, &a);
}

/* Resolves a call against the function table: the overloads of `name` that take these
 * static types decide the result type (DYN when they disagree). A literal `matches`
 * pattern is compiled here, once. */
static cs__cel_node *mk_call(parser *p, const char *name, size_t len, bool method, uint32_t pos,
                             cs_vec *v)
{
    size_t lo = 0;
    while (lo < cs__cel_nfns &&
           (strlen(cs__cel_fns[lo].name) != len || memcmp(cs__cel_fns[lo].name, name, len)))
        lo++;
    if (lo == cs__cel_nfns) return fail(p, pos, "unknown function '%.*s'", (int)len, name);
    size_t hi = lo;
    while (hi < cs__cel_nfns && !strcmp(cs__cel_fns[hi].name, cs__cel_fns[lo].name)) hi++;

    uint8_t types[3] = {0};
    cs__cel_node **args = v->data;
    for (size_t i = 0; i < v->len; i++) types[i] = args[i]->type;
    int ret = -1;
    for (size_t i = lo; i < hi; i++)
        if (cs__cel_fn_accepts(&cs__cel_fns[i], method, v->len, types))
            ret = (ret < 0 || ret == cs__cel_fns[i].ret) ? cs__cel_fns[i].ret : CS__CEL_DYN;
    if (ret < 0) {
        char sig[96] = "";
        for (size_t i = method ? 1 : 0; i < v->len; i++)
            snprintf(sig + strlen(sig), sizeof sig - strlen(sig), "%s%s",
                     i > (method ? 1u : 0u) ? ", " : "", cs__cel_type_name(types[i]));
        /* cel-go's wording, which Kubernetes' tests match */
        return fail(p, pos, "found no matching overload for '%.*s' applied to '%s%s(%s)'", (int)len,
                    name, method ? cs__cel_type_name(types[0]) : "", method ? "." : "", sig);
    }
    cs__cel_node *n = mk_from_vec(p, CS__N_CALL, (cs__cel_type)ret, pos, v);
    if (!n) return NULL;
    n->method = method;
    n->fn_lo = (uint16_t)lo;
    n->fn_hi = (uint16_t)hi;
    const cs__cel_node *pat = v->len == 2 ? args[1] : NULL;
    if (!strcmp(cs__cel_fns[lo].name, "matches") && pat && pat->kind == CS__N_LIT &&
        pat->type == CS__CEL_STRING) {
        regex_t *re = cs_arena_alloc(&p->prog->arena, sizeof *re, _Alignof(regex_t));
        char msg[160];
        if (!re || cs_vec_reserve(&p->prog->regexes, p->prog->regexes.len + 1) != CS_OK) {
            cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
            return NULL;
        }
        if (!cs__cel_regex_compile(pat->lit.s.p, pat->lit.s.n, re, msg, sizeof msg))
            return fail(p, pat->pos, "%s", msg);
        cs_vec_push(&p->prog->regexes, &re); /* room reserved above */
        n->re = re;
    }
    return n;
}

/* Declares variable `name` for the expressions parsed until pop_var; returns its slot or
 * -1 with the error set. Slots are per program, so nested scopes never share one. */
static int push_var(parser *p, const cs__cel_token *name, cs__cel_type type, bool capacity)
{
    if (p->prog->nvars == CS__CEL_MAX_VARS) {
        fail(p, name->pos, "more than %d macro and cel.bind variables", CS__CEL_MAX_VARS);
        return -1;
    }
    int slot = (int)p->prog->nvars++;
    p->scope[p->nscope++] = (scope_var){name->s, name->n, (uint8_t)slot, (uint8_t)type, capacity};
    return slot;
}

static void pop_var(parser *p)
{
    p->nscope--;
}

static const scope_var *find_var(const parser *p, const char *name, size_t n)
{
    for (int i = p->nscope - 1; i >= 0; i--)
        if (p->scope[i].n == n && !memcmp(p->scope[i].name, name, n)) return &p->scope[i];
    return NULL;
}

/* `(name,` opening a macro or cel.bind: the variable's token, the '(' already current. */
static bool parse_var_name(parser *p, const char *what, cs__cel_token *name)
{
    if (!advance(p)) return false;
    *name = p->tok;
    if (name->kind != CS__TOK_IDENT) {
        fail(p, name->pos, "the first argument of %s is a variable name", what);
        return false;
    }
    return advance(p) && expect(p, CS__TOK_COMMA, "',' after the variable name");
}

static const struct {
    const char *name;
    cs__cel_macro macro;
} macros[] = {{"all", CS__M_ALL},
              {"exists", CS__M_EXISTS},
              {"exists_one", CS__M_EXISTS_ONE},
              {"map", CS__M_MAP},
              {"filter", CS__M_FILTER}};

static int macro_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
        if (strlen(macros[i].name) == len && !memcmp(macros[i].name, name, len)) return (int)i;
    return -1;
}

/* recv.all(x, p), .exists, .exists_one, .filter and .map(x, t) / .map(x, p, t), as cel-go
 * expands them, over a list or a map's keys (device.attributes: domains; a domain: names). */
static cs__cel_node *parse_macro(parser *p, int which, uint32_t pos, cs__cel_node *recv)
{
    cs__cel_macro m = macros[which].macro;
    const char *mname = macros[which].name;
    cs__cel_type elem;
    bool cap = false;
    if (recv->type == CS__CEL_LIST) {
        elem = list_elem_type(recv);
        cap = recv->kind == CS__N_LIST && recv->nkids && recv->kids[0]->capacity;
    } else if (recv->type == CS__CEL_MAPS || recv->type == CS__CEL_DOMAIN)
        elem = CS__CEL_STRING;
    else if (recv->type == CS__CEL_DYN)
        elem = CS__CEL_DYN;
    else
        return fail(p, pos, "%s() needs a list or a map, not %s", mname,
                    cs__cel_type_name(recv->type));
    if (++p->nest > CS__CEL_MAX_NEST)
        return fail(p, pos, "expression nested more than %d levels deep", CS__CEL_MAX_NEST);
    cs__cel_token name;
    if (!parse_var_name(p, mname, &name)) return NULL;
    int slot = push_var(p, &name, elem, cap);
    if (slot < 0) return NULL;
    cs__cel_node *kids[3] = {recv, NULL, NULL};
    uint32_t nk = 2;
    if (!(kids[1] = parse_expr(p))) return NULL;
    if (m == CS__M_MAP && p->tok.kind == CS__TOK_COMMA) {
        if (!advance(p) || !(kids[2] = parse_expr(p))) return NULL;
        nk = 3;
    }
    pop_var(p);
    if (!expect(p, CS__TOK_RPAREN, "')' after the macro's arguments")) return NULL;
    p->nest--;
    bool pred = m != CS__M_MAP || nk == 3;
    if (pred && !is_bool_or_dyn(kids[1]))
        return fail(p, kids[1]->pos, "the predicate of %s() must be bool, not %s", mname,
                    cs__cel_type_name(kids[1]->type));
    cs__cel_type t = m == CS__M_MAP || m == CS__M_FILTER ? CS__CEL_LIST : CS__CEL_BOOL;
    cs__cel_node *n = mk(p, CS__N_COMP, t, pos, nk, kids);
    if (n) n->macro = (uint8_t)m, n->slot = (uint8_t)slot;
    return n;
}

/* cel.bind(name, init, body) (cel-go's ext.Bindings): init is evaluated once, outside
 * name's scope; body sees name. The "cel." has been read, the current token is '('. */
static cs__cel_node *parse_bind(parser *p, uint32_t pos)
{
    if (++p->nest > CS__CEL_MAX_NEST)
        return fail(p, pos, "expression nested more than %d levels deep", CS__CEL_MAX_NEST);
    cs__cel_token name;
    cs__cel_node *kids[2];
    if (!parse_var_name(p, "cel.bind", &name) || !(kids[0] = parse_expr(p)) ||
        !expect(p, CS__TOK_COMMA, "',' after cel.bind's value"))
        return NULL;
    int slot = push_var(p, &name, (cs__cel_type)kids[0]->type, kids[0]->capacity);
    if (slot < 0 || !(kids[1] = parse_expr(p))) return NULL;
    pop_var(p);
    if (!expect(p, CS__TOK_RPAREN, "')' after cel.bind's arguments")) return NULL;
    p->nest--;
    cs__cel_node *n = mk(p, CS__N_BIND, kids[1]->type, pos, 2, kids);
    if (n) n->slot = (uint8_t)slot, n->capacity = kids[1]->capacity;
    return n;
}

/* name "(" args ")" after a receiver or at the start of a primary; has() and the
 * comprehensions are macros. */
static cs__cel_node *parse_call(parser *p, const char *name, size_t len, uint32_t pos,
                                cs__cel_node *recv)
{
    int which = recv ? macro_of(name, len) : -1;
    if (which >= 0) return parse_macro(p, which, pos, recv);
    cs_vec v;
    cs_vec_init(&v, sizeof(cs__cel_node *));
    cs__cel_node *n = NULL;
    if (recv && cs_vec_push(&v, &recv) != CS_OK) {
        cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
        goto out;
    }
    if (++p->nest > CS__CEL_MAX_NEST) {
        fail(p, pos, "expression nested more than %d levels deep", CS__CEL_MAX_NEST);
        goto out;
    }
    if (!parse_args(p, &v)) goto out;
    p->nest--;
    if (!recv && len == 3 && !memcmp(name, "has", 3))
        n = mk_has(p, pos, &v);
    else
        n = mk_call(p, name, len, recv != NULL, pos, &v);
out:
    cs_vec_free(&v);
    return n;
}

/* device.attributes[key]: the MAPS node itself is kept only when it is computed (a
 * variable, a ?:), since the literal one says all there is in its capacity flag. */
static cs__cel_node *mk_domain(parser *p, cs__cel_node *maps, cs__cel_node *key, uint32_t pos)
{
    cs__cel_node *kids[2] = {key, maps};
    cs__cel_node *n =
        mk(p, CS__N_DOMAIN, CS__CEL_DOMAIN, pos, maps->kind == CS__N_MAPS ? 1 : 2, kids);
    if (n) n->capacity = maps->capacity;
    return n;
}

/* `.name` on x: device fields, a domain or attribute name, or an error. */
static cs__cel_node *mk_select(parser *p, cs__cel_node *x, const char *name, size_t len,
                               uint32_t pos)
{
    if (x->type == CS__CEL_DEVICE) {
        cs__cel_node *n = NULL;
        if (len == 6 && !memcmp(name, "driver", 6))
            n = mk(p, CS__N_DRIVER, CS__CEL_STRING, pos, 0, NULL);
        else if (len == 24 && !memcmp(name, "allowMultipleAllocations", 24))
            n = mk(p, CS__N_MULTI, CS__CEL_BOOL, pos, 0, NULL);
        else if ((len == 10 && !memcmp(name, "attributes", 10)) ||
                 (len == 8 && !memcmp(name, "capacity", 8))) {
            n = mk(p, CS__N_MAPS, CS__CEL_MAPS, pos, 0, NULL);
            if (n) n->capacity = name[0] == 'c';
        } else
            return fail(p, pos,
                        "device has no field '%.*s' (it has driver, attributes, capacity, "
                        "allowMultipleAllocations)",
                        (int)len, name);
        if (n) n->selected = true;
        return n;
    }
    if (x->type != CS__CEL_MAPS && x->type != CS__CEL_DOMAIN)
        return fail(p, pos, "%s has no field '%.*s' (methods need parentheses)",
                    cs__cel_type_name(x->type), (int)len, name);
    cs__cel_node *key = mk_string(p, name, len, pos);
    if (!key) return NULL;
    cs__cel_node *n = x->type == CS__CEL_MAPS
                          ? mk_domain(p, x, key, pos)
                          : mk(p, CS__N_ATTR, x->capacity ? CS__CEL_QUANTITY : CS__CEL_DYN, pos, 2,
                               (cs__cel_node *[]){x, key});
    if (n) n->capacity = x->capacity, n->selected = true;
    return n;
}

/* `[idx]` on x: a domain of device.attributes, an attribute of a domain, a list element. */
static cs__cel_node *mk_index(parser *p, cs__cel_node *x, cs__cel_node *idx, uint32_t pos)
{
    cs__cel_type want = (x->type == CS__CEL_MAPS || x->type == CS__CEL_DOMAIN) ? CS__CEL_STRING
                        : (x->type == CS__CEL_LIST || x->type == CS__CEL_DYN)  ? CS__CEL_INT
                                                                               : CS__CEL_ERROR;
    if (want == CS__CEL_ERROR)
        return fail(p, pos, "%s cannot be indexed", cs__cel_type_name(x->type));
    if (idx->type != want && idx->type != CS__CEL_DYN)
        return fail(p, idx->pos, "index must be %s, not %s", cs__cel_type_name(want),
                    cs__cel_type_name(idx->type));
    cs__cel_node *kids[2] = {x, idx};
    cs__cel_node *n;
    if (x->type == CS__CEL_MAPS)
        n = mk_domain(p, x, idx, pos);
    else if (x->type == CS__CEL_DOMAIN)
        n = mk(p, CS__N_ATTR, x->capacity ? CS__CEL_QUANTITY : CS__CEL_DYN, pos, 2, kids);
    else
        n = mk(p, CS__N_INDEX, list_elem_type(x), pos, 2, kids);
    if (n) n->capacity = x->capacity;
    return n;
}

static cs__cel_node *parse_list(parser *p)
{
    uint32_t pos = p->tok.pos;
    cs_vec v;
    cs_vec_init(&v, sizeof(cs__cel_node *));
    cs__cel_node *n = NULL;
    if (!advance(p)) goto out;
    while (p->tok.kind != CS__TOK_RBRACKET) {
        cs__cel_node *e = parse_expr(p);
        if (!e) goto out;
        if (cs_vec_push(&v, &e) != CS_OK) {
            cs_error_set(p->err, CS_ERR_NOMEM, "out of memory compiling the expression");
            goto out;
        }
        if (p->tok.kind != CS__TOK_COMMA) break;
        if (!advance(p)) goto out;
    }
    if (expect(p, CS__TOK_RBRACKET, "']' after the list elements"))
        n = mk_from_vec(p, CS__N_LIST, CS__CEL_LIST, pos, &v);
out:
    cs_vec_free(&v);
    return n;
}

static cs__cel_node *parse_primary(parser *p)
{
    cs__cel_token t = p->tok;
    cs__cel_node *n;
    switch (t.kind) {
    case CS__TOK_INT:
    case CS__TOK_DOUBLE:
    case CS__TOK_STRING:
    case CS__TOK_TRUE:
    case CS__TOK_FALSE: {
        static const uint8_t type_of[] = {[CS__TOK_INT] = CS__CEL_INT,
                                          [CS__TOK_DOUBLE] = CS__CEL_DOUBLE,
                                          [CS__TOK_STRING] = CS__CEL_STRING,
                                          [CS__TOK_TRUE] = CS__CEL_BOOL,
                                          [CS__TOK_FALSE] = CS__CEL_BOOL};
        if (!(n = mk(p, CS__N_LIT, type_of[t.kind], t.pos, 0, NULL))) return NULL;
        n->lit.type = n->type;
        n->lit.b = t.kind == CS__TOK_TRUE;
        if (t.kind == CS__TOK_DOUBLE) n->lit.d = t.d;
        if (t.kind == CS__TOK_INT) {
            n->min_int = t.u == (uint64_t)1 << 63;
            n->lit.i = n->min_int ? INT64_MIN : (int64_t)t.u;
        }
        if (t.kind == CS__TOK_STRING) n->lit.s.p = t.s, n->lit.s.n = t.n;
        return advance(p) ? n : NULL;
    }
    case CS__TOK_LPAREN:
        if (!advance(p) || !(n = parse_expr(p))) return NULL;
        return expect(p, CS__TOK_RPAREN, "')' to close '('") ? n : NULL;
    case CS__TOK_LBRACKET: return parse_list(p);
    case CS__TOK_LBRACE: return fail(p, t.pos, "map literals are not supported in selectors");
    case CS__TOK_IDENT: {
        if (!advance(p)) return NULL;
        if (p->tok.kind == CS__TOK_LPAREN) return parse_call(p, t.s, t.n, t.pos, NULL);
        const scope_var *var = find_var(p, t.s, t.n);
        if (var) {
            if (!(n = mk(p, CS__N_VAR, var->type, t.pos, 0, NULL))) return NULL;
            n->slot = var->slot;
            n->capacity = var->capacity;
            return n;
        }
        if (t.n == 3 && !memcmp(t.s, "cel", 3) && p->tok.kind == CS__TOK_DOT) {
            if (!advance(p)) return NULL;
            cs__cel_token f = p->tok;
            if (f.kind != CS__TOK_IDENT || f.n != 4 || memcmp(f.s, "bind", 4))
                return fail(p, f.pos, "the cel namespace has only cel.bind(name, value, expr)");
            if (!advance(p)) return NULL;
            if (p->tok.kind != CS__TOK_LPAREN)
                return fail(p, p->tok.pos, "expected '(' after cel.bind");
            return parse_bind(p, t.pos);
        }
        if (t.n == 6 && !memcmp(t.s, "device", 6))
            return mk(p, CS__N_DEVICE, CS__CEL_DEVICE, t.pos, 0, NULL);
        return fail(p, t.pos, "undeclared reference to '%.*s' (selectors see only 'device')",
                    (int)t.n, t.s);
    }
    default: {
        char found[40];
        tok_text(p, found, sizeof found);
        return fail(p, t.pos, "expected a value, found %s", found);
    }
    }
}

/* A primary followed by `.name`, `.name(args)` and `[index]`. */
static cs__cel_node *parse_member(parser *p)
{
    cs__cel_node *x = parse_primary(p);
    while (x && (p->tok.kind == CS__TOK_DOT || p->tok.kind == CS__TOK_LBRACKET)) {
        uint32_t pos = p->tok.pos;
        if (x->min_int) return fail(p, x->pos, "integer literal out of range");
        if (p->tok.kind == CS__TOK_DOT) {
            if (!advance(p)) return NULL;
            cs__cel_token name = p->tok;
            if (!expect(p, CS__TOK_IDENT, "a field or method name after '.'")) return NULL;
            x = p->tok.kind == CS__TOK_LPAREN ? parse_call(p, name.s, name.n, name.pos, x)
                                              : mk_select(p, x, name.s, name.n, name.pos);
        } else {
            cs__cel_node *idx;
            if (!advance(p) || !(idx = parse_expr(p)) ||
                !expect(p, CS__TOK_RBRACKET, "']' after the index"))
                return NULL;
            x = mk_index(p, x, idx, pos);
        }
    }
    if (x && x->type == CS__CEL_DEVICE)
        return fail(p, x->pos,
                    "'device' is not a value; use device.driver, "
                    "device.attributes[\"domain\"].name or device.capacity[...]");
    return x;
}

/* `!x`, `-x`: a '-' directly on a number literal folds into it, so that the most negative
 * integer can be written. */
static cs__cel_node *parse_unary_chain(parser *p)
{
    if (p->tok.kind != CS__TOK_NOT && p->tok.kind != CS__TOK_SUB) return parse_member(p);
    cs__cel_token t = p->tok;
    if (++p->nest > CS__CEL_MAX_NEST)
        return fail(p, t.pos, "expression nested more than %d levels deep", CS__CEL_MAX_NEST);
    cs__cel_node *x;
    if (!advance(p) || !(x = parse_unary_chain(p))) return NULL;
    p->nest--;
    bool neg = t.kind == CS__TOK_SUB;
    if (neg && x->kind == CS__N_LIT && (x->type == CS__CEL_INT || x->type == CS__CEL_DOUBLE)) {
        if (x->type == CS__CEL_DOUBLE)
            x->lit.d = -x->lit.d;
        else if (x->min_int)
            x->min_int = false;
        else if (x->lit.i == INT64_MIN)
            return fail(p, t.pos, "integer overflow");
        else
            x->lit.i = -x->lit.i;
        x->pos = t.pos;
        return x;
    }
    if (x->min_int) return fail(p, x->pos, "integer literal out of range");
    if (neg ? (x->type != CS__CEL_INT && x->type != CS__CEL_DOUBLE && x->type != CS__CEL_DYN)
            : !is_bool_or_dyn(x))
        return fail(p, t.pos, "no such overload: %c%s", neg ? '-' : '!',
                    cs__cel_type_name(x->type));
    return mk(p, neg ? CS__N_NEG : CS__N_NOT, neg ? x->type : CS__CEL_BOOL, t.pos, 1, &x);
}

static cs__cel_node *parse_unary(parser *p)
{
    cs__cel_node *x = parse_unary_chain(p);
    if (x && x->min_int) return fail(p, x->pos, "integer literal out of range");
    return x;
}

cs_status cs__cel_parse(cs_cel_program *prog, const char *src, size_t len, cs_error *err)
{
    parser p = {.lx = {.src = src, .len = len, .arena = &prog->arena}, .prog = prog, .err = err};
    if (len > CS__CEL_MAX_LEN)
        return cs_error_set(err, CS_ERR_PARSE, "expression is %zu bytes; the limit is %d", len,
                            CS__CEL_MAX_LEN);
    if (!advance(&p)) return err->code;
    cs__cel_node *root = parse_expr(&p);
    if (!root) return err->code;
    if (p.tok.kind != CS__TOK_EOF) {
        char found[40];
        tok_text(&p, found, sizeof found);
        fail(&p, p.tok.pos, "unexpected %s after the expression", found);
        return err->code;
    }
    if (!is_bool_or_dyn(root)) {
        fail(&p, root->pos, "a selector must evaluate to bool, not %s",
             cs__cel_type_name(root->type));
        return err->code;
    }
    /* As Kubernetes refuses a selector whose estimated cost passes
     * CELSelectorExpressionMaxCost ("too complex, exceeds cost limit"). */
    uint64_t cost = cs__cel_estimate(root);
    if (cost > CS_CEL_DEFAULT_COST_LIMIT)
        return cs_error_set(err, CS_ERR_PARSE,
                            "too complex, exceeds cost limit: estimated cost %llu, the limit is "
                            "%d; iterate over fewer elements or nest fewer macros",
                            (unsigned long long)cost, CS_CEL_DEFAULT_COST_LIMIT);
    prog->root = root;
    return CS_OK;
}

cs_status cs_cel_compile(const char *expr, cs_cel_program **out, cs_error *err)
{
    *out = NULL;
    cs_cel_program *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "out of memory compiling the expression");
    cs_arena_init(&p->arena, 4096);
    cs_vec_init(&p->regexes, sizeof(regex_t *));
    size_t len = strlen(expr);
    cs_error local;
    if (!err) err = &local;
    cs_status rc = CS_ERR_NOMEM;
    if (len > CS__CEL_MAX_LEN)
        rc = cs__cel_parse(p, expr, len, err); /* refuses it without copying */
    else if (!(p->src = cs_arena_strndup(&p->arena, expr, len)))
        cs_error_set(err, rc, "out of memory compiling the expression");
    else
        rc = cs__cel_parse(p, p->src, len, err);
    if (rc != CS_OK) {
        cs_cel_free(p);
        return rc;
    }
    *out = p;
    return CS_OK;
}

void cs_cel_free(cs_cel_program *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->regexes.len; i++) regfree(*(regex_t **)cs_vec_at(&p->regexes, i));
    cs_vec_free(&p->regexes);
    cs_arena_free(&p->arena);
    cs_free(p);
}
