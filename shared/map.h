/* map.h - a string-keyed hash map (separate chaining, power-of-two buckets).
 * Keys are copied; values are the caller's. Not thread safe. */
#ifndef MN_MAP_H
#define MN_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_node {
    struct map_node *next;
    uint64_t hash;
    size_t len;
    void *val;
    char key[]; /* NUL-terminated copy */
};

struct map {
    struct map_node **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
};

#define MAP_INIT                                                                         \
    {                                                                                    \
        NULL, 0, 0                                                                       \
    }

void *map_get(const struct map *m, const char *key, size_t len);
/* The node for key, created with val NULL when absent (*created set true). */
struct map_node *map_upsert(struct map *m, const char *key, size_t len, bool *created);
/* Removes key; returns its value, or NULL when absent. */
void *map_del(struct map *m, const char *key, size_t len);
/* Iteration: start with *it = NULL and *bucket = 0; returns the next node or
 * NULL. Removing the returned node during iteration is not allowed. */
struct map_node *map_next(const struct map *m, size_t *bucket, struct map_node **it);
/* Frees the nodes (not the values). */
void map_clear(struct map *m);

#endif
