/*
 * A test fixture (t/38-jobs.t): LD_PRELOADed into one nginx, it moves the
 * wall clock that process sees by SD_CLOCK_SKEW seconds (gettimeofday,
 * clock_gettime of the realtime clocks, time), as if it ran on a host
 * whose clock is off.  The monotonic clock (nginx's timers) is left alone.
 * Built by the test: cc -shared -fPIC -o skew.so clock-skew.c -ldl
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>


static long
skew(void)
{
    static int   read;
    static long  s;

    if (!read) {
        const char *e = getenv("SD_CLOCK_SKEW");
        s = e ? atol(e) : 0;
        read = 1;
    }

    return s;
}


int
gettimeofday(struct timeval *tv, void *tz)
{
    static int (*real)(struct timeval *, void *);
    int          rc;

    if (real == NULL) {
        real = (int (*)(struct timeval *, void *))
               dlsym(RTLD_NEXT, "gettimeofday");
    }

    rc = real(tv, tz);
    if (rc == 0 && tv != NULL) {
        tv->tv_sec += skew();
    }

    return rc;
}


int
clock_gettime(clockid_t clock, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    int          rc;

    if (real == NULL) {
        real = (int (*)(clockid_t, struct timespec *))
               dlsym(RTLD_NEXT, "clock_gettime");
    }

    rc = real(clock, ts);
    if (rc == 0 && ts != NULL
        && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
    {
        ts->tv_sec += skew();
    }

    return rc;
}


time_t
time(time_t *t)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);
    if (t != NULL) {
        *t = tv.tv_sec;
    }

    return tv.tv_sec;
}
