
/*
 * Shared by the libFuzzer harnesses of t/fuzz (see t/quality.mk, `make fuzz`).
 */

#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>


/* frees everything ngx_palloc() handed out (ngx_shim.c) */
void fuzz_pool_reset(void);

/* a check of the harness failed: make libFuzzer save the input */
#define FUZZ_ASSERT(cond, what)                                               \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz: assertion failed: %s (%s:%d)\n", what,     \
                    __FILE__, __LINE__);                                      \
            abort();                                                          \
        }                                                                     \
    } while (0)


/* strict UTF-8 (RFC 3629), independent of the module's decoder */
static inline int
fuzz_valid_utf8(const unsigned char *p, size_t len)
{
    size_t    i, n, k;
    uint32_t  c, min;

    for (i = 0; i < len; /* void */) {
        c = p[i];

        if (c < 0x80) { i++; continue; }
        else if (c >= 0xc2 && c <= 0xdf) { n = 1; c &= 0x1f; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; c &= 0x0f; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; c &= 0x07; min = 0x10000; }
        else return 0;

        if (len - i <= n) return 0;

        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;

        i += n + 1;
    }

    return 1;
}


#endif /* _FUZZ_COMMON_H_INCLUDED_ */
