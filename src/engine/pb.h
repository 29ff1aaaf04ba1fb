/*
 * pb.h - a minimal, zero-copy protocol buffers wire-format reader (internal).
 *
 * The ONNX reader walks messages field by field with these helpers. Nothing is copied:
 * length-delimited fields come back as pointers into the caller's buffer. Every read is
 * bounds-checked against the message's end; a malformed varint, a length past the end or
 * an unknown wire type makes the reader fail instead of reading out of bounds.
 */
#ifndef CS_ENGINE_PB_H
#define CS_ENGINE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct pb_reader {
    const uint8_t *p, *end;
    bool bad; /* set on the first malformed read; later reads return zeros */
} pb_reader;

/* One decoded field: its number, wire type and payload. */
typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t v;          /* VARINT, FIXED32, FIXED64 */
    const uint8_t *data; /* LEN */
    size_t len;
} pb_field;

static inline pb_reader pb_init(const void *data, size_t len)
{
    const uint8_t *p = data;
    return (pb_reader){p, p ? p + len : p, false};
}

static inline bool pb_varint(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    r->bad = true;
    *out = 0;
    return false;
}

/* Reads the next field; returns false at the end of the message or on malformed input
 * (then r->bad is set). */
static inline bool pb_next(pb_reader *r, pb_field *f)
{
    if (r->bad || r->p >= r->end) return false;
    uint64_t tag;
    if (!pb_varint(r, &tag)) return false;
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    if (f->num == 0) goto bad;
    switch (f->wire) {
    case PB_VARINT:
        if (!pb_varint(r, &f->v)) return false;
        return true;
    case PB_FIXED64:
        if (r->end - r->p < 8) goto bad;
        for (int i = 7; i >= 0; i--) f->v = (f->v << 8) | r->p[i];
        r->p += 8;
        return true;
    case PB_FIXED32:
        if (r->end - r->p < 4) goto bad;
        for (int i = 3; i >= 0; i--) f->v = (f->v << 8) | r->p[i];
        r->p += 4;
        return true;
    case PB_LEN: {
        uint64_t len;
        if (!pb_varint(r, &len)) return false;
        if (len > (uint64_t)(r->end - r->p)) goto bad;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return true;
    }
    default: goto bad;
    }
bad:
    r->bad = true;
    return false;
}

#endif
