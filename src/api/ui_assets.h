/*
 * ui_assets.h - the dashboard's files as the build embeds them (tools/embed_ui.c writes
 * the table into BUILD/ui_assets.c from the files in ui/): each file's bytes, its gzip form made at
 * build time with zlib, its content type and an ETag from its sha256. index.html refers
 * to the other files as /ui/NAME?v=HASH (the generator fills in `{{NAME}}`), so those
 * URLs change whenever a file does and may be cached for good.
 */
#ifndef CS_API_UI_ASSETS_H
#define CS_API_UI_ASSETS_H

#include <stddef.h>

typedef struct cs_ui_asset {
    const char *name; /* "index.html", "app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* the same bytes gzip-compressed (level 9) */
    size_t gz_len;
    const char *hash; /* 16 hex digits of the sha256 of data: the ETag and ?v= */
} cs_ui_asset;

extern const cs_ui_asset cs_ui_assets[];
extern const int cs_ui_n_assets;

#endif
