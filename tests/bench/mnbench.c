/* mnbench.c - the load generator of `make bench`: options, the subscriber
 * processes, the measured window of each step, and the result lines.
 * Connections are bench_sub.c's, publishing bench_pub.c's, the floor server
 * bench_floor.c's. Every run is bounded: connect, steps and drains all have
 * deadlines, and the children stop when the parent says so or dies. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* A generator process above this share of one core is the bottleneck. */
#define GEN_BOUND 0.85

static void
usage(FILE *out)
{
    fprintf(
        out,
        "usage: mnbench [options]\n"
        "  --mode pusher|nchan|floor   server kind (floor: a built-in send() server)\n"
        "  --host ADDR --port N[,N...] server (IPv4 loopback); subscriber i uses\n"
        "                              port i mod count (several gateways)\n"
        "  --pub-port N                publish there (default: the first --port)\n"
        "  --app-id ID --key K --secret S   Pusher app (pusher mode)\n"
        "  --conns N --channels C      subscribers, spread round-robin on C channels\n"
        "  --procs P --src S           subscriber processes, 127.0.0.2.. source addrs\n"
        "  --rates R1,R2,...           messages/s per step (0: idle, RSS only)\n"
        "  --duration S --drain S      seconds of publishing / of waiting per step\n"
        "  --idle S                    seconds to hold idle connections (rate 0)\n"
        "  --payload BYTES             event payload size (128)\n"
        "  --pub-conns N               publisher keep-alive connections, at most\n"
        "  --batch N                   events per request, 1-10 (pusher mode:\n"
        "                              POST batch_events; the rate stays events/s)\n"
        "  --server-pid PID[,PID...]   processes whose CPU and RSS are measured\n"
        "  --label NAME --scenario NAME  tags of the result lines\n");
}

static void
parse_list(const char *s, unsigned *out, unsigned max, unsigned *n)
{
    char *end;

    for (*n = 0; *s && *n < max; s = *end ? end + 1 : end) {
        out[(*n)++] = (unsigned)strtoul(s, &end, 10);
        if (end == s)
            break;
    }
}

static int
parse_opts(int argc, char **argv, struct bench_opts *o)
{
    static const struct option lo[] = {{"mode", 1, 0, 'm'},
                                       {"host", 1, 0, 'H'},
                                       {"port", 1, 0, 'p'},
                                       {"app-id", 1, 0, 'a'},
                                       {"key", 1, 0, 'k'},
                                       {"secret", 1, 0, 's'},
                                       {"conns", 1, 0, 'n'},
                                       {"channels", 1, 0, 'c'},
                                       {"procs", 1, 0, 'P'},
                                       {"src", 1, 0, 'S'},
                                       {"rates", 1, 0, 'r'},
                                       {"duration", 1, 0, 'd'},
                                       {"drain", 1, 0, 'D'},
                                       {"idle", 1, 0, 'i'},
                                       {"payload", 1, 0, 'l'},
                                       {"pub-conns", 1, 0, 'b'},
                                       {"server-pid", 1, 0, 'x'},
                                       {"label", 1, 0, 'L'},
                                       {"scenario", 1, 0, 'Z'},
                                       {"pub-port", 1, 0, 'B'},
                                       {"batch", 1, 0, 'N'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    unsigned pids[8];
    int ch;

    *o = (struct bench_opts){.mode = MODE_PUSHER,
                             .host = "127.0.0.1",
                             .ports = {8111},
                             .nports = 1,
                             .app_id = "bench",
                             .key = "bench-key",
                             .secret = "bench-secret",
                             .conns = 1000,
                             .channels = 1,
                             .procs = 1,
                             .nsrc = 4,
                             .rates = {10},
                             .nsteps = 1,
                             .duration = 5,
                             .drain = 5,
                             .idle = 5,
                             .payload = 128,
                             .pub_conns = 8,
                             .batch = 1,
                             .label = "-",
                             .scenario = "-"};
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o->mode = strcmp(optarg, "nchan") == 0   ? MODE_NCHAN
                      : strcmp(optarg, "floor") == 0 ? MODE_FLOOR
                                                     : MODE_PUSHER;
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            parse_list(optarg, o->ports, 8, &o->nports);
            break;
        case 'B':
            o->pub_port = (unsigned)atoi(optarg);
            break;
        case 'N':
            o->batch = (unsigned)atoi(optarg);
            break;
        case 'a':
            o->app_id = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 's':
            o->secret = optarg;
            break;
        case 'n':
            o->conns = (unsigned)atoi(optarg);
            break;
        case 'c':
            o->channels = (unsigned)atoi(optarg);
            break;
        case 'P':
            o->procs = (unsigned)atoi(optarg);
            break;
        case 'S':
            o->nsrc = (unsigned)atoi(optarg);
            break;
        case 'r':
            parse_list(optarg, o->rates, BENCH_MAX_STEPS, &o->nsteps);
            break;
        case 'd':
            o->duration = atof(optarg);
            break;
        case 'D':
            o->drain = atof(optarg);
            break;
        case 'i':
            o->idle = atof(optarg);
            break;
        case 'l':
            o->payload = (unsigned)atoi(optarg);
            break;
        case 'b':
            o->pub_conns = (unsigned)atoi(optarg);
            break;
        case 'x':
            parse_list(optarg, pids, 8, &o->nserver_pids);
            for (unsigned i = 0; i < o->nserver_pids; i++)
                o->server_pids[i] = (int)pids[i];
            break;
        case 'L':
            o->label = optarg;
            break;
        case 'Z':
            o->scenario = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->channels == 0 || o->procs == 0 || o->procs > BENCH_MAX_PROCS || o->nsrc == 0 ||
        o->nsrc > BENCH_MAX_SRC || o->payload < 64 || o->payload > BENCH_PAYLOAD_MAX ||
        o->nsteps == 0 || o->duration <= 0 || o->pub_conns == 0 || o->nports == 0 ||
        o->batch == 0 || o->batch > BENCH_BATCH_MAX) {
        usage(stderr);
        return -1;
    }
    if (o->pub_port == 0)
        o->pub_port = o->ports[0];
    if (o->mode != MODE_PUSHER && o->batch > 1) {
        fprintf(stderr, "mnbench: --batch is for pusher mode (nchan has no batch "
                        "publish): one message per request\n");
        o->batch = 1;
    }
    if (o->mode != MODE_FLOOR && o->nserver_pids == 0) {
        fprintf(stderr, "mnbench: --server-pid is required (CPU and RSS are measured)\n");
        return -1;
    }
    return 0;
}

static int64_t
server_cpu(const struct bench_opts *o)
{
    int64_t t = 0;

    for (unsigned i = 0; i < o->nserver_pids; i++) {
        int64_t v = proc_cpu_us(o->server_pids[i]);
        if (v < 0)
            return -1;
        t += v;
    }
    return t;
}

static int64_t
server_rss(const struct bench_opts *o)
{
    int64_t t = 0;

    for (unsigned i = 0; i < o->nserver_pids; i++) {
        int64_t v = proc_rss_kib(o->server_pids[i]);
        if (v < 0)
            return -1;
        t += v;
    }
    return t;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static uint64_t
sum_slots(const struct bench_opts *o, struct bench_shm *shm, size_t field)
{
    uint64_t t = 0;

    for (unsigned i = 0; i < o->procs; i++)
        t += atomic_load((_Atomic uint64_t *)((char *)&shm->slots[i] + field));
    return t;
}
#define SUM(field) sum_slots(o, shm, offsetof(struct child_slot, field))

/* Generator CPU: [0] the publisher (this process), [1..] subscribers. */
static void
gen_cpu(const struct bench_opts *o, struct bench_shm *shm, int64_t *out)
{
    out[0] = proc_cpu_us(getpid());
    for (unsigned i = 0; i < o->procs; i++)
        out[i + 1] = proc_cpu_us(atomic_load(&shm->slots[i].pid));
}

struct window {
    uint64_t t_ns;
    int64_t srv_cpu;
    int64_t gen[BENCH_MAX_PROCS + 1];
};

static void
snap(const struct bench_opts *o, struct bench_shm *shm, struct window *w)
{
    w->t_ns = bench_now_ns();
    w->srv_cpu = server_cpu(o);
    gen_cpu(o, shm, w->gen);
}

static const char *
mode_name(enum bench_mode m)
{
    return m == MODE_NCHAN ? "nchan" : m == MODE_FLOOR ? "floor" : "pusher";
}

/* The expected deliveries of a step: accepted messages x subscribers. */
static uint64_t
expected(const struct bench_opts *o, struct bench_shm *shm, const uint64_t *pub_ok)
{
    uint64_t e = 0;

    for (unsigned p = 0; p < o->procs; p++)
        for (unsigned ch = 0; ch < o->channels; ch++)
            e += atomic_load(&shm->chan_subs[p * o->channels + ch]) * pub_ok[ch];
    return e;
}

static void
report(const struct bench_opts *o, struct bench_shm *shm, unsigned step, unsigned rate,
       const struct pub_result *pr, uint64_t want, const struct window *a,
       const struct window *b, uint64_t ready, int64_t kib)
{
    struct step_stats *all = calloc(1, sizeof(*all));
    double wall = (double)(b->t_ns - a->t_ns) / 1e9, gmax = 0, gsum = 0;
    double srv = (double)(b->srv_cpu - a->srv_cpu);

    if (all == NULL)
        abort();
    for (unsigned i = 0; i < o->procs; i++)
        hist_merge(all, &shm->slots[i].steps[step]);
    for (unsigned i = 0; i <= o->procs; i++) {
        double share = (double)(b->gen[i] - a->gen[i]) / 1e6 / wall;
        gsum += share;
        if (share > gmax)
            gmax = share;
    }
    printf("RESULT scenario=%s label=%s mode=%s conns=%u ready=%llu channels=%u rate=%u "
           "batch=%u "
           "published=%llu pub_errors=%llu unanswered=%llu late=%llu expected=%llu "
           "delivered=%llu "
           "loss=%lld reordered=%llu p50_us=%llu p90_us=%llu p99_us=%llu "
           "p999_us=%llu max_us=%llu deliveries_per_s=%.0f server_cpu_ms=%.0f "
           "server_cpu_pct=%.0f us_per_delivery=%.3f us_per_publish=%.1f "
           "kib_per_conn=%.2f gen_cpu_max_pct=%.0f gen_cpu_total_pct=%.0f gen_bound=%d\n",
           o->scenario, o->label, mode_name(o->mode), o->conns, (unsigned long long)ready,
           o->channels, rate, o->batch, (unsigned long long)pr->ok,
           (unsigned long long)pr->errors, (unsigned long long)pr->unanswered,
           (unsigned long long)pr->late, (unsigned long long)want,
           (unsigned long long)all->received, (long long)(want - all->received),
           (unsigned long long)all->reordered,
           (unsigned long long)hist_quantile(all, 0.50),
           (unsigned long long)hist_quantile(all, 0.90),
           (unsigned long long)hist_quantile(all, 0.99),
           (unsigned long long)hist_quantile(all, 0.999), (unsigned long long)all->max_us,
           (double)all->received / wall, srv / 1000, 100 * srv / 1e6 / wall,
           all->received ? srv / (double)all->received : 0,
           pr->ok ? srv / (double)pr->ok : 0, ready ? (double)kib / (double)ready : 0,
           100 * gmax, 100 * gsum, gmax > GEN_BOUND);
    fflush(stdout);
    free(all);
}

static void
run_step(const struct bench_opts *o, struct bench_shm *shm, unsigned step, int64_t kib)
{
    unsigned rate = o->rates[step];
    struct pub_result pr = {0};
    struct window a, b;
    uint64_t want, deadline, ready = SUM(ready);

    pr.pub_ok = calloc(o->channels, sizeof(*pr.pub_ok));
    if (pr.pub_ok == NULL)
        abort();
    snap(o, shm, &a);
    if (pub_step(o, step, rate, &pr) < 0) {
        fprintf(stderr, "mnbench: %s: cannot connect the publisher\n", o->label);
        free(pr.pub_ok);
        return;
    }
    want = expected(o, shm, pr.pub_ok);
    deadline = bench_now_ns() + (uint64_t)(o->drain * 1e9);
    for (;;) {
        uint64_t got = 0;
        for (unsigned i = 0; i < o->procs; i++)
            got += shm->slots[i].steps[step].received;
        if (got >= want || bench_now_ns() > deadline)
            break;
        sleep_ms(5);
    }
    snap(o, shm, &b);
    report(o, shm, step, rate, &pr, want, &a, &b, ready, kib);
    free(pr.pub_ok);
}

static int
start_floor(struct bench_opts *o)
{
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        floor_run(o->host, o->ports[0]);
    }
    o->server_pids[0] = pid;
    o->nserver_pids = 1;
    sleep_ms(200);
    return 0;
}

/* Connects every subscriber; the RSS the server grew by per connection. */
static int
connect_all(const struct bench_opts *o, struct bench_shm *shm, int64_t *kib,
            uint64_t *ready)
{
    int64_t rss0 = server_rss(o);
    uint64_t deadline = bench_now_ns() + (uint64_t)(30 + o->conns / 500) * 1000000000u;

    for (unsigned i = 0; i < o->procs; i++) {
        unsigned first = (unsigned)((uint64_t)o->conns * i / o->procs);
        unsigned last = (unsigned)((uint64_t)o->conns * (i + 1) / o->procs);
        pid_t pid = fork();

        if (pid < 0)
            return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            sub_run(o, shm, i, first, last - first);
        }
        atomic_store(&shm->slots[i].pid, pid);
    }
    while (SUM(settled) < o->conns && bench_now_ns() < deadline)
        sleep_ms(20);
    /* let the server finish its part of the last subscriptions */
    sleep_ms(500 + o->conns / 10);
    *ready = SUM(ready);
    *kib = server_rss(o) - rss0;
    fprintf(stderr, "mnbench: %s: %llu of %u connections subscribed (%llu failed)\n",
            o->label, (unsigned long long)*ready, o->conns,
            (unsigned long long)SUM(failed));
    return 0;
}

static void
run_idle(const struct bench_opts *o, struct bench_shm *shm, int64_t rss0_kib)
{
    struct pub_result pr = {0};
    struct window a, b;
    uint64_t ready = SUM(ready);

    snap(o, shm, &a);
    sleep_ms((unsigned)(o->idle * 1000));
    snap(o, shm, &b);
    pr.seconds = (double)(b.t_ns - a.t_ns) / 1e9;
    (void)rss0_kib;
    report(o, shm, 0, 0, &pr, 0, &a, &b, ready, rss0_kib);
}

int
main(int argc, char **argv)
{
    struct bench_opts o;
    struct bench_shm *shm;
    size_t shm_len;
    int64_t kib = 0;
    uint64_t ready = 0;
    int rc = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    if (o.mode == MODE_FLOOR && start_floor(&o) < 0)
        return 99;
    shm_len = sizeof(*shm) + (size_t)o.procs * o.channels * sizeof(shm->chan_subs[0]);
    shm = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        perror("mnbench: mmap");
        return 99;
    }
    memset(shm, 0, shm_len);
    if (connect_all(&o, shm, &kib, &ready) < 0 || ready == 0) {
        fprintf(stderr, "mnbench: %s: no subscriber connected\n", o.label);
        rc = 1;
    } else if (o.rates[0] == 0) {
        run_idle(&o, shm, kib);
    } else {
        for (unsigned s = 0; s < o.nsteps; s++)
            run_step(&o, shm, s, kib);
    }
    atomic_store(&shm->stop, 1);
    for (unsigned i = 0; i < o.procs; i++)
        waitpid(atomic_load(&shm->slots[i].pid), NULL, 0);
    if (o.mode == MODE_FLOOR) {
        kill(o.server_pids[0], SIGKILL);
        waitpid(o.server_pids[0], NULL, 0);
    }
    return rc;
}
