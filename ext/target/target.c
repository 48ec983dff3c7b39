/*
 * target.c: the bounded read path shared by every target backend.
 *
 * Owns: pmp_target_read() (the one function decoders use to read target
 * memory: overflow-checked, exact-length or error) and the page cache in
 * front of live targets' ops->read.  The cache holds memory of a stopped
 * target and must be dropped at every stop (pmp_target_drop_cache), since
 * a running target changes its memory.
 *
 * Must not: interpret the bytes it reads.
 */
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1u << PAGE_SHIFT)
#define CACHE_SLOTS 256   /* 1 MiB: plenty for the live part of 256 stacks */

struct pmp_pagecache {
    uint64_t page[CACHE_SLOTS];     /* page address, or UINT64_MAX */
    uint32_t valid[CACHE_SLOTS];    /* bytes valid from the page start */
    unsigned char *data;            /* CACHE_SLOTS * PAGE_SIZE */
};

int
pmp_target_enable_cache(struct pmp_target *t)
{
    struct pmp_pagecache *c;

    if (t->cache)
        return 0;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PMP_E_NOMEM;
    c->data = malloc((size_t)CACHE_SLOTS * PAGE_SIZE);
    if (!c->data) {
        free(c);
        return PMP_E_NOMEM;
    }
    t->cache = c;
    pmp_target_drop_cache(t);
    return 0;
}

void
pmp_target_drop_cache(struct pmp_target *t)
{
    size_t i;

    if (!t->cache)
        return;
    for (i = 0; i < CACHE_SLOTS; i++)
        t->cache->page[i] = UINT64_MAX;
}

/* Read from one page through the cache; returns bytes copied or < 0. */
static long
cached_read(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
            struct pmp_error *err)
{
    struct pmp_pagecache *c = t->cache;
    uint64_t page = addr & ~(uint64_t)(PAGE_SIZE - 1);
    size_t off = addr - page;
    size_t slot = (size_t)(pmp_hash64(page >> PAGE_SHIFT) % CACHE_SLOTS);
    unsigned char *d = c->data + slot * PAGE_SIZE;
    long got;

    if (c->page[slot] != page) {
        got = t->ops->read(t, page, d, PAGE_SIZE, err);
        if (got < 0)
            return got;
        c->page[slot] = page;
        c->valid[slot] = (uint32_t)got;
    }
    if (off >= c->valid[slot])
        return 0;
    if (len > c->valid[slot] - off)
        len = c->valid[slot] - off;
    memcpy(buf, d + off, len);
    return (long)len;
}

int
pmp_target_read(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
                struct pmp_error *err)
{
    unsigned char *out = buf;
    size_t done = 0;
    long got;

    if (len == 0)
        return 0;
    if (addr + len < addr) {
        if (err)
            err->addr = addr;
        return pmp_error_set(err, PMP_E_TARGET,
                             "read of %zu bytes at 0x%llx wraps around",
                             len, (unsigned long long)addr);
    }
    if (t->overlay) {
        struct pmp_overlay *o = t->overlay;

        if (addr >= o->addr && addr - o->addr <= o->len &&
            len <= o->len - (addr - o->addr)) {
            memcpy(buf, o->data + (addr - o->addr), len);
            if (addr + len > o->hi)
                o->hi = addr + len;
            return 0;
        }
        if (o->len2 && addr >= o->addr2 && addr - o->addr2 <= o->len2 &&
            len <= o->len2 - (addr - o->addr2)) {
            memcpy(buf, o->data2 + (addr - o->addr2), len);
            return 0;
        }
        if (addr + len > o->miss_hi)
            o->miss_hi = addr + len;
    }
    while (done < len) {
        uint64_t a = addr + done;
        size_t chunk = len - done;

        if (t->cache) {
            size_t to_page_end = PAGE_SIZE - (a & (PAGE_SIZE - 1));
            if (chunk > to_page_end)
                chunk = to_page_end;
            got = cached_read(t, a, out + done, chunk, err);
        } else {
            got = t->ops->read(t, a, out + done, chunk, err);
        }
        if (got < 0)
            return (int)got;
        if (got == 0) {
            if (err)
                err->addr = a;
            return pmp_error_set(err, PMP_E_TARGET,
                                 "cannot read target memory at 0x%llx",
                                 (unsigned long long)a);
        }
        done += (size_t)got;
    }
    return 0;
}

int
pmp_target_read_u64(struct pmp_target *t, uint64_t addr, uint64_t *out,
                    struct pmp_error *err)
{
    unsigned char b[8];
    int rc = pmp_target_read(t, addr, b, 8, err);

    if (rc)
        return rc;
    memcpy(out, b, 8);   /* x86_64 is little-endian, as is the target */
    return 0;
}

void
pmp_target_free(struct pmp_target *t)
{
    struct pmp_pagecache *c;

    if (!t)
        return;
    c = t->cache;
    t->cache = NULL;
    t->ops->free(t);
    if (c) {
        free(c->data);
        free(c);
    }
}
