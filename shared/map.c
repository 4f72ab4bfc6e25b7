/* map.c - string-keyed hash map with FNV-1a hashing; grows at load 1. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "mn.h"

static uint64_t
hash_of(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct map_node **
find(const struct map *m, const char *key, size_t len, uint64_t h)
{
    struct map_node **pp;

    if (m->nbuckets == 0)
        return NULL;
    for (pp = &m->buckets[h & (m->nbuckets - 1)]; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
            return pp;
    return NULL;
}

void *
map_get(const struct map *m, const char *key, size_t len)
{
    struct map_node **pp = find(m, key, len, hash_of(key, len));
    return pp ? (*pp)->val : NULL;
}

static void
grow(struct map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    struct map_node **b = xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_node *node = m->buckets[i], *next;
        for (; node; node = next) {
            next = node->next;
            node->next = b[node->hash & (n - 1)];
            b[node->hash & (n - 1)] = node;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

struct map_node *
map_upsert(struct map *m, const char *key, size_t len, bool *created)
{
    uint64_t h = hash_of(key, len);
    struct map_node **pp = find(m, key, len, h), *node;

    if (pp) {
        *created = false;
        return *pp;
    }
    if (m->count >= m->nbuckets)
        grow(m);
    node = xmalloc(sizeof(*node) + len + 1);
    node->hash = h;
    node->len = len;
    node->val = NULL;
    memcpy(node->key, key, len);
    node->key[len] = '\0';
    node->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = node;
    m->count++;
    *created = true;
    return node;
}

void *
map_del(struct map *m, const char *key, size_t len)
{
    struct map_node **pp = find(m, key, len, hash_of(key, len)), *node;
    void *val;

    if (pp == NULL)
        return NULL;
    node = *pp;
    *pp = node->next;
    val = node->val;
    free(node);
    m->count--;
    return val;
}

struct map_node *
map_next(const struct map *m, size_t *bucket, struct map_node **it)
{
    if (*it && (*it)->next)
        return *it = (*it)->next;
    if (*it)
        (*bucket)++;
    for (; *bucket < m->nbuckets; (*bucket)++)
        if (m->buckets[*bucket])
            return *it = m->buckets[*bucket];
    return *it = NULL;
}

void
map_clear(struct map *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_node *node = m->buckets[i], *next;
        for (; node; node = next) {
            next = node->next;
            free(node);
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}
