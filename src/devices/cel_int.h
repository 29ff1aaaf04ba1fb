/*
 * cel_int.h - what the CEL lexer, parser and evaluator share: tokens, the typed AST, run
 * time values and the function table. Not a public interface; see cel.h for that.
 *
 * A program is one arena holding the AST, decoded string literals and the source text
 * (for error positions), plus the regexes compiled from literal `matches` patterns. Nothing
 * in it changes after cs_cel_compile, which is what makes evaluation thread-safe.
 */
#ifndef CS_DEVICES_CEL_INT_H
#define CS_DEVICES_CEL_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/vec.h"
#include "devices/cel.h"

#define CS__CEL_MAX_LEN   (10 * 1024) /* bytes of source */
#define CS__CEL_MAX_NEST  64          /* parentheses, calls, lists, unary operators */
#define CS__CEL_MAX_DEPTH 128         /* AST depth, which also bounds evaluation recursion */
#define CS__CEL_MAX_VARS  32          /* macro and cel.bind variables in one program */

/* ---- tokens ------------------------------------------------------------------------- */

typedef enum cs__cel_tok {
    CS__TOK_EOF,
    CS__TOK_INT,    /* magnitude in u; a '-' in front is folded by the parser */
    CS__TOK_DOUBLE, /* d */
    CS__TOK_STRING, /* decoded s/n in the program arena */
    CS__TOK_IDENT,
    CS__TOK_TRUE,
    CS__TOK_FALSE,
    CS__TOK_IN,
    CS__TOK_LPAREN,
    CS__TOK_RPAREN,
    CS__TOK_LBRACKET,
    CS__TOK_RBRACKET,
    CS__TOK_LBRACE,
    CS__TOK_DOT,
    CS__TOK_COMMA,
    CS__TOK_QUESTION,
    CS__TOK_COLON,
    CS__TOK_NOT,
    CS__TOK_AND,
    CS__TOK_OR,
    /* Binary operators, in the same order as cs__cel_op. */
    CS__TOK_EQ,
    CS__TOK_NE,
    CS__TOK_LT,
    CS__TOK_LE,
    CS__TOK_GT,
    CS__TOK_GE,
    CS__TOK_ADD,
    CS__TOK_SUB,
    CS__TOK_MUL,
    CS__TOK_DIV,
    CS__TOK_MOD,
} cs__cel_tok;

typedef struct cs__cel_token {
    cs__cel_tok kind;
    uint32_t pos; /* byte offset in the source */
    uint64_t u;
    double d;
    const char *s; /* IDENT: points into the source (n bytes); STRING: decoded, NUL-terminated */
    size_t n;
} cs__cel_token;

typedef struct cs__cel_lexer {
    const char *src;
    size_t len, pos;
    cs_arena *arena; /* where string literals are decoded */
} cs__cel_lexer;

cs_status cs__cel_lex(cs__cel_lexer *lx, cs__cel_token *t, cs_error *err);

/* "column 14" or "line 2, column 3" for byte offset pos of src, into buf. */
void cs__cel_where(const char *src, size_t pos, char *buf, size_t cap);

/* ---- types and values --------------------------------------------------------------- */

/* Static types (known at compile time, DYN when not) and the types of run-time values.
 * DEVICE exists only while the parser resolves `device.attributes[...]`; MAPS is
 * device.attributes or device.capacity as a whole (iterated, tested with `in`, bound). */
typedef enum cs__cel_type {
    CS__CEL_DYN,
    CS__CEL_BOOL,
    CS__CEL_INT,
    CS__CEL_DOUBLE,
    CS__CEL_STRING,
    CS__CEL_LIST,
    CS__CEL_QUANTITY,
    CS__CEL_SEMVER,
    CS__CEL_DOMAIN, /* device.attributes["d"]: a map from names to values */
    CS__CEL_DEVICE,
    CS__CEL_MAPS, /* device.attributes or device.capacity before the domain */
    CS__CEL_ERROR,
    CS__CEL_TYPE_COUNT
} cs__cel_type;

const char *cs__cel_type_name(cs__cel_type t);

/* A quantity inside CEL (cel_quantity.c): sign * mant * 10^exp, exactly, with at most 38
 * significant digits and nano precision (exp >= -9); normalised, so equal values have
 * equal fields. Wider than cs_quantity, as Kubernetes' arbitrary-precision quantities. */
__extension__ typedef unsigned __int128 cs__u128;
typedef struct cs__cel_qty {
    cs__u128 mant; /* no trailing decimal zeros; 0 for zero */
    int32_t exp;
    bool neg; /* false for zero */
} cs__cel_qty;

/* Parses Kubernetes quantity text s (n bytes, s[n] == '\0') with Kubernetes' errors. */
cs_status cs__cel_qty_parse(const char *s, size_t n, cs__cel_qty *out, cs_error *err);
cs__cel_qty cs__cel_qty_from(cs_quantity q); /* a device capacity's value */
cs__cel_qty cs__cel_qty_of_int(int64_t i);   /* whole units, as resource.NewQuantity */
int cs__cel_qty_cmp(const cs__cel_qty *a, const cs__cel_qty *b); /* -1, 0, 1 */
int cs__cel_qty_sign(const cs__cel_qty *q);
/* a + b (a - b when sub) into out; false when the exact result needs more than 38
 * significant digits. */
bool cs__cel_qty_add(const cs__cel_qty *a, const cs__cel_qty *b, bool sub, cs__cel_qty *out);
/* The value as an int64 when it is whole and in range (Kubernetes' AsInt64). */
bool cs__cel_qty_int64(const cs__cel_qty *q, int64_t *out);
double cs__cel_qty_double(const cs__cel_qty *q);
/* Plain decimal text ("1.5", "-2000", "1e1000") for messages; cap >= 100 holds any. */
void cs__cel_qty_text(const cs__cel_qty *q, char *buf, size_t cap);

typedef struct cs__cel_val cs__cel_val;
struct cs__cel_val {
    uint8_t type;  /* cs__cel_type */
    bool capacity; /* MAPS, DOMAIN: device.capacity rather than device.attributes */
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *p; /* NUL-terminated; may hold NULs before n */
            size_t n;
        } s; /* STRING, DOMAIN (its name), ERROR (its message) */
        struct {
            const cs__cel_val *v;
            size_t n;
        } list;
        cs__cel_qty q;
        cs_semver sv;
    };
};

/* ---- AST ---------------------------------------------------------------------------- */

typedef enum cs__cel_kind {
    CS__N_LIT,    /* lit */
    CS__N_LIST,   /* kids: elements */
    CS__N_DEVICE, /* `device`, parse time only */
    CS__N_MAPS,   /* device.attributes / device.capacity */
    CS__N_DRIVER,
    CS__N_MULTI,  /* device.allowMultipleAllocations */
    CS__N_DOMAIN, /* kids[0]: domain name; kids[1], when present: the MAPS value indexed */
    CS__N_ATTR,   /* kids[0]: DOMAIN, kids[1]: name */
    CS__N_HAS,    /* kids[0]: an ATTR or DRIVER written with a field selection */
    CS__N_INDEX,  /* kids[0][kids[1]] on a list */
    CS__N_CALL,   /* fn range; kids: receiver (for methods) then arguments */
    CS__N_NOT,
    CS__N_NEG,
    CS__N_BINARY, /* op */
    CS__N_AND,
    CS__N_OR,
    CS__N_COND,
    CS__N_VAR,  /* slot: a macro's or cel.bind's variable */
    CS__N_COMP, /* macro, slot; kids: range, then the predicate (all, exists, exists_one,
                 * filter), the transform (map) or the filter and the transform (map/3) */
    CS__N_BIND, /* slot; kids: init, body */
} cs__cel_kind;

/* The comprehension macros, evaluated by one loop (cel_eval.c eval_comp). */
typedef enum cs__cel_macro {
    CS__M_ALL,
    CS__M_EXISTS,
    CS__M_EXISTS_ONE,
    CS__M_MAP,
    CS__M_FILTER,
} cs__cel_macro;

/* Binary operators; CS__OP_EQ + k matches CS__TOK_EQ + k. */
typedef enum cs__cel_op {
    CS__OP_EQ,
    CS__OP_NE,
    CS__OP_LT,
    CS__OP_LE,
    CS__OP_GT,
    CS__OP_GE,
    CS__OP_ADD,
    CS__OP_SUB,
    CS__OP_MUL,
    CS__OP_DIV,
    CS__OP_MOD,
    CS__OP_IN,
} cs__cel_op;

typedef struct cs__cel_node cs__cel_node;
struct cs__cel_node {
    uint8_t kind;   /* cs__cel_kind */
    uint8_t type;   /* static type */
    uint8_t op;     /* BINARY */
    uint8_t macro;  /* COMP: cs__cel_macro */
    uint8_t slot;   /* VAR, COMP, BIND: the variable's slot */
    bool selected;  /* reached by `.name` (has() needs that), not by `[...]` */
    bool capacity;  /* MAPS, DOMAIN, ATTR */
    bool min_int;   /* LIT: 9223372036854775808, valid only under a unary minus */
    bool method;    /* CALL: receiver style, x.f(...) */
    uint16_t depth; /* 1 + the deepest child */
    uint16_t fn_lo; /* CALL: overloads cs__cel_fns[fn_lo, fn_hi) */
    uint16_t fn_hi;
    uint32_t pos; /* byte offset of the node's token, for messages */
    uint32_t nkids;
    cs__cel_node **kids;
    cs__cel_val lit;   /* LIT */
    const regex_t *re; /* CALL of matches() with a literal pattern, compiled once */
};

/* ---- functions ---------------------------------------------------------------------- */

typedef struct cs__cel_ctx cs__cel_ctx;
typedef cs__cel_val (*cs__cel_impl)(cs__cel_ctx *c, const cs__cel_node *n, const cs__cel_val *a);

/* One overload: name, receiver style, argument types (receiver first) and result type.
 * Overloads of one name sit next to each other. */
typedef struct cs__cel_fn {
    const char *name;
    bool method;
    uint8_t nargs;
    uint8_t arg[3];
    uint8_t ret;
    cs__cel_impl impl;
} cs__cel_fn;

extern const cs__cel_fn cs__cel_fns[];
extern const size_t cs__cel_nfns;

/* The static result type of binary operator op on (l, r), or CS__CEL_ERROR where no
 * overload exists. With DYN operands it answers for the types that could turn up: the one
 * result they all share, DYN when they differ, ERROR when none fits. */
cs__cel_type cs__cel_binary_type(cs__cel_op op, cs__cel_type l, cs__cel_type r);

/* "==", "in", ... for messages. */
const char *cs__cel_op_name(cs__cel_op op);

/* Whether overload f takes these argument types (receiver first); DYN takes any. */
bool cs__cel_fn_accepts(const cs__cel_fn *f, bool method, size_t nargs, const uint8_t *types);

/* Compiles a `matches` pattern with the evaluator's restrictions (no back-references,
 * bounded repetition); on failure writes a message into msg. */
bool cs__cel_regex_compile(const char *pat, size_t n, regex_t *re, char *msg, size_t cap);

/* ---- programs ----------------------------------------------------------------------- */

struct cs_cel_program {
    cs_arena arena;
    const char *src; /* copy of the expression, for runtime error positions */
    cs__cel_node *root;
    cs_vec regexes; /* regex_t * (in the arena): literal patterns, regfree'd with p */
    uint32_t nvars; /* variable slots used */
};

/* Parses and type-checks src into p (whose arena is initialised); on failure p may hold a
 * partial AST that cs_cel_free releases. */
cs_status cs__cel_parse(cs_cel_program *p, const char *src, size_t len, cs_error *err);

/* The worst-case evaluation cost of the tree at n (saturating), for the compile-time
 * check against CS_CEL_DEFAULT_COST_LIMIT. */
uint64_t cs__cel_estimate(const cs__cel_node *n);

/* Semantic version parsing over n bytes, optionally with Kubernetes' normalisation. */
cs_status cs__semver_parse(const char *s, size_t n, bool normalize, cs_semver *out, cs_error *err);

#endif
