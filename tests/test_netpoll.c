/* Black-box tests of the netpoller: goroutines blocked on descriptors
 * (sockets, pipes, FIFOs, ttys, eventfds) park without holding threads; an
 * idle runtime with sleepers and a blocked accept uses next to no CPU; a
 * run that ends with goroutines parked in the poller and on timers shuts
 * down cleanly, again and again, without leaking descriptors or memory. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MS  (1000 * 1000LL)
#define SEC (1000 * MS)

/* Raises the soft descriptor limit to the hard one; returns it. */
static long raise_nofile(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The Ms while goroutines sit in the poller: the Ps' worth, sysmon and
 * a few spares, however many goroutines wait. */
static void check_few_threads(const char *when) {
    gort_stats st;
    gort_read_stats(&st);
    if (st.threads > st.procs + 4)
        fprintf(stderr, "%s: %d threads for %d procs\n", when, st.threads, st.procs);
    CHECK(st.threads <= st.procs + 4);
}

/* ---- 10,000 goroutines blocked in gort_read ------------------------------------- */

typedef struct {
    int fd;
    uint64_t want;
    gort_waitgroup *wg;
} reader_arg;

static atomic_int readers_started;

static void blocked_reader(void *arg) {
    reader_arg *a = arg;
    uint64_t v = 0;
    atomic_fetch_add(&readers_started, 1);
    CHECK_EQ(gort_read(a->fd, &v, sizeof v), sizeof v);
    CHECK_EQ(v, a->want);
    gort_wg_done(a->wg);
}

static int many_n;

static void many_readers_main(void *arg) {
    (void)arg;
    int n = many_n;
    int(*sv)[2] = calloc((size_t)n, sizeof *sv);
    reader_arg *a = calloc((size_t)n, sizeof *a);
    CHECK(sv && a);
    gort_waitgroup wg = { 0 };
    atomic_store(&readers_started, 0);
    for (int i = 0; i < n; i++)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        a[i] = (reader_arg){ sv[i][0], 0x5eed0000ull + (uint64_t)i, &wg };
        CHECK(gort_go(blocked_reader, &a[i]) > 0);
    }
    test_yield_until(&readers_started, n);
    /* Every reader is parked or about to be; sample the Ms a few times. */
    for (int k = 0; k < 5; k++) {
        check_few_threads("readers parked");
        test_wait_timer(10 * MS);
    }
    for (int i = 0; i < n; i++) {
        uint64_t v = a[i].want;
        CHECK_EQ(gort_write(sv[i][1], &v, sizeof v), sizeof v);
    }
    gort_wg_wait(&wg);
    check_few_threads("readers done");
    for (int i = 0; i < n; i++) {
        CHECK_EQ(gort_close(sv[i][0]), 0);
        CHECK_EQ(gort_close(sv[i][1]), 0);
    }
    free(sv);
    free(a);
}

TEST(netpoll_10k_blocked_reads_hold_no_threads) {
    long lim = raise_nofile();
    many_n = (int)test_scale(10000, 2000, 1000);
    if (many_n > (lim - 64) / 2) {
        printf("# RLIMIT_NOFILE %ld: %ld socket pairs instead of %d\n", lim, (lim - 64) / 2,
               many_n);
        many_n = (int)((lim - 64) / 2);
    }
    test_run_with(2, many_readers_main, NULL);
    test_run_with(4, many_readers_main, NULL);
}

/* ---- pipes, FIFOs, ttys and eventfds park too ----------------------------------- */

enum { K_PIPE, K_FIFO, K_TTY, K_EVENTFD, K_KINDS };
static const char *kind_name[K_KINDS] = { "pipe", "fifo", "tty", "eventfd" };

typedef struct {
    int rd, wr;
} endpair;

/* A reader end and a writer end of the kind; dir: a temporary directory. */
static endpair make_ends(int kind, const char *dir, int i) {
    endpair e = { -1, -1 };
    switch (kind) {
    case K_PIPE: {
        int p[2];
        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        e.rd = p[0], e.wr = p[1];
        break;
    }
    case K_FIFO: {
        char path[256];
        snprintf(path, sizeof path, "%s/fifo%d", dir, i);
        CHECK_EQ(mkfifo(path, 0600), 0);
        e.rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* no writer yet */
        CHECK(e.rd >= 0);
        e.wr = open(path, O_WRONLY | O_CLOEXEC);
        CHECK(e.wr >= 0);
        CHECK_EQ(unlink(path), 0);
        break;
    }
    case K_TTY: {
        int master, slave;
        CHECK_EQ(openpty(&master, &slave, NULL, NULL, NULL), 0);
        struct termios tio;
        CHECK_EQ(tcgetattr(slave, &tio), 0);
        cfmakeraw(&tio); /* bytes pass as they are, no line discipline */
        CHECK_EQ(tcsetattr(slave, TCSANOW, &tio), 0);
        fcntl(master, F_SETFD, FD_CLOEXEC);
        fcntl(slave, F_SETFD, FD_CLOEXEC);
        e.rd = slave, e.wr = master;
        break;
    }
    default: e.rd = e.wr = eventfd(0, EFD_CLOEXEC); CHECK(e.rd >= 0);
    }
    return e;
}

static void close_ends(endpair e) {
    CHECK_EQ(gort_close(e.rd), 0);
    if (e.wr != e.rd)
        CHECK_EQ(gort_close(e.wr), 0);
}

static void kinds_main(void *arg) {
    (void)arg;
    char dir[] = "/tmp/gort-test-netpoll-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    int counts[K_KINDS] = { (int)test_scale(500, 200, 100), (int)test_scale(200, 100, 50), 16,
                            (int)test_scale(500, 200, 100) };
    for (int kind = 0; kind < K_KINDS; kind++) {
        int n = counts[kind];
        endpair *e = calloc((size_t)n, sizeof *e);
        reader_arg *a = calloc((size_t)n, sizeof *a);
        CHECK(e && a);
        gort_waitgroup wg = { 0 };
        atomic_store(&readers_started, 0);
        for (int i = 0; i < n; i++)
            e[i] = make_ends(kind, dir, i);
        gort_wg_add(&wg, n);
        for (int i = 0; i < n; i++) {
            a[i] = (reader_arg){ e[i].rd, 1000 + (uint64_t)i, &wg };
            CHECK(gort_go(blocked_reader, &a[i]) > 0);
        }
        test_yield_until(&readers_started, n);
        test_wait_timer(5 * MS);
        check_few_threads(kind_name[kind]);
        for (int i = 0; i < n; i++) {
            uint64_t v = a[i].want;
            CHECK_EQ(gort_write(e[i].wr, &v, sizeof v), sizeof v);
        }
        gort_wg_wait(&wg);
        for (int i = 0; i < n; i++)
            close_ends(e[i]);
        free(e);
        free(a);
    }
    CHECK_EQ(rmdir(dir), 0);
}

TEST(netpoll_pipes_fifos_ttys_eventfds_park) {
    raise_nofile();
    test_run_with(1, kinds_main, NULL);
    test_run_with(2, kinds_main, NULL);
}

/* ---- an idle runtime uses next to no CPU --------------------------------------------- */

static int64_t cpu_ns(void) {
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static atomic_int accept_state;
static int accept_result;

static void idle_acceptor(void *arg) {
    int l = *(int *)arg;
    atomic_store(&accept_state, 1);
    accept_result = gort_accept(l, NULL, NULL);
    atomic_store(&accept_state, 2);
}

static void idle_sleeper(void *arg) {
    gort_sleep(200 * MS);
    gort_wg_done(arg);
}

static void idle_main(void *arg) {
    (void)arg;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ(listen(l, 16), 0);
    atomic_store(&accept_state, 0);
    CHECK(gort_go(idle_acceptor, &l) > 0);
    test_yield_until(&accept_state, 1);
    test_wait_timer(5 * MS); /* let start-up settle */
    gort_waitgroup wg = { 0 };
    int64_t cpu0 = cpu_ns(), t0 = gort_now();
    gort_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(idle_sleeper, &wg) > 0);
    gort_wg_wait(&wg); /* main parks too: nothing runs for 200 ms */
    int64_t cpu = cpu_ns() - cpu0, wall = gort_now() - t0;
    printf("# %.1f ms of CPU over %.1f ms idle\n", cpu / 1e6, wall / 1e6);
    CHECK(wall >= 200 * MS);
    CHECK(cpu < 50 * MS);
    CHECK_EQ(atomic_load(&accept_state), 1); /* still waiting */
    CHECK_EQ(gort_close(l), 0);
    while (atomic_load(&accept_state) != 2)
        test_wait_timer(MS);
    CHECK_EQ(accept_result, -EBADF);
}

TEST(netpoll_idle_runtime_uses_little_cpu) {
    if (test_valgrind() && test_skip("Valgrind's own work (translating code) counts as the "
                                     "process's CPU time"))
        return;
    test_run_with(1, idle_main, NULL);
    test_run_with(2, idle_main, NULL);
    test_run_with(4, idle_main, NULL);
}

/* ---- a blocked main is woken by the poller ------------------------------------------ */

static int wake_sv[2];

static void timer_writer(void *arg) {
    (void)arg;
    CHECK_EQ(gort_write(wake_sv[1], "tick", 4), 4);
}

static void *thread_writer(void *arg) {
    (void)arg;
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL); /* not synchronisation: main waits whatever the delay */
    CHECK_EQ(write(wake_sv[1], "thrd", 4), 4);
    return NULL;
}

static void blocked_main(void *arg) {
    (void)arg;
    char buf[8];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wake_sv), 0);
    /* Every goroutine blocked, one in the poller, a timer pending: the
     * function timer's goroutine writes. Not a deadlock. */
    gort_timer *t;
    CHECK_EQ(gort_timer_start(&t, 30 * MS, 0, NULL, timer_writer, NULL), 0);
    CHECK_EQ(gort_read(wake_sv[0], buf, sizeof buf), 4);
    CHECK(memcmp(buf, "tick", 4) == 0);
    gort_timer_free(t);
    /* A thread that is not a goroutine writes: the M in epoll wakes. */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_writer, NULL), 0);
    CHECK_EQ(gort_read(wake_sv[0], buf, sizeof buf), 4);
    CHECK(memcmp(buf, "thrd", 4) == 0);
    gort_syscall_enter();
    pthread_join(th, NULL);
    gort_syscall_exit();
    CHECK_EQ(gort_close(wake_sv[0]), 0);
    CHECK_EQ(gort_close(wake_sv[1]), 0);
}

TEST(netpoll_wakes_a_blocked_main) {
    test_run_with(1, blocked_main, NULL);
    test_run_with(2, blocked_main, NULL);
}

/* ---- many ping-pong pairs ------------------------------------------------------------ */

typedef struct {
    int fd;
    int rounds;
    int serve; /* 1: echo what comes; 0: send and check */
    gort_waitgroup *wg;
} pp_arg;

static void pinger(void *arg) {
    pp_arg *a = arg;
    uint32_t v;
    for (int r = 0; r < a->rounds; r++) {
        if (a->serve) {
            CHECK_EQ(gort_read(a->fd, &v, sizeof v), sizeof v);
            v = v * 3 + 1;
            CHECK_EQ(gort_write(a->fd, &v, sizeof v), sizeof v);
        } else {
            v = (uint32_t)(r * 7919 + a->fd);
            CHECK_EQ(gort_write(a->fd, &v, sizeof v), sizeof v);
            uint32_t back = 0;
            CHECK_EQ(gort_read(a->fd, &back, sizeof back), sizeof back);
            CHECK_EQ(back, v * 3 + 1);
        }
    }
    gort_wg_done(a->wg);
}

static void pingpong_main(void *arg) {
    (void)arg;
    int n = (int)test_scale(1000, 300, 200), rounds = (int)test_scale(100, 30, 20);
    int(*sv)[2] = calloc((size_t)n, sizeof *sv);
    pp_arg *a = calloc((size_t)n * 2, sizeof *a);
    CHECK(sv && a);
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 2 * n);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
        a[2 * i] = (pp_arg){ sv[i][0], rounds, 1, &wg };
        a[2 * i + 1] = (pp_arg){ sv[i][1], rounds, 0, &wg };
        CHECK(gort_go(pinger, &a[2 * i]) > 0);
        CHECK(gort_go(pinger, &a[2 * i + 1]) > 0);
    }
    gort_wg_wait(&wg);
    check_few_threads("ping-pong");
    for (int i = 0; i < n; i++) {
        CHECK_EQ(gort_close(sv[i][0]), 0);
        CHECK_EQ(gort_close(sv[i][1]), 0);
    }
    free(sv);
    free(a);
}

TEST(netpoll_many_ping_pong_pairs) {
    raise_nofile();
    test_run_with(1, pingpong_main, NULL);
    test_run_with(4, pingpong_main, NULL);
}

/* ---- shutdown with goroutines parked in the poller and on timers --------------------- */

enum { SD_PAIRS = 40 };
static int sd_sv[SD_PAIRS][2];
static int sd_listener;
static int sd_kept[2]; /* a pair kept open across runs */
static gort_timer *sd_timers[4];
static gort_chan *sd_chans[4];

static void sd_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16];
    gort_read(fd, buf, sizeof buf);
    CHECK(0); /* nobody writes */
}

static void sd_writer(void *arg) {
    int fd = (int)(intptr_t)arg;
    static char big[1 << 20];
    for (;;)
        if (gort_write(fd, big, sizeof big) < 0)
            CHECK(0);
}

static void sd_waiter(void *arg) {
    int fd = (int)(intptr_t)arg;
    gort_fd_wait(fd, GORT_READ, gort_now() + 3600 * SEC);
    CHECK(0);
}

static void sd_acceptor(void *arg) {
    (void)arg;
    gort_accept(sd_listener, NULL, NULL);
    CHECK(0);
}

static void sd_sleeper(void *arg) {
    (void)arg;
    gort_sleep(3600 * SEC);
    CHECK(0);
}

static void sd_main(void *arg) {
    int run = *(int *)arg;
    char buf[16];
    /* The pair kept across runs: the last run's reader was abandoned on it;
     * in this run it works (a new poller registers it afresh). */
    if (run > 0) {
        CHECK_EQ(gort_write(sd_kept[1], "kept", 4), 4);
        CHECK_EQ(gort_read(sd_kept[0], buf, sizeof buf), 4);
        CHECK(memcmp(buf, "kept", 4) == 0);
    }
    CHECK(gort_go(sd_reader, (void *)(intptr_t)sd_kept[0]) > 0);
    for (int i = 0; i < SD_PAIRS; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sd_sv[i]), 0);
        switch (i % 4) {
        case 0: CHECK(gort_go(sd_reader, (void *)(intptr_t)sd_sv[i][0]) > 0); break;
        case 1: CHECK(gort_go(sd_writer, (void *)(intptr_t)sd_sv[i][0]) > 0); break;
        case 2:
            CHECK_EQ(gort_fd_set_deadline(sd_sv[i][0], GORT_READ, gort_now() + 3600 * SEC), 0);
            CHECK(gort_go(sd_reader, (void *)(intptr_t)sd_sv[i][0]) > 0);
            break;
        default: CHECK(gort_go(sd_waiter, (void *)(intptr_t)sd_sv[i][0]) > 0);
        }
    }
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sd_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(bind(sd_listener, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ(listen(sd_listener, 4), 0);
    CHECK(gort_go(sd_acceptor, NULL) > 0);
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(sd_sleeper, NULL) > 0);
    for (int i = 0; i < 4; i++) {
        sd_chans[i] = test_mkchan(sizeof(int64_t), 1);
        CHECK_EQ(gort_timer_start(&sd_timers[i], i % 2 ? 3600 * SEC : 0, i % 2 ? 0 : MS,
                                  sd_chans[i], NULL, NULL),
                 0);
    }
    test_wait_timer(5 * MS); /* most of them parked by now; any state will do */
}

TEST(netpoll_shutdown_with_parked_goroutines) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sd_kept), 0);
    int before = count_fds();
    int runs = (int)test_scale(20, 20, 10);
    for (int run = 0; run < runs; run++) {
        test_run_with(1 + run % 4, sd_main, &run);
        for (int i = 0; i < SD_PAIRS; i++) {
            CHECK_EQ(close(sd_sv[i][0]), 0);
            CHECK_EQ(close(sd_sv[i][1]), 0);
        }
        CHECK_EQ(close(sd_listener), 0);
        for (int i = 0; i < 4; i++) {
            gort_timer_free(sd_timers[i]);
            gort_chan_free(sd_chans[i]);
        }
        /* The runtime's own descriptors (epoll, eventfd, timerfd) are gone. */
        CHECK_EQ(count_fds(), before);
    }
    close(sd_kept[0]);
    close(sd_kept[1]);
}
