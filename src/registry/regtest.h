/*
 * regtest.h - what the registry's C suites share (registry_test.c, lineage_test.c): a
 * fixture with a registry on SQLite in a temporary data directory, or on the PostgreSQL
 * database in CS_TEST_PG_URL emptied first; CHECK and EXPECT around calls that take an
 * err_; and creating a model. Include it after cmocka.h.
 */
#ifndef CS_REGISTRY_REGTEST_H
#define CS_REGISTRY_REGTEST_H

#include "base/arena.h"
#include "registry/registry.h"
#include "registry/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    char dir[256];
    cs_registry_options opts;
    cs_registry_t *r;
    cs_arena arena;
} fixture;

static inline const char *pg_url(void)
{
    const char *u = getenv("CS_TEST_PG_URL");
    return u && *u ? u : NULL;
}

#define CHECK(call)                                                                   \
    do {                                                                              \
        cs_error err_ = {0};                                                          \
        cs_status rc_ = (call);                                                       \
        if (rc_ != CS_OK) fail_msg("%s: %s (%s)", #call, err_.msg, cs_strerror(rc_)); \
    } while (0)

/* Runs call, which must fail with code; its message goes to last_msg. */
static char last_msg[CS_ERROR_MSG_MAX];
#define EXPECT(code, call)                                                          \
    do {                                                                            \
        cs_error err_ = {0};                                                        \
        cs_status rc_ = (call);                                                     \
        if (rc_ != (code))                                                          \
            fail_msg("%s: got %s (%s), want %s", #call, cs_strerror(rc_), err_.msg, \
                     cs_strerror(code));                                            \
        snprintf(last_msg, sizeof last_msg, "%s", err_.msg);                        \
    } while (0)

/* Empties the store: the PostgreSQL schema, or SQLite's files in the data directory. */
static inline void store_reset(fixture *f)
{
    if (!pg_url()) {
        static const char *const files[] = {"registry.db", "registry.db-wal", "registry.db-shm"};
        char path[512];
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", f->dir, files[i]);
            unlink(path);
        }
        return;
    }
    cs__store s;
    cs_error err = {0};
    assert_int_equal(cs__store_pg_open(pg_url(), "test", &s, &err), CS_OK);
    assert_int_equal(s.iface->exec(s.ctx, "DROP SCHEMA public CASCADE", 0, NULL, NULL, NULL, &err),
                     CS_OK);
    assert_int_equal(s.iface->exec(s.ctx, "CREATE SCHEMA public", 0, NULL, NULL, NULL, &err),
                     CS_OK);
    s.iface->close(s.ctx);
}

static inline void open_registry(fixture *f)
{
    CHECK(cs_registry_open(&f->opts, &f->r, &err_));
}

/* A fixture on an empty store, the registry open. */
static inline int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cs-registry-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->opts.data_dir = f->dir;
    f->opts.store_url = pg_url();
    store_reset(f);
    cs_arena_init(&f->arena, 1 << 16);
    open_registry(f);
    *state = f;
    return 0;
}

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline int teardown(void **state)
{
    fixture *f = *state;
    cs_registry_close(f->r);
    cs_arena_free(&f->arena);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static inline void create_model(fixture *f, const char *name)
{
    CHECK(cs_registry_model_create(f->r, name, "test model", 0, NULL, "tester", &f->arena, NULL,
                                   &err_));
}

#endif
