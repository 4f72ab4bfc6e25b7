/* clock.h - monotonic milliseconds, for deadlines, timeouts and liveness
 * (never for wall-clock time: REST timestamps use time()). */
#ifndef MN_CLOCK_H
#define MN_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
mn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
