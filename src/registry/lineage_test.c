/*
 * lineage_test.c - a version's description and lineage (issue #14), its downloads, and the
 * schema migration that brought the description, on both stores.
 *
 * Like registry_test.c, the suite runs on SQLite in a temporary data directory, or on the
 * PostgreSQL database in CS_TEST_PG_URL (tests/registry/with_postgres.sh starts one) after
 * emptying it. It checks what a push stores and renders, that a parent must be an existing
 * version of the same model (by number, alias or latest, stored as the number), every length
 * limit and its message, text that is not UTF-8, the download's open (content, a blob whose
 * size changed), and an upgrade in place of a database the previous schema created, with
 * rows written the way the previous release wrote them: nothing in it is lost.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/arena.h"
#include "registry/registry.h"
#include "registry/registry_int.h"
#include "registry/store.h"
#include "registry/regtest.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIGITS CS_SOURCE_DIR "/models/digits.onnx"

/* Pushes digits.onnx with p's metadata (its fd is set here); returns the status. */
static cs_status push(fixture *f, const char *model, cs_registry_push p, cs_registry_version *v,
                      cs_error *err)
{
    p.fd = open(DIGITS, O_RDONLY);
    assert_true(p.fd >= 0);
    cs_status rc = cs_registry_push_version(f->r, model, &p, "tester", &f->arena, v, err);
    close(p.fd);
    return rc;
}

static int count_versions(fixture *f, const char *model)
{
    cs_registry_version *items;
    int n;
    const char *next;
    CHECK(cs_registry_version_list(f->r, model, NULL, &f->arena, &items, &n, &next, &err_));
    return n;
}

/* A string of n copies of c, in the fixture's arena. */
static char *repeat(fixture *f, char c, size_t n)
{
    char *s = cs_arena_alloc(&f->arena, n + 1, 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* --- what a push stores -------------------------------------------------------------- */

static void test_description_and_lineage(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    cs_registry_version v, got;
    const char *text = "8x8 digits, retrained \xe2\x80\x94 see the \xc3\xa9valuation\tnotes";
    CHECK(push(f, "digits",
               (cs_registry_push){.description = text,
                                  .source_uri = "s3://bucket/run/model.onnx",
                                  .run_id = "0123456789abcdef0123456789abcdef",
                                  .dataset_digest = "sha256:feed"},
               &v, &err_));
    assert_string_equal(v.description, text);
    assert_string_equal(v.parent_version, "");
    CHECK(cs_registry_version_get(f->r, "digits", "1", &f->arena, &got, &err_));
    assert_string_equal(got.description, text);
    assert_string_equal(got.source_uri, "s3://bucket/run/model.onnx");
    assert_string_equal(got.run_id, "0123456789abcdef0123456789abcdef");
    assert_string_equal(got.dataset_digest, "sha256:feed");

    /* The parent is named by number, alias or latest and recorded as the number. */
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", 1, "tester", &f->arena, NULL, &err_));
    CHECK(push(f, "digits", (cs_registry_push){.parent_version = "1"}, &v, &err_));
    assert_string_equal(v.parent_version, "1");
    CHECK(push(f, "digits", (cs_registry_push){.parent_version = "latest"}, &v, &err_));
    assert_int_equal(v.version, 3);
    assert_string_equal(v.parent_version, "2");
    CHECK(push(f, "digits", (cs_registry_push){.parent_version = "prod"}, &v, &err_));
    assert_string_equal(v.parent_version, "1");
    assert_string_equal(v.description, "");
    CHECK(cs_registry_version_get(f->r, "digits", "4", &f->arena, &got, &err_));
    assert_string_equal(got.parent_version, "1");

    /* The API's JSON: description beside the other fields, parent in lineage. */
    char *json = cs_registry_version_json(&got);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"description\":\"\""));
    assert_non_null(strstr(json, "\"parent_version\":\"1\""));
    free(json);
    CHECK(cs_registry_version_get(f->r, "digits", "1", &f->arena, &got, &err_));
    json = cs_registry_version_json(&got);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"description\":\"8x8 digits, retrained"));
    assert_non_null(strstr(json, "\"run_id\":\"0123456789abcdef0123456789abcdef\""));
    free(json);

    /* The audit entry of the push carries the description too. */
    cs_registry_audit *items;
    int n;
    const char *next;
    cs_registry_list_opts o = {.limit = 100};
    CHECK(cs_registry_audit_list(f->r, "digits", &o, &f->arena, &items, &n, &next, &err_));
    bool found = false;
    for (int i = 0; i < n; i++)
        if (items[i].version == 1 && !strcmp(items[i].action, "version.created"))
            found = strstr(items[i].after, "retrained") != NULL;
    assert_true(found);
}

static void test_parent_must_exist(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    create_model(f, "other");
    cs_registry_version v;
    CHECK(push(f, "digits", (cs_registry_push){0}, &v, &err_));
    EXPECT(CS_ERR_INVALID, push(f, "digits", (cs_registry_push){.parent_version = "9"}, &v, &err_));
    assert_non_null(strstr(last_msg, "parent_version '9'"));
    assert_non_null(strstr(last_msg, "no version 9"));
    EXPECT(CS_ERR_INVALID,
           push(f, "digits", (cs_registry_push){.parent_version = "prod"}, &v, &err_));
    assert_non_null(strstr(last_msg, "parent_version 'prod'"));
    assert_non_null(strstr(last_msg, "no alias 'prod'"));
    EXPECT(CS_ERR_INVALID,
           push(f, "digits", (cs_registry_push){.parent_version = "Not A Ref"}, &v, &err_));
    assert_non_null(strstr(last_msg, "parent_version"));
    /* A version of another model is no parent: "other" has no version 1. */
    EXPECT(CS_ERR_INVALID, push(f, "other", (cs_registry_push){.parent_version = "1"}, &v, &err_));
    assert_non_null(strstr(last_msg, "of 'other'"));
    /* Nothing was stored, and the numbers were not spent. */
    assert_int_equal(count_versions(f, "digits"), 1);
    assert_int_equal(count_versions(f, "other"), 0);
    CHECK(push(f, "digits", (cs_registry_push){.parent_version = "1"}, &v, &err_));
    assert_int_equal(v.version, 2);
    /* A deleted parent stops being one. */
    CHECK(cs_registry_version_delete(f->r, "digits", 1, "tester", &err_));
    EXPECT(CS_ERR_INVALID, push(f, "digits", (cs_registry_push){.parent_version = "1"}, &v, &err_));
}

static void test_limits(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    cs_registry_version v;
    struct {
        const char *field;
        size_t max;
    } limits[] = {{"description", CS_REGISTRY_TEXT_MAX},
                  {"source_uri", CS_REGISTRY_URI_MAX},
                  {"run_id", CS_REGISTRY_RUN_ID_MAX}};
    for (size_t i = 0; i < 3; i++) {
        cs_registry_push p = {0};
        const char **slot = i == 0 ? &p.description : i == 1 ? &p.source_uri : &p.run_id;
        *slot = repeat(f, 'a', limits[i].max + 1);
        EXPECT(CS_ERR_LIMIT, push(f, "digits", p, &v, &err_));
        char want[128];
        snprintf(want, sizeof want, "%s is %zu bytes: at most %zu are allowed", limits[i].field,
                 limits[i].max + 1, limits[i].max);
        assert_non_null(strstr(last_msg, want));
        *slot = repeat(f, 'a', limits[i].max); /* the limit itself is allowed */
        CHECK(push(f, "digits", p, &v, &err_));
        cs_registry_version got;
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)v.version);
        CHECK(cs_registry_version_get(f->r, "digits", num, &f->arena, &got, &err_));
        const char *stored = i == 0 ? got.description : i == 1 ? got.source_uri : got.run_id;
        assert_int_equal(strlen(stored), limits[i].max);
    }
    EXPECT(CS_ERR_INVALID,
           push(f, "digits", (cs_registry_push){.description = "bad \xff byte"}, &v, &err_));
    assert_non_null(strstr(last_msg, "description is not valid UTF-8 at byte 4"));
    EXPECT(CS_ERR_INVALID,
           push(f, "digits", (cs_registry_push){.run_id = "overlong \xc0\xaf"}, &v, &err_));
    assert_non_null(strstr(last_msg, "run_id is not valid UTF-8"));
    EXPECT(CS_ERR_INVALID,
           push(f, "digits", (cs_registry_push){.source_uri = "line\nbreak"}, &v, &err_));
    assert_non_null(strstr(last_msg, "source_uri contains a control character"));
    assert_int_equal(count_versions(f, "digits"), 3);
}

/* --- downloads ------------------------------------------------------------------------ */

static void test_artifact_open(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    cs_registry_version v, got;
    CHECK(push(f, "digits", (cs_registry_push){0}, &v, &err_));
    int fd = -1;
    CHECK(cs_registry_artifact_open(f->r, "digits", "latest", &f->arena, &got, &fd, &err_));
    assert_int_equal(got.version, 1);
    struct stat st;
    assert_int_equal(stat(DIGITS, &st), 0);
    char *a = malloc((size_t)st.st_size), *b = malloc((size_t)st.st_size);
    FILE *fp = fopen(DIGITS, "rb");
    assert_int_equal(fread(a, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
    fclose(fp);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    assert_memory_equal(a, b, (size_t)st.st_size);
    close(fd);
    free(a);
    free(b);
    EXPECT(CS_ERR_NOT_FOUND,
           cs_registry_artifact_open(f->r, "digits", "2", &f->arena, &got, &fd, &err_));
    assert_int_equal(fd, -1);
    /* A blob whose size changed is refused before anything is read. */
    const char *path;
    CHECK(cs_registry_artifact(f->r, "digits", "1", &f->arena, &got, &path, &err_));
    assert_int_equal(truncate(path, 100), 0);
    EXPECT(CS_ERR_IO, cs_registry_artifact_open(f->r, "digits", "1", &f->arena, &got, &fd, &err_));
    assert_non_null(strstr(last_msg, "is 100 bytes"));
    assert_int_equal(fd, -1);
    assert_int_equal(unlink(path), 0);
    EXPECT(CS_ERR_IO, cs_registry_artifact_open(f->r, "digits", "1", &f->arena, &got, &fd, &err_));
    assert_non_null(strstr(last_msg, "cannot be read"));
}

/* --- the migration ---------------------------------------------------------------------- */

static cs_status int_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    *(int64_t *)user = c[0].type == CS__SQL_INT ? c[0].i : -1;
    return CS_OK;
}

/* How many migrations this build's store has. */
static int migrations_of(fixture *f)
{
    cs__store s;
    cs_error err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/probe.db", f->dir);
    cs_status rc = pg_url() ? cs__store_pg_open(pg_url(), "test", &s, &err)
                            : cs__store_sqlite_open(path, &s, &err);
    assert_int_equal(rc, CS_OK);
    int n = s.iface->n_migrations;
    s.iface->close(s.ctx);
    if (!pg_url()) unlink(path);
    return n;
}

static void old_sql(cs__tx *t, const char *sql, int n, const cs__sql_val *p)
{
    cs_error err = {0};
    cs_status rc = t->s.iface->exec(t->s.ctx, sql, n, p, NULL, NULL, &err);
    if (rc != CS_OK) fail_msg("%s: %s", sql, err.msg);
}

/* The store as the previous schema left it, with a model, a version (its blob, labels and
 * lineage), an alias and audit entries written by the previous release's statements; then
 * this build opens it, and everything is still there beside the new column. */
static void test_migrate_from_previous_schema(void **state)
{
    fixture *f = *state;
    int n = migrations_of(f);
    cs_registry_close(f->r);
    f->r = NULL;
    store_reset(f);
    CHECK(cs__registry_open_schema(&f->opts, n - 1, &f->r, &err_));
    int64_t schema = 0;
    CHECK(cs__select(f->r, "SELECT MAX(version) FROM schema_migrations", 0, NULL, int_row, &schema,
                     &err_));
    assert_int_equal(schema, n - 1);
    /* The models table is unchanged by the migration: today's call writes it as before. */
    cs_registry_label ml[] = {{"team", "vision"}};
    CHECK(cs_registry_model_create(f->r, "digits", "handwritten digits", 1, ml, "alice", &f->arena,
                                   NULL, &err_));

    cs__blobs blobs;
    char digest[CS__DIGEST_LEN];
    int64_t size = 0;
    CHECK(cs__blobs_init(&blobs, f->dir, &err_));
    int fd = open(DIGITS, O_RDONLY);
    assert_true(fd >= 0);
    CHECK(cs__blobs_write(&blobs, NULL, NULL, fd, (int64_t)1 << 30, digest, &size, NULL, &err_));
    close(fd);
    cs__blobs_free(&blobs);

    cs__tx t;
    CHECK(cs__tx_begin(f->r, &t, true, &err_));
    cs__sql_val pm[] = {cs__sql_text("digits")};
    int64_t model_id = 0;
    cs_error err = {0};
    assert_int_equal(t.s.iface->exec(t.s.ctx, "SELECT id FROM models WHERE name = ?1", 1, pm,
                                     int_row, &model_id, &err),
                     CS_OK);
    assert_true(model_id > 0);
    cs__sql_val pa[] = {cs__sql_int(model_id)};
    old_sql(&t, "UPDATE models SET next_version = next_version + 1 WHERE id = ?1", 1, pa);
    /* The previous release's INSERT, column for column. */
    cs__sql_val p[] = {
        cs__sql_int(model_id),
        cs__sql_int(1),
        cs__sql_text(digest),
        cs__sql_int(size),
        cs__sql_text("onnx"),
        cs__sql_text("{\"inputs\":[],\"outputs\":[]}"),
        cs__sql_text("{\"stage\":\"dev\"}"),
        cs__sql_text("s3://bucket/digits.onnx"),
        cs__sql_text("run-7"),
        cs__sql_text("free text from before"),
        cs__sql_text("sha256:feed"),
        cs__sql_text("ready"),
        cs__sql_text("ci"),
        cs__sql_int(1700000000000000000),
        cs__sql_text(""),
        cs__sql_text(""),
    };
    old_sql(&t,
            "INSERT INTO versions (model_id, version, digest, size, format, io_schema, "
            "labels, source_uri, run_id, parent_version, dataset_digest, state, "
            "created_by, created_ns, updated_ns, signature, signer_key) VALUES (?1, ?2, "
            "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?16)",
            16, p);
    cs__sql_val pl[] = {cs__sql_int(model_id), cs__sql_int(1), cs__sql_text("stage"),
                        cs__sql_text("dev")};
    old_sql(&t,
            "INSERT INTO version_labels (model_id, version, key, value) VALUES (?1, ?2, ?3, ?4)", 4,
            pl);
    cs__sql_val pal[] = {cs__sql_int(model_id), cs__sql_text("prod"), cs__sql_int(1),
                         cs__sql_text("ci"), cs__sql_int(1700000000000000001)};
    old_sql(&t,
            "INSERT INTO aliases (model_id, name, version, updated_by, updated_ns) VALUES "
            "(?1, ?2, ?3, ?4, ?5)",
            5, pal);
    CHECK(cs__audit_append(&t.s, "ci", "version.created", "digits", 1, NULL, NULL, "{}", &err_));
    CHECK(cs__tx_end(f->r, &t, CS_OK, &err_));
    /* The new code cannot read versions from the old schema: the column is missing. */
    cs_registry_version got;
    EXPECT(CS_ERR_IO, cs_registry_version_get(f->r, "digits", "1", &f->arena, &got, &err_));
    cs_registry_close(f->r);

    /* Upgrade in place. */
    CHECK(cs_registry_open(&f->opts, &f->r, &err_));
    CHECK(cs__select(f->r, "SELECT MAX(version) FROM schema_migrations", 0, NULL, int_row, &schema,
                     &err_));
    assert_int_equal(schema, n);
    cs_registry_model m;
    CHECK(cs_registry_model_get(f->r, "digits", &f->arena, &m, &err_));
    assert_string_equal(m.description, "handwritten digits");
    assert_int_equal(m.n_labels, 1);
    CHECK(cs_registry_version_get(f->r, "digits", "prod", &f->arena, &got, &err_));
    assert_int_equal(got.version, 1);
    assert_string_equal(got.digest, digest);
    assert_int_equal(got.size, size);
    assert_string_equal(got.description, "");
    assert_string_equal(got.source_uri, "s3://bucket/digits.onnx");
    assert_string_equal(got.run_id, "run-7");
    assert_string_equal(got.parent_version, "free text from before"); /* kept as it was */
    assert_string_equal(got.dataset_digest, "sha256:feed");
    assert_string_equal(got.created_by, "ci");
    assert_int_equal(got.created_ns, 1700000000000000000);
    assert_int_equal(got.n_labels, 1);
    assert_string_equal(got.labels[0].key, "stage");
    const char *path;
    CHECK(cs_registry_artifact(f->r, "digits", "prod", &f->arena, &got, &path, &err_));
    cs_registry_audit *items;
    int na;
    const char *next;
    CHECK(cs_registry_audit_list(f->r, "digits", NULL, &f->arena, &items, &na, &next, &err_));
    assert_int_equal(na, 2); /* model.created and the old version.created */

    /* The upgraded store takes new versions with the new field, numbered after the old. */
    cs_registry_version v;
    CHECK(push(f, "digits",
               (cs_registry_push){.description = "after the upgrade", .parent_version = "prod"}, &v,
               &err_));
    assert_int_equal(v.version, 2);
    CHECK(cs_registry_version_get(f->r, "digits", "2", &f->arena, &got, &err_));
    assert_string_equal(got.description, "after the upgrade");
    assert_string_equal(got.parent_version, "1");
    cs_registry_close(f->r);

    /* Opening again migrates nothing more. */
    CHECK(cs_registry_open(&f->opts, &f->r, &err_));
    CHECK(cs__select(f->r, "SELECT COUNT(*) FROM schema_migrations", 0, NULL, int_row, &schema,
                     &err_));
    assert_int_equal(schema, n);
    assert_int_equal(count_versions(f, "digits"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_description_and_lineage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_artifact_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_previous_schema, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
