/* bench.h - mnbench, the load generator of tests/bench: shared types between
 * the parent (publisher, report), the subscriber processes and the floor
 * server. Results cross processes through one MAP_SHARED region. */
#ifndef MN_BENCH_H
#define MN_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_STEPS 8
#define BENCH_MAX_PROCS 16
#define BENCH_MAX_SRC 32
/* Latency histogram: exact below 64 us, then 32 buckets per power of two
 * (about 3 % resolution) up to 2^40 us. */
#define HIST_N (64 + 35 * 32)
#define BENCH_PAYLOAD_MAX 4096
#define BENCH_MARK "MNB1 "
#define BENCH_BATCH_MAX 10 /* Pusher's batch_events limit */

enum bench_mode { MODE_PUSHER, MODE_NCHAN, MODE_FLOOR };

struct bench_opts {
    enum bench_mode mode;
    const char *host;  /* IPv4 address of the server */
    unsigned ports[8]; /* subscriber i connects to ports[i % nports] */
    unsigned nports;
    unsigned pub_port;                 /* where the publisher POSTs (default ports[0]) */
    const char *app_id, *key, *secret; /* pusher mode */
    unsigned conns, channels, procs, nsrc;
    unsigned rates[BENCH_MAX_STEPS];
    unsigned nsteps;
    double duration; /* seconds of publishing per step */
    double drain;    /* seconds to wait for stragglers after a step */
    double idle;     /* rates of 0: seconds to hold the idle connections */
    unsigned payload;
    unsigned pub_conns; /* publisher keep-alive connections, at most */
    unsigned batch;     /* events per request (pusher mode: batch_events past 1) */
    int server_pids[8];
    unsigned nserver_pids;
    const char *label;
    const char *scenario;
};

struct step_stats {
    uint64_t received;
    uint64_t reordered;
    uint64_t max_us;
    uint64_t hist[HIST_N];
};

/* One per subscriber process, written by that process only. */
struct child_slot {
    _Atomic int pid;
    _Atomic uint64_t ready;    /* subscribed connections */
    _Atomic uint64_t failed;   /* connections that failed or closed */
    _Atomic uint64_t settled;  /* connections done trying (ready or failed) */
    _Atomic uint64_t received; /* all measured messages, for the drain check */
    _Atomic uint64_t errors;   /* protocol errors seen (pusher:error, bad frames) */
    struct step_stats steps[BENCH_MAX_STEPS];
};

struct bench_shm {
    _Atomic int stop;
    struct child_slot slots[BENCH_MAX_PROCS];
    /* chan_subs[proc * channels + ch]: subscribed connections of that
     * process on channel ch, for the expected count. Follows this struct. */
    _Atomic uint32_t chan_subs[];
};

/* bench_stats.c */
uint64_t bench_now_ns(void);
void hist_add(struct step_stats *s, uint64_t us);
/* Merges src into dst. */
void hist_merge(struct step_stats *dst, const struct step_stats *src);
/* The value below which a fraction q of the samples lie, in us. */
uint64_t hist_quantile(const struct step_stats *s, double q);
/* utime + stime of pid in microseconds (10 ms resolution), or -1. */
int64_t proc_cpu_us(int pid);
/* VmRSS of pid in KiB, or -1. */
int64_t proc_rss_kib(int pid);

/* bench_sub.c: runs one subscriber process on connections [first, first+n)
 * of the global numbering; never returns. */
void sub_run(const struct bench_opts *o, struct bench_shm *shm, unsigned proc,
             unsigned first, unsigned n) __attribute__((noreturn));

/* bench_pub.c: publishes one step open-loop; pub_ok[ch] counts the messages
 * the server did not refuse per channel (accepted, or unanswered by the
 * deadline). Returns 0, or -1 when it cannot connect. */
struct pub_result {
    uint64_t sent, ok, errors, late; /* late: sent > 1 ms after intended */
    uint64_t unanswered;             /* no answer by the step's deadline */
    uint64_t *pub_ok;                /* [channels]: sent and not refused; caller-owned */
    double seconds;                  /* wall time of the publishing */
};
int pub_step(const struct bench_opts *o, unsigned step, unsigned rate,
             struct pub_result *r);
/* The payload of message seq of step: BENCH_MARK, s=, q=, t=, padded. */
size_t bench_payload(char *out, unsigned size, unsigned step, uint64_t seq,
                     uint64_t t_ns);

/* bench_floor.c: the floor server, one plain send() per subscriber and
 * frame; listens on host:port and never returns. */
void floor_run(const char *host, unsigned port) __attribute__((noreturn));

#endif
