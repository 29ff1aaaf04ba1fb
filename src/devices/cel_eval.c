/*
 * cel_eval.c - evaluation of compiled CEL selectors against one device, and the function
 * table (strings, quantities, semantic versions) the parser checks calls against.
 *
 * Evaluation walks the AST recursively (its depth is bounded at compile time) and returns
 * values; an error is a value too, so that && and || can absorb it the way CEL specifies:
 * `false && error` is false and `true || error` is true, whichever side errs. Running out
 * of the cost budget or of memory is not a value: it stops evaluation at once.
 *
 * The program is only read, so any number of threads may evaluate it at once. Each call
 * owns a small arena for list literals and error messages; expressions without lists
 * that do not fail allocate nothing. Regexes from literal patterns were compiled with the
 * program; glibc's regexec locks a shared pattern internally.
 *
 * Cost: one unit per evaluated node, plus the string bytes a string function reads and
 * one unit per list element `in` compares, so a limit bounds the time of any expression.
 */
#define _GNU_SOURCE /* memmem, REG_STARTEND */
#include "devices/cel_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct cs__cel_ctx {
    const cs_cel_program *prog;
    const cs_cel_env *env;
    uint64_t cost, limit;
    cs_status halt; /* CS_ERR_LIMIT or CS_ERR_NOMEM once evaluation must stop */
    cs_arena arena;
    cs__cel_val vars[CS__CEL_MAX_VARS]; /* macro and cel.bind variables, by slot */
};

const char *cs__cel_type_name(cs__cel_type t)
{
    static const char *const names[CS__CEL_TYPE_COUNT] = {"dyn",    "bool",   "int",      "double",
                                                          "string", "list",   "quantity", "semver",
                                                          "map",    "device", "map",      "error"};
    return (unsigned)t < CS__CEL_TYPE_COUNT ? names[t] : "?";
}

static cs__cel_val halted(void)
{
    return (cs__cel_val){.type = CS__CEL_ERROR, .s = {"evaluation stopped", 18}};
}

/* An error value "column N: message", its text in the call's arena. */
__attribute__((format(printf, 3, 4))) static cs__cel_val verr(cs__cel_ctx *c, const cs__cel_node *n,
                                                              const char *fmt, ...)
{
    char where[48], msg[CS_ERROR_MSG_MAX];
    cs__cel_where(c->prog->src, n->pos, where, sizeof where);
    int k = snprintf(msg, sizeof msg, "%s: ", where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    size_t len = strlen(msg);
    char *s = cs_arena_strndup(&c->arena, msg, len);
    if (!s) {
        c->halt = CS_ERR_NOMEM;
        return halted();
    }
    return (cs__cel_val){.type = CS__CEL_ERROR, .s = {s, len}};
}

static bool charge(cs__cel_ctx *c, uint64_t units)
{
    c->cost += units;
    if (c->cost <= c->limit) return true;
    if (c->halt == CS_OK) c->halt = CS_ERR_LIMIT;
    return false;
}

static cs__cel_val vbool(bool b)
{
    return (cs__cel_val){.type = CS__CEL_BOOL, .b = b};
}

static cs__cel_val vint(int64_t i)
{
    return (cs__cel_val){.type = CS__CEL_INT, .i = i};
}

/* ---- functions ---------------------------------------------------------------------- */

static cs__cel_val map_keys(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *m);

static cs__cel_val fn_size(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    if (a[0].type == CS__CEL_LIST) return vint((int64_t)a[0].list.n);
    if (a[0].type == CS__CEL_MAPS || a[0].type == CS__CEL_DOMAIN) {
        cs__cel_val keys = map_keys(c, n, &a[0]);
        return keys.type == CS__CEL_LIST ? vint((int64_t)keys.list.n) : keys;
    }
    if (!charge(c, a[0].s.n)) return halted();
    int64_t cps = 0; /* CEL counts code points, not bytes */
    for (size_t i = 0; i < a[0].s.n; i++) cps += ((unsigned char)a[0].s.p[i] & 0xC0) != 0x80;
    return vint(cps);
}

static cs__cel_val fn_starts(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    if (!charge(c, a[1].s.n)) return halted();
    return vbool(a[0].s.n >= a[1].s.n && !memcmp(a[0].s.p, a[1].s.p, a[1].s.n));
}

static cs__cel_val fn_ends(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    if (!charge(c, a[1].s.n)) return halted();
    return vbool(a[0].s.n >= a[1].s.n &&
                 !memcmp(a[0].s.p + a[0].s.n - a[1].s.n, a[1].s.p, a[1].s.n));
}

static cs__cel_val fn_contains(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    if (!charge(c, a[0].s.n + a[1].s.n)) return halted();
    return vbool(a[1].s.n == 0 || memmem(a[0].s.p, a[0].s.n, a[1].s.p, a[1].s.n) != NULL);
}

static cs__cel_val fn_matches(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    if (!charge(c, a[0].s.n + 2 * a[1].s.n)) return halted();
    regex_t local;
    const regex_t *re = n->re;
    if (!re) {
        char msg[160];
        if (!cs__cel_regex_compile(a[1].s.p, a[1].s.n, &local, msg, sizeof msg))
            return verr(c, n, "%s", msg);
        re = &local;
    }
    /* REG_STARTEND bounds the subject by length, so strings holding NUL still work. */
    regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)a[0].s.n};
    bool hit = regexec(re, a[0].s.p, 1, &m, REG_STARTEND) == 0;
    if (re == &local) regfree(&local);
    return vbool(hit);
}

/* lowerAscii / upperAscii (cel-go ext.Strings): ASCII letters only, as upstream. */
static cs__cel_val change_case(cs__cel_ctx *c, const cs__cel_val *a, bool upper)
{
    if (!charge(c, a[0].s.n)) return halted();
    char *out = cs_arena_alloc(&c->arena, a[0].s.n + 1, 1);
    if (!out) return c->halt = CS_ERR_NOMEM, halted();
    for (size_t i = 0; i < a[0].s.n; i++) {
        char ch = a[0].s.p[i];
        if (upper && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        if (!upper && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        out[i] = ch;
    }
    out[a[0].s.n] = '\0';
    return (cs__cel_val){.type = CS__CEL_STRING, .s = {out, a[0].s.n}};
}

static cs__cel_val fn_lower(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return change_case(c, a, false);
}

static cs__cel_val fn_upper(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return change_case(c, a, true);
}

/* s.split(sep) and s.split(sep, n), as Go's strings.SplitN that cel-go calls: n < 0 all
 * pieces, n == 0 none, n > 0 at most n (the last holds the rest); an empty separator
 * splits into UTF-8 sequences. Pieces point into s; the list lives in the call's arena. */
static cs__cel_val fn_split(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    const char *s = a[0].s.p, *sep = a[1].s.p;
    size_t len = a[0].s.n, sn = a[1].s.n;
    int64_t limit = n->nkids == 3 ? a[2].i : -1;
    if (!charge(c, len + 1)) return halted();
    size_t cap = len + 1;
    if (limit >= 0 && (uint64_t)limit < cap) cap = (size_t)limit;
    cs__cel_val *items =
        cap ? cs_arena_alloc(&c->arena, cap * sizeof *items, _Alignof(cs__cel_val)) : NULL;
    if (cap && !items) return c->halt = CS_ERR_NOMEM, halted();
    size_t k = 0, at = 0;
    while (k < cap) {
        size_t end = len;
        if (k + 1 < cap || limit < 0) {
            if (sn == 0) {
                if (at >= len) break;
                end = at + 1;
                while (end < len && ((unsigned char)s[end] & 0xC0) == 0x80) end++;
            } else {
                const char *hit = memmem(s + at, len - at, sep, sn);
                if (hit) end = (size_t)(hit - s);
            }
        }
        char *piece = cs_arena_strndup(&c->arena, s + at, end - at);
        if (!piece) return c->halt = CS_ERR_NOMEM, halted();
        items[k++] = (cs__cel_val){.type = CS__CEL_STRING, .s = {piece, end - at}};
        if (end >= len) break;
        at = end + sn;
        if (sn && at == len && (k < cap || limit < 0)) { /* a trailing separator: "" last */
            items[k++] = (cs__cel_val){.type = CS__CEL_STRING, .s = {"", 0}};
            break;
        }
    }
    return (cs__cel_val){.type = CS__CEL_LIST, .list = {items, k}};
}

static cs__cel_val fn_quantity(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    cs__cel_val v = {.type = CS__CEL_QUANTITY};
    cs_error e;
    if (cs__cel_qty_parse(a[0].s.p, a[0].s.n, &v.q, &e) != CS_OK)
        return verr(c, n, "quantity: %s", e.msg);
    return v;
}

static cs__cel_val fn_is_quantity(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    cs__cel_qty q;
    return vbool(cs__cel_qty_parse(a[0].s.p, a[0].s.n, &q, NULL) == CS_OK);
}

static cs__cel_val fn_semver(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    cs__cel_val v = {.type = CS__CEL_SEMVER};
    cs_error e;
    if (cs__semver_parse(a[0].s.p, a[0].s.n, n->nkids == 2 && a[1].b, &v.sv, &e) != CS_OK)
        return verr(c, n, "semver: %s", e.msg);
    return v;
}

static cs__cel_val fn_is_semver(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    cs_semver sv;
    return vbool(cs__semver_parse(a[0].s.p, a[0].s.n, n->nkids == 2 && a[1].b, &sv, NULL) == CS_OK);
}

/* compareTo, isGreaterThan, isLessThan share one comparison of two quantities or versions. */
static int cmp_ordered(const cs__cel_val *a)
{
    return a[0].type == CS__CEL_QUANTITY ? cs__cel_qty_cmp(&a[0].q, &a[1].q)
                                         : cs_semver_cmp(&a[0].sv, &a[1].sv);
}

static cs__cel_val fn_compare(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vint(cmp_ordered(a));
}

static cs__cel_val fn_greater(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vbool(cmp_ordered(a) > 0);
}

static cs__cel_val fn_less(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vbool(cmp_ordered(a) < 0);
}

static cs__cel_val fn_sign(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vint(cs__cel_qty_sign(&a[0].q));
}

/* isInteger and asInteger are Kubernetes' AsInt64: whole and within int64. */
static cs__cel_val fn_is_integer(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    int64_t i;
    return vbool(cs__cel_qty_int64(&a[0].q, &i));
}

static cs__cel_val fn_as_integer(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    int64_t i;
    if (!cs__cel_qty_int64(&a[0].q, &i)) {
        char text[100];
        cs__cel_qty_text(&a[0].q, text, sizeof text);
        return verr(c, n,
                    "asInteger: cannot convert value to integer: %s is not a whole number in "
                    "the int64 range",
                    text);
    }
    return vint(i);
}

static cs__cel_val fn_as_float(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return (cs__cel_val){.type = CS__CEL_DOUBLE, .d = cs__cel_qty_double(&a[0].q)};
}

/* add and sub: the other operand is a quantity or an int (whole units), exactly, as
 * Kubernetes' Quantity.Add and Sub; a result beyond 38 significant digits is an error. */
static cs__cel_val qty_add(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a, bool sub)
{
    cs__cel_qty y = a[1].type == CS__CEL_QUANTITY ? a[1].q : cs__cel_qty_of_int(a[1].i);
    cs__cel_val v = {.type = CS__CEL_QUANTITY};
    if (!cs__cel_qty_add(&a[0].q, &y, sub, &v.q)) {
        char l[100], r[100];
        cs__cel_qty_text(&a[0].q, l, sizeof l);
        cs__cel_qty_text(&y, r, sizeof r);
        return verr(c, n, "%s: %s %c %s needs more than 38 significant digits", sub ? "sub" : "add",
                    l, sub ? '-' : '+', r);
    }
    return v;
}

static cs__cel_val fn_add(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return qty_add(c, n, a, false);
}

static cs__cel_val fn_sub(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return qty_add(c, n, a, true);
}

static cs__cel_val fn_major(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vint(a[0].sv.major);
}

static cs__cel_val fn_minor(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vint(a[0].sv.minor);
}

static cs__cel_val fn_patch(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a)
{
    return vint(a[0].sv.patch);
}

enum {
    B = CS__CEL_BOOL,
    I = CS__CEL_INT,
    D = CS__CEL_DOUBLE,
    S = CS__CEL_STRING,
    L = CS__CEL_LIST,
    Q = CS__CEL_QUANTITY,
    V = CS__CEL_SEMVER,
    M = CS__CEL_DOMAIN, /* a map of names (device.attributes["d"]) */
    N = CS__CEL_MAPS,   /* a map of domains (device.attributes) */
};

/* Kubernetes' quantity and semver libraries plus the standard string functions selectors
 * use. Overloads of a name must be adjacent. */
const cs__cel_fn cs__cel_fns[] = {
    {"size", false, 1, {S}, I, fn_size},
    {"size", false, 1, {L}, I, fn_size},
    {"size", true, 1, {S}, I, fn_size},
    {"size", true, 1, {L}, I, fn_size},
    {"size", false, 1, {M}, I, fn_size},
    {"size", false, 1, {N}, I, fn_size},
    {"size", true, 1, {M}, I, fn_size},
    {"size", true, 1, {N}, I, fn_size},
    {"startsWith", true, 2, {S, S}, B, fn_starts},
    {"endsWith", true, 2, {S, S}, B, fn_ends},
    {"contains", true, 2, {S, S}, B, fn_contains},
    {"matches", true, 2, {S, S}, B, fn_matches},
    {"matches", false, 2, {S, S}, B, fn_matches},
    {"lowerAscii", true, 1, {S}, S, fn_lower},
    {"upperAscii", true, 1, {S}, S, fn_upper},
    {"split", true, 2, {S, S}, L, fn_split},
    {"split", true, 3, {S, S, I}, L, fn_split},
    {"quantity", false, 1, {S}, Q, fn_quantity},
    {"isQuantity", false, 1, {S}, B, fn_is_quantity},
    {"sign", true, 1, {Q}, I, fn_sign},
    {"isInteger", true, 1, {Q}, B, fn_is_integer},
    {"asInteger", true, 1, {Q}, I, fn_as_integer},
    {"asApproximateFloat", true, 1, {Q}, D, fn_as_float},
    {"add", true, 2, {Q, Q}, Q, fn_add},
    {"add", true, 2, {Q, I}, Q, fn_add},
    {"sub", true, 2, {Q, Q}, Q, fn_sub},
    {"sub", true, 2, {Q, I}, Q, fn_sub},
    {"compareTo", true, 2, {Q, Q}, I, fn_compare},
    {"compareTo", true, 2, {V, V}, I, fn_compare},
    {"isGreaterThan", true, 2, {Q, Q}, B, fn_greater},
    {"isGreaterThan", true, 2, {V, V}, B, fn_greater},
    {"isLessThan", true, 2, {Q, Q}, B, fn_less},
    {"isLessThan", true, 2, {V, V}, B, fn_less},
    {"semver", false, 1, {S}, V, fn_semver},
    {"semver", false, 2, {S, B}, V, fn_semver},
    {"isSemver", false, 1, {S}, B, fn_is_semver},
    {"isSemver", false, 2, {S, B}, B, fn_is_semver},
    {"major", true, 1, {V}, I, fn_major},
    {"minor", true, 1, {V}, I, fn_minor},
    {"patch", true, 1, {V}, I, fn_patch},
};
const size_t cs__cel_nfns = sizeof cs__cel_fns / sizeof *cs__cel_fns;

bool cs__cel_fn_accepts(const cs__cel_fn *f, bool method, size_t nargs, const uint8_t *types)
{
    if (f->method != method || f->nargs != nargs) return false;
    for (size_t i = 0; i < nargs; i++)
        if (types[i] != CS__CEL_DYN && types[i] != f->arg[i]) return false;
    return true;
}

/* ---- regular expressions ------------------------------------------------------------ */

/* POSIX ERE stands in for RE2. Two ERE features could make glibc's matcher slow or its
 * compiler large, so they are refused: back-references (\1, a glibc extension to ERE)
 * and repetition counts whose product passes 1000 ("((a{100}){100}){100}" is a million
 * states). Groups nest at most 32 deep, which bounds regcomp's recursion. */
bool cs__cel_regex_compile(const char *pat, size_t n, regex_t *re, char *msg, size_t cap)
{
    if (strlen(pat) != n) return snprintf(msg, cap, "regex contains a NUL byte"), false;
    unsigned long product = 1;
    int depth = 0;
    bool after_rep = false; /* the previous token was a repetition operator */
    for (size_t i = 0; i < n; i++) {
        char ch = pat[i];
        /* glibc expands x+ and x{n} by copying x's tree, so stacked operators (a++++...)
         * grow it exponentially; RE2 refuses them too ("bad repetition operator"). A
         * single '?' after one stays allowed: RE2 reads it as non-greedy. */
        bool rep = ch == '*' || ch == '+' || ch == '?' || ch == '{';
        if (rep && after_rep && ch != '?')
            return snprintf(msg, cap, "regex repetition operators cannot be stacked (as in a++)"),
                   false;
        after_rep = rep || ch == '}';
        if (ch == '\\') {
            if (i + 1 < n && pat[i + 1] >= '1' && pat[i + 1] <= '9')
                return snprintf(msg, cap, "regex back-references are not supported"), false;
            i++;
        } else if (ch == '[') { /* skip a bracket expression, where { ( \ are literal */
            size_t j = i + 1;
            if (j < n && pat[j] == '^') j++;
            if (j < n && pat[j] == ']') j++;
            while (j < n && pat[j] != ']') {
                if (pat[j] == '[' && j + 1 < n && strchr(":.=", pat[j + 1])) {
                    const char *close = strstr(pat + j + 2, (char[]){pat[j + 1], ']', 0});
                    if (!close) break;
                    j = (size_t)(close - pat) + 2;
                } else
                    j++;
            }
            i = j;
        } else if (ch == '(') {
            if (++depth > 32) return snprintf(msg, cap, "regex groups nest too deeply"), false;
        } else if (ch == ')') {
            depth -= depth > 0;
        } else if (ch == '{') {
            unsigned long lo = 0, hi = 0;
            size_t j = i + 1;
            for (; j < n && pat[j] >= '0' && pat[j] <= '9' && lo <= 1000; j++)
                lo = lo * 10 + (unsigned long)(pat[j] - '0');
            hi = lo;
            if (j < n && pat[j] == ',')
                for (hi = 0, j++; j < n && pat[j] >= '0' && pat[j] <= '9' && hi <= 1000; j++)
                    hi = hi * 10 + (unsigned long)(pat[j] - '0');
            product *= (hi > lo ? hi : lo) + 1;
            if (product > 1000)
                return snprintf(msg, cap,
                                "regex repetition counts are too large (at most 1000 "
                                "in all)"),
                       false;
        }
    }
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[96];
        regerror(rc, re, why, sizeof why);
        regfree(re);
        snprintf(msg, cap, "invalid regex: %s", why);
        return false;
    }
    return true;
}

/* ---- operators ---------------------------------------------------------------------- */

static cs__cel_type binary_concrete(cs__cel_op op, cs__cel_type l, cs__cel_type r)
{
    bool num_l = l == CS__CEL_INT || l == CS__CEL_DOUBLE,
         num_r = r == CS__CEL_INT || r == CS__CEL_DOUBLE;
    switch (op) {
    case CS__OP_EQ:
    case CS__OP_NE:
        return l == r && l != CS__CEL_DOMAIN && l != CS__CEL_MAPS ? CS__CEL_BOOL : CS__CEL_ERROR;
    case CS__OP_LT:
    case CS__OP_LE:
    case CS__OP_GT:
    case CS__OP_GE: /* Kubernetes enables CEL's cross-type numeric comparisons */
        if ((num_l && num_r) || (l == r && (l == CS__CEL_STRING || l == CS__CEL_BOOL)))
            return CS__CEL_BOOL;
        return CS__CEL_ERROR;
    case CS__OP_IN:
        return r == CS__CEL_LIST ||
                       ((r == CS__CEL_DOMAIN || r == CS__CEL_MAPS) && l == CS__CEL_STRING)
                   ? CS__CEL_BOOL
                   : CS__CEL_ERROR;
    default: return l == CS__CEL_INT && r == CS__CEL_INT ? CS__CEL_INT : CS__CEL_ERROR;
    }
}

cs__cel_type cs__cel_binary_type(cs__cel_op op, cs__cel_type l, cs__cel_type r)
{
    int out = -1;
    for (int a = CS__CEL_BOOL; a <= CS__CEL_MAPS; a++) {
        if ((l != CS__CEL_DYN && a != (int)l) || a == CS__CEL_DEVICE) continue;
        for (int b = CS__CEL_BOOL; b <= CS__CEL_MAPS; b++) {
            if ((r != CS__CEL_DYN && b != (int)r) || b == CS__CEL_DEVICE) continue;
            int t = binary_concrete(op, (cs__cel_type)a, (cs__cel_type)b);
            if (t != CS__CEL_ERROR) out = (out < 0 || out == t) ? t : CS__CEL_DYN;
        }
    }
    return out < 0 ? CS__CEL_ERROR : (cs__cel_type)out;
}

const char *cs__cel_op_name(cs__cel_op op)
{
    static const char *const names[] = {
        "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "in"};
    return names[op];
}

/* CEL equality on two values of one type (lists element by element); -1 when the
 * types differ, which == reports as an error and `in` treats as unequal. */
static int equal(cs__cel_ctx *c, const cs__cel_val *a, const cs__cel_val *b)
{
    if (a->type != b->type) return -1;
    switch (a->type) {
    case CS__CEL_BOOL: return a->b == b->b;
    case CS__CEL_INT: return a->i == b->i;
    case CS__CEL_DOUBLE: return a->d == b->d;
    case CS__CEL_STRING:
        if (!charge(c, a->s.n < b->s.n ? a->s.n : b->s.n)) return 0;
        return a->s.n == b->s.n && !memcmp(a->s.p, b->s.p, a->s.n);
    case CS__CEL_QUANTITY: return cs__cel_qty_cmp(&a->q, &b->q) == 0;
    case CS__CEL_SEMVER: return cs_semver_cmp(&a->sv, &b->sv) == 0;
    case CS__CEL_LIST:
        if (a->list.n != b->list.n) return 0;
        for (size_t i = 0; i < a->list.n; i++) {
            int e = equal(c, &a->list.v[i], &b->list.v[i]);
            if (e != 1) return e;
        }
        return 1;
    default: return -1;
    }
}

/* -1, 0, 1 for two ordered values (ints and doubles mix). */
static int order(cs__cel_ctx *c, const cs__cel_val *a, const cs__cel_val *b)
{
    if (a->type == CS__CEL_STRING) {
        size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
        if (!charge(c, n)) return 0;
        int k = memcmp(a->s.p, b->s.p, n);
        return k ? (k < 0 ? -1 : 1) : (a->s.n > b->s.n) - (a->s.n < b->s.n);
    }
    if (a->type == CS__CEL_BOOL) return (a->b > b->b) - (a->b < b->b);
    if (a->type == CS__CEL_INT && b->type == CS__CEL_INT) return (a->i > b->i) - (a->i < b->i);
    double x = a->type == CS__CEL_INT ? (double)a->i : a->d;
    double y = b->type == CS__CEL_INT ? (double)b->i : b->d;
    return (x > y) - (x < y); /* NaN compares as equal here; no selector can make one */
}

static cs__cel_val eval(cs__cel_ctx *c, const cs__cel_node *n);

/* Asks the environment for device.attributes[d][key] (or capacity). */
static bool attr_lookup(cs__cel_ctx *c, const cs__cel_val *dom, const cs__cel_val *key,
                        cs_cel_attr *out)
{
    const cs_cel_env *env = c->env;
    bool (*get)(void *, const char *, const char *, cs_cel_attr *) =
        dom->capacity ? env->capacity : env->attribute;
    /* A name with a NUL inside cannot exist; the callback would see a shorter one. */
    if (!get || strlen(dom->s.p) != dom->s.n || strlen(key->s.p) != key->s.n) return false;
    memset(out, 0, sizeof *out);
    return get(env->ud, dom->s.p, key->s.p, out);
}

/* The domain ("a.example.com") of a qualified name, or the driver's for a bare one. */
static void split_name(const cs__cel_ctx *c, const char *q, const char **dom, size_t *dn,
                       const char **name)
{
    const char *slash = strchr(q, '/');
    const char *drv = c->env->driver ? c->env->driver : "";
    *dom = slash ? q : drv;
    *dn = slash ? (size_t)(slash - q) : strlen(drv);
    *name = slash ? slash + 1 : q;
}

/* The keys of a map as a list of strings in the call's arena: the domains of
 * device.attributes (or capacity), each once, or the names in one domain. Kubernetes
 * builds these maps from the device's qualified names the same way. Cost: one unit per
 * entry and per earlier key compared, so O(entries^2) with entries <= 32 in Kubernetes. */
static cs__cel_val map_keys(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *m)
{
    const cs_cel_env *env = c->env;
    if (!env->entry) return verr(c, n, "this environment cannot list device attributes");
    size_t count = 0;
    while (env->entry(env->ud, m->capacity, count)) count++;
    cs__cel_val *keys =
        count ? cs_arena_alloc(&c->arena, count * sizeof *keys, _Alignof(cs__cel_val)) : NULL;
    if (count && !keys) return c->halt = CS_ERR_NOMEM, halted();
    size_t nk = 0;
    for (size_t i = 0; i < count; i++) {
        const char *dom, *name;
        size_t dn;
        split_name(c, env->entry(env->ud, m->capacity, i), &dom, &dn, &name);
        if (!charge(c, 1 + nk)) return halted();
        if (m->type == CS__CEL_DOMAIN) {
            if (dn != m->s.n || memcmp(dom, m->s.p, dn)) continue;
            keys[nk++] = (cs__cel_val){.type = CS__CEL_STRING, .s = {name, strlen(name)}};
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < nk && !seen; k++)
            seen = keys[k].s.n == dn && !memcmp(keys[k].s.p, dom, dn);
        if (seen) continue;
        char *copy = cs_arena_strndup(&c->arena, dom, dn);
        if (!copy) return c->halt = CS_ERR_NOMEM, halted();
        keys[nk++] = (cs__cel_val){.type = CS__CEL_STRING, .s = {copy, dn}};
    }
    return (cs__cel_val){.type = CS__CEL_LIST, .list = {keys, nk}};
}

static cs__cel_val eval_binary(cs__cel_ctx *c, const cs__cel_node *n)
{
    cs__cel_val l = eval(c, n->kids[0]);
    if (l.type == CS__CEL_ERROR) return l;
    cs__cel_val r = eval(c, n->kids[1]);
    if (r.type == CS__CEL_ERROR) return r;
    cs__cel_op op = (cs__cel_op)n->op;
    if (binary_concrete(op, l.type, r.type) == CS__CEL_ERROR)
        return verr(c, n, "no such overload: %s %s %s", cs__cel_type_name(l.type),
                    cs__cel_op_name(op), cs__cel_type_name(r.type));
    int64_t v = 0;
    switch (op) {
    case CS__OP_EQ:
    case CS__OP_NE: {
        int e = equal(c, &l, &r);
        if (e < 0) return verr(c, n, "no such overload: lists of different element types");
        return vbool((e == 1) == (op == CS__OP_EQ));
    }
    case CS__OP_LT: return vbool(order(c, &l, &r) < 0);
    case CS__OP_LE: return vbool(order(c, &l, &r) <= 0);
    case CS__OP_GT: return vbool(order(c, &l, &r) > 0);
    case CS__OP_GE: return vbool(order(c, &l, &r) >= 0);
    case CS__OP_IN:
        if (r.type == CS__CEL_DOMAIN) {
            cs_cel_attr a;
            return vbool(attr_lookup(c, &r, &l, &a));
        }
        if (r.type == CS__CEL_MAPS) {
            cs__cel_val keys = map_keys(c, n, &r);
            if (keys.type == CS__CEL_ERROR) return keys;
            r = keys;
        }
        if (!charge(c, r.list.n)) return halted();
        for (size_t i = 0; i < r.list.n; i++)
            if (equal(c, &l, &r.list.v[i]) == 1) return vbool(true);
        return vbool(false);
    case CS__OP_ADD:
        if (__builtin_add_overflow(l.i, r.i, &v)) return verr(c, n, "integer overflow");
        return vint(v);
    case CS__OP_SUB:
        if (__builtin_sub_overflow(l.i, r.i, &v)) return verr(c, n, "integer overflow");
        return vint(v);
    case CS__OP_MUL:
        if (__builtin_mul_overflow(l.i, r.i, &v)) return verr(c, n, "integer overflow");
        return vint(v);
    default: /* / and % */
        if (r.i == 0) return verr(c, n, "division by zero");
        if (l.i == INT64_MIN && r.i == -1)
            return op == CS__OP_DIV ? verr(c, n, "integer overflow") : vint(0);
        return vint(op == CS__OP_DIV ? l.i / r.i : l.i % r.i);
    }
}

/* && and || with CEL's commutative error handling: a deciding operand (false for &&,
 * true for ||) wins over an error on the other side. */
static cs__cel_val eval_logic(cs__cel_ctx *c, const cs__cel_node *n)
{
    bool decide = n->kind == CS__N_OR; /* the value that settles the result */
    cs__cel_val side[2];
    for (int i = 0; i < 2; i++) {
        side[i] = eval(c, n->kids[i]);
        if (c->halt) return halted();
        if (side[i].type != CS__CEL_ERROR && side[i].type != CS__CEL_BOOL)
            side[i] = verr(c, n->kids[i], "no such overload: %s %s",
                           n->kind == CS__N_OR ? "||" : "&&", cs__cel_type_name(side[i].type));
        if (side[i].type == CS__CEL_BOOL && side[i].b == decide) return vbool(decide);
    }
    if (side[0].type == CS__CEL_ERROR) return side[0];
    if (side[1].type == CS__CEL_ERROR) return side[1];
    return vbool(!decide);
}

/* device.attributes[d][k] or device.capacity[d][k]; for has() only whether it exists. */
static cs__cel_val eval_attr(cs__cel_ctx *c, const cs__cel_node *n, bool has)
{
    cs__cel_val dom = eval(c, n->kids[0]);
    if (dom.type == CS__CEL_ERROR) return dom;
    cs__cel_val key = eval(c, n->kids[1]);
    if (key.type == CS__CEL_ERROR) return key;
    if (key.type != CS__CEL_STRING)
        return verr(c, n, "attribute names are strings, not %s", cs__cel_type_name(key.type));
    cs_cel_attr a;
    bool found = attr_lookup(c, &dom, &key, &a);
    if (has) return vbool(found);
    if (!found)
        return verr(c, n, "no such key: %s in device.%s[\"%s\"] (test it with has() first)",
                    key.s.p, dom.capacity ? "capacity" : "attributes", dom.s.p);
    cs__cel_val v = {.type = CS__CEL_INT};
    switch (a.type) {
    case CS_CEL_ATTR_INT: v.i = a.i; return v;
    case CS_CEL_ATTR_BOOL: return vbool(a.b);
    case CS_CEL_ATTR_STRING:
        v.type = CS__CEL_STRING;
        v.s.p = a.s ? a.s : "";
        v.s.n = strlen(v.s.p);
        return v;
    case CS_CEL_ATTR_VERSION: {
        cs_error e;
        v.type = CS__CEL_SEMVER;
        if (cs__semver_parse(a.s ? a.s : "", a.s ? strlen(a.s) : 0, false, &v.sv, &e) != CS_OK)
            return verr(c, n, "attribute %s: %s", key.s.p, e.msg);
        return v;
    }
    case CS_CEL_ATTR_QUANTITY: v.type = CS__CEL_QUANTITY, v.q = cs__cel_qty_from(a.q); return v;
    }
    return verr(c, n, "attribute %s has an unknown type", key.s.p);
}

/* The comprehension macros, one loop for all five. all and exists follow cel-go's
 * expansion over && and ||: an element that decides the result (false for all, true for
 * exists) wins over an error from another element, whichever comes first; otherwise the
 * first error is the result. exists_one, map and filter propagate the first error. */
static cs__cel_val eval_comp(cs__cel_ctx *c, const cs__cel_node *n)
{
    cs__cel_val range = eval(c, n->kids[0]);
    if (range.type == CS__CEL_ERROR) return range;
    cs__cel_macro m = (cs__cel_macro)n->macro;
    if (range.type == CS__CEL_MAPS || range.type == CS__CEL_DOMAIN)
        range = map_keys(c, n, &range);
    else if (range.type != CS__CEL_LIST)
        return verr(c, n, "no such overload: %s.%s()", cs__cel_type_name(range.type),
                    m == CS__M_ALL      ? "all"
                    : m == CS__M_EXISTS ? "exists"
                    : m == CS__M_MAP    ? "map"
                    : m == CS__M_FILTER ? "filter"
                                        : "exists_one");
    if (range.type == CS__CEL_ERROR) return range;
    const cs__cel_val *items = range.list.v;
    size_t count = range.list.n, nout = 0, hits = 0;
    cs__cel_val *out = NULL, first_err = {.type = CS__CEL_BOOL};
    if ((m == CS__M_MAP || m == CS__M_FILTER) && count &&
        !(out = cs_arena_alloc(&c->arena, count * sizeof *out, _Alignof(cs__cel_val))))
        return c->halt = CS_ERR_NOMEM, halted();
    const cs__cel_node *pred = m == CS__M_MAP && n->nkids == 2 ? NULL : n->kids[1];
    bool decide = m == CS__M_EXISTS;
    for (size_t i = 0; i < count; i++) {
        if (!charge(c, 1)) return halted();
        c->vars[n->slot] = items[i];
        if (pred) {
            cs__cel_val b = eval(c, pred);
            if (c->halt) return halted();
            if (b.type != CS__CEL_BOOL && b.type != CS__CEL_ERROR)
                b = verr(c, pred, "the predicate evaluated to %s, not bool",
                         cs__cel_type_name(b.type));
            if (b.type == CS__CEL_ERROR) {
                if (m != CS__M_ALL && m != CS__M_EXISTS) return b;
                if (first_err.type != CS__CEL_ERROR) first_err = b;
                continue;
            }
            if (m == CS__M_ALL || m == CS__M_EXISTS) {
                if (b.b == decide) return vbool(decide);
                continue;
            }
            if (m == CS__M_EXISTS_ONE) {
                hits += b.b;
                continue;
            }
            if (!b.b) continue;
            if (m == CS__M_FILTER) {
                out[nout++] = items[i];
                continue;
            }
        }
        cs__cel_val t = eval(c, n->kids[n->nkids - 1]);
        if (t.type == CS__CEL_ERROR) return t;
        out[nout++] = t;
    }
    switch (m) {
    case CS__M_ALL:
    case CS__M_EXISTS: return first_err.type == CS__CEL_ERROR ? first_err : vbool(!decide);
    case CS__M_EXISTS_ONE: return vbool(hits == 1);
    default: return (cs__cel_val){.type = CS__CEL_LIST, .list = {out, nout}};
    }
}

static cs__cel_val eval_call(cs__cel_ctx *c, const cs__cel_node *n)
{
    cs__cel_val a[3];
    uint8_t types[3];
    for (uint32_t i = 0; i < n->nkids; i++) {
        a[i] = eval(c, n->kids[i]);
        if (a[i].type == CS__CEL_ERROR) return a[i];
        types[i] = a[i].type;
    }
    for (size_t i = n->fn_lo; i < n->fn_hi; i++)
        if (cs__cel_fn_accepts(&cs__cel_fns[i], n->method, n->nkids, types))
            return cs__cel_fns[i].impl(c, n, a);
    return verr(c, n, "no matching overload for %s(%s%s%s)", cs__cel_fns[n->fn_lo].name,
                cs__cel_type_name(types[0]), n->nkids > 1 ? ", " : "",
                n->nkids > 1 ? cs__cel_type_name(types[1]) : "");
}

static cs__cel_val eval(cs__cel_ctx *c, const cs__cel_node *n)
{
    if (c->halt || !charge(c, 1)) return halted();
    cs__cel_val v;
    switch ((cs__cel_kind)n->kind) {
    case CS__N_LIT: return n->lit;
    case CS__N_LIST: {
        cs__cel_val *items =
            n->nkids ? cs_arena_alloc(&c->arena, n->nkids * sizeof *items, _Alignof(cs__cel_val))
                     : NULL;
        if (n->nkids && !items) return c->halt = CS_ERR_NOMEM, halted();
        for (uint32_t i = 0; i < n->nkids; i++) {
            items[i] = eval(c, n->kids[i]);
            if (items[i].type == CS__CEL_ERROR) return items[i];
        }
        return (cs__cel_val){.type = CS__CEL_LIST, .list = {items, n->nkids}};
    }
    case CS__N_DRIVER: {
        const char *d = c->env->driver ? c->env->driver : "";
        return (cs__cel_val){.type = CS__CEL_STRING, .s = {d, strlen(d)}};
    }
    case CS__N_MULTI: return vbool(c->env->allow_multiple);
    case CS__N_MAPS: return (cs__cel_val){.type = CS__CEL_MAPS, .capacity = n->capacity};
    case CS__N_DOMAIN: {
        bool cap = n->capacity;
        if (n->nkids == 2) {
            cs__cel_val m = eval(c, n->kids[1]);
            if (m.type == CS__CEL_ERROR) return m;
            cap = m.capacity;
        }
        v = eval(c, n->kids[0]);
        if (v.type == CS__CEL_ERROR) return v;
        if (v.type != CS__CEL_STRING)
            return verr(c, n, "domains are strings, not %s", cs__cel_type_name(v.type));
        v.type = CS__CEL_DOMAIN;
        v.capacity = cap;
        return v;
    }
    case CS__N_VAR: return c->vars[n->slot];
    case CS__N_COMP: return eval_comp(c, n);
    case CS__N_BIND:
        /* The value may be an error: it surfaces only where the body uses it. */
        c->vars[n->slot] = eval(c, n->kids[0]);
        if (c->halt) return halted();
        return eval(c, n->kids[1]);
    case CS__N_ATTR: return eval_attr(c, n, false);
    case CS__N_HAS:
        return n->kids[0]->kind != CS__N_ATTR ? vbool(true) : eval_attr(c, n->kids[0], true);
    case CS__N_INDEX: {
        cs__cel_val l = eval(c, n->kids[0]);
        if (l.type == CS__CEL_ERROR) return l;
        cs__cel_val i = eval(c, n->kids[1]);
        if (i.type == CS__CEL_ERROR) return i;
        if (l.type != CS__CEL_LIST || i.type != CS__CEL_INT)
            return verr(c, n, "no such overload: %s[%s]", cs__cel_type_name(l.type),
                        cs__cel_type_name(i.type));
        if (i.i < 0 || (uint64_t)i.i >= l.list.n)
            return verr(c, n, "index %lld out of range for a list of %zu", (long long)i.i,
                        l.list.n);
        return l.list.v[i.i];
    }
    case CS__N_CALL: return eval_call(c, n);
    case CS__N_NOT:
        v = eval(c, n->kids[0]);
        if (v.type == CS__CEL_ERROR) return v;
        if (v.type != CS__CEL_BOOL)
            return verr(c, n, "no such overload: !%s", cs__cel_type_name(v.type));
        return vbool(!v.b);
    case CS__N_NEG:
        v = eval(c, n->kids[0]);
        if (v.type == CS__CEL_ERROR) return v;
        if (v.type == CS__CEL_DOUBLE) return v.d = -v.d, v;
        if (v.type != CS__CEL_INT)
            return verr(c, n, "no such overload: -%s", cs__cel_type_name(v.type));
        if (v.i == INT64_MIN) return verr(c, n, "integer overflow");
        return vint(-v.i);
    case CS__N_BINARY: return eval_binary(c, n);
    case CS__N_AND:
    case CS__N_OR: return eval_logic(c, n);
    case CS__N_COND:
        v = eval(c, n->kids[0]);
        if (v.type == CS__CEL_ERROR) return v;
        if (v.type != CS__CEL_BOOL)
            return verr(c, n, "the condition of ?: must be bool, not %s",
                        cs__cel_type_name(v.type));
        return eval(c, n->kids[v.b ? 1 : 2]);
    case CS__N_DEVICE: break; /* resolved by the parser */
    }
    return verr(c, n, "internal error: unexpected node");
}

/* ---- compile-time cost estimate ------------------------------------------------------ */

/* Kubernetes' bounds on what a device can hold (resource.k8s.io/v1): attributes and
 * capacities per device, and an attribute string's length. */
#define EST_MAP_SIZE 32
#define EST_STR_SIZE 64

/* The most elements a list- or map-valued node can have. */
static uint64_t est_size(const cs__cel_node *n)
{
    switch ((cs__cel_kind)n->kind) {
    case CS__N_LIST: return n->nkids;
    case CS__N_MAPS:
    case CS__N_DOMAIN: return EST_MAP_SIZE;
    case CS__N_COMP: return est_size(n->kids[0]);
    case CS__N_BIND: return est_size(n->kids[1]);
    case CS__N_COND: {
        uint64_t a = est_size(n->kids[1]), b = est_size(n->kids[2]);
        return a > b ? a : b;
    }
    case CS__N_CALL: /* split: at most one piece per byte, plus one */
        return n->nkids && n->kids[0]->kind == CS__N_LIT ? n->kids[0]->lit.s.n + 1
                                                         : CS__CEL_MAX_LEN + 1;
    default: return EST_MAP_SIZE; /* a variable or an index: bounded by the sizes above */
    }
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* The worst-case cost of n in the evaluator's units (one per node, one per iteration,
 * string bytes read by functions), as cel-go's EstimateCost does for Kubernetes: a
 * comprehension costs its range plus, per element, its body; string functions their
 * operands' sizes (attribute strings count as EST_STR_SIZE). */
uint64_t cs__cel_estimate(const cs__cel_node *n)
{
    uint64_t kids = 0;
    if (n->kind == CS__N_COMP) {
        uint64_t body = 1;
        for (uint32_t i = 1; i < n->nkids; i++) body = sat_add(body, cs__cel_estimate(n->kids[i]));
        return sat_add(1 + cs__cel_estimate(n->kids[0]) + EST_MAP_SIZE * EST_MAP_SIZE,
                       sat_mul(est_size(n->kids[0]), body));
    }
    for (uint32_t i = 0; i < n->nkids; i++) kids = sat_add(kids, cs__cel_estimate(n->kids[i]));
    uint64_t self = 1;
    if (n->kind == CS__N_CALL || n->kind == CS__N_BINARY)
        for (uint32_t i = 0; i < n->nkids; i++) {
            const cs__cel_node *k = n->kids[i];
            uint64_t len = k->kind == CS__N_LIT && k->type == CS__CEL_STRING ? k->lit.s.n
                           : k->kind == CS__N_LIST                           ? k->nkids
                                                                             : EST_STR_SIZE;
            self = sat_add(self, n->re ? sat_mul(len, 4) : len);
        }
    return sat_add(self, kids);
}

cs_status cs_cel_eval(const cs_cel_program *p, const cs_cel_env *env, uint64_t cost_limit,
                      bool *result, cs_error *err)
{
    cs__cel_ctx c = {
        .prog = p, .env = env, .limit = cost_limit ? cost_limit : CS_CEL_DEFAULT_COST_LIMIT};
    cs_arena_init(&c.arena, 1024);
    cs__cel_val v = eval(&c, p->root);
    cs_status rc = CS_OK;
    if (c.halt == CS_ERR_LIMIT)
        rc = cs_error_set(err, CS_ERR_LIMIT,
                          "selector exceeded its cost limit of %llu units; simplify it",
                          (unsigned long long)c.limit);
    else if (c.halt != CS_OK)
        rc = cs_error_set(err, c.halt, "out of memory evaluating the selector");
    else if (v.type == CS__CEL_ERROR)
        rc = cs_error_set(err, CS_ERR_INVALID, "%s", v.s.p);
    else if (v.type != CS__CEL_BOOL)
        rc = cs_error_set(err, CS_ERR_INVALID, "selector evaluated to %s, not bool",
                          cs__cel_type_name(v.type));
    else
        *result = v.b;
    cs_arena_free(&c.arena);
    return rc;
}
