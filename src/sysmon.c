/*
 * sysmon.c: the system monitor, an M that runs without a P (Go's sysmon,
 * made by newm(sysmon, NULL)). For now it prints GORT_DEBUG's schedtrace;
 * retaking Ps from goroutines stuck in system calls comes with the
 * syscall hand-off. It sleeps on sched.sysmonnote, so shutdown can wake
 * it at once.
 */
#include "runtime.h"

void gort__sysmon(void) {
    int64_t period = (int64_t)gort__debug_schedtrace * 1000000;
    int64_t next = gort__nanotime() + period;
    for (;;) {
        if (load_acq(&gort__sched.shutdown))
            return;
        int64_t now = gort__nanotime();
        if (now < next && gort__notetsleep(&gort__sched.sysmonnote, next - now))
            return;   /* woken: shutdown */
        if (gort__debug_schedtrace > 0 && gort__nanotime() >= next) {
            gort__schedtrace(false);
            next += period;
        }
    }
}
