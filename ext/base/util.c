/*
 * util.c: small containers and checked allocation helpers.
 *
 * Owns: pmp_u64map (u64 -> pointer), pmp_strpool (interned strings),
 * overflow-checked allocation, finding an ELF section by name.  Must not:
 * know about targets or Python.
 */
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmprof-internal.h"

size_t
pmp_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size) {
        size_t n = len >= size ? size - 1 : len;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

char *
pmp_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void *
pmp_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *
pmp_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return realloc(p, (n && size) ? n * size : 1);
}

int
pmp_grow(void **arr, size_t *cap, size_t need, size_t esz)
{
    size_t ncap;
    void *p;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return PMP_E_NOMEM;
        ncap *= 2;
    }
    p = pmp_reallocarray(*arr, ncap, esz);
    if (!p)
        return PMP_E_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

uint64_t
pmp_now_ns(int clock_id)
{
    struct timespec ts;

    clock_gettime(clock_id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- u64 map ---- */

#define EMPTY_KEY UINT64_MAX

void
pmp_u64map_init(struct pmp_u64map *m)
{
    memset(m, 0, sizeof(*m));
}

void
pmp_u64map_release(struct pmp_u64map *m)
{
    free(m->keys);
    free(m->vals);
    pmp_u64map_init(m);
}

void *
pmp_u64map_get(const struct pmp_u64map *m, uint64_t key)
{
    size_t i, mask;

    if (!m->cap)
        return NULL;
    mask = m->cap - 1;
    for (i = pmp_hash64(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == EMPTY_KEY)
            return NULL;
    }
}

static int
rehash(struct pmp_u64map *m, size_t ncap)
{
    uint64_t *keys = malloc(ncap * sizeof(*keys));
    void **vals = malloc(ncap * sizeof(*vals));
    size_t i, j, mask = ncap - 1;

    if (!keys || !vals) {
        free(keys);
        free(vals);
        return PMP_E_NOMEM;
    }
    for (i = 0; i < ncap; i++)
        keys[i] = EMPTY_KEY;
    for (i = 0; i < m->cap; i++) {
        if (m->keys[i] == EMPTY_KEY)
            continue;
        for (j = pmp_hash64(m->keys[i]) & mask; keys[j] != EMPTY_KEY;
             j = (j + 1) & mask)
            ;
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = ncap;
    return 0;
}

int
pmp_u64map_put(struct pmp_u64map *m, uint64_t key, void *val)
{
    size_t i, mask;
    int rc;

    if (key == EMPTY_KEY)
        return PMP_E_USAGE;
    if ((m->len + 1) * 4 >= m->cap * 3) {
        rc = rehash(m, m->cap ? m->cap * 2 : 64);
        if (rc)
            return rc;
    }
    mask = m->cap - 1;
    for (i = pmp_hash64(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
        if (m->keys[i] == EMPTY_KEY) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->len++;
            return 0;
        }
    }
}

/* ---- string pool ---- */

static uint64_t
strhash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);

    while (*s)
        h = (h ^ (unsigned char)*s++) * UINT64_C(1099511628211);
    return h;
}

void
pmp_strpool_init(struct pmp_strpool *p)
{
    memset(p, 0, sizeof(*p));
}

void
pmp_strpool_release(struct pmp_strpool *p)
{
    size_t i;

    for (i = 0; i < p->len; i++)
        free(p->strs[i]);
    free(p->strs);
    free(p->hkeys);
    pmp_strpool_init(p);
}

static int
pool_rehash(struct pmp_strpool *p, size_t ncap)
{
    uint64_t *h = calloc(ncap, sizeof(*h));
    size_t i, j, mask = ncap - 1;

    if (!h)
        return PMP_E_NOMEM;
    for (i = 0; i < p->len; i++) {
        for (j = strhash(p->strs[i]) & mask; h[j]; j = (j + 1) & mask)
            ;
        h[j] = i + 1;
    }
    free(p->hkeys);
    p->hkeys = h;
    p->hcap = ncap;
    return 0;
}

const char *
pmp_strpool_intern(struct pmp_strpool *p, const char *s)
{
    size_t j, mask;
    char *copy;

    if (!s)
        s = "";
    if ((p->len + 1) * 2 >= p->hcap && pool_rehash(p, p->hcap ? p->hcap * 2 : 256))
        return NULL;
    mask = p->hcap - 1;
    for (j = strhash(s) & mask; p->hkeys[j]; j = (j + 1) & mask)
        if (strcmp(p->strs[p->hkeys[j] - 1], s) == 0)
            return p->strs[p->hkeys[j] - 1];
    if (pmp_grow((void **)&p->strs, &p->cap, p->len + 1, sizeof(*p->strs)))
        return NULL;
    copy = strdup(s);
    if (!copy)
        return NULL;
    p->strs[p->len++] = copy;
    p->hkeys[j] = p->len;
    return copy;
}

Elf_Scn *
pmp_elf_section(Elf *elf, const char *name, GElf_Shdr *sh)
{
    Elf_Scn *scn = NULL;
    size_t shstrndx, n = 0;

    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL && n++ < 65536) {
        const char *nm;

        if (!gelf_getshdr(scn, sh))
            continue;
        nm = elf_strptr(elf, shstrndx, sh->sh_name);
        if (nm && strcmp(nm, name) == 0)
            return scn;
    }
    return NULL;
}
