/*
 * registry_test.c - the registry's test suite, one body for both stores.
 *
 * Without CS_TEST_PG_URL the suite runs on SQLite in a temporary data directory; with it
 * (tests/registry/with_postgres.sh starts a throwaway server and sets it) every test runs
 * on that PostgreSQL database instead, after dropping and recreating its schema. Each
 * test gets a fresh data directory and removes it afterwards.
 *
 * Beyond the happy paths it covers what must not fail: an artifact that is not ONNX,
 * a corrupted blob, conflicting deletes, concurrent pushes and alias moves under readers,
 * a push killed with SIGKILL half-way, and webhooks whose receiver first answers 500.
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

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIGITS CS_SOURCE_DIR "/models/digits.onnx"

static int64_t push_path(fixture *f, const char *model, const char *path, int n_labels,
                         const cs_registry_label *labels)
{
    cs_registry_push p = {.fd = open(path, O_RDONLY), .n_labels = n_labels, .labels = labels};
    assert_true(p.fd >= 0);
    cs_registry_version v;
    CHECK(cs_registry_push_version(f->r, model, &p, "tester", &f->arena, &v, &err_));
    close(p.fd);
    return v.version;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static int count_files(const char *dir)
{
    char cmd[1024];
    assert_true(snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir) < (int)sizeof cmd);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* --- models --------------------------------------------------------------------------- */

static void test_models_crud(void **state)
{
    fixture *f = *state;
    cs_registry_label labels[] = {{"team", "vision"}, {"app.kubernetes.io/tier", "gold"}};
    cs_registry_model m;
    CHECK(cs_registry_model_create(f->r, "digits", "handwritten digits", 2, labels, "alice",
                                   &f->arena, &m, &err_));
    assert_string_equal(m.name, "digits");
    assert_int_equal(m.n_labels, 2);
    assert_string_equal(m.labels[0].key, "app.kubernetes.io/tier"); /* sorted */
    EXPECT(CS_ERR_EXISTS,
           cs_registry_model_create(f->r, "digits", NULL, 0, NULL, NULL, &f->arena, NULL, &err_));
    EXPECT(CS_ERR_INVALID,
           cs_registry_model_create(f->r, "Digits", NULL, 0, NULL, NULL, &f->arena, NULL, &err_));
    assert_non_null(strstr(last_msg, "lowercase"));
    EXPECT(CS_ERR_INVALID,
           cs_registry_model_create(f->r, "-x", NULL, 0, NULL, NULL, &f->arena, NULL, &err_));
    cs_registry_label bad[] = {{"team", "has space"}};
    EXPECT(CS_ERR_INVALID,
           cs_registry_model_create(f->r, "other", NULL, 1, bad, NULL, &f->arena, NULL, &err_));
    assert_int_equal(cs_registry_http_status(CS_ERR_INVALID), 400);

    CHECK(cs_registry_model_get(f->r, "digits", &f->arena, &m, &err_));
    assert_string_equal(m.description, "handwritten digits");
    assert_string_equal(m.created_by, "alice");
    cs_registry_label relabel[] = {{"team", "ml"}};
    CHECK(cs_registry_model_patch(f->r, "digits", "new text", true, 1, relabel, "bob", &f->arena,
                                  &m, &err_));
    CHECK(cs_registry_model_get(f->r, "digits", &f->arena, &m, &err_));
    assert_string_equal(m.description, "new text");
    assert_int_equal(m.n_labels, 1);
    assert_string_equal(m.labels[0].value, "ml");
    char *json = cs_registry_model_json(&m);
    assert_non_null(strstr(json, "\"labels\":{\"team\":\"ml\"}"));
    free(json);

    create_model(f, "digits-b");
    create_model(f, "text");
    cs_registry_model *items;
    int n;
    const char *next;
    cs_registry_list_opts o = {.prefix = "digits"};
    CHECK(cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 2);
    assert_null(next);
    o = (cs_registry_list_opts){.selector = "team=ml"};
    CHECK(cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 1);
    assert_string_equal(items[0].name, "digits");
    o = (cs_registry_list_opts){.descending = true, .limit = 2};
    CHECK(cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 2);
    assert_string_equal(items[0].name, "text");
    assert_non_null(next);
    o.page_token = next;
    CHECK(cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 1);
    assert_string_equal(items[0].name, "digits");
    assert_null(next);
    o.descending = false; /* a token is bound to its order */
    EXPECT(CS_ERR_INVALID, cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));
    o.page_token = "!!!";
    EXPECT(CS_ERR_INVALID, cs_registry_model_list(f->r, &o, &f->arena, &items, &n, &next, &err_));

    CHECK(cs_registry_model_delete(f->r, "text", "alice", &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_model_get(f->r, "text", &f->arena, &m, &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_model_delete(f->r, "text", "alice", &err_));
}

/* --- versions ------------------------------------------------------------------------- */

static void test_push_digits(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    cs_registry_label labels[] = {{"stage", "dev"}};
    cs_registry_push p = {.fd = open(DIGITS, O_RDONLY),
                          .n_labels = 1,
                          .labels = labels,
                          .source_uri = "s3://bucket/digits.onnx",
                          .run_id = "run-42",
                          .dataset_digest = "sha256:feed"};
    cs_registry_push_timing timing = {-1, -1, -1, -1, -1, -1, -1};
    p.timing = &timing;
    assert_true(p.fd >= 0);
    cs_registry_version v;
    CHECK(cs_registry_push_version(f->r, "digits", &p, "carol", &f->arena, &v, &err_));
    close(p.fd);
    /* Every phase is reported. */
    assert_true(timing.copy_s > 0 && timing.hash_s > 0 && timing.fsync_s >= 0 &&
                timing.hash_wait_s >= 0 && timing.rename_s >= 0 && timing.schema_s > 0 &&
                timing.commit_s > 0);
    assert_int_equal(v.version, 1);
    assert_string_equal(v.format, "onnx");
    assert_int_equal(v.state, CS_REGISTRY_STATE_READY);
    struct stat st;
    assert_int_equal(stat(DIGITS, &st), 0);
    assert_int_equal(v.size, st.st_size);
    assert_int_equal(strlen(v.digest), 71);
    /* The IO schema comes from the artifact through the engine. */
    assert_non_null(strstr(v.io_schema, "{\"dtype\":\"float32\",\"name\":\"image\","
                                        "\"shape\":[\"batch\",1,8,8]}"));
    assert_non_null(strstr(v.io_schema, "\"probabilities\""));

    /* Identical content is stored once, whatever the version. */
    int64_t v2 = push_path(f, "digits", DIGITS, 0, NULL);
    assert_int_equal(v2, 2);
    char blobs[512];
    snprintf(blobs, sizeof blobs, "%s/blobs/sha256", f->dir);
    assert_int_equal(count_files(blobs), 1);

    cs_registry_version got;
    CHECK(cs_registry_version_get(f->r, "digits", "1", &f->arena, &got, &err_));
    assert_string_equal(got.digest, v.digest);
    assert_string_equal(got.source_uri, "s3://bucket/digits.onnx");
    assert_string_equal(got.run_id, "run-42");
    assert_string_equal(got.parent_version, "");
    assert_string_equal(got.created_by, "carol");
    assert_int_equal(got.n_labels, 1);
    CHECK(cs_registry_version_get(f->r, "digits", "latest", &f->arena, &got, &err_));
    assert_int_equal(got.version, 2);
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_version_get(f->r, "digits", "7", &f->arena, &got, &err_));
    assert_non_null(strstr(last_msg, "no version 7"));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_version_get(f->r, "nope", "1", &f->arena, &got, &err_));
    EXPECT(CS_ERR_INVALID, cs_registry_version_get(f->r, "digits", "BAD", &f->arena, &got, &err_));
    char *json = cs_registry_version_json(&got);
    assert_non_null(strstr(json, "\"io_schema\":{\"inputs\""));
    free(json);

    const char *path;
    CHECK(cs_registry_artifact(f->r, "digits", "latest", &f->arena, &got, &path, &err_));
    assert_int_equal(stat(path, &st), 0);

    /* Pushing to a model that does not exist is a 404, before any byte is stored. */
    cs_registry_push q = {.fd = open(DIGITS, O_RDONLY)};
    EXPECT(CS_ERR_NOT_FOUND,
           cs_registry_push_version(f->r, "ghost", &q, NULL, &f->arena, &v, &err_));
    close(q.fd);

    /* Patch labels and state; deletes need the version free of aliases. */
    cs_registry_label relabel[] = {{"stage", "prod"}, {"owner", "carol"}};
    CHECK(cs_registry_version_patch(f->r, "digits", 2, true, 2, relabel, CS_REGISTRY_STATE_ARCHIVED,
                                    "dave", &f->arena, &got, &err_));
    assert_int_equal(got.state, CS_REGISTRY_STATE_ARCHIVED);
    CHECK(cs_registry_version_get(f->r, "digits", "latest", &f->arena, &got, &err_));
    assert_int_equal(got.version, 1); /* latest skips archived versions */
    CHECK(cs_registry_version_patch(f->r, "digits", 2, false, 0, NULL, CS_REGISTRY_STATE_READY,
                                    "dave", &f->arena, &got, &err_));
    EXPECT(CS_ERR_INVALID,
           cs_registry_version_patch(f->r, "digits", 2, false, 0, NULL, (cs_registry_state)7, NULL,
                                     &f->arena, &got, &err_));
    EXPECT(CS_ERR_EXISTS, cs_registry_model_delete(f->r, "digits", NULL, &err_));
    CHECK(cs_registry_version_delete(f->r, "digits", 2, "dave", &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_version_delete(f->r, "digits", 2, "dave", &err_));
    /* Numbers are never reused. */
    assert_int_equal(push_path(f, "digits", DIGITS, 0, NULL), 3);
}

static void test_push_not_onnx(void **state)
{
    fixture *f = *state;
    create_model(f, "junk");
    char path[300];
    snprintf(path, sizeof path, "%s/not-a-model.bin", f->dir);
    write_file(path, "this is not a protobuf at all\n", 30);
    cs_registry_push p = {.fd = open(path, O_RDONLY)};
    cs_registry_version v;
    cs_error err = {0};
    cs_status rc = cs_registry_push_version(f->r, "junk", &p, NULL, &f->arena, &v, &err);
    close(p.fd);
    assert_true(rc == CS_ERR_PARSE || rc == CS_ERR_UNSUPPORTED);
    assert_int_equal(cs_registry_http_status(rc), 422);
    assert_non_null(strstr(err.msg, "not a loadable ONNX model"));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_version_get(f->r, "junk", "latest", &f->arena, &v, &err_));

    /* A client-side digest that does not match is refused as a bad request. */
    p.fd = open(DIGITS, O_RDONLY);
    p.expected_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    EXPECT(CS_ERR_INVALID, cs_registry_push_version(f->r, "junk", &p, NULL, &f->arena, &v, &err_));
    close(p.fd);
    p.expected_digest = "md5:abc";
    EXPECT(CS_ERR_INVALID, cs_registry_push_version(f->r, "junk", &p, NULL, &f->arena, &v, &err_));

    /* Over the size limit: 413. */
    cs_registry_close(f->r);
    f->opts.max_artifact_bytes = 1000;
    open_registry(f);
    p.fd = open(DIGITS, O_RDONLY);
    p.expected_digest = NULL;
    EXPECT(CS_ERR_LIMIT, cs_registry_push_version(f->r, "junk", &p, NULL, &f->arena, &v, &err_));
    close(p.fd);
    assert_int_equal(cs_registry_http_status(CS_ERR_LIMIT), 413);
}

static void test_corrupt_blob(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    cs_registry_version v;
    const char *path;
    CHECK(cs_registry_artifact(f->r, "digits", "1", &f->arena, &v, &path, &err_));
    /* Flip one byte in place: same size, different digest. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, 100), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, 100), 1);
    close(fd);
    EXPECT(CS_ERR_IO, cs_registry_artifact(f->r, "digits", "1", &f->arena, &v, &path, &err_));
    assert_non_null(strstr(last_msg, "corrupt"));
    assert_non_null(strstr(last_msg, v.digest));
    assert_non_null(strstr(last_msg, "refusing to serve"));
    /* Truncated: the size check catches it before any hashing. */
    assert_int_equal(truncate(path, 10), 0);
    EXPECT(CS_ERR_IO, cs_registry_artifact(f->r, "digits", "1", &f->arena, &v, &path, &err_));
    assert_non_null(strstr(last_msg, "10 bytes"));
    /* Pushing the same content again repairs the blob. */
    push_path(f, "digits", DIGITS, 0, NULL);
    CHECK(cs_registry_artifact(f->r, "digits", "1", &f->arena, &v, &path, &err_));
}

/* --- aliases ------------------------------------------------------------------------- */

typedef struct alias_race {
    fixture *f;
    int stop;
    int reads, bad;
    char msg[CS_ERROR_MSG_MAX];
} alias_race;

static void *alias_reader(void *arg)
{
    alias_race *a = arg;
    cs_arena arena;
    cs_arena_init(&arena, 1 << 14);
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        cs_registry_version v;
        cs_error err = {0};
        cs_status rc = cs_registry_version_get(a->f->r, "digits", "prod", &arena, &v, &err);
        if (rc != CS_OK || (v.version != 1 && v.version != 2) || strlen(v.digest) != 71) {
            snprintf(a->msg, sizeof a->msg, "%s", err.msg);
            __atomic_add_fetch(&a->bad, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
        cs_arena_reset(&arena);
    }
    cs_arena_free(&arena);
    return NULL;
}

static void test_aliases(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    push_path(f, "digits", DIGITS, 0, NULL);
    cs_registry_alias a;
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", 1, "erin", &f->arena, &a, &err_));
    assert_int_equal(a.version, 1);
    cs_registry_version v;
    CHECK(cs_registry_version_get(f->r, "digits", "prod", &f->arena, &v, &err_));
    assert_int_equal(v.version, 1);
    EXPECT(CS_ERR_INVALID,
           cs_registry_alias_put(f->r, "digits", "latest", 1, NULL, &f->arena, &a, &err_));
    EXPECT(CS_ERR_INVALID,
           cs_registry_alias_put(f->r, "digits", "12", 1, NULL, &f->arena, &a, &err_));
    EXPECT(CS_ERR_NOT_FOUND,
           cs_registry_alias_put(f->r, "digits", "canary", 9, NULL, &f->arena, &a, &err_));
    EXPECT(CS_ERR_EXISTS, cs_registry_version_delete(f->r, "digits", 1, NULL, &err_));
    assert_non_null(strstr(last_msg, "alias 'prod'"));
    EXPECT(CS_ERR_EXISTS,
           cs_registry_version_patch(f->r, "digits", 1, false, 0, NULL, CS_REGISTRY_STATE_ARCHIVED,
                                     NULL, &f->arena, &v, &err_));
    CHECK(cs_registry_version_patch(f->r, "digits", 2, false, 0, NULL, CS_REGISTRY_STATE_ARCHIVED,
                                    NULL, &f->arena, &v, &err_));
    EXPECT(CS_ERR_EXISTS,
           cs_registry_alias_put(f->r, "digits", "prod", 2, NULL, &f->arena, &a, &err_));
    CHECK(cs_registry_version_patch(f->r, "digits", 2, false, 0, NULL, CS_REGISTRY_STATE_READY,
                                    NULL, &f->arena, &v, &err_));

    /* Move prod back and forth while readers resolve it: every read sees 1 or 2. */
    alias_race race = {.f = f};
    pthread_t readers[3];
    for (int i = 0; i < 3; i++) pthread_create(&readers[i], NULL, alias_reader, &race);
    for (int i = 0; i < 60; i++)
        CHECK(cs_registry_alias_put(f->r, "digits", "prod", 1 + (i & 1), "erin", &f->arena, &a,
                                    &err_));
    __atomic_store_n(&race.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(readers[i], NULL);
    if (race.bad) fail_msg("%d of %d alias reads were wrong: %s", race.bad, race.reads, race.msg);
    assert_true(race.reads > 0);

    CHECK(cs_registry_alias_put(f->r, "digits", "canary", 2, NULL, &f->arena, &a, &err_));
    cs_registry_alias *items;
    int n;
    CHECK(cs_registry_alias_list(f->r, "digits", &f->arena, &items, &n, &err_));
    assert_int_equal(n, 2);
    assert_string_equal(items[0].name, "canary");
    CHECK(cs_registry_alias_delete(f->r, "digits", "canary", "erin", &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_alias_delete(f->r, "digits", "canary", NULL, &err_));
    EXPECT(CS_ERR_NOT_FOUND,
           cs_registry_version_get(f->r, "digits", "canary", &f->arena, &v, &err_));
    assert_non_null(strstr(last_msg, "no alias 'canary'"));
}

/* --- audit ---------------------------------------------------------------------------- */

static void test_audit(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    push_path(f, "digits", DIGITS, 0, NULL);
    cs_registry_alias a;
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", 1, "frank", &f->arena, &a, &err_));
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", 2, "grace", &f->arena, &a, &err_));
    /* A failed change leaves no entry. */
    EXPECT(CS_ERR_EXISTS, cs_registry_version_delete(f->r, "digits", 2, NULL, &err_));

    cs_registry_audit *items;
    int n;
    const char *next;
    CHECK(cs_registry_audit_list(f->r, "digits", NULL, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 5);
    assert_null(next);
    assert_string_equal(items[0].action, "alias.moved"); /* newest first */
    assert_string_equal(items[0].actor, "grace");
    assert_string_equal(items[0].alias, "prod");
    assert_non_null(strstr(items[0].before, "\"version\":1"));
    assert_non_null(strstr(items[0].after, "\"version\":2"));
    assert_string_equal(items[1].action, "alias.moved");
    assert_string_equal(items[1].before, "null");
    assert_string_equal(items[2].action, "version.created");
    assert_int_equal(items[2].version, 2);
    assert_non_null(strstr(items[2].after, "\"digest\":\"sha256:"));
    assert_string_equal(items[4].action, "model.created");
    assert_true(items[0].id > items[1].id);
    char *json = cs_registry_audit_json(&items[0]);
    assert_non_null(strstr(json, "\"before\":{"));
    free(json);

    cs_registry_list_opts o = {.limit = 2};
    int total = 0, pages = 0;
    do {
        CHECK(cs_registry_audit_list(f->r, NULL, &o, &f->arena, &items, &n, &next, &err_));
        total += n;
        pages++;
        o.page_token = next;
    } while (next && pages < 10);
    assert_int_equal(total, 5);
    assert_int_equal(pages, 3);
}

/* --- gc --------------------------------------------------------------------------------- */

static void count_gc(void *user, const char *path, int64_t size)
{
    ++*(int *)user;
}

static void test_gc(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    char other[300];
    snprintf(other, sizeof other, "%s/copy.onnx", f->dir);
    /* Same model, different bytes: a trailing unknown field is still valid protobuf?
     * Appending would change the parse, so copy the file and change its producer byte. */
    FILE *in = fopen(DIGITS, "rb");
    static unsigned char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, in);
    fclose(in);
    unsigned char *hit = memmem(buf, len, "pytorch", 7);
    assert_non_null(hit);
    hit[0] = 'P';
    write_file(other, buf, len);
    push_path(f, "digits", other, 0, NULL);

    cs_registry_gc_report rep;
    int seen = 0;
    CHECK(cs_registry_gc(f->r, true, "ops", count_gc, &seen, &rep, &err_));
    assert_int_equal(rep.blobs, 2);
    assert_int_equal(rep.unreferenced, 0);
    CHECK(cs_registry_version_delete(f->r, "digits", 2, NULL, &err_));
    CHECK(cs_registry_gc(f->r, true, "ops", count_gc, &seen, &rep, &err_));
    assert_int_equal(rep.unreferenced, 1);
    assert_int_equal(rep.removed, 0);
    assert_int_equal(seen, 1);
    assert_true(rep.bytes > 0);
    char blobs[512];
    snprintf(blobs, sizeof blobs, "%s/blobs/sha256", f->dir);
    assert_int_equal(count_files(blobs), 2); /* a dry run removes nothing */
    CHECK(cs_registry_gc(f->r, false, "ops", NULL, NULL, &rep, &err_));
    assert_int_equal(rep.removed, 1);
    assert_int_equal(count_files(blobs), 1);
    CHECK(cs_registry_gc(f->r, false, "ops", NULL, NULL, &rep, &err_));
    assert_int_equal(rep.unreferenced, 0);
    cs_registry_version v;
    const char *path;
    CHECK(cs_registry_artifact(f->r, "digits", "1", &f->arena, &v, &path, &err_));
    cs_registry_audit *items;
    int n;
    const char *next;
    CHECK(cs_registry_audit_list(f->r, NULL, &(cs_registry_list_opts){.limit = 1}, &f->arena,
                                 &items, &n, &next, &err_));
    assert_string_equal(items[0].action, "gc");
}

/* --- concurrency ---------------------------------------------------------------------- */

#define PUSHERS        4
#define PUSHES_PER_ONE 3

typedef struct pusher {
    fixture *f;
    int64_t versions[PUSHES_PER_ONE];
    char msg[CS_ERROR_MSG_MAX];
} pusher;

static void *push_thread(void *arg)
{
    pusher *p = arg;
    cs_arena arena;
    cs_arena_init(&arena, 1 << 14);
    for (int i = 0; i < PUSHES_PER_ONE; i++) {
        cs_registry_push push = {.fd = open(DIGITS, O_RDONLY)};
        cs_registry_version v;
        cs_error err = {0};
        if (cs_registry_push_version(p->f->r, "digits", &push, "t", &arena, &v, &err) != CS_OK) {
            snprintf(p->msg, sizeof p->msg, "%s", err.msg);
            v.version = -1;
        }
        close(push.fd);
        p->versions[i] = v.version;
    }
    cs_arena_free(&arena);
    return NULL;
}

static void test_concurrent_pushes(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    pusher ps[PUSHERS] = {0};
    pthread_t th[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        ps[i].f = f;
        pthread_create(&th[i], NULL, push_thread, &ps[i]);
    }
    for (int i = 0; i < PUSHERS; i++) pthread_join(th[i], NULL);
    int seen[PUSHERS * PUSHES_PER_ONE + 1] = {0};
    for (int i = 0; i < PUSHERS; i++)
        for (int j = 0; j < PUSHES_PER_ONE; j++) {
            int64_t v = ps[i].versions[j];
            if (v < 1 || v > PUSHERS * PUSHES_PER_ONE) fail_msg("push failed: %s", ps[i].msg);
            assert_int_equal(seen[v]++, 0);
        }
}

/* --- listing ------------------------------------------------------------------------------ */

#define MANY 1000

static void test_list_pagination(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    for (int i = 1; i <= MANY; i++) {
        char group[8];
        snprintf(group, sizeof group, "g%d", i % 10);
        cs_registry_label l[] = {{"parity", i % 2 ? "odd" : "even"}, {"group", group}};
        push_path(f, "digits", DIGITS, i % 7 ? 2 : 1, l);
        cs_arena_reset(&f->arena);
    }
    struct {
        const char *selector;
        bool descending;
        int limit, expect;
    } cases[] = {
        {NULL, false, 100, MANY},
        {"parity=even", false, 37, MANY / 2},
        {"parity=odd", true, 64, MANY / 2},
        /* Every 7th version has no group label: 15 of the 100 in g4 and 14 in g1 lack it. */
        {"parity=even,group=g4", true, 9, 85},
        {"group!=g1", false, 250, MANY - 86},
        {"!group", false, 50, MANY / 7},
        {"group", true, 1000, MANY - MANY / 7},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cs_registry_list_opts o = {.selector = cases[c].selector,
                                   .descending = cases[c].descending,
                                   .limit = cases[c].limit};
        int total = 0, pages = 0;
        int64_t prev = cases[c].descending ? INT64_MAX : 0;
        const char *next = NULL;
        do {
            cs_registry_version *items;
            int n;
            CHECK(
                cs_registry_version_list(f->r, "digits", &o, &f->arena, &items, &n, &next, &err_));
            for (int i = 0; i < n; i++) {
                assert_true(cases[c].descending ? items[i].version < prev
                                                : items[i].version > prev);
                prev = items[i].version;
            }
            total += n;
            o.page_token = next;
        } while (next && ++pages < 2 * MANY);
        if (total != cases[c].expect)
            fail_msg("selector %s: %d versions, want %d", cases[c].selector, total,
                     cases[c].expect);
        cs_arena_reset(&f->arena);
    }
    cs_registry_version *items;
    int n;
    const char *next;
    cs_registry_list_opts bad = {.selector = "a b=c"};
    EXPECT(CS_ERR_INVALID,
           cs_registry_version_list(f->r, "digits", &bad, &f->arena, &items, &n, &next, &err_));
    bad = (cs_registry_list_opts){.limit = 5000};
    EXPECT(CS_ERR_INVALID,
           cs_registry_version_list(f->r, "digits", &bad, &f->arena, &items, &n, &next, &err_));
    /* A token from one model's list does not page another's. */
    create_model(f, "other");
    bad = (cs_registry_list_opts){.limit = 1};
    CHECK(cs_registry_version_list(f->r, "digits", &bad, &f->arena, &items, &n, &next, &err_));
    bad.page_token = next;
    EXPECT(CS_ERR_INVALID,
           cs_registry_version_list(f->r, "other", &bad, &f->arena, &items, &n, &next, &err_));
}

/* --- crash safety ----------------------------------------------------------------------- */

/* The child's artifact: endless zeros, announcing on a pipe once 8 MiB have been read and
 * then stalling, so that the parent kills it mid-stream at a known point. */
typedef struct stall_source {
    int64_t sent;
    int signal_fd;
} stall_source;

static cs_status stall_read(void *user, void *buf, size_t cap, size_t *got, cs_error *err)
{
    stall_source *s = user;
    if (s->sent >= (8 << 20)) {
        if (s->signal_fd >= 0) {
            (void)!write(s->signal_fd, "x", 1);
            close(s->signal_fd);
            s->signal_fd = -1;
        }
        pause(); /* until SIGKILL */
    }
    memset(buf, 0, cap);
    *got = cap;
    s->sent += (int64_t)cap;
    return CS_OK;
}

static void test_kill_mid_push(void **state)
{
    fixture *f = *state;
    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child: its own registry handle, as a second server process would have. */
        close(fds[0]);
        cs_registry_t *r = NULL;
        cs_error err = {0};
        cs_arena arena;
        cs_arena_init(&arena, 4096);
        if (cs_registry_open(&f->opts, &r, &err) != CS_OK) _exit(2);
        stall_source src = {0, fds[1]};
        cs_registry_push p = {.read = stall_read, .user = &src, .fd = -1};
        cs_registry_version v;
        cs_registry_push_version(r, "digits", &p, "child", &arena, &v, &err);
        _exit(3); /* never reached: the parent kills us first */
    }
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* Reopen: the database opens cleanly, no partial version is visible. */
    cs_registry_close(f->r);
    open_registry(f);
    if (!pg_url()) {
        char db[300];
        snprintf(db, sizeof db, "%s/registry.db", f->dir);
        cs__store s;
        CHECK(cs__store_sqlite_open(db, &s, &err_));
        CHECK(s.iface->check(s.ctx, &err_));
        s.iface->close(s.ctx);
    }
    cs_registry_version *items;
    int n;
    const char *next;
    CHECK(cs_registry_version_list(f->r, "digits", NULL, &f->arena, &items, &n, &next, &err_));
    assert_int_equal(n, 1);
    cs_registry_version v;
    CHECK(cs_registry_version_get(f->r, "digits", "latest", &f->arena, &v, &err_));
    assert_int_equal(v.version, 1);
    /* The interrupted push left one temporary file: gc reports it, then removes it. */
    cs_registry_gc_report rep;
    CHECK(cs_registry_gc(f->r, true, NULL, NULL, NULL, &rep, &err_));
    assert_int_equal(rep.unreferenced, 1);
    assert_true(rep.bytes >= (8 << 20));
    CHECK(cs_registry_gc(f->r, false, NULL, NULL, NULL, &rep, &err_));
    assert_int_equal(rep.removed, 1);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/blobs/tmp", f->dir);
    assert_int_equal(count_files(tmp), 0);
    /* The next push takes the next number. */
    assert_int_equal(push_path(f, "digits", DIGITS, 0, NULL), 2);
}

/* --- blob sources ----------------------------------------------------------------------- */

#define SRC_BYTES ((20 << 20) + 4321) /* several copy steps and ring chunks, and a tail */

typedef struct mem_source {
    const unsigned char *p;
    size_t n, off, piece, fail_at; /* fail_at: an error once off reaches it (0: never) */
} mem_source;

/* Hands out the buffer in odd-sized pieces, as a network peer would. */
static cs_status mem_read(void *user, void *buf, size_t cap, size_t *got, cs_error *err)
{
    mem_source *m = user;
    if (m->fail_at && m->off >= m->fail_at)
        return cs_error_set(err, CS_ERR_IO, "the client went away");
    size_t n = m->n - m->off;
    if (n > cap) n = cap;
    if (n > m->piece) n = m->piece;
    memcpy(buf, m->p + m->off, n);
    m->off += n;
    *got = n;
    return CS_OK;
}

static void sha256_hex(const unsigned char *p, size_t n, char out[CS__DIGEST_LEN])
{
    unsigned char md[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++) sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* The stored blob holds exactly want[0..n). */
static void assert_blob(const cs__blobs *b, const char *digest, const unsigned char *want, size_t n,
                        cs_arena *arena)
{
    const char *path = cs__blobs_path(b, digest, arena);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    unsigned char *got = malloc(n + 1);
    assert_int_equal(read(fd, got, n + 1), (ssize_t)n);
    close(fd);
    assert_memory_equal(got, want, n);
    free(got);
}

/* Every way bytes reach the store - a regular file copied by the kernel, a file on another
 * filesystem (the kernel refuses, the copy falls back to read and write), a read callback -
 * stores the same bytes under the same digest, which is the sha256 of the source; a
 * failure midway leaves no temporary file. */
static void test_blob_sources(void **state)
{
    fixture *f = *state;
    unsigned char *data = malloc(SRC_BYTES);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < SRC_BYTES; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    char want[CS__DIGEST_LEN], want_tail[CS__DIGEST_LEN], data_dir[300], tmp_dir[320];
    sha256_hex(data, SRC_BYTES, want);
    sha256_hex(data + 4103, SRC_BYTES - 4103, want_tail);
    snprintf(data_dir, sizeof data_dir, "%s/store", f->dir);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/blobs/tmp", data_dir);
    cs__blobs b;
    CHECK(cs__blobs_init(&b, data_dir, &err_));

    char same_fs[300], other_fs[300];
    snprintf(same_fs, sizeof same_fs, "%s/source.bin", f->dir);
    write_file(same_fs, data, SRC_BYTES);
    struct stat st;
    snprintf(other_fs, sizeof other_fs, "/dev/shm/cs-registry-test-%d.bin", (int)getpid());
    bool have_other = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode);
    if (have_other) write_file(other_fs, data, SRC_BYTES);
    const char *files[] = {same_fs, other_fs};

    char digest[CS__DIGEST_LEN];
    int64_t size = 0;
    for (int i = 0; i < (have_other ? 2 : 1); i++) {
        int fd = open(files[i], O_RDONLY);
        assert_true(fd >= 0);
        if (i == 1) unlink(other_fs); /* /dev/shm is not the fixture's to clean */
        cs_registry_push_timing t = {0};
        CHECK(cs__blobs_write(&b, NULL, NULL, fd, INT64_MAX, digest, &size, &t, &err_));
        assert_string_equal(digest, want);
        assert_int_equal(size, SRC_BYTES);
        assert_true(t.copy_s > 0 && t.hash_s > 0);
        assert_blob(&b, digest, data, SRC_BYTES, &f->arena);
        /* From the descriptor's current offset, as a read(2) loop would. */
        assert_int_equal(lseek(fd, 4103, SEEK_SET), 4103);
        CHECK(cs__blobs_write(&b, NULL, NULL, fd, INT64_MAX, digest, &size, NULL, &err_));
        assert_string_equal(digest, want_tail);
        assert_int_equal(size, SRC_BYTES - 4103);
        assert_blob(&b, digest, data + 4103, SRC_BYTES - 4103, &f->arena);
        /* One byte over the limit: refused, nothing left behind. */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        EXPECT(CS_ERR_LIMIT,
               cs__blobs_write(&b, NULL, NULL, fd, SRC_BYTES - 1, digest, &size, NULL, &err_));
        close(fd);
        assert_int_equal(count_files(tmp_dir), 0);
    }
    mem_source m = {data, SRC_BYTES, 0, 777777, 0};
    CHECK(cs__blobs_write(&b, mem_read, &m, -1, INT64_MAX, digest, &size, NULL, &err_));
    assert_string_equal(digest, want);
    assert_int_equal(size, SRC_BYTES);
    char sha_dir[320];
    snprintf(sha_dir, sizeof sha_dir, "%s/blobs/sha256", data_dir);
    assert_int_equal(count_files(sha_dir), 2); /* identical content is stored once */

    /* A reader that fails midway, and a descriptor that cannot be read: clear errors, no
     * temporary file. */
    m = (mem_source){data, SRC_BYTES, 0, 1 << 20, 9 << 20};
    EXPECT(CS_ERR_IO, cs__blobs_write(&b, mem_read, &m, -1, INT64_MAX, digest, &size, NULL, &err_));
    assert_non_null(strstr(last_msg, "client went away"));
    int wfd = open(same_fs, O_WRONLY);
    assert_true(wfd >= 0);
    EXPECT(CS_ERR_IO, cs__blobs_write(&b, NULL, NULL, wfd, INT64_MAX, digest, &size, NULL, &err_));
    close(wfd);
    assert_non_null(strstr(last_msg, "artifact"));
    assert_int_equal(count_files(tmp_dir), 0);
    assert_int_equal(count_files(sha_dir), 2);

    cs__blobs_free(&b);
    free(data);
}

/* --- webhooks --------------------------------------------------------------------------- */

#define SECRET      "s3cr3t-for-tests"
#define HOOKS_MAX   16
#define REQUEST_MAX 65536

typedef struct receiver {
    int listen_fd, port;
    int requests, fail_first; /* answer 500 to the first fail_first requests */
    int bad_signatures;
    char events[HOOKS_MAX][40];
    int delivered;
    pthread_t thread;
} receiver;

static const char *header(const char *req, const char *name, char *out, size_t cap)
{
    const char *h = strcasestr(req, name);
    if (!h) return NULL;
    h += strlen(name);
    while (*h == ' ' || *h == ':') h++;
    size_t n = strcspn(h, "\r\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), h);
    return out;
}

/* A one-request-per-connection HTTP server: enough for libcurl's POSTs. */
static void *receive(void *arg)
{
    receiver *rv = arg;
    static char req[REQUEST_MAX];
    for (;;) {
        int c = accept(rv->listen_fd, NULL, NULL);
        if (c < 0) return NULL;
        size_t len = 0;
        char *body = NULL;
        long want = -1;
        while (len < sizeof req - 1) {
            ssize_t n = read(c, req + len, sizeof req - 1 - len);
            if (n <= 0) break;
            len += (size_t)n;
            req[len] = '\0';
            body = strstr(req, "\r\n\r\n");
            if (body && want < 0) {
                char cl[32];
                want = header(req, "Content-Length", cl, sizeof cl) ? atol(cl) : 0;
            }
            if (body && (long)(len - (size_t)(body + 4 - req)) >= want) break;
        }
        int n = rv->requests++;
        const char *answer = n < rv->fail_first
                                 ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n"
                                 : "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        if (body && n >= rv->fail_first && rv->delivered < HOOKS_MAX) {
            body += 4;
            unsigned char mac[32];
            unsigned int mac_len = 0;
            HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)body,
                 strlen(body), mac, &mac_len);
            char want_sig[80] = "sha256=", got[100];
            for (int i = 0; i < 32; i++) sprintf(want_sig + 7 + 2 * i, "%02x", mac[i]);
            if (!header(req, "X-Capstan-Signature", got, sizeof got) || strcmp(got, want_sig))
                rv->bad_signatures++;
            header(req, "X-Capstan-Event", rv->events[rv->delivered], sizeof rv->events[0]);
            rv->delivered++;
        }
        (void)!write(c, answer, strlen(answer));
        close(c);
    }
}

static void test_webhooks(void **state)
{
    fixture *f = *state;
    receiver rv = {.fail_first = 1};
    rv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(rv.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(rv.listen_fd, 8), 0);
    socklen_t alen = sizeof addr;
    getsockname(rv.listen_fd, (struct sockaddr *)&addr, &alen);
    rv.port = ntohs(addr.sin_port);
    pthread_create(&rv.thread, NULL, receive, &rv);

    char url[64], secret_file[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rv.port);
    snprintf(secret_file, sizeof secret_file, "%s/secret", f->dir);
    write_file(secret_file, SECRET "\n", strlen(SECRET) + 1);
    cs_registry_close(f->r);
    f->opts.webhook_url = url;
    f->opts.webhook_secret_file = secret_file;
    f->opts.webhook_backoff_ms = 10;
    open_registry(f);

    create_model(f, "digits");
    push_path(f, "digits", DIGITS, 0, NULL);
    cs_registry_alias a;
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", 1, NULL, &f->arena, &a, &err_));
    cs_registry_version v;
    CHECK(cs_registry_version_patch(f->r, "digits", 1, false, 0, NULL, CS_REGISTRY_STATE_READY,
                                    NULL, &f->arena, &v, &err_)); /* no change: no event */
    CHECK(cs_registry_alias_delete(f->r, "digits", "prod", NULL, &err_));
    CHECK(cs_registry_version_patch(f->r, "digits", 1, false, 0, NULL, CS_REGISTRY_STATE_ARCHIVED,
                                    NULL, &f->arena, &v, &err_));
    CHECK(cs_registry_version_delete(f->r, "digits", 1, NULL, &err_));
    CHECK(cs_registry_webhook_flush(f->r, 10000, &err_));

    cs_registry_webhook_stats st;
    cs_registry_webhook_stats_get(f->r, &st);
    assert_int_equal(st.delivered, 5);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(rv.requests, 6);
    assert_int_equal(rv.bad_signatures, 0);
    assert_int_equal(rv.delivered, 5);
    const char *want[] = {"version.created", "alias.moved", "alias.deleted",
                          "version.state_changed", "version.deleted"};
    for (int i = 0; i < 5; i++) assert_string_equal(rv.events[i], want[i]);

    cs_registry_close(f->r);
    f->r = NULL;
    shutdown(rv.listen_fd, SHUT_RDWR);
    close(rv.listen_fd);
    pthread_join(rv.thread, NULL);
    f->opts.webhook_url = NULL;
    open_registry(f);

    /* A webhook without a secret is refused: receivers could not trust it. */
    cs_registry_options o = f->opts;
    o.webhook_url = url;
    o.webhook_secret_file = NULL;
    cs_registry_t *r = NULL;
    EXPECT(CS_ERR_INVALID, cs_registry_open(&o, &r, &err_));
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    cs_registry_t *r = NULL;
    cs_registry_options o = {.data_dir = f->dir, .store_url = "mysql://x"};
    EXPECT(CS_ERR_INVALID, cs_registry_open(&o, &r, &err_));
    o = (cs_registry_options){0};
    EXPECT(CS_ERR_INVALID, cs_registry_open(&o, &r, &err_));
    if (pg_url()) {
        o = (cs_registry_options){.data_dir = f->dir,
                                  .store_url = "postgres:///nope?host=/nonexistent"};
        EXPECT(CS_ERR_IO, cs_registry_open(&o, &r, &err_));
    }
    /* Reopening applies no migration twice. */
    cs_registry_close(f->r);
    open_registry(f);
}

/* --- deployments ----------------------------------------------------------------------- */

static void test_deployments(void **state)
{
    fixture *f = *state;
    cs_registry_deployment d;
    bool created, changed;
    const char *spec1 = "{\"spec\":{\"model\":\"digits\"}}",
               *spec2 = "{\"spec\":{\"model\":\"b\"}}";
    CHECK(cs_registry_deployment_put(f->r, "web", spec1, "ann", &f->arena, &d, &created, &changed,
                                     &err_));
    assert_true(created && changed);
    assert_int_equal(d.generation, 1);
    /* The same spec again writes nothing; a new one is generation 2, created_ns kept. */
    int64_t born = d.created_ns;
    CHECK(cs_registry_deployment_put(f->r, "web", spec1, "ann", &f->arena, &d, &created, &changed,
                                     &err_));
    assert_false(created || changed);
    assert_int_equal(d.generation, 1);
    CHECK(cs_registry_deployment_put(f->r, "web", spec2, "bob", &f->arena, &d, &created, &changed,
                                     &err_));
    assert_true(changed && !created);
    assert_int_equal(d.generation, 2);
    assert_int_equal(d.created_ns, born);
    CHECK(cs_registry_deployment_put(f->r, "api", spec1, NULL, &f->arena, &d, &created, &changed,
                                     &err_));
    EXPECT(CS_ERR_INVALID, cs_registry_deployment_put(f->r, "Bad", spec1, NULL, &f->arena, &d,
                                                      &created, &changed, &err_));
    cs_registry_deployment *items;
    int n;
    CHECK(cs_registry_deployment_list(f->r, &f->arena, &items, &n, &err_));
    assert_int_equal(n, 2);
    assert_string_equal(items[0].name, "api");
    assert_string_equal(items[1].spec, spec2);
    CHECK(cs_registry_deployment_get(f->r, "web", &f->arena, &d, &err_));
    assert_string_equal(d.spec, spec2);
    CHECK(cs_registry_deployment_event(f->r, "web", "deployment.scaled", "{\"desired\":3}", &err_));
    CHECK(cs_registry_deployment_delete(f->r, "web", "carl", &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_deployment_get(f->r, "web", &f->arena, &d, &err_));
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_deployment_delete(f->r, "web", NULL, &err_));

    /* Its history: created, updated, the event, deleted (newest first), under its name. */
    cs_registry_audit *a;
    const char *next;
    CHECK(cs_registry_audit_list(f->r, "web", NULL, &f->arena, &a, &n, &next, &err_));
    assert_int_equal(n, 4);
    assert_string_equal(a[0].action, "deployment.deleted");
    assert_string_equal(a[0].actor, "carl");
    assert_string_equal(a[1].action, "deployment.scaled");
    assert_string_equal(a[2].action, "deployment.updated");
    assert_string_equal(a[3].action, "deployment.created");

    /* They outlive a reopen. */
    cs_registry_close(f->r);
    open_registry(f);
    CHECK(cs_registry_deployment_get(f->r, "api", &f->arena, &d, &err_));
    assert_string_equal(d.spec, spec1);
}

/* --- the bootstrap token -------------------------------------------------------------- */

static void test_token_ensure(void **state)
{
    fixture *f = *state;
    cs_registry_token_ensured how;
    const char *s1 = "cst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
               *s2 = "cst_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB-_";
    EXPECT(CS_ERR_INVALID,
           cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, "short", &how, &err_));
    assert_non_null(strstr(last_msg, "43 base64url"));
    assert_null(strstr(last_msg, "short")); /* a secret is never echoed */
    EXPECT(CS_ERR_INVALID, cs_registry_token_ensure(
                               f->r, "bootstrap", CS_ROLE_ADMIN,
                               "cst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!", &how, &err_));
    CHECK(cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, s1, &how, &err_));
    assert_int_equal(how, CS_TOKEN_CREATED);
    /* Again (a restart, another replica): one token, nothing written. */
    CHECK(cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, s1, &how, &err_));
    assert_int_equal(how, CS_TOKEN_KEPT);
    cs_registry_token t;
    CHECK(cs_registry_token_check(f->r, s1, &f->arena, &t, &err_));
    assert_string_equal(t.name, "bootstrap");
    assert_int_equal(t.role, CS_ROLE_ADMIN);
    int64_t n;
    CHECK(cs_registry_token_count(f->r, &n, &err_));
    assert_int_equal(n, 1);
    /* A new secret replaces the old one. */
    CHECK(cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, s2, &how, &err_));
    assert_int_equal(how, CS_TOKEN_ROTATED);
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_token_check(f->r, s1, &f->arena, &t, &err_));
    CHECK(cs_registry_token_check(f->r, s2, &f->arena, &t, &err_));
    /* A revoked one stays revoked for its secret, and a new secret revives it. */
    CHECK(cs_registry_token_revoke(f->r, "bootstrap", "admin", &err_));
    CHECK(cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, s2, &how, &err_));
    assert_int_equal(how, CS_TOKEN_REVOKED);
    EXPECT(CS_ERR_NOT_FOUND, cs_registry_token_check(f->r, s2, &f->arena, &t, &err_));
    CHECK(cs_registry_token_ensure(f->r, "bootstrap", CS_ROLE_ADMIN, s1, &how, &err_));
    assert_int_equal(how, CS_TOKEN_ROTATED);
    CHECK(cs_registry_token_check(f->r, s1, &f->arena, &t, &err_));
    cs_registry_audit *a;
    const char *next;
    int k;
    CHECK(cs_registry_audit_list(f->r, NULL, NULL, &f->arena, &a, &k, &next, &err_));
    assert_string_equal(a[0].action, "token.rotated");
}

/* --- cluster mode ------------------------------------------------------------------------ */

#define SEEN_MAX 32

typedef struct seen {
    pthread_mutex_t mu;
    int n;
    char kind[SEEN_MAX][32], name[SEEN_MAX][64];
} seen;

static void record(void *user, const cs_registry_change *c)
{
    seen *s = user;
    pthread_mutex_lock(&s->mu);
    if (s->n < SEEN_MAX) {
        snprintf(s->kind[s->n], sizeof s->kind[0], "%s", c->kind);
        snprintf(s->name[s->n], sizeof s->name[0], "%s", c->name);
        s->n++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Waits up to ms for a change of kind (and name, unless NULL) to be recorded. */
static bool heard(seen *s, const char *kind, const char *name, int ms)
{
    for (int t = 0; t < ms; t += 10) {
        pthread_mutex_lock(&s->mu);
        bool got = false;
        for (int i = 0; i < s->n && !got; i++)
            got = !strcmp(s->kind[i], kind) && (!name || !strcmp(s->name[i], name));
        pthread_mutex_unlock(&s->mu);
        if (got) return true;
        usleep(10000);
    }
    return false;
}

/* Two registries on one PostgreSQL store, as two replicas: the watching one hears of the
 * other's changes in commit order, not of its own, and a counter bumped without a
 * notification (one missed) is found by the poll as a resync. SQLite has nothing to watch. */
static void test_watch(void **state)
{
    fixture *f = *state;
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cs_registry_t *other;
    CHECK(cs_registry_open(&f->opts, &other, &err_));
    CHECK(cs_registry_watch(other, record, &s, &err_));
    bool created, changed;
    cs_registry_deployment d;
    if (!pg_url()) {
        CHECK(cs_registry_deployment_put(f->r, "web", "{}", NULL, &f->arena, &d, &created, &changed,
                                         &err_));
        usleep(100000);
        assert_int_equal(s.n, 0);
        cs_registry_close(other);
        return;
    }
    EXPECT(CS_ERR_EXISTS, cs_registry_watch(other, record, &s, &err_));
    assert_true(heard(&s, "resync", "", 3000)); /* the first connection's */
    CHECK(cs_registry_deployment_put(f->r, "web", "{}", NULL, &f->arena, &d, &created, &changed,
                                     &err_));
    create_model(f, "digits");
    int64_t v = push_path(f, "digits", DIGITS, 0, NULL);
    CHECK(cs_registry_alias_put(f->r, "digits", "prod", v, NULL, &f->arena, NULL, &err_));
    assert_true(heard(&s, "deployment.created", "web", 2000));
    assert_true(heard(&s, "version.created", "digits", 2000));
    assert_true(heard(&s, "alias.moved", "digits", 2000));
    pthread_mutex_lock(&s.mu);
    int n = s.n;
    assert_string_equal(s.kind[n - 3], "deployment.created"); /* in commit order */
    assert_string_equal(s.kind[n - 1], "alias.moved");
    pthread_mutex_unlock(&s.mu);
    /* Its own change, and a state change of no one else's concern, are not reported. */
    CHECK(cs_registry_deployment_delete(other, "web", NULL, &err_));
    CHECK(cs_registry_deployment_event(f->r, "api", "deployment.scaled", NULL, &err_));
    usleep(300000);
    assert_false(heard(&s, "deployment.deleted", NULL, 0));
    assert_false(heard(&s, "deployment.scaled", NULL, 0));
    /* A change counted but never notified: the poll's resync, within about a second. */
    pthread_mutex_lock(&s.mu);
    s.n = 0;
    pthread_mutex_unlock(&s.mu);
    cs__store raw;
    CHECK(cs__store_pg_open(pg_url(), "raw", &raw, &err_));
    CHECK(raw.iface->exec(raw.ctx, "UPDATE changes SET n = n + 1", 0, NULL, NULL, NULL, &err_));
    raw.iface->close(raw.ctx);
    assert_true(heard(&s, "resync", "", 2500));
    cs_registry_close(other); /* stops the watch first */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_models_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_not_onnx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_pushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_mid_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_ensure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
    };
    const char *group = pg_url() ? "registry (postgres)" : "registry (sqlite)";
    return _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
