/*
 * signing.c - signed versions: ed25519 signatures over an artifact's digest, and the set of
 * public keys a server trusts.
 *
 * What is signed is the version's digest as text ("sha256:<64 hex>"), so a signature binds
 * exactly the bytes the content-addressed store keeps, and signing a 10 GB model costs one
 * signature, not a second read. A version stores its signature and the signer's raw public
 * key (both lowercase hex); the key's fingerprint, shown to people, is "SHA256:" and the
 * hex sha256 of the raw key. The push checks that a signature it is given verifies; a server
 * with a trusted key set (cs_registry_options.trusted_keys_dir) refuses to hand out an
 * artifact (cs_registry_artifact) that is unsigned, signed by a key outside the set, or whose
 * signature does not verify. Everything goes through OpenSSL's libcrypto (EVP_PKEY_ED25519).
 * Cost: one signature check per load, microseconds; the key set is read once, at open.
 */
#include "registry/registry_int.h"

#include "base/alloc.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define KEY_BYTES 32
#define SIG_BYTES 64

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static bool from_hex(const char *s, unsigned char *out, size_t n)
{
    if (!s || strlen(s) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (!strchr("0123456789abcdef", s[2 * i]) || !strchr("0123456789abcdef", s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (unsigned char)v;
    }
    return true;
}

void cs_registry_key_fingerprint(const char *key_hex, char out[CS_REGISTRY_FINGERPRINT_MAX])
{
    unsigned char raw[KEY_BYTES], h[SHA256_DIGEST_LENGTH];
    if (!from_hex(key_hex, raw, KEY_BYTES)) {
        out[0] = '\0';
        return;
    }
    SHA256(raw, KEY_BYTES, h);
    memcpy(out, "SHA256:", 7);
    to_hex(h, sizeof h, out + 7);
}

/* digest gets "sha256:<hex>" of the file's bytes. */
static cs_status hash_file(const char *file, char *digest, cs_error *err)
{
    FILE *f = fopen(file, "rb");
    if (!f) return cs_error_set(err, CS_ERR_IO, "%s: cannot read it", file);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = cs_malloc(1 << 16);
    bool ok = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    size_t n;
    while (ok && (n = fread(buf, 1, 1 << 16, f)) > 0) ok = EVP_DigestUpdate(md, buf, n) == 1;
    unsigned char h[SHA256_DIGEST_LENGTH];
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, h, NULL) == 1;
    EVP_MD_CTX_free(md);
    cs_free(buf);
    fclose(f);
    if (!ok) return cs_error_set(err, CS_ERR_IO, "%s: cannot hash it", file);
    memcpy(digest, "sha256:", 7);
    to_hex(h, sizeof h, digest + 7);
    return CS_OK;
}

cs_status cs_registry_sign_file(const char *key_pem_path, const char *file, char *digest,
                                char *sig_hex, char *key_hex, cs_error *err)
{
    cs_status rc = hash_file(file, digest, err);
    if (rc != CS_OK) return rc;
    rc = CS_ERR_INVALID;
    FILE *f = fopen(key_pem_path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[SIG_BYTES], pub[KEY_BYTES];
    size_t sig_len = sizeof sig, pub_len = sizeof pub;
    if (f) fclose(f);
    if (!f) {
        rc = cs_error_set(err, CS_ERR_IO, "--sign %s: cannot read the key", key_pem_path);
    } else if (!key || EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "--sign %s: not an ed25519 private key in PEM (make one with "
                          "`openssl genpkey -algorithm ed25519`)",
                          key_pem_path);
    } else if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
               EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)digest, strlen(digest)) !=
                   1 ||
               EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "--sign %s: signing failed", key_pem_path);
    } else {
        to_hex(sig, sig_len, sig_hex);
        to_hex(pub, pub_len, key_hex);
        rc = CS_OK;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}

cs_status cs__signature_verify(const char *digest, const char *sig_hex, const char *key_hex,
                               cs_error *err)
{
    unsigned char sig[SIG_BYTES], pub[KEY_BYTES];
    if (!from_hex(sig_hex, sig, SIG_BYTES))
        return cs_error_set(err, CS_ERR_INVALID,
                            "signature: expected 128 lowercase hex digits (an ed25519 signature)");
    if (!from_hex(key_hex, pub, KEY_BYTES))
        return cs_error_set(err, CS_ERR_INVALID,
                            "signer key: expected 64 lowercase hex digits (a raw ed25519 key)");
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, KEY_BYTES);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok =
        key && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
        EVP_DigestVerify(md, sig, SIG_BYTES, (const unsigned char *)digest, strlen(digest)) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (ok) return CS_OK;
    char fp[CS_REGISTRY_FINGERPRINT_MAX];
    cs_registry_key_fingerprint(key_hex, fp);
    return cs_error_set(err, CS_ERR_INVALID,
                        "the signature does not verify: it was not made by key %s over %s", fp,
                        digest);
}

/* --- the trusted key set ------------------------------------------------------------------ */

struct cs__trusted {
    int n;
    char (*keys)[2 * KEY_BYTES + 1]; /* raw public keys, hex */
};

cs_status cs__trusted_load(const char *dir, cs__trusted **out, cs_error *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return cs_error_set(err, CS_ERR_IO, "--trusted-keys %s: not a readable directory", dir);
    cs__trusted *t = cs_calloc(1, sizeof *t);
    cs_status rc = t ? CS_OK : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    struct dirent *e;
    while (rc == CS_OK && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pem")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        EVP_PKEY *key = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f) fclose(f);
        unsigned char pub[KEY_BYTES];
        size_t len = sizeof pub;
        if (!key || EVP_PKEY_id(key) != EVP_PKEY_ED25519 ||
            EVP_PKEY_get_raw_public_key(key, pub, &len) != 1) {
            rc = cs_error_set(err, CS_ERR_INVALID,
                              "--trusted-keys: %s is not an ed25519 public key in PEM (make one "
                              "with `openssl pkey -in KEY.pem -pubout`)",
                              e->d_name);
        } else {
            void *grown = cs_realloc(t->keys, (size_t)(t->n + 1) * sizeof *t->keys);
            if (!grown) {
                rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
            } else {
                t->keys = grown;
                to_hex(pub, KEY_BYTES, t->keys[t->n++]);
            }
        }
        EVP_PKEY_free(key);
    }
    closedir(d);
    if (rc == CS_OK && t->n == 0)
        rc = cs_error_set(err, CS_ERR_INVALID, "--trusted-keys %s: no *.pem public key in it", dir);
    if (rc != CS_OK) {
        cs__trusted_free(t);
        return rc;
    }
    *out = t;
    return CS_OK;
}

void cs__trusted_free(cs__trusted *t)
{
    if (!t) return;
    cs_free(t->keys);
    cs_free(t);
}

cs_status cs__trusted_check(const cs__trusted *t, const cs_registry_version *v, cs_error *err)
{
    if (!v->signature[0])
        return cs_error_set(err, CS_ERR_INVALID,
                            "model '%s' version %lld is not signed, and this server serves only "
                            "signed versions (--require-signed)",
                            v->model, (long long)v->version);
    bool known = false;
    for (int i = 0; i < t->n && !known; i++) known = !strcmp(t->keys[i], v->signer_key);
    if (!known) {
        char fp[CS_REGISTRY_FINGERPRINT_MAX];
        cs_registry_key_fingerprint(v->signer_key, fp);
        return cs_error_set(err, CS_ERR_INVALID,
                            "model '%s' version %lld is signed by key %s, which is not among "
                            "the server's --trusted-keys",
                            v->model, (long long)v->version, fp);
    }
    cs_status rc = cs__signature_verify(v->digest, v->signature, v->signer_key, err);
    if (rc != CS_OK)
        cs_error_prefix(err, "model '%s' version %lld: ", v->model, (long long)v->version);
    return rc;
}
