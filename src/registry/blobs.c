/*
 * blobs.c - content-addressed artifact storage: <data_dir>/blobs/sha256/ab/cdef...
 *
 * A push copies into blobs/tmp/ while OpenSSL computes the sha256 of what was stored on
 * a second thread (see hasher below), so the push costs about the larger of copy and hash,
 * not their sum. A stream (an HTTP upload) is read into ring buffers that are written and
 * hashed; a regular file is copied inside the kernel (copy_file_range) and the hasher maps
 * the temporary file's new range, so the bytes never pass through a user buffer. The file
 * is fsync'd (while the hash finishes), renamed to the path its digest names, and the
 * directory is fsync'd: after a crash the blob is either whole under its final name or a
 * temporary file that gc removes, never a truncated blob under a digest's name. Writeback
 * of large pushes starts every WRITEBACK_STEP bytes (sync_file_range on Linux) so the
 * closing fsync has little left to flush. Identical content maps to one path and is
 * stored once.
 *
 * A lock file (blobs/.lock, flock) orders pushes against gc across threads and
 * processes: pushes hold it shared from their temporary file until their version row is
 * committed, gc holds it exclusive, so gc never mistakes a push in flight for garbage.
 * gc only tries the lock (CS_ERR_TIMEOUT while a push holds it): a push receives its body
 * on request threads, so a gc waiting on one could hold every thread the push needs.
 */
#define _GNU_SOURCE
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK       (1 << 20)  /* bytes per read/write */
#define COPY_STEP      (8 << 20)  /* bytes per copy_file_range (and per hashed mapping) */
#define WRITEBACK_STEP (32 << 20) /* start writeback this often */
#define PATH_MAX_LEN   4096

static cs_status errno_error(cs_error *err, const char *what, const char *path)
{
    return cs_error_set(err, CS_ERR_IO, "%s %s: %s", what, path, strerror(errno));
}

static cs_status fsync_dir(const char *path, cs_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error(err, "cannot open directory", path);
    int ok = fsync(fd) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok ? CS_OK : errno_error(err, "cannot fsync directory", path);
}

/* mkdir that accepts an existing directory; fsyncs the parent when it created one, so
 * the new directory survives a crash along with what is renamed into it. */
static cs_status make_dir(const char *path, const char *parent, cs_error *err)
{
    if (mkdir(path, 0755) == 0) return parent ? fsync_dir(parent, err) : CS_OK;
    if (errno == EEXIST) return CS_OK;
    return errno_error(err, "cannot create directory", path);
}

cs_status cs__blobs_init(cs__blobs *b, const char *data_dir, cs_error *err)
{
    char path[PATH_MAX_LEN];
    cs_status rc = CS_ERR_INVALID;
    b->root = NULL;
    if (snprintf(path, sizeof path, "%s/blobs", data_dir) >= (int)sizeof path - 128) {
        cs_error_set(err, rc, "data directory path too long: %s", data_dir);
        goto out;
    }
    rc = make_dir(data_dir, NULL, err);
    if (rc == CS_OK) rc = make_dir(path, data_dir, err);
    b->root = cs_strdup(path);
    if (rc == CS_OK && !b->root) rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    if (rc != CS_OK) goto out;
    static const char *const subdirs[] = {"sha256", "tmp"};
    for (size_t i = 0; i < 2 && rc == CS_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", b->root, subdirs[i]);
        rc = make_dir(path, b->root, err);
    }
out:
    if (rc != CS_OK) cs__blobs_free(b);
    return rc;
}

void cs__blobs_free(cs__blobs *b)
{
    cs_free(b->root);
    b->root = NULL;
}

cs_status cs__blobs_lock(const cs__blobs *b, bool exclusive, int *fd, cs_error *err)
{
    /* Exclusive is gc's: it never waits (see the top comment). */
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/.lock", b->root);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return errno_error(err, "cannot open lock file", path);
    int r;
    do r = flock(*fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno == EWOULDBLOCK) {
        close(*fd);
        *fd = -1;
        return cs_error_set(err, CS_ERR_TIMEOUT,
                            "a push is in progress; retry gc once it has been committed");
    }
    if (r != 0) {
        cs_status rc = errno_error(err, "cannot lock", path);
        close(*fd);
        *fd = -1;
        return rc;
    }
    return CS_OK;
}

void cs__blobs_unlock(int fd)
{
    if (fd >= 0) close(fd); /* closing the last descriptor releases the flock */
}

bool cs__digest_valid(const char *digest)
{
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != CS__DIGEST_LEN - 1) return false;
    for (const char *p = digest + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

static void hex_digest(const unsigned char *md, char out[CS__DIGEST_LEN])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[CS__DIGEST_LEN - 1] = '\0';
}

/* <root>/sha256/ab/cdef... for "sha256:abcdef..."; dir gets <root>/sha256/ab. */
static void blob_path(const cs__blobs *b, const char *digest, char *dir, char *path)
{
    /* init bounds root well below PATH_MAX_LEN, so neither can truncate. */
    if (snprintf(dir, PATH_MAX_LEN, "%s/sha256/%.2s", b->root, digest + 7) >= PATH_MAX_LEN ||
        snprintf(path, PATH_MAX_LEN, "%s/%s", dir, digest + 9) >= PATH_MAX_LEN)
        path[0] = '\0';
}

char *cs__blobs_path(const cs__blobs *b, const char *digest, cs_arena *arena)
{
    char dir[PATH_MAX_LEN], path[PATH_MAX_LEN];
    blob_path(b, digest, dir, path);
    return cs_arena_strndup(arena, path, strlen(path));
}

static cs_status write_all(int fd, const unsigned char *p, size_t n, const char *path,
                           cs_error *err)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno_error(err, "cannot write", path);
        p += w;
        n -= (size_t)w;
    }
    return CS_OK;
}

/* The hashing half of a push, on its own thread: chunks are hashed while the next ones
 * are copied, so a push costs about max(copy, sha256) instead of their sum. The push
 * thread fills chunk[produced % RING] and reuses a slot only once the hasher has passed
 * it. A chunk is either a ring buffer that was read and then written (the hasher reads
 * the same buffer, no copy) or, when the kernel copied the bytes, a range of the
 * temporary file that the hasher maps: either way the digest is over the stored bytes. */
#define RING 4

typedef struct chunk {
    const unsigned char *buf; /* NULL: the range [off, off + len) of the temporary file */
    int64_t off;
    size_t len;
} chunk;

typedef struct hasher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    EVP_MD_CTX *md;
    int fd; /* the temporary file */
    chunk chunk[RING];
    uint64_t produced, hashed;
    uint64_t busy_ns; /* hashing, mapping included */
    bool done, failed;
    int map_errno; /* why a range could not be mapped; 0 for an OpenSSL failure */
} hasher;

/* Hashes one chunk; a file range is mapped (page-aligned) for the duration. */
static bool hash_chunk(hasher *h, const chunk *c)
{
    if (c->buf) return EVP_DigestUpdate(h->md, c->buf, c->len) == 1;
    int64_t page = sysconf(_SC_PAGESIZE), skip = c->off % page;
    size_t len = c->len + (size_t)skip;
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, h->fd, c->off - skip);
    if (map == MAP_FAILED) {
        h->map_errno = errno;
        return false;
    }
    bool ok = EVP_DigestUpdate(h->md, (unsigned char *)map + skip, c->len) == 1;
    munmap(map, len);
    return ok;
}

static void *hash_chunks(void *arg)
{
    hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->hashed == h->produced && !h->done) pthread_cond_wait(&h->cv, &h->mu);
        if (h->hashed == h->produced) break; /* done and drained */
        chunk c = h->chunk[h->hashed % RING];
        pthread_mutex_unlock(&h->mu);
        uint64_t t0 = cs_now_ns();
        bool ok = hash_chunk(h, &c);
        uint64_t spent = cs_now_ns() - t0;
        pthread_mutex_lock(&h->mu);
        h->busy_ns += spent;
        if (!ok) h->failed = true;
        h->hashed++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Waits for a free slot and returns its index. */
static int next_slot(hasher *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->produced - h->hashed >= RING) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return (int)(h->produced % RING);
}

static void publish(hasher *h, const unsigned char *buf, int64_t off, size_t len)
{
    pthread_mutex_lock(&h->mu);
    h->chunk[h->produced % RING] = (chunk){buf, off, len};
    h->produced++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Tells the hasher no more chunks come and waits until it has hashed them all. */
static void finish(hasher *h, pthread_t thread)
{
    pthread_mutex_lock(&h->mu);
    h->done = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(thread, NULL);
}

static cs_status fd_read(void *user, void *buf, size_t cap, size_t *got, cs_error *err)
{
    int fd = *(int *)user;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0) {
            *got = (size_t)n;
            return CS_OK;
        }
        if (errno != EINTR)
            return cs_error_set(err, CS_ERR_IO, "reading the artifact: %s", strerror(errno));
    }
}

/* Copies up to cap bytes from a regular file into the temporary file inside the kernel
 * (copy_file_range: no trip through user memory). Where the kernel or the filesystems
 * cannot (another filesystem, an old kernel), clears *in_kernel with nothing copied and
 * the caller reads instead, from the same offset. */
static cs_status copy_in(int src, int dst, size_t cap, const char *tmp, bool *in_kernel,
                         size_t *got, cs_error *err)
{
    *got = 0;
    for (;;) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, cap, 0);
        if (n >= 0) {
            *got = (size_t)n;
            return CS_OK;
        }
        if (errno == EINTR) continue;
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
            *in_kernel = false;
            return CS_OK;
        }
        return errno_error(err, "cannot copy the artifact into", tmp);
    }
}

cs_status cs__blobs_write(const cs__blobs *b, cs_registry_read_fn rd, void *user, int src_fd,
                          int64_t max, char digest[CS__DIGEST_LEN], int64_t *size,
                          cs_registry_push_timing *timing, cs_error *err)
{
    char tmp[PATH_MAX_LEN], dir[PATH_MAX_LEN], path[PATH_MAX_LEN];
    cs_status rc = CS_ERR_NOMEM;
    bool running = false;
    pthread_t thread;
    hasher h = {.md = EVP_MD_CTX_new(), .fd = -1};
    unsigned char *ring[RING] = {NULL};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    int64_t total = 0, flushed = 0;
    uint64_t t0 = cs_now_ns();
    struct stat st;
    /* A regular file is copied by the kernel; anything else is read through ring buffers. */
    bool in_kernel = !rd && fstat(src_fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!rd) {
        rd = fd_read;
        user = &src_fd;
    }
    tmp[0] = '\0';
    if (!h.md) {
        cs_error_set(err, rc, "out of memory for the push");
        goto out;
    }
    if (!EVP_DigestInit_ex(h.md, EVP_sha256(), NULL)) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "OpenSSL: cannot start sha256");
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp/push-XXXXXX", b->root);
    h.fd = mkostemp(tmp, O_CLOEXEC);
    if (h.fd < 0) {
        rc = errno_error(err, "cannot create temporary file in", b->root);
        tmp[0] = '\0';
        goto out;
    }
    if (pthread_create(&thread, NULL, hash_chunks, &h) != 0) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "cannot start the hashing thread");
        goto out;
    }
    running = true;
    for (;;) {
        int slot = next_slot(&h);
        size_t got = 0;
        /* One byte past the limit is enough to know the artifact is over it. */
        size_t cap = max - total < COPY_STEP ? (size_t)(max - total) + 1 : COPY_STEP;
        rc = in_kernel ? copy_in(src_fd, h.fd, cap, tmp, &in_kernel, &got, err) : CS_OK;
        if (rc == CS_OK && !in_kernel) {
            /* Ring buffers are allocated on first use: a kernel copy needs none. */
            if (!ring[slot] && !(ring[slot] = cs_malloc(IO_CHUNK))) {
                rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory for push buffers");
                goto out;
            }
            rc = rd(user, ring[slot], IO_CHUNK, &got, err);
            if (rc == CS_OK && got > IO_CHUNK)
                rc = cs_error_set(err, CS_ERR_INTERNAL, "the artifact's reader overran its buffer");
        }
        if (rc != CS_OK) goto out;
        if (got == 0) break;
        if ((int64_t)got > max - total) {
            rc = cs_error_set(err, CS_ERR_LIMIT,
                              "artifact larger than the limit of %" PRId64 " bytes", max);
            goto out;
        }
        publish(&h, in_kernel ? NULL : ring[slot], total, got);
        if (!in_kernel) rc = write_all(h.fd, ring[slot], got, tmp, err);
        if (rc != CS_OK) goto out;
        total += (int64_t)got;
#ifdef SYNC_FILE_RANGE_WRITE
        if (total - flushed >= WRITEBACK_STEP) {
            sync_file_range(h.fd, flushed, total - flushed, SYNC_FILE_RANGE_WRITE);
            flushed = total;
        }
#endif
    }
    (void)flushed;
    uint64_t t2 = cs_now_ns();
    /* The fsync runs while the hasher finishes the last chunks. */
    if (fsync(h.fd) != 0) {
        rc = errno_error(err, "cannot fsync", tmp);
        goto out;
    }
    uint64_t t3 = cs_now_ns();
    finish(&h, thread);
    running = false;
    uint64_t t4 = cs_now_ns();
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    if (h.failed || !EVP_DigestFinal_ex(h.md, raw, &raw_len) || raw_len != 32) {
        rc = h.map_errno ? cs_error_set(err, CS_ERR_IO, "cannot map %s to hash it: %s", tmp,
                                        strerror(h.map_errno))
                         : cs_error_set(err, CS_ERR_INTERNAL, "OpenSSL: sha256 failed");
        goto out;
    }
    hex_digest(raw, digest);
    close(h.fd);
    h.fd = -1;
    blob_path(b, digest, dir, path);
    char sha_dir[PATH_MAX_LEN];
    snprintf(sha_dir, sizeof sha_dir, "%s/sha256", b->root);
    rc = make_dir(dir, sha_dir, err);
    if (rc != CS_OK) goto out;
    /* Identical content is stored once; a blob of the wrong size (damaged) is replaced. */
    if (stat(path, &st) == 0 && st.st_size == total) {
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = errno_error(err, "cannot rename into", path);
        goto out;
    } else {
        rc = fsync_dir(dir, err);
        if (rc != CS_OK) goto out;
    }
    tmp[0] = '\0';
    *size = total;
    if (timing) {
        uint64_t t5 = cs_now_ns();
        timing->copy_s = (double)(t2 - t0) / 1e9;
        timing->hash_s = (double)h.busy_ns / 1e9;
        timing->fsync_s = (double)(t3 - t2) / 1e9;
        timing->hash_wait_s = (double)(t4 - t3) / 1e9;
        timing->rename_s = (double)(t5 - t4) / 1e9;
    }
    rc = CS_OK;
out:
    if (running) finish(&h, thread);
    if (h.fd >= 0) close(h.fd);
    if (rc != CS_OK && tmp[0]) unlink(tmp);
    EVP_MD_CTX_free(h.md);
    for (int i = 0; i < RING; i++) cs_free(ring[i]);
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
    return rc;
}

cs_status cs__blobs_verify(const char *path, const char *digest, int64_t size, cs_error *err)
{
    cs_status rc = CS_ERR_IO;
    unsigned char *buf = NULL;
    EVP_MD_CTX *md = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errno_error(err, "artifact blob missing: cannot open", path);
        goto out;
    }
    if (st.st_size != size) {
        cs_error_set(err, rc,
                     "artifact blob %s is corrupt: %" PRId64 " bytes, the version "
                     "records %" PRId64 "; refusing to serve it (push it again or delete the "
                     "version)",
                     path, (int64_t)st.st_size, size);
        goto out;
    }
    buf = cs_malloc(IO_CHUNK);
    md = EVP_MD_CTX_new();
    if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory verifying %s", path);
        goto out;
    }
    for (int64_t left = size; left > 0;) {
        ssize_t r = read(fd, buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            errno_error(err, "cannot read", path);
            goto out;
        }
        EVP_DigestUpdate(md, buf, (size_t)r);
        left -= r;
    }
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    char got[CS__DIGEST_LEN];
    EVP_DigestFinal_ex(md, raw, &raw_len);
    hex_digest(raw, got);
    if (strcmp(got, digest) != 0) {
        cs_error_set(err, rc,
                     "artifact blob %s is corrupt: its content hashes to %s, the "
                     "version records %s; refusing to serve it (push it again or delete the "
                     "version)",
                     path, got, digest);
        goto out;
    }
    rc = CS_OK;
out:
    if (fd >= 0) close(fd);
    EVP_MD_CTX_free(md);
    cs_free(buf);
    return rc;
}

/* Reports one unreferenced file and removes it unless dry. */
static cs_status collect(const char *path, bool dry_run, cs_registry_gc_fn each, void *user,
                         cs_registry_gc_report *report, cs_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return CS_OK;
    report->unreferenced++;
    report->bytes += st.st_size;
    if (each) each(user, path, st.st_size);
    if (dry_run) return CS_OK;
    if (unlink(path) != 0 && errno != ENOENT) return errno_error(err, "cannot remove", path);
    report->removed++;
    return CS_OK;
}

cs_status cs__blobs_gc(const cs__blobs *b, const cs_map *referenced, bool dry_run,
                       cs_registry_gc_fn each, void *user, cs_registry_gc_report *report,
                       cs_error *err)
{
    char dir[PATH_MAX_LEN], path[PATH_MAX_LEN], digest[CS__DIGEST_LEN + 8];
    cs_status rc = CS_OK;
    DIR *top = NULL, *sub = NULL;
    struct dirent *e, *f;
    snprintf(dir, sizeof dir, "%s/sha256", b->root);
    top = opendir(dir);
    if (!top) {
        rc = errno_error(err, "cannot read directory", dir);
        goto out;
    }
    while (rc == CS_OK && (e = readdir(top)) != NULL) {
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.') continue;
        if (snprintf(dir, sizeof dir, "%s/sha256/%s", b->root, e->d_name) >= (int)sizeof dir)
            continue;
        sub = opendir(dir);
        if (!sub) continue;
        while (rc == CS_OK && (f = readdir(sub)) != NULL) {
            if (f->d_name[0] == '.') continue;
            /* Names that are not a digest's are not ours: leave them alone. */
            if (snprintf(digest, sizeof digest, "sha256:%s%s", e->d_name, f->d_name) >=
                    (int)sizeof digest ||
                !cs__digest_valid(digest))
                continue;
            report->blobs++;
            if (cs_map_get(referenced, digest)) continue;
            if (snprintf(path, sizeof path, "%s/%s", dir, f->d_name) >= (int)sizeof path) continue;
            rc = collect(path, dry_run, each, user, report, err);
        }
        closedir(sub);
        sub = NULL;
    }
    if (rc != CS_OK) goto out;
    closedir(top);
    snprintf(dir, sizeof dir, "%s/tmp", b->root);
    top = opendir(dir);
    if (!top) {
        rc = errno_error(err, "cannot read directory", dir);
        goto out;
    }
    /* Under the exclusive lock no push is in flight: every temporary file is an orphan. */
    while (rc == CS_OK && (e = readdir(top)) != NULL) {
        if (strncmp(e->d_name, "push-", 5) != 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        rc = collect(path, dry_run, each, user, report, err);
    }
out:
    if (top) closedir(top);
    return rc;
}
