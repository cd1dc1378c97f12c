/*
 * gort_after: a channel that receives gort_now() once, ns from now, and
 * frees itself once that value has been received (by a receive or a
 * select); the ones never received are freed when gort_run returns (the
 * ASan build's leak check at exit is the assertion for that).
 */
#include <errno.h>

#include "test.h"

static void after_main(void *arg) {
    (void)arg;
    int n = (int)test_scale(3000, 600, 300);
    for (int i = 0; i < n; i++) {
        gort_chan *c;
        int64_t ns = (i % 7) * 20 * 1000, t0 = gort_now(), v = 0;
        CHECK_EQ(gort_after(&c, ns), 0);
        CHECK_EQ(gort_chan_cap(c), 1);
        switch (i % 4) {
        case 0: /* a plain receive, usually parked before the value comes */
            CHECK_EQ(gort_chan_recv(c, &v), 1);
            break;
        case 1: { /* a select that parks */
            gort_case cs[1] = { { .chan = c, .op = GORT_RECV, .elem = &v } };
            CHECK_EQ(gort_select(cs, 1, 1), 0);
            CHECK_EQ(cs[0].ok, 1);
            break;
        }
        case 2:                           /* the value waits in the buffer */
            while (gort_chan_len(c) == 0) /* until the timer has sent */
                gort_yield();
            CHECK_EQ(gort_chan_recv(c, &v), 1);
            break;
        case 3: {                         /* a select that finds it ready */
            while (gort_chan_len(c) == 0) /* until the timer has sent */
                gort_yield();
            gort_case cs[1] = { { .chan = c, .op = GORT_RECV, .elem = &v } };
            CHECK_EQ(gort_select(cs, 1, 0), 0);
            break;
        }
        }
        CHECK(v >= t0 + ns); /* never early */
    }
    gort_chan *pending, *fired;
    CHECK_EQ(gort_after(&pending, 3600LL * 1000 * 1000 * 1000), 0); /* never fires */
    CHECK_EQ(gort_after(&fired, 1000), 0);
    gort_sleep(100 * 1000); /* fired, never received */
    CHECK_EQ(gort_after(NULL, 1), -EINVAL);
}

TEST(after_fires_once_and_frees_itself) {
    test_run_with(2, after_main, NULL);
    test_run_with(1, after_main, NULL);
}

static void timeout_main(void *arg) {
    (void)arg;
    /* The classic select with a timeout: the data case usually wins. */
    gort_chan *data = test_mkchan(sizeof(int), 1);
    int timeouts = 0;
    for (int i = 0; i < 200; i++) {
        gort_chan *t;
        CHECK_EQ(gort_after(&t, i % 2 ? 1000 : 1000LL * 1000 * 1000), 0);
        int x = i, y;
        if (i % 2 == 0)
            CHECK_EQ(gort_chan_send(data, &x), 0);
        int64_t v;
        gort_case cs[2] = { { .chan = data, .op = GORT_RECV, .elem = &y },
                            { .chan = t, .op = GORT_RECV, .elem = &v } };
        int r = gort_select(cs, 2, 1);
        CHECK(r == 0 || r == 1);
        if (r == 1)
            timeouts++;
        else
            CHECK_EQ(y, i);
    }
    CHECK(timeouts >= 1);
    gort_chan_free(data);
}

TEST(after_as_a_select_timeout) { test_run_with(2, timeout_main, NULL); }
