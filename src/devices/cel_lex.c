/*
 * cel_lex.c - the CEL tokenizer: one token per call, positions kept for messages.
 *
 * Literals follow the CEL language definition: decimal and hex integers, doubles, strings
 * in single, double or triple quotes, raw (r"...") or with escapes (\n \" \xHH \uHHHH
 * \UHHHHHHHH \ooo ...), which are decoded here into the program arena. Unsigned (1u) and
 * bytes (b"...") literals are outside the device-selector subset and are refused with a
 * message. Each call is O(token length); nothing is allocated except decoded strings.
 */
#include "devices/cel_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cs__cel_where(const char *src, size_t pos, char *buf, size_t cap)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && src[i]; i++) {
        col++;
        if (src[i] == '\n') line++, col = 1;
    }
    if (line > 1)
        snprintf(buf, cap, "line %zu, column %zu", line, col);
    else
        snprintf(buf, cap, "column %zu", col);
}

static cs_status lex_error(const cs__cel_lexer *lx, size_t pos, cs_error *err, const char *what)
{
    char where[48];
    cs__cel_where(lx->src, pos, where, sizeof where);
    return cs_error_set(err, CS_ERR_PARSE, "%s: %s", where, what);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Appends code point cp as UTF-8; out has room for 4 bytes. */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one escape after the backslash at *i (which it advances) into out; returns the
 * bytes written or -1 with *msg set. */
static int decode_escape(const char *s, size_t end, size_t *i, char *out, const char **msg)
{
    char c = s[(*i)++];
    switch (c) {
    case 'a': return out[0] = '\a', 1;
    case 'b': return out[0] = '\b', 1;
    case 'f': return out[0] = '\f', 1;
    case 'n': return out[0] = '\n', 1;
    case 'r': return out[0] = '\r', 1;
    case 't': return out[0] = '\t', 1;
    case 'v': return out[0] = '\v', 1;
    case '\\':
    case '\'':
    case '"':
    case '`':
    case '?': return out[0] = c, 1;
    case 'x':
    case 'X':
    case 'u':
    case 'U': {
        int digits = (c == 'u') ? 4 : (c == 'U') ? 8 : 2;
        uint32_t cp = 0;
        for (int k = 0; k < digits; k++, (*i)++) {
            int h = *i < end ? hexval(s[*i]) : -1;
            if (h < 0) return *msg = "escape needs more hex digits", -1;
            cp = cp << 4 | (uint32_t)h;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return *msg = "escape is not a valid Unicode code point", -1;
        return (int)put_utf8(out, cp);
    }
    default:
        if (c >= '0' && c <= '3' && *i + 1 < end && s[*i] >= '0' && s[*i] <= '7' &&
            s[*i + 1] >= '0' && s[*i + 1] <= '7') {
            int v = (c - '0') * 64 + (s[*i] - '0') * 8 + (s[*i + 1] - '0');
            *i += 2;
            return (int)put_utf8(out, (uint32_t)v);
        }
        return *msg = "unknown escape sequence", -1;
    }
}

/* Reads a string literal starting at the quote at lx->pos (raw when raw). */
static cs_status lex_string(cs__cel_lexer *lx, cs__cel_token *t, bool raw, cs_error *err)
{
    const char *s = lx->src;
    size_t start = lx->pos;
    char q = s[start];
    bool triple = start + 2 < lx->len && s[start + 1] == q && s[start + 2] == q;
    size_t i = start + (triple ? 3 : 1);
    /* Decoded text is never longer than the source. */
    char *out = cs_arena_alloc(lx->arena, lx->len - start + 1, 1);
    if (!out) return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading a string literal");
    size_t n = 0;
    for (;;) {
        if (i >= lx->len) return lex_error(lx, start, err, "unterminated string literal");
        char c = s[i];
        if (c == q && (!triple || (i + 2 < lx->len && s[i + 1] == q && s[i + 2] == q))) {
            i += triple ? 3 : 1;
            break;
        }
        if (!triple && (c == '\n' || c == '\r'))
            return lex_error(lx, i, err, "newline in a string literal (use \\n or \"\"\")");
        if (c != '\\' || raw) {
            out[n++] = c;
            i++;
            continue;
        }
        size_t esc = i++;
        const char *msg = NULL;
        if (i >= lx->len) return lex_error(lx, esc, err, "unterminated string literal");
        int w = decode_escape(s, lx->len, &i, out + n, &msg);
        if (w < 0) return lex_error(lx, esc, err, msg);
        n += (size_t)w;
    }
    out[n] = '\0';
    t->kind = CS__TOK_STRING;
    t->s = out;
    t->n = n;
    lx->pos = i;
    return CS_OK;
}

static cs_status lex_number(cs__cel_lexer *lx, cs__cel_token *t, cs_error *err)
{
    const char *s = lx->src;
    size_t i = lx->pos, start = i;
    if (s[i] == '0' && i + 1 < lx->len && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        uint64_t v = 0;
        size_t digits = 0;
        for (; i < lx->len && hexval(s[i]) >= 0; i++, digits++) {
            if (v >> 60) return lex_error(lx, start, err, "integer literal out of range");
            v = v << 4 | (uint64_t)hexval(s[i]);
        }
        if (!digits) return lex_error(lx, start, err, "hex literal needs digits after 0x");
        t->kind = CS__TOK_INT;
        t->u = v;
    } else {
        bool is_double = false;
        while (i < lx->len && s[i] >= '0' && s[i] <= '9') i++;
        if (i + 1 < lx->len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
            is_double = true;
            for (i++; i < lx->len && s[i] >= '0' && s[i] <= '9';) i++;
        }
        if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
            size_t j = i + 1;
            if (j < lx->len && (s[j] == '+' || s[j] == '-')) j++;
            if (j >= lx->len || s[j] < '0' || s[j] > '9')
                return lex_error(lx, i, err, "exponent needs digits");
            while (j < lx->len && s[j] >= '0' && s[j] <= '9') j++;
            i = j;
            is_double = true;
        }
        /* strtod and strtoull stop at the same place we did: the source is NUL-terminated
         * and the characters after the literal are not part of a number. */
        if (is_double) {
            t->kind = CS__TOK_DOUBLE;
            t->d = strtod(s + start, NULL);
        } else {
            uint64_t v = 0;
            for (size_t k = start; k < i; k++) {
                unsigned d = (unsigned)(s[k] - '0');
                if (v > ((uint64_t)1 << 63) / 10 || v * 10 + d > (uint64_t)1 << 63)
                    return lex_error(lx, start, err, "integer literal out of range");
                v = v * 10 + d;
            }
            t->kind = CS__TOK_INT;
            t->u = v;
        }
    }
    if (t->kind == CS__TOK_INT && t->u > ((uint64_t)1 << 63))
        return lex_error(lx, start, err, "integer literal out of range");
    if (i < lx->len && (s[i] == 'u' || s[i] == 'U'))
        return lex_error(lx, start, err, "unsigned integers are not supported in selectors");
    lx->pos = i;
    return CS_OK;
}

/* CEL reserves these; using one as a name is an error even where it would parse. */
static const char *const reserved[] = {
    "as",  "break", "const",   "continue",  "else",   "for", "function", "if",    "import",
    "let", "loop",  "package", "namespace", "return", "var", "void",     "while", "null",
};

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

cs_status cs__cel_lex(cs__cel_lexer *lx, cs__cel_token *t, cs_error *err)
{
    const char *s = lx->src;
    for (;;) { /* whitespace and // comments */
        while (lx->pos < lx->len && is_space(s[lx->pos])) lx->pos++;
        if (lx->pos + 1 < lx->len && s[lx->pos] == '/' && s[lx->pos + 1] == '/') {
            while (lx->pos < lx->len && s[lx->pos] != '\n') lx->pos++;
            continue;
        }
        break;
    }
    memset(t, 0, sizeof *t);
    t->pos = (uint32_t)lx->pos;
    if (lx->pos >= lx->len) return t->kind = CS__TOK_EOF, CS_OK;
    char c = s[lx->pos], d = lx->pos + 1 < lx->len ? s[lx->pos + 1] : '\0';
    if (c >= '0' && c <= '9') return lex_number(lx, t, err);
    if (c == '.' && d >= '0' && d <= '9') return lex_number(lx, t, err);
    if (c == '"' || c == '\'') return lex_string(lx, t, false, err);
    if ((c == 'r' || c == 'R') && (d == '"' || d == '\'')) {
        lx->pos++;
        return lex_string(lx, t, true, err);
    }
    if ((c == 'b' || c == 'B') && (d == '"' || d == '\''))
        return lex_error(lx, lx->pos, err, "bytes literals are not supported in selectors");
    if (is_ident_start(c)) {
        size_t i = lx->pos;
        while (i < lx->len && (is_ident_start(s[i]) || (s[i] >= '0' && s[i] <= '9'))) i++;
        t->s = s + lx->pos;
        t->n = i - lx->pos;
        lx->pos = i;
        t->kind = CS__TOK_IDENT;
        if (t->n == 4 && !memcmp(t->s, "true", 4)) t->kind = CS__TOK_TRUE;
        if (t->n == 5 && !memcmp(t->s, "false", 5)) t->kind = CS__TOK_FALSE;
        if (t->n == 2 && !memcmp(t->s, "in", 2)) t->kind = CS__TOK_IN;
        for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
            if (strlen(reserved[k]) == t->n && !memcmp(reserved[k], t->s, t->n)) {
                char msg[64];
                snprintf(msg, sizeof msg, "'%s' is reserved (null is not supported either)",
                         reserved[k]);
                return lex_error(lx, t->pos, err, msg);
            }
        return CS_OK;
    }
    /* Two-character operators first, then single characters. */
    static const struct {
        char s[3];
        cs__cel_tok kind;
    } ops[] = {
        {"==", CS__TOK_EQ},      {"!=", CS__TOK_NE},      {"<=", CS__TOK_LE},
        {">=", CS__TOK_GE},      {"&&", CS__TOK_AND},     {"||", CS__TOK_OR},
        {"<", CS__TOK_LT},       {">", CS__TOK_GT},       {"+", CS__TOK_ADD},
        {"-", CS__TOK_SUB},      {"*", CS__TOK_MUL},      {"/", CS__TOK_DIV},
        {"%", CS__TOK_MOD},      {"!", CS__TOK_NOT},      {"(", CS__TOK_LPAREN},
        {")", CS__TOK_RPAREN},   {"[", CS__TOK_LBRACKET}, {"]", CS__TOK_RBRACKET},
        {"{", CS__TOK_LBRACE},   {".", CS__TOK_DOT},      {",", CS__TOK_COMMA},
        {"?", CS__TOK_QUESTION}, {":", CS__TOK_COLON},
    };
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        size_t n = ops[k].s[1] ? 2 : 1;
        if (c == ops[k].s[0] && (n == 1 || d == ops[k].s[1])) {
            t->kind = ops[k].kind;
            lx->pos += n;
            return CS_OK;
        }
    }
    char msg[48];
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
        snprintf(msg, sizeof msg, "unexpected character '%c'", c);
    else
        snprintf(msg, sizeof msg, "unexpected byte 0x%02x", (unsigned char)c);
    return lex_error(lx, lx->pos, err, msg);
}
