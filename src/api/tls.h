/*
 * tls.h - the server's TLS credentials (PEM files), reloadable while serving (tls.c).
 */
#ifndef CS_API_TLS_H
#define CS_API_TLS_H

#include "capstan/status.h"

#include <gnutls/abstract.h>

typedef struct cs_tls cs_tls;

/* Loads the PEM certificate chain and private key (paths copied), checking that they
 * match. CS_ERR_IO for an unreadable file, CS_ERR_INVALID for bad PEM or a mismatch; one
 * cs_tls per process. Free with cs_tls_free once the daemon using it has stopped. */
cs_status cs_tls_new(const char *cert_path, const char *key_path, cs_tls **out, cs_error *err);

/* Reads both files again; on success new handshakes use them, on failure the old pair
 * stays in use and err says why. Called from one thread (the server's signal loop). */
cs_status cs_tls_reload(cs_tls *t, cs_error *err);

void cs_tls_free(cs_tls *t);

/* The GnuTLS priority string: TLS 1.2 and 1.3, AEAD ciphers, (EC)DHE key exchange. */
const char *cs_tls_priorities(void);

/* For MHD_OPTION_HTTPS_CERT_CALLBACK: hands GnuTLS the current certificate and key. */
int cs_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey);

#endif
