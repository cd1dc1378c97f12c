/*
 * /init of the initramfs that scripts/oldkernel.sh boots: it mounts what the
 * tests use (/proc, /sys, /dev, /dev/pts, /tmp), brings up the loopback
 * interface, prints the kernel's release and the memory settings stacks
 * depend on (transparent huge pages, vm.max_map_count, ...), runs every line
 * of /manifest one after the other with its output on the console, prints
 * one summary line and powers the machine off. Built with gcc -static: the
 * initramfs has no libc.
 *
 * /manifest, one program a line (no quoting: words are split at blanks):
 *
 *   # a comment
 *   [NAME=VALUE ...] [@uid=N] [@timeout=SECONDS] PROGRAM [ARG ...]
 *   @sysctl KEY=VALUE          (KEY as in sysctl(8), e.g. vm.max_map_count)
 *   @write PATH VALUE          (any setting file, e.g. under /sys/kernel/mm)
 *
 * PROGRAM is a name in /bin or a path. NAME=VALUE is added to the program's
 * environment; @uid=N runs it as user and group N instead of root;
 * @timeout=SECONDS kills it (and everything else) after that long, 600 by
 * default. @sysctl and @write change a setting for the programs that
 * follow; a setting that cannot be written counts as a failure.
 *
 * The console shows, for each program,
 *
 *   oldkernel: run test_chan
 *   ... the program's output ...
 *   oldkernel: PASS test_chan (12.3 s)
 *
 * (its arguments after its name; FAIL with the exit code, the signal or
 * "timeout" instead of PASS) and at the end "oldkernel: N passed, M failed
 * in S s", which the host script looks for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORDS       64
#define DEFAULT_TIMEOUT 600

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("oldkernel: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static void mount_or_say(const char *src, const char *dir, const char *type, const char *opts) {
    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, opts) < 0 && errno != EBUSY)
        say("mount %s on %s: %s", type, dir, strerror(errno));
}

/* The tests listen and connect on 127.0.0.1, and a kernel brings lo up only
 * when userspace asks. */
static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
        (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(s, SIOCSIFFLAGS, &ifr) < 0))
        say("bringing up lo: %s", strerror(errno));
    if (s >= 0)
        close(s);
}

static void setup(void) {
    mount_or_say("proc", "/proc", "proc", NULL);
    mount_or_say("sysfs", "/sys", "sysfs", NULL);
    mount_or_say("devtmpfs", "/dev", "devtmpfs", NULL);
    mount_or_say("devpts", "/dev/pts", "devpts", "ptmxmode=0666,mode=0620"); /* openpty */
    mount_or_say("tmpfs", "/tmp", "tmpfs", "mode=1777");
    /* The kernel opened the console for us from the initramfs's own /dev;
     * should it have found none, the one devtmpfs has will do. */
    if (fcntl(STDOUT_FILENO, F_GETFD) < 0) {
        int fd = open("/dev/console", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
    }
    loopback_up();
    setenv("PATH", "/bin", 1);
    setenv("HOME", "/tmp", 1);
    setenv("TMPDIR", "/tmp", 1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes value to the file at path (a /proc/sys or /sys setting); 1 if done. */
static int write_setting(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
    say("set %s to %s%s%s", path, value, ok ? "" : ": ", ok ? "" : strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok;
}

/* @sysctl vm.max_map_count=262144 */
static int do_sysctl(char *arg) {
    char *eq = strchr(arg, '=');
    if (!eq) {
        say("@sysctl %s: want KEY=VALUE", arg);
        return 0;
    }
    *eq = '\0';
    char path[256];
    int n = snprintf(path, sizeof path, "/proc/sys/%s", arg);
    for (char *p = path + strlen("/proc/sys/"); p < path + n; p++)
        if (*p == '.')
            *p = '/';
    return write_setting(path, eq + 1);
}

/* The settings that decide what gort's stacks cost and how they are
 * guarded, as this kernel has them. */
static void show_settings(void) {
    static const char *const files[] = {
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/proc/sys/vm/max_map_count",
        "/proc/sys/vm/overcommit_memory",
        "/proc/sys/vm/unprivileged_userfaultfd",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char buf[256] = "(unreadable)";
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = '\0';
            buf[strcspn(buf, "\n")] = '\0';
            close(fd);
        }
        say("%s: %s", files[i], buf);
    }
}

/* Waits for pid until the deadline, reaping whatever else ends meanwhile
 * (pid 1 inherits the programs' orphans). The wait status, or -1 on
 * timeout. */
static int wait_for(pid_t pid, double deadline) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        int status;
        pid_t r;
        while ((r = waitpid(-1, &status, WNOHANG)) > 0)
            if (r == pid)
                return status;
        double left = deadline - now_s();
        if (left <= 0)
            return -1;
        struct timespec ts = { (time_t)left, (long)((left - (time_t)left) * 1e9) };
        sigtimedwait(&chld, NULL, &ts);
    }
}

/* Whatever a program left behind (a test's forked children in their own
 * process groups, a hung program) is killed before the next one starts. */
static void kill_everything(void) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
}

/* Runs one manifest line (split into words in place); 1 if it passed. */
static int run_line(char **w, int nw) {
    int timeout = DEFAULT_TIMEOUT;
    long uid = -1;
    int first = 0;
    for (; first < nw; first++) {
        if (strncmp(w[first], "@uid=", 5) == 0)
            uid = strtol(w[first] + 5, NULL, 10);
        else if (strncmp(w[first], "@timeout=", 9) == 0)
            timeout = atoi(w[first] + 9);
        else if (w[first][0] == '@' || !strchr(w[first], '='))
            break;
    }
    if (first == nw || w[first][0] == '@') {
        say("FAIL: no program in the line (or an unknown %s)", first < nw ? w[first] : "");
        return 0;
    }
    char *name = w[first];
    char label[256] = ""; /* the program and its arguments, for the console */
    for (int i = first, n = 0; i < nw && n < (int)sizeof label; i++)
        n += snprintf(label + n, sizeof label - (size_t)n, "%s%s", i > first ? " " : "", w[i]);
    say("run %s", label);

    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        say("FAIL %s (fork: %s)", label, strerror(errno));
        return 0;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        for (int i = 0; i < first; i++)
            if (w[i][0] != '@')
                putenv(w[i]);
        if (uid >= 0 &&
            (setgroups(0, NULL) < 0 || setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0)) {
            perror("oldkernel: setuid");
            _exit(127);
        }
        w[nw] = NULL;
        execvp(name, w + first);
        fprintf(stderr, "oldkernel: exec %s: %s\n", name, strerror(errno));
        _exit(127);
    }
    int status = wait_for(pid, start + timeout);
    double took = now_s() - start;
    kill_everything();

    char how[64];
    if (status == -1)
        snprintf(how, sizeof how, "timeout after %d s", timeout);
    else if (WIFEXITED(status))
        snprintf(how, sizeof how, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "signal SIG%s", sigabbrev_np(WTERMSIG(status)) ?: "?");
    else
        snprintf(how, sizeof how, "status %#x", status);
    int passed = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (passed)
        say("PASS %s (%.1f s)", label, took);
    else
        say("FAIL %s (%s, %.1f s)", label, how, took);
    return passed;
}

int main(void) {
    /* SIGCHLD stays blocked in init so that sigtimedwait can wait for it. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    setup();
    struct utsname u;
    if (uname(&u) == 0)
        say("kernel %s %s, %ld CPUs", u.release, u.version, sysconf(_SC_NPROCESSORS_ONLN));
    show_settings();

    int passed = 0, failed = 0;
    double start = now_s();
    FILE *f = fopen("/manifest", "r");
    if (!f) {
        say("no /manifest: %s", strerror(errno));
        failed++;
    }
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        char *w[MAX_WORDS + 1];
        int nw = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok && nw < MAX_WORDS;
             tok = strtok(NULL, " \t\r\n"))
            w[nw++] = tok;
        if (nw == 0 || w[0][0] == '#')
            continue;
        if (strcmp(w[0], "@sysctl") == 0) {
            for (int i = 1; i < nw; i++)
                if (!do_sysctl(w[i]))
                    failed++;
            continue;
        }
        if (strcmp(w[0], "@write") == 0) {
            if (nw != 3 || !write_setting(w[1], w[2]))
                failed++;
            continue;
        }
        if (run_line(w, nw))
            passed++;
        else
            failed++;
    }
    if (f)
        fclose(f);
    say("%d passed, %d failed in %.0f s", passed, failed, now_s() - start);
    sync();
    reboot(RB_POWER_OFF);
    /* pid 1 must not return: the kernel would panic (panic=-1 reboots, and
     * qemu -no-reboot exits, so even that ends the run). */
    for (;;)
        pause();
}
