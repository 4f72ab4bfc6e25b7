/* bench_stats.c - mnbench's clock, latency histogram and /proc readers.
 * No sockets here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned
bucket_of(uint64_t us)
{
    unsigned e, idx;

    if (us < 64)
        return (unsigned)us;
    e = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
    idx = 64 + (e - 6) * 32 + (unsigned)((us >> (e - 5)) & 31);
    return idx < HIST_N ? idx : HIST_N - 1;
}

/* The upper edge of bucket idx: a quantile is never reported below the truth. */
static uint64_t
bucket_top(unsigned idx)
{
    unsigned e, sub;

    if (idx < 64)
        return idx;
    e = (idx - 64) / 32 + 6;
    sub = (idx - 64) % 32;
    return ((uint64_t)(32 + sub + 1) << (e - 5)) - 1;
}

void
hist_add(struct step_stats *s, uint64_t us)
{
    s->hist[bucket_of(us)]++;
    if (us > s->max_us)
        s->max_us = us;
}

void
hist_merge(struct step_stats *dst, const struct step_stats *src)
{
    dst->received += src->received;
    dst->reordered += src->reordered;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    for (unsigned i = 0; i < HIST_N; i++)
        dst->hist[i] += src->hist[i];
}

uint64_t
hist_quantile(const struct step_stats *s, double q)
{
    uint64_t total = 0, want, seen = 0;

    for (unsigned i = 0; i < HIST_N; i++)
        total += s->hist[i];
    if (total == 0)
        return 0;
    want = (uint64_t)((double)total * q);
    if (want >= total)
        want = total - 1;
    for (unsigned i = 0; i < HIST_N; i++) {
        seen += s->hist[i];
        if (seen > want) {
            uint64_t top = bucket_top(i);
            return top < s->max_us ? top : s->max_us;
        }
    }
    return s->max_us;
}

int64_t
proc_cpu_us(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the last ')'. */
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
               &st) != 2)
        return -1;
    return (int64_t)((ut + st) * 1000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

int64_t
proc_rss_kib(int pid)
{
    char path[64], line[256];
    long long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%lld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
