/*
 * log_test.c - JSON log lines read back with jansson: fields and numbers, escaping of
 * quotes and control characters, invalid UTF-8 replaced, truncation at 8 KiB that still
 * parses, level filtering and parsing, whole lines from concurrent threads, and the text
 * format's quoting and truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "obs/log.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int pipe_fd[2];

static int setup(void **state)
{
    if (pipe(pipe_fd) != 0) return -1;
    fcntl(pipe_fd[0], F_SETFL, O_NONBLOCK);
    cs_log_set_fd(pipe_fd[1]);
    cs_log_set_level(CS_LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    cs_log_set_fd(2);
    cs_log_set_level(CS_LOG_INFO);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
    return 0;
}

/* Everything logged since the last call (the pipe holds 64 KiB; tests log less). */
static char captured[65536 + 1];

static const char *drain(void)
{
    size_t n = 0;
    ssize_t r;
    while ((r = read(pipe_fd[0], captured + n, sizeof captured - 1 - n)) > 0) n += (size_t)r;
    captured[n] = '\0';
    return captured;
}

/* Parses the one line logged since the last drain; fails unless it is exactly one line. */
static json_t *one_line(size_t *len)
{
    const char *text = drain();
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    if (len) *len = strlen(text);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) fail_msg("not JSON (%s): %s", jerr.text, text);
    return j;
}

static const char *str(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v)) fail_msg("field %s is not a string", key);
    return json_string_value(v);
}

static void test_fields_and_time(void **state)
{
    /* time() reads the coarse clock, which may lag CLOCK_REALTIME (what the logger uses)
     * by a tick, so the window is widened by one second on each side. */
    time_t before = time(NULL) - 1;
    cs_log(CS_LOG_INFO, "model loaded", "model", "resnet18", "duration_us", CS_LOG_NUM "1234",
           "ratio", CS_LOG_NUM "-1.5e3", NULL);
    json_t *j = one_line(NULL);
    assert_string_equal(str(j, "level"), "info");
    assert_string_equal(str(j, "msg"), "model loaded");
    assert_string_equal(str(j, "model"), "resnet18");
    assert_true(json_is_integer(json_object_get(j, "duration_us")));
    assert_int_equal(json_integer_value(json_object_get(j, "duration_us")), 1234);
    assert_true(json_real_value(json_object_get(j, "ratio")) == -1500.0);

    /* RFC 3339 UTC with milliseconds, within the test's own second or so. */
    const char *t = str(j, "time");
    assert_int_equal(strlen(t), 24);
    struct tm tm = {0};
    unsigned ms = 1000;
    char z = 0;
    assert_int_equal(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3u%c", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z),
                     8);
    assert_int_equal(z, 'Z');
    assert_true(ms < 1000);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t when = timegm(&tm);
    assert_true(when >= before && when <= time(NULL) + 1);
    json_decref(j);

    /* The keys come in order after time, level and msg. */
    cs_log(CS_LOG_WARN, "m", "a", "1", "b", "2", NULL);
    assert_non_null(
        strstr(drain(), "\",\"level\":\"warn\",\"msg\":\"m\",\"a\":\"1\",\"b\":\"2\"}\n"));
}

static void test_odd_values(void **state)
{
    /* A "number" that is not one is kept as a string; a key without value reads null. */
    cs_log(CS_LOG_ERROR, "x", "n1", CS_LOG_NUM "12abc", "n2", CS_LOG_NUM "01", "n3", CS_LOG_NUM "",
           "n4", CS_LOG_NUM "1e", "last", NULL);
    json_t *j = one_line(NULL);
    assert_string_equal(str(j, "level"), "error");
    assert_string_equal(str(j, "n1"), "12abc");
    assert_string_equal(str(j, "n2"), "01");
    assert_string_equal(str(j, "n3"), "");
    assert_string_equal(str(j, "n4"), "1e");
    assert_true(json_is_null(json_object_get(j, "last")));
    json_decref(j);

    cs_log(CS_LOG_INFO, NULL, NULL);
    j = one_line(NULL);
    assert_string_equal(str(j, "msg"), "");
    json_decref(j);
}

static void test_escaping(void **state)
{
    const char *msg = "q\"uote\\ nl\n tab\t cr\r \x01\x1f\x7f é€𝄞";
    cs_log(CS_LOG_INFO, msg, "k\"ey", "v\\al\b\f", NULL);
    const char *raw = drain();
    assert_non_null(strstr(raw, "\\u0001\\u001f\\u007f"));
    assert_non_null(strstr(raw, "q\\\"uote\\\\ nl\\n tab\\t cr\\r"));
    json_t *j = json_loads(raw, 0, NULL);
    assert_non_null(j);
    assert_string_equal(str(j, "msg"), msg);
    assert_string_equal(str(j, "k\"ey"), "v\\al\b\f");
    json_decref(j);

    /* Invalid UTF-8: stray continuation, bad lead, cut sequence, overlong, surrogate,
     * past U+10FFFF. Each bad byte becomes U+FFFD; good text around it stays. */
    cs_log(CS_LOG_INFO, "a\x80z\xffz\xe2\x82z\xc0\xafz\xed\xa0\x80z\xf4\x90\x80\x80z\xc3", NULL);
    j = one_line(NULL);
    assert_string_equal(str(j, "msg"), "a\xEF\xBF\xBDz\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBDz"
                                       "\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\xEF"
                                       "\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF"
                                       "\xBDz\xEF\xBF\xBD");
    json_decref(j);
}

/* Logs msg and checks the line: at most 8 KiB, valid JSON (jansson also rejects invalid
 * UTF-8, so a cut inside a character would fail here) and marked truncated. */
static json_t *check_truncated(const char *msg)
{
    cs_log(CS_LOG_INFO, msg, "after", "x", NULL);
    size_t len = 0;
    json_t *j = one_line(&len);
    assert_true(len <= 8192);
    assert_true(len > 8000);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_null(json_object_get(j, "after"));
    return j;
}

static void test_truncation(void **state)
{
    static char big[20000];
    /* Plain, two-byte characters, and six-byte escapes: each must be cut whole. */
    const char *fills[] = {"a", "\xc3\xa9", "\x01"};
    for (size_t f = 0; f < 3; f++) {
        size_t n = strlen(fills[f]), at = 0;
        while (at + n < sizeof big) {
            memcpy(big + at, fills[f], n);
            at += n;
        }
        big[at] = '\0';
        json_t *j = check_truncated(big);
        const char *got = str(j, "msg");
        assert_true(strlen(got) > 1000);
        assert_memory_equal(got, big, strlen(got));
        json_decref(j);
    }

    /* Many small fields: the one that does not fit is dropped whole. */
    for (int extra = 0; extra < 40; extra++) {
        static char msg[8192];
        memset(msg, 'm', sizeof msg);
        msg[7900 + extra * 3] = '\0';
        cs_log(CS_LOG_INFO, msg, "key1", CS_LOG_NUM "12345", "key2", "value-two", "key3",
               "value-three", NULL);
        size_t len = 0;
        json_t *j = one_line(&len);
        assert_true(len <= 8192);
        json_t *k2 = json_object_get(j, "key2");
        if (k2 && !json_object_get(j, "truncated"))
            assert_string_equal(json_string_value(k2), "value-two");
        json_decref(j);
    }
}

static void test_levels(void **state)
{
    cs_log_set_level(CS_LOG_WARN);
    assert_int_equal(cs_log_get_level(), CS_LOG_WARN);
    cs_log(CS_LOG_DEBUG, "no", NULL);
    cs_log(CS_LOG_INFO, "no", NULL);
    assert_string_equal(drain(), "");
    cs_log(CS_LOG_WARN, "yes", NULL);
    json_t *j = one_line(NULL);
    assert_string_equal(str(j, "level"), "warn");
    json_decref(j);
    cs_log(CS_LOG_ERROR, "yes", NULL);
    j = one_line(NULL);
    assert_string_equal(str(j, "level"), "error");
    json_decref(j);

    cs_log_set_level(CS_LOG_OFF);
    cs_log(CS_LOG_ERROR, "no", NULL);
    cs_log(CS_LOG_OFF, "no", NULL);
    cs_log_set_level(CS_LOG_DEBUG);
    cs_log((cs_log_level)42, "no", NULL);
    assert_string_equal(drain(), "");
    cs_log(CS_LOG_DEBUG, "yes", NULL);
    j = one_line(NULL);
    assert_string_equal(str(j, "level"), "debug");
    json_decref(j);
}

static void test_parse_level(void **state)
{
    static const struct {
        const char *s;
        cs_log_level want;
    } ok[] = {{"debug", CS_LOG_DEBUG},  {"info", CS_LOG_INFO},   {"warn", CS_LOG_WARN},
              {"warning", CS_LOG_WARN}, {"error", CS_LOG_ERROR}, {"off", CS_LOG_OFF},
              {"INFO", CS_LOG_INFO}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cs_log_level got = CS_LOG_OFF;
        assert_int_equal(cs_log_parse_level(ok[i].s, &got, NULL), CS_OK);
        assert_int_equal(got, ok[i].want);
    }
    const char *bad[] = {"verbose", "", "info ", "debugx", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_error err;
        cs_log_level got = CS_LOG_ERROR;
        assert_int_equal(cs_log_parse_level(bad[i], &got, &err), CS_ERR_INVALID);
        assert_int_equal(err.code, CS_ERR_INVALID);
        assert_int_equal(got, CS_LOG_ERROR); /* untouched */
        assert_non_null(strstr(err.msg, "expected debug, info, warn, error or off"));
        if (bad[i]) assert_non_null(strstr(err.msg, bad[i]));
    }
}

#define THREADS 4
#define LINES   300

static char pad[3000]; /* filled before the threads start */

static void *log_worker(void *arg)
{
    char id[16];
    snprintf(id, sizeof id, "%d", (int)(intptr_t)arg);
    for (int i = 0; i < LINES; i++) cs_log(CS_LOG_INFO, "tick", "thread", id, "pad", pad, NULL);
    return NULL;
}

/* Lines from several threads land whole: every line of the file parses on its own. */
/* Text lines: time, padded level, message, key=value with values quoted only when they
 * need it; a line stays one line whatever a value holds, and long lines end marked. */
static void test_text_format(void **state)
{
    (void)state;
    cs_log_set_format(CS_LOG_TEXT);
    cs_log(CS_LOG_WARN, "request", "status", CS_LOG_NUM "200", "path", "/v2/models/x/infer", "who",
           "a b", "empty", "", "evil", "x\ny=\"1\"", "none", NULL);
    const char *t = drain();
    assert_int_equal(strlen(t), 24 + 1 + strcspn(t + 25, "\n") + 1); /* one line */
    assert_int_equal(t[4], '-');
    assert_int_equal(t[23], 'Z');
    assert_non_null(strstr(t, "Z warn  request status=200 path=/v2/models/x/infer who=\"a b\" "
                              "empty=\"\" evil=\"x\\ny=\\\"1\\\"\" none=null\n"));
    cs_log(CS_LOG_INFO, "two words", NULL);
    assert_non_null(strstr(drain(), "Z info  \"two words\"\n"));
    char big[9000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cs_log(CS_LOG_INFO, "big", "v", big, NULL);
    t = drain();
    size_t n = strlen(t);
    assert_true(n <= 8192);
    assert_string_equal(t + n - 16, " truncated=true\n");
    cs_log_format f;
    cs_error err;
    assert_int_equal(cs_log_parse_format("text", &f, &err), CS_OK);
    assert_int_equal(f, CS_LOG_TEXT);
    assert_int_equal(cs_log_parse_format("json", &f, &err), CS_OK);
    assert_int_equal(f, CS_LOG_JSON);
    assert_int_equal(cs_log_parse_format("xml", &f, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "log format 'xml': expected json or text");
    cs_log_set_format(CS_LOG_JSON);
}

static void test_concurrent_lines(void **state)
{
    memset(pad, 'p', sizeof pad - 1);
    FILE *f = tmpfile();
    assert_non_null(f);
    cs_log_set_fd(fileno(f));
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    cs_log_set_fd(pipe_fd[1]);

    rewind(f);
    static char buf[16384];
    int lines = 0, per_thread[THREADS] = {0};
    while (fgets(buf, sizeof buf, f)) {
        json_t *j = json_loads(buf, 0, NULL);
        assert_non_null(j);
        per_thread[atoi(str(j, "thread"))]++;
        json_decref(j);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, THREADS * LINES);
    for (int i = 0; i < THREADS; i++) assert_int_equal(per_thread[i], LINES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
