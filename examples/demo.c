/*
 * demo: what gort is for, in four parts.
 *
 *   1. A million goroutines, each doing a little work, started and finished
 *      in a fraction of a second.
 *   2. Parallelism: one CPU-bound goroutine per P, spread by the scheduler
 *      over as many OS threads (Ms) and cores.
 *   3. A blocking system call stalls only its own goroutine: a goroutine
 *      blocks in read() on a pipe while the others keep counting; sysmon
 *      takes its P away and hands it to another M, born for the purpose if
 *      no idle one exists.
 *   4. A thousand goroutines parked in gort_read on a thousand sockets
 *      hold no thread each: the netpoller (epoll) wakes each one when its
 *      socket has data, and the thread count does not move.
 *   5. Timers: a thousand sleeping goroutines, none woken early; a ticker;
 *      a select with a timeout (gort_after); a function timer; a stopped
 *      timer that never fires; a read deadline.
 *   6. The runtime's own counters (gort_read_stats).
 *
 * GORT_DEBUG=mtrace=1 (set here unless GORT_DEBUG is already set) makes the
 * runtime print one line on stderr as each M starts: Go's M creation path
 * (newm -> allocm -> mcommoninit -> newm1 -> newosproc -> mstart -> mstart0
 * -> mstart1 -> schedule, as in Go's proc.go), seen from outside. Exits 0
 * only if every count checks out.
 *
 *   make demo         (or: build/demo)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <gort.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSPAWN     1000000
#define SPIN_STEPS 100000000L       /* CPU-bound work per goroutine in part 2 */
#define BLOCK_NS   (100 * 1000000L) /* how long the reader of part 3 stays blocked */
#define MAXG       1024             /* gort's limit on Ps */
#define NSOCK      1000             /* goroutines parked on sockets in part 4 */
#define NSLEEP     1000             /* sleeping goroutines in part 5 */
#define MS         1000000L

static int failures;

#define CHECK(cond, ...)                      \
    do {                                      \
        if (!(cond)) {                        \
            printf("  FAILED: " __VA_ARGS__); \
            printf("\n");                     \
            failures++;                       \
        }                                     \
    } while (0)

static double ms(int64_t ns) { return (double)ns / 1e6; }

static void print_stats(const char *label, const gort_stats *s) {
    printf("%s goroutines=%lld threads=%d idle_threads=%d spinning=%d procs=%d "
           "idle_procs=%d in_syscall=%d steals=%lld\n",
           label, (long long)s->goroutines, s->threads, s->idle_threads, s->spinning, s->procs,
           s->idle_procs, s->in_syscall, (long long)s->steals);
}

/* One slot per goroutine, on its own cache line. */
typedef struct {
    uint64_t n;
    int tid_start, tid_end;
} __attribute__((aligned(64))) slot;

static slot slots[MAXG];
static gort_waitgroup wg;

/* ---- 1. a million goroutines ---------------------------------------------- */

static uint32_t *spawn_slot; /* spawn_slot[i] is written by goroutine i only */

static void spawned(void *arg) {
    uintptr_t i = (uintptr_t)arg;

    spawn_slot[i] += (uint32_t)i + 1;
    gort_wg_done(&wg);
}

static void part_spawn(void) {
    spawn_slot = calloc(NSPAWN, sizeof *spawn_slot);
    if (spawn_slot == NULL) {
        CHECK(0, "out of memory");
        return;
    }
    int64_t retries = 0, live = 0;
    int64_t t0 = gort_now();

    gort_wg_add(&wg, NSPAWN);
    for (uintptr_t i = 0; i < NSPAWN; i++) {
        int64_t id;
        /* -ENOMEM: no stack can be reserved now (a kernel without
         * userfaultfd runs out of memory mappings near 32k live stacks).
         * Yield so that goroutines finish and give theirs back. */
        while ((id = gort_go(spawned, (void *)i)) == -ENOMEM &&
               gort_now() - t0 < 20 * 1000000000L) {
            retries++;
            gort_yield();
        }
        if (id < 0) {
            CHECK(0, "gort_go: %s", strerror((int)-id));
            gort_wg_add(&wg, -(int64_t)(NSPAWN - i));
            break;
        }
    }
    live = gort_num_goroutines();
    gort_wg_wait(&wg);
    int64_t t1 = gort_now();

    int64_t bad = 0;
    for (uintptr_t i = 0; i < NSPAWN; i++)
        bad += spawn_slot[i] != (uint32_t)i + 1;
    free(spawn_slot);

    printf("1. spawn: %d goroutines started and finished in %.1f ms, %.0f ns each\n", NSPAWN,
           ms(t1 - t0), (double)(t1 - t0) / NSPAWN);
    printf("   %lld were still alive when the last was started", (long long)live);
    if (retries)
        printf("; main yielded %lld times for stacks", (long long)retries);
    printf("\n");
    CHECK(bad == 0, "%lld goroutines did not do their work exactly once", (long long)bad);
}

/* ---- 2. parallelism --------------------------------------------------------- */

/* xorshift64: a dependency chain the compiler cannot shorten. */
static uint64_t spin(uint64_t x, long steps) {
    for (long k = 0; k < steps; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static int gettid_(void) { return (int)syscall(SYS_gettid); }

static void spinner(void *arg) {
    slot *s = arg;

    /* No scheduling point between the two reads: the goroutine cannot
     * move to another thread, so both name the M that ran it. */
    s->tid_start = gettid_();
    s->n = spin(1, SPIN_STEPS); /* the same work for all: the same answer */
    s->tid_end = gettid_();
    gort_wg_done(&wg);
}

static void part_parallel(int n) {
    gort_stats s0, s1;

    /* The same work once, alone on this goroutine: the yardstick. */
    int64_t t0 = gort_now();
    uint64_t want = spin(1, SPIN_STEPS);
    int64_t alone = gort_now() - t0;

    gort_read_stats(&s0);
    memset(slots, 0, sizeof slots);
    t0 = gort_now();
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(spinner, &slots[i]) > 0, "gort_go failed");
    gort_wg_wait(&wg);
    int64_t together = gort_now() - t0;
    gort_read_stats(&s1);

    int tids[MAXG], ntids = 0;
    for (int i = 0; i < n; i++) {
        CHECK(slots[i].n == want, "spinner %d computed a wrong value", i);
        CHECK(slots[i].tid_start == slots[i].tid_end, "spinner %d changed threads", i);
        int seen = 0;
        for (int k = 0; k < ntids; k++)
            seen |= tids[k] == slots[i].tid_start;
        if (!seen)
            tids[ntids++] = slots[i].tid_start;
    }
    printf("2. parallel: %d CPU-bound goroutines, %.0f ms each alone, %.0f ms all together\n", n,
           ms(alone), ms(together));
    printf("   speedup %.2fx on %d distinct threads (Ms); threads %d -> %d, "
           "idle_threads %d -> %d, steals %lld -> %lld\n",
           (double)alone * n / (double)together, ntids, s0.threads, s1.threads, s0.idle_threads,
           s1.idle_threads, (long long)s0.steals, (long long)s1.steals);
}

/* ---- 3. a blocking system call ---------------------------------------------- */

static struct {
    int fd[2];
    int nctr;          /* counting goroutines */
    int stop;          /* atomic: counters stop */
    int blocked;       /* atomic: the reader is about to call read() */
    gort_waitgroup rw; /* reader and writer */
    ssize_t nread;
    int err;
    char byte;
    int64_t blocked_ns;
    uint64_t advanced; /* counts made while the reader was blocked */
    gort_stats during; /* stats taken while it was blocked */
} sc;

static uint64_t counted(void) {
    uint64_t sum = 0;
    for (int i = 0; i < sc.nctr; i++)
        sum += __atomic_load_n(&slots[i].n, __ATOMIC_RELAXED);
    return sum;
}

static void counter(void *arg) {
    slot *s = arg;

    while (!__atomic_load_n(&sc.stop, __ATOMIC_RELAXED)) {
        __atomic_store_n(&s->n, s->n + 1, __ATOMIC_RELAXED);
        gort_yield();
    }
    gort_wg_done(&wg);
}

static void reader(void *arg) {
    (void)arg;
    char b = 0;

    /* The P may be handed to another M while this thread sits in read(). */
    gort_syscall_enter();
    uint64_t before = counted();
    int64_t t0 = gort_now();
    __atomic_store_n(&sc.blocked, 1, __ATOMIC_RELEASE);
    ssize_t n = read(sc.fd[0], &b, 1);
    int err = n < 0 ? errno : 0; /* before gort_syscall_exit: it may move us */
    sc.blocked_ns = gort_now() - t0;
    sc.advanced = counted() - before;
    gort_syscall_exit();

    sc.nread = n;
    sc.err = err;
    sc.byte = b;
    gort_wg_done(&sc.rw);
}

static void writer(void *arg) {
    (void)arg;

    while (!__atomic_load_n(&sc.blocked, __ATOMIC_ACQUIRE))
        gort_yield();
    gort_sleep(BLOCK_NS);
    gort_read_stats(&sc.during);
    CHECK(write(sc.fd[1], "x", 1) == 1, "write to the pipe failed");
    gort_wg_done(&sc.rw);
}

static void part_syscall(int n) {
    gort_stats s0, s1;

    if (pipe(sc.fd) < 0) {
        CHECK(0, "pipe: %s", strerror(errno));
        return;
    }
    memset(slots, 0, sizeof slots);
    sc.nctr = n;
    gort_read_stats(&s0);

    /* One counter per P, so every P has work and the reader's P is missed. */
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(counter, &slots[i]) > 0, "gort_go failed");
    gort_wg_add(&sc.rw, 2);
    CHECK(gort_go(reader, NULL) > 0, "gort_go failed");
    CHECK(gort_go(writer, NULL) > 0, "gort_go failed");
    gort_wg_wait(&sc.rw);
    __atomic_store_n(&sc.stop, 1, __ATOMIC_RELAXED);
    gort_wg_wait(&wg);
    gort_read_stats(&s1);
    close(sc.fd[0]);
    close(sc.fd[1]);

    printf("3. syscall: a goroutine sat %.0f ms in read() on an empty pipe; meanwhile\n",
           ms(sc.blocked_ns));
    printf("   the %d counting goroutines counted %llu times (%llu in all)\n", n,
           (unsigned long long)sc.advanced, (unsigned long long)counted());
    const char *how = sc.during.threads > s0.threads             ? "a new M was born to run its P"
                      : sc.during.idle_threads < s0.idle_threads ? "an idle M took over its P"
                                                                 : "no other M was needed";
    printf("   threads %d before, %d while blocked (in_syscall=%d): %s\n", s0.threads,
           sc.during.threads, sc.during.in_syscall, how);
    printf("   threads %d after, %d of them idle (the reader's old M parked on return)\n",
           s1.threads, s1.idle_threads);
    CHECK(sc.nread == 1 && sc.byte == 'x', "read returned %zd (%s)", sc.nread,
          sc.nread < 0 ? strerror(sc.err) : "wrong data");
    CHECK(sc.advanced > 0, "the counters stalled while the reader was blocked");
    CHECK(sc.during.in_syscall == 1, "in_syscall is %d, not 1", sc.during.in_syscall);
}

/* ---- 4. goroutines parked on sockets -------------------------------------- */

static struct {
    int fd[NSOCK][2]; /* socketpairs: readers on [0], main writes on [1] */
    int waiting;      /* atomic: readers about to call gort_read */
    int bad;          /* atomic: readers that got the wrong answer */
    gort_waitgroup wg;
} ns;

static void sock_reader(void *arg) {
    int i = (int)(intptr_t)arg;
    unsigned char b = 0;

    __atomic_add_fetch(&ns.waiting, 1, __ATOMIC_RELAXED);
    /* Nothing to read yet: the goroutine parks in the poller and its
     * thread goes on to run the others. */
    ssize_t n = gort_read(ns.fd[i][0], &b, 1);
    if (n != 1 || b != (unsigned char)i)
        __atomic_add_fetch(&ns.bad, 1, __ATOMIC_RELAXED);
    gort_wg_done(&ns.wg);
}

static void part_netpoll(void) {
    gort_stats s0, s1, s2;
    int n;

    for (n = 0; n < NSOCK; n++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ns.fd[n]) < 0)
            break;
    if (n < NSOCK) {
        CHECK(0, "socketpair: %s (after %d)", strerror(errno), n);
        goto out;
    }
    gort_read_stats(&s0);
    gort_wg_add(&ns.wg, n);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(sock_reader, (void *)(intptr_t)i) > 0, "gort_go failed");
    /* Let them all reach their read and park. */
    while (__atomic_load_n(&ns.waiting, __ATOMIC_RELAXED) < n)
        gort_sleep(1 * MS);
    gort_sleep(20 * MS);
    gort_read_stats(&s1);

    int64_t t0 = gort_now();
    for (int i = 0; i < n; i++) {
        unsigned char b = (unsigned char)i;
        CHECK(gort_write(ns.fd[i][1], &b, 1) == 1, "write to socket %d failed", i);
    }
    gort_wg_wait(&ns.wg);
    int64_t t1 = gort_now();
    gort_read_stats(&s2);

    printf("4. netpoll: %d goroutines parked in gort_read on %d sockets (goroutines=%lld)\n", n, n,
           (long long)s1.goroutines);
    printf("   threads %d before, %d while they waited (in_syscall=%d: no thread held for them)\n",
           s0.threads, s1.threads, s1.in_syscall);
    printf("   a byte written to each socket woke all %d in %.1f ms; threads %d after\n", n,
           ms(t1 - t0), s2.threads);
    CHECK(s1.goroutines >= n + 1, "only %lld goroutines alive while %d should be parked",
          (long long)s1.goroutines, n);
    CHECK(s1.threads <= s0.threads + s1.procs,
          "threads went from %d to %d with goroutines parked on sockets", s0.threads, s1.threads);
    CHECK(s1.in_syscall == 0, "in_syscall is %d while goroutines wait on sockets", s1.in_syscall);
    CHECK(__atomic_load_n(&ns.bad, __ATOMIC_RELAXED) == 0, "%d readers got a wrong byte", ns.bad);
out:
    for (int i = 0; i < n; i++) {
        gort_close(ns.fd[i][0]);
        gort_close(ns.fd[i][1]);
    }
}

/* ---- 5. timers ---------------------------------------------------------------- */

static struct {
    int64_t want[NSLEEP], late[NSLEEP];
    gort_waitgroup wg;
    int fired;         /* atomic: the function timer ran */
    int stopped_fired; /* atomic: the stopped timer ran (it must not) */
} tm;

static void timed_sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    int64_t t0 = gort_now();

    gort_sleep(tm.want[i]);
    tm.late[i] = gort_now() - t0 - tm.want[i];
    gort_wg_done(&tm.wg);
}

static void on_timer(void *arg) { __atomic_store_n((int *)arg, 1, __ATOMIC_RELAXED); }

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void part_timers(void) {
    gort_stats s0, s1;

    /* A thousand goroutines sleep 1 to 100 ms each. */
    uint64_t x = 2463534242u;
    for (int i = 0; i < NSLEEP; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tm.want[i] = (int64_t)(1 + x % 100) * MS;
    }
    gort_read_stats(&s0);
    int64_t t0 = gort_now();
    gort_wg_add(&tm.wg, NSLEEP);
    for (int i = 0; i < NSLEEP; i++)
        CHECK(gort_go(timed_sleeper, (void *)(intptr_t)i) > 0, "gort_go failed");
    gort_wg_wait(&tm.wg);
    int64_t wall = gort_now() - t0;
    gort_read_stats(&s1);
    qsort(tm.late, NSLEEP, sizeof tm.late[0], cmp_i64);
    printf(
        "5. timers: %d goroutines slept 1 to 100 ms each: all done in %.1f ms, threads %d -> %d\n",
        NSLEEP, ms(wall), s0.threads, s1.threads);
    printf("   woken late by p50 %.0f us, p99 %.0f us, max %.0f us; woken early: %s\n",
           (double)tm.late[NSLEEP / 2] / 1e3, (double)tm.late[NSLEEP * 99 / 100] / 1e3,
           (double)tm.late[NSLEEP - 1] / 1e3, tm.late[0] < 0 ? "SOME" : "none");
    CHECK(tm.late[0] >= 0, "a sleep ended %lld ns early", (long long)-tm.late[0]);
    /* A spinning M may be born on the way (a timer added wakes an idle P),
     * but a thread per sleeper, never. */
    CHECK(s1.threads <= s0.threads + s1.procs, "threads went from %d to %d for sleeping goroutines",
          s0.threads, s1.threads);

    /* A ticker: every 10 ms, on a channel. */
    gort_chan *ch;
    gort_timer *tick;
    int64_t ticks[5];
    if (gort_chan_make(&ch, sizeof(int64_t), 1) < 0 ||
        gort_timer_start(&tick, 10 * MS, 10 * MS, ch, NULL, NULL) < 0) {
        CHECK(0, "cannot make a ticker");
        return;
    }
    int64_t tstart = gort_now();
    for (int i = 0; i < 5; i++)
        CHECK(gort_chan_recv(ch, &ticks[i]) == 1, "the ticker's channel closed");
    gort_timer_free(tick);
    gort_chan_free(ch);
    printf("   a 10 ms ticker ticked at");
    for (int i = 0; i < 5; i++)
        printf(" %.2f", ms(ticks[i] - tstart));
    printf(" ms\n");
    CHECK(ticks[0] - tstart >= 10 * MS, "the first tick came early");
    for (int i = 1; i < 5; i++)
        CHECK(ticks[i] - ticks[i - 1] > 5 * MS, "ticks %d and %d came %.2f ms apart", i - 1, i,
              ms(ticks[i] - ticks[i - 1]));

    /* A select with a timeout: Go's select { case <-c: case <-time.After(d): }
     * on a channel nobody sends to. */
    gort_chan *quiet, *after;
    int64_t s0ns = gort_now(), fired_at = 0;
    if (gort_chan_make(&quiet, sizeof(int), 0) == 0 && gort_after(&after, 15 * MS) == 0) {
        gort_case cases[2] = { { quiet, GORT_RECV, NULL, 0 }, { after, GORT_RECV, &fired_at, 0 } };
        int which = gort_select(cases, 2, 1);
        printf("   select on a silent channel and gort_after(15 ms): case %d (%s) after %.2f ms\n",
               which, which == 1 ? "the timeout" : "?", ms(fired_at - s0ns));
        CHECK(which == 1 && fired_at - s0ns >= 15 * MS, "the select timeout misbehaved");
        gort_chan_free(quiet);
    } else {
        CHECK(0, "cannot make the select's channels");
    }

    /* A function timer (Go's time.AfterFunc), and one stopped before it fires. */
    gort_timer *fn = NULL, *stopped = NULL;
    CHECK(gort_timer_start(&fn, 5 * MS, 0, NULL, on_timer, &tm.fired) == 0, "gort_timer_start");
    CHECK(gort_timer_start(&stopped, 30 * MS, 0, NULL, on_timer, &tm.stopped_fired) == 0,
          "gort_timer_start");
    int stop = gort_timer_stop(stopped);
    gort_sleep(50 * MS);
    int fired = __atomic_load_n(&tm.fired, __ATOMIC_RELAXED);
    int sfired = __atomic_load_n(&tm.stopped_fired, __ATOMIC_RELAXED);
    printf("   a 5 ms function timer %s; a 30 ms one, stopped at once (stop: %d), %s\n",
           fired ? "ran its function" : "DID NOT RUN", stop,
           sfired ? "FIRED ANYWAY" : "never fired");
    CHECK(fired && stop == 1 && !sfired, "function timers misbehaved");
    gort_timer_free(fn);
    gort_timer_free(stopped);

    /* A read deadline (Go's SetReadDeadline): gort_read on a silent
     * socket gives up. */
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        CHECK(0, "socketpair: %s", strerror(errno));
        return;
    }
    char b;
    int64_t d0 = gort_now();
    gort_fd_set_deadline(sp[0], GORT_READ, d0 + 20 * MS);
    ssize_t r = gort_read(sp[0], &b, 1);
    int64_t d1 = gort_now();
    printf("   gort_read on a silent socket with a 20 ms deadline: \"%s\" after %.2f ms\n",
           r < 0 ? strerror((int)-r) : "data?", ms(d1 - d0));
    CHECK(r == -ETIMEDOUT && d1 - d0 >= 20 * MS, "the read deadline did not work (%zd)", r);
    gort_close(sp[0]);
    gort_close(sp[1]);
}

/* ---- main --------------------------------------------------------------- */

static void main_goroutine(void *arg) {
    (void)arg;
    int n = gort_maxprocs(0);

    if (n > MAXG)
        n = MAXG;
    printf("gort demo: GOMAXPROCS=%d on %ld CPUs; main is goroutine %lld\n", n,
           sysconf(_SC_NPROCESSORS_ONLN), (long long)gort_id());
    part_spawn();
    part_parallel(n);
    part_syscall(n);
    part_netpoll();
    part_timers();

    /* A goroutine counts until its exit, just after its gort_wg_done: give
     * the last ones a moment to finish on the other Ps. */
    int64_t until = gort_now() + 1000000000L;
    while (gort_num_goroutines() > 1 && gort_now() < until)
        gort_yield();

    gort_stats s;
    gort_read_stats(&s);
    print_stats("6. stats:", &s);
    CHECK(s.goroutines == 1, "%lld goroutines alive at the end, not 1 (main)",
          (long long)s.goroutines);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep order with the runtime's stderr lines */
    struct rlimit rl;                 /* two descriptors per socket of part 4 */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setenv("GORT_DEBUG", "mtrace=1", 0);

    int err = gort_run(NULL, main_goroutine, NULL);
    if (err < 0) {
        fprintf(stderr, "demo: gort_run: %s\n", strerror(-err));
        return 1;
    }
    printf("gort_run returned: every M joined, every stack freed%s\n",
           failures ? "" : "; all checks passed");
    return failures ? 1 : 0;
}
