/*
 * name.c - DNS labels (RFC 1123): see name.h.
 */
#include "base/name.h"

#include <string.h>

bool cs_dns_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > CS_NAME_MAX || s[0] == '-' || s[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}
