/*
 * name_test.c - DNS labels: the edges of length, case, dashes and bytes outside ASCII.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/name.h"

#include <string.h>

static void test_labels(void **state)
{
    (void)state;
    const char *good[] = {"a", "digits", "resnet-18", "0", "a-b-c", "9lives"};
    const char *bad[] = {"", "-a", "a-", "Digits", "my_model", "a.b", "..", "a b", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_true(cs_dns_label(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_false(cs_dns_label(bad[i]));
    assert_false(cs_dns_label(NULL));
    char s[CS_NAME_MAX + 2];
    memset(s, 'x', sizeof s - 1);
    s[CS_NAME_MAX + 1] = '\0';
    assert_false(cs_dns_label(s)); /* 64 */
    s[CS_NAME_MAX] = '\0';
    assert_true(cs_dns_label(s)); /* 63 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_labels)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
