/*
 * dra_state_test.c - unit tests of the server's device state that the end-to-end suite
 * (tests/dra_api) cannot reach cheaply: allocation failure at every point of a claim's
 * creation leaves the state as it was, and a refused claim keeps nothing.
 */
#include "devices/dra_state.h"

#include "base/alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const char fleet[] = "apiVersion: resource.k8s.io/v1\n"
                            "kind: ResourceSlice\n"
                            "metadata: {name: s}\n"
                            "spec:\n"
                            "  driver: gpu.nvidia.com\n"
                            "  pool: {name: p, generation: 1, resourceSliceCount: 1}\n"
                            "  nodeName: n\n"
                            "  devices: [{name: gpu-0}, {name: gpu-1}]\n";

static const char claim_fmt[] = "{\"apiVersion\": \"resource.k8s.io/v1\", \"kind\": "
                                "\"ResourceClaim\", \"metadata\": {\"name\": \"%s\"}, "
                                "\"spec\": {\"devices\": {\"requests\": [{\"name\": \"g\", "
                                "\"exactly\": {\"deviceClassName\": \"gpu.nvidia.com\"}}]}}}";

static cs_dra_state *open_fleet(void)
{
    char path[] = "/tmp/cs-dra-state-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, fleet, sizeof fleet - 1), (ssize_t)(sizeof fleet - 1));
    close(fd);
    cs_dra_state_options o = {.devices_file = path};
    cs_dra_state *st = NULL;
    cs_error err;
    cs_status rc = cs_dra_state_new(&o, &st, &err);
    unlink(path);
    assert_int_equal(rc, CS_OK);
    return st;
}

static cs_status create(cs_dra_state *st, const char *name, bool *created, cs_error *err)
{
    char body[512];
    int n = snprintf(body, sizeof body, claim_fmt, name);
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_status rc = cs_dra_state_create(st, CS_DRA_KIND_CLAIM, body, (size_t)n, &out, created, err);
    cs_sbuf_free(&out);
    return rc;
}

static size_t n_claims(cs_dra_state *st)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    assert_int_equal(cs_dra_state_list(st, CS_DRA_KIND_CLAIM, &out), CS_OK);
    size_t n = 0;
    for (const char *p = out.data; (p = strstr(p, "\"kind\": \"ResourceClaim\"")); p++) n++;
    cs_sbuf_free(&out);
    return n;
}

static void refused_claim_keeps_nothing(void **unused)
{
    cs_dra_state *st = open_fleet();
    cs_error err;
    bool created = false;
    assert_int_equal(create(st, "a", &created, &err), CS_OK);
    assert_true(created);
    assert_int_equal(create(st, "b", &created, &err), CS_OK);
    assert_true(created);
    assert_int_equal(create(st, "c", &created, &err), CS_OK);
    assert_false(created);
    assert_non_null(strstr(err.msg, "ResourceClaim c: cannot be allocated"));
    assert_int_equal(n_claims(st), 2);
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    assert_int_equal(cs_dra_state_delete(st, CS_DRA_KIND_CLAIM, "a", &out, &err), CS_OK);
    cs_sbuf_free(&out);
    assert_int_equal(create(st, "c", &created, &err), CS_OK);
    assert_true(created);
    cs_dra_state_free(st);
}

/* Every allocation of a creation fails in turn: the call reports out of memory (the
 * allocator's search reports its own as a claim it could not allocate, "out of memory")
 * or succeeds once the count passes them all, and the state holds exactly what it did. */
static void allocation_failure_changes_nothing(void **unused)
{
    cs_dra_state *st = open_fleet();
    cs_error err;
    bool created = false;
    assert_int_equal(create(st, "held", &created, &err), CS_OK);
    for (long k = 0; k < 100000; k++) {
        cs_alloc_fail_after(k);
        cs_status rc = create(st, "new", &created, &err);
        cs_alloc_fail_after(-1);
        if (rc == CS_OK && created) break;
        if (rc == CS_OK)
            assert_non_null(strstr(err.msg, "out of memory"));
        else
            assert_int_equal(rc, CS_ERR_NOMEM);
        assert_int_equal(n_claims(st), 1);
    }
    assert_true(created);
    assert_int_equal(n_claims(st), 2);
    cs_dra_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_claim_keeps_nothing),
        cmocka_unit_test(allocation_failure_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
