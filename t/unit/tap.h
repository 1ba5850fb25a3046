
/*
 * A tiny TAP producer for the C unit tests, so that `prove` runs them next
 * to the Perl tests.  The plan is printed last ("1..N" after the tests),
 * which TAP allows and which spares counting tests by hand.
 */


#ifndef _NGX_HTTP_SUPPORTDESK_TAP_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_TAP_H_INCLUDED_


#include <stdarg.h>
#include <stdio.h>
#include <string.h>


#define tap_ok(pass, ...)                                                     \
    tap_result(pass, __FILE__, __LINE__, __VA_ARGS__)

/* compares two NUL-terminated strings, either may be NULL ("valid") */
#define tap_is(got, want, ...)                                                \
    tap_is_str(got, want, __FILE__, __LINE__, __VA_ARGS__)

#define tap_is_int(got, want, ...)                                            \
    tap_is_num((long long) (got), (long long) (want), __FILE__, __LINE__,     \
               __VA_ARGS__)


/* descriptions are printf formats: let -Wformat check every call */
#define TAP_PRINTF(fmt, first)  __attribute__ ((format (printf, fmt, first)))


static int tap_result(int pass, const char *file, int line, const char *fmt,
    ...) TAP_PRINTF(4, 5);
static int tap_is_str(const char *got, const char *want, const char *file,
    int line, const char *fmt, ...) TAP_PRINTF(5, 6);
static int tap_is_num(long long got, long long want, const char *file,
    int line, const char *fmt, ...) TAP_PRINTF(5, 6);


static unsigned  tap_run;
static unsigned  tap_failed;


static void
tap_vresult(int pass, const char *file, int line, const char *fmt,
    va_list args)
{
    tap_run++;

    printf("%sok %u - ", pass ? "" : "not ", tap_run);
    vprintf(fmt, args);
    printf("\n");

    if (!pass) {
        tap_failed++;
        fprintf(stderr, "#   Failed test at %s line %d.\n", file, line);
    }

    fflush(stdout);
}


static int
tap_result(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    tap_vresult(pass, file, line, fmt, args);
    va_end(args);

    return pass;
}


static int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  args;

    if (got == NULL || want == NULL) {
        pass = (got == want);

    } else {
        pass = (strcmp(got, want) == 0);
    }

    va_start(args, fmt);
    tap_vresult(pass, file, line, fmt, args);
    va_end(args);

    if (!pass) {
        fprintf(stderr, "#          got: %s%s%s\n#     expected: %s%s%s\n",
                got ? "'" : "", got ? got : "NULL", got ? "'" : "",
                want ? "'" : "", want ? want : "NULL", want ? "'" : "");
    }

    return pass;
}


static int
tap_is_num(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  args;

    pass = (got == want);

    va_start(args, fmt);
    tap_vresult(pass, file, line, fmt, args);
    va_end(args);

    if (!pass) {
        fprintf(stderr, "#          got: %lld\n#     expected: %lld\n",
                got, want);
    }

    return pass;
}


/* prints the plan; the exit status tells make whether all passed */

static int
tap_done(void)
{
    printf("1..%u\n", tap_run);

    if (tap_failed) {
        fprintf(stderr, "# Looks like you failed %u test%s of %u.\n",
                tap_failed, tap_failed == 1 ? "" : "s", tap_run);
        return 1;
    }

    return 0;
}


#endif /* _NGX_HTTP_SUPPORTDESK_TAP_H_INCLUDED_ */
