/*
 * embed_bytes.h - the one routine the build's embedding tools share (embed_ui.c for the
 * dashboard, embed_bin.c for the CUDA fatbin): writing a byte array as C source. Header-only
 * because each tool is a single-file build step.
 */
#ifndef CS_TOOLS_EMBED_BYTES_H
#define CS_TOOLS_EMBED_BYTES_H

#include <stdio.h>

/* Writes `QUALIFIERS unsigned char VAR[N] = {...};` with 24 bytes a line. An empty array
 * gets one zero byte (C has no zero-length arrays); callers keep the real length apart.
 * `qualifiers` is e.g. "static const" or "const". */
static void embed_put_bytes(FILE *out, const char *qualifiers, const char *var,
                            const unsigned char *p, size_t n)
{
    fprintf(out, "%s unsigned char %s[%zu] = {", qualifiers, var, n ? n : 1);
    for (size_t i = 0; i < n; i++) fprintf(out, "%s%u,", i % 24 ? "" : "\n    ", p[i]);
    fprintf(out, "%s};\n", n ? "\n" : "0");
}

#endif
