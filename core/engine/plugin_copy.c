/*
 * plugin_copy.c - content-addressed copies of plugin files, so that a
 * changed .so really loads as new code.
 *
 * dlopen() caches by path: opening a file again returns the handle of what
 * was loaded before, even if the file has since been rebuilt. A hot swap
 * therefore opens a private copy named after the file's content,
 * <cache>/<name>@<fnv1a-64 of the bytes>.so: new content gets a new path and
 * a new handle; the same content maps to the same copy and the same module.
 * The cache directory is created 0700 and must be owned by us, since loading
 * a .so from it is running code. Copies are never removed while hostd runs
 * (modules are never unloaded); the next start reuses or overwrites them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/plugin.h"

/* <runtime dir>/observatory-plugins, or /tmp/observatory-<uid>/plugins. */
static int cache_dir(char *out, size_t len, char *why, size_t whylen)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    char base[PATH_MAX];
    if (rt && rt[0] == '/')
        snprintf(base, sizeof base, "%s", rt);
    else {
        snprintf(base, sizeof base, "/tmp/observatory-%u", (unsigned)getuid());
        if (mkdir(base, 0700) != 0 && errno != EEXIST) {
            snprintf(why, whylen, "cannot create %s: %s", base, strerror(errno));
            return OBS_EIO;
        }
    }
    if ((size_t)snprintf(out, len, "%s/observatory-plugins", base) >= len) {
        snprintf(why, whylen, "cache directory name too long");
        return OBS_EINVAL;
    }
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", out, strerror(errno));
        return OBS_EIO;
    }
    struct stat st;
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 022)) {
        snprintf(why, whylen, "%s is not a private directory owned by uid %u", out,
                 (unsigned)getuid());
        return OBS_EINVAL;
    }
    /* The base may be a symlink or shared; check it is ours as well. */
    if (stat(base, &st) != 0 || (st.st_uid != getuid() && st.st_uid != 0)) {
        snprintf(why, whylen, "%s is not owned by uid %u", base, (unsigned)getuid());
        return OBS_EINVAL;
    }
    return OBS_OK;
}

int plugin_copy_content_addressed(const char *src, char *dst, size_t dstlen, char *why,
                                  size_t whylen)
{
    int rc = OBS_EIO, in = -1, out = -1;
    uint8_t *buf = NULL;
    char dir[PATH_MAX], tmp[PATH_MAX + 32];
    struct stat st;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "cannot read %s: %s", src, strerror(errno ? errno : EINVAL));
        goto out;
    }
    if (st.st_size > (off_t)1 << 30) {
        snprintf(why, whylen, "%s is larger than 1 GiB", src);
        rc = OBS_EINVAL;
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        snprintf(why, whylen, "out of memory reading %s", src);
        rc = OBS_ENOMEM;
        goto out;
    }
    for (size_t got = 0; got < size;) {
        ssize_t n = read(in, buf + got, size - got);
        if (n <= 0) {
            snprintf(why, whylen, "cannot read %s: %s", src, n < 0 ? strerror(errno) : "short");
            goto out;
        }
        got += (size_t)n;
    }
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64: fast, and collisions need intent */
    for (size_t i = 0; i < size; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ull;
    }

    rc = cache_dir(dir, sizeof dir, why, whylen);
    if (rc)
        goto out;
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t stem = strlen(base);
    if (stem > 3 && strcmp(base + stem - 3, ".so") == 0)
        stem -= 3;
    if ((size_t)snprintf(dst, dstlen, "%s/%.*s@%016llx.so", dir, (int)stem, base,
                         (unsigned long long)h) >= dstlen) {
        snprintf(why, whylen, "copy name too long");
        rc = OBS_EINVAL;
        goto out;
    }
    struct stat have;
    if (stat(dst, &have) == 0 && have.st_size == st.st_size) {
        rc = OBS_OK; /* same name, same size: the content hash says the same bytes */
        goto out;
    }
    /* Write under a temporary name and rename, so a concurrent reader never
     * sees a partial file. */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", dst, (long)getpid());
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (out < 0) {
        snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
        rc = OBS_EIO;
        goto out;
    }
    for (size_t put = 0; put < size;) {
        ssize_t n = write(out, buf + put, size - put);
        if (n <= 0) {
            snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
            unlink(tmp);
            rc = OBS_EIO;
            goto out;
        }
        put += (size_t)n;
    }
    if (close(out) != 0 || rename(tmp, dst) != 0) {
        out = -1;
        snprintf(why, whylen, "cannot install %s: %s", dst, strerror(errno));
        unlink(tmp);
        rc = OBS_EIO;
        goto out;
    }
    out = -1;
    rc = OBS_OK;
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(buf);
    return rc;
}
