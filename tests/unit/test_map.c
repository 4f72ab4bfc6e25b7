/* test_map.c - map.c: insert, lookup, delete, growth, iteration. */
#include <stdio.h>
#include <string.h>

#include "map.h"
#include "tap.h"
#include "mn.h"

int
main(void)
{
    struct map m = MAP_INIT;
    char key[32];
    bool created;
    size_t bucket = 0, seen = 0;
    struct map_node *it = NULL;
    int i, found = 0;

    plan(7);
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "chan-%d", i);
        map_upsert(&m, key, strlen(key), &created)->val = (void *)(long)(i + 1);
    }
    is_int((long long)m.count, 1000, "1000 keys inserted");
    map_upsert(&m, "chan-7", 6, &created);
    ok(!created, "upsert of an existing key does not create");
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "chan-%d", i);
        found += map_get(&m, key, strlen(key)) == (void *)(long)(i + 1);
    }
    is_int(found, 1000, "every key found with its value");
    is_int((long)map_del(&m, "chan-5", 6), 6, "delete returns the value");
    ok(map_get(&m, "chan-5", 6) == NULL, "deleted key is gone");
    while (map_next(&m, &bucket, &it))
        seen++;
    is_int((long long)seen, 999, "iteration visits every node once");
    map_clear(&m);
    is_int((long long)m.count, 0, "clear empties the map");
    return done_testing();
}
