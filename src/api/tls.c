/*
 * tls.c - the server's TLS credentials: a PEM certificate chain and private key, reloaded on
 * SIGHUP without a restart.
 *
 * libmicrohttpd (with GnuTLS) asks for the certificate of each handshake through a retrieve
 * callback (MHD_OPTION_HTTPS_CERT_CALLBACK), so replacing the files means swapping one
 * pointer: the callback reads the current generation atomically, handshakes in progress keep
 * the one they were given. A generation is never freed while the server runs (a handshake
 * may still hold it; each costs a few KiB and reloads are rare) and all are freed with the
 * server. A reload that fails (missing file, bad PEM, a key that does not match the
 * certificate) keeps the current generation and says why.
 *
 * Protocol versions and ciphers: TLS 1.2 and 1.3 only, AEAD ciphers (AES-GCM, ChaCha20-
 * Poly1305) with ephemeral (EC)DHE key exchange; cs_tls_priorities() is the GnuTLS string.
 *
 * GnuTLS's callback has no user pointer, so the current generation is this file's one
 * piece of process state: one TLS server per process (cs_tls_new refuses a second).
 */
#include "api/tls.h"

#include "base/alloc.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_CHAIN 16 /* certificates in one PEM chain */

typedef struct generation {
    gnutls_pcert_st chain[MAX_CHAIN];
    unsigned n_chain;
    gnutls_privkey_t key;
    struct generation *older;
} generation;

struct cs_tls {
    char *cert_path, *key_path;
    generation *all; /* newest first; every generation loaded, freed with the cs_tls */
};

static _Atomic(generation *) current;
static atomic_bool in_use;

const char *cs_tls_priorities(void)
{
    return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
           "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA";
}

static void generation_free(generation *g)
{
    for (unsigned i = 0; i < g->n_chain; i++) gnutls_pcert_deinit(&g->chain[i]);
    if (g->key) gnutls_privkey_deinit(g->key);
    cs_free(g);
}

/* Reads both files and checks that the key belongs to the certificate (GnuTLS does when
 * the pair is set on a credentials object, which is then thrown away). */
static cs_status load(const cs_tls *t, generation **out, cs_error *err)
{
    gnutls_datum_t cert = {0}, key = {0};
    gnutls_certificate_credentials_t check = NULL;
    cs_status rc = CS_ERR_INVALID;
    generation *g = cs_calloc(1, sizeof *g);
    if (!g) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    int e;
    if ((e = gnutls_load_file(t->cert_path, &cert)) < 0) {
        cs_error_set(err, CS_ERR_IO, "--tls-cert: cannot read '%s': %s", t->cert_path,
                     gnutls_strerror(e));
        goto out;
    }
    if ((e = gnutls_load_file(t->key_path, &key)) < 0) {
        cs_error_set(err, CS_ERR_IO, "--tls-key: cannot read '%s': %s", t->key_path,
                     gnutls_strerror(e));
        goto out;
    }
    g->n_chain = MAX_CHAIN;
    if ((e = gnutls_pcert_list_import_x509_raw(g->chain, &g->n_chain, &cert, GNUTLS_X509_FMT_PEM,
                                               0)) < 0) {
        g->n_chain = 0;
        cs_error_set(err, rc, "--tls-cert: '%s' is not a PEM certificate chain (at most %d): %s",
                     t->cert_path, MAX_CHAIN, gnutls_strerror(e));
        goto out;
    }
    if (gnutls_privkey_init(&g->key) < 0 ||
        (e = gnutls_privkey_import_x509_raw(g->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        cs_error_set(err, rc, "--tls-key: '%s' is not an unencrypted PEM private key: %s",
                     t->key_path, gnutls_strerror(e));
        goto out;
    }
    if (gnutls_certificate_allocate_credentials(&check) < 0 ||
        (e = gnutls_certificate_set_x509_key_mem(check, &cert, &key, GNUTLS_X509_FMT_PEM)) < 0) {
        cs_error_set(err, rc, "--tls-key does not match --tls-cert: %s", gnutls_strerror(e));
        goto out;
    }
    *out = g;
    g = NULL;
    rc = CS_OK;
out:
    if (check) gnutls_certificate_free_credentials(check);
    if (key.data) {
        memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(cert.data);
    if (g) generation_free(g);
    return rc;
}

int cs_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    generation *g = atomic_load(&current);
    if (!g) return -1;
    *pcert = g->chain;
    *pcert_length = g->n_chain;
    *pkey = g->key;
    return 0;
}

cs_status cs_tls_new(const char *cert_path, const char *key_path, cs_tls **out, cs_error *err)
{
    if (!cert_path || !key_path)
        return cs_error_set(err, CS_ERR_INVALID, "TLS needs both --tls-cert and --tls-key");
    bool expected = false;
    if (!atomic_compare_exchange_strong(&in_use, &expected, true))
        return cs_error_set(err, CS_ERR_INVALID, "one TLS server per process");
    cs_tls *t = cs_calloc(1, sizeof *t);
    if (t) t->cert_path = cs_strdup(cert_path), t->key_path = cs_strdup(key_path);
    if (!t || !t->cert_path || !t->key_path) {
        cs_tls_free(t);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    cs_status rc = load(t, &t->all, err);
    if (rc != CS_OK) {
        cs_tls_free(t);
        return rc;
    }
    atomic_store(&current, t->all);
    *out = t;
    return CS_OK;
}

cs_status cs_tls_reload(cs_tls *t, cs_error *err)
{
    generation *g;
    cs_status rc = load(t, &g, err);
    if (rc != CS_OK) return rc;
    g->older = t->all;
    t->all = g;
    atomic_store(&current, g);
    return CS_OK;
}

void cs_tls_free(cs_tls *t)
{
    if (!t) return;
    atomic_store(&current, NULL);
    for (generation *g = t->all, *next; g; g = next) {
        next = g->older;
        generation_free(g);
    }
    cs_free(t->cert_path);
    cs_free(t->key_path);
    cs_free(t);
    atomic_store(&in_use, false);
}
