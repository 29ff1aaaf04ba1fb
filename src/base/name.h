/*
 * name.h - the one name rule capstan's objects share: models, aliases, deployments and
 * tokens are named by DNS labels (RFC 1123), as Kubernetes names its objects.
 */
#ifndef CS_BASE_NAME_H
#define CS_BASE_NAME_H

#include <stdbool.h>

#define CS_NAME_MAX 63 /* a DNS label's longest */

/* Whether s is 1-63 lowercase letters, digits and '-', starting and ending with a letter or
 * digit. NULL is not. */
bool cs_dns_label(const char *s);

#endif
