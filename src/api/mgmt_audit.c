/*
 * mgmt_audit.c - GET /api/v1/audit (the registry's audit log, newest first, optionally one
 * model's) and POST /api/v1/gc (garbage collection of unreferenced artifacts).
 *
 * gc walks the blob directory and reads every version's digest: seconds on a large store,
 * on this HTTP thread. It waits for pushes in progress (a lock file orders them), which is
 * why it is a POST an operator runs, not something the server does on its own.
 */
#include "api/api.h"

#include <string.h>

/* ?model=, ?limit=, ?page_token= */
void cs_api_audit_list(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    cs_registry_list_opts o;
    if (!reg || !cs_api_list_opts_or_400(r, &o)) return;
    cs_registry_audit *items;
    int n;
    const char *next;
    cs_error err;
    if (cs_registry_audit_list(reg, cs_api_query(r, "model"), &o, &r->arena, &items, &n, &next,
                               &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (int i = 0; i < n; i++)
        if (!cs_api_list_add_or_500(r, &b, cs_registry_audit_json(&items[i]))) return;
    cs_api_list_reply(r, &b, next);
}

/* ?dry_run=true reports without removing. */
void cs_api_registry_gc(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    const char *dry = cs_api_query(r, "dry_run");
    if (dry && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "dry_run must be 'true' or 'false', not '%s'", dry);
        return;
    }
    bool dry_run = dry && strcmp(dry, "true") == 0;
    cs_registry_gc_report rep;
    cs_error err;
    if (cs_registry_gc(reg, dry_run, cs_api_actor(r), NULL, NULL, &rep, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_api_json(r, MHD_HTTP_OK,
                json_pack("{s:b, s:I, s:I, s:I, s:I}", "dry_run", dry_run, "blobs",
                          (json_int_t)rep.blobs, "unreferenced", (json_int_t)rep.unreferenced,
                          "bytes", (json_int_t)rep.bytes, "removed", (json_int_t)rep.removed));
}
