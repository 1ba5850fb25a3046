
/*
 * libFuzzer: the listing's query string and cursor decoding
 * (ngx_http_supportdesk_query.c): ngx_http_supportdesk_query_next() over the
 * whole input, ngx_http_supportdesk_percent_decode() of every name and value
 * into an exact-size buffer, and ngx_http_supportdesk_cursor_decode() of
 * every value (a cursor is whatever a client sends back), checked against
 * ngx_http_supportdesk_cursor_encode() on the way back.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_query.h"
#include "fuzz_common.h"


static void
cursor(ngx_str_t *raw)
{
    u_char      *dst;
    size_t       i;
    ngx_str_t    seq, again, c;
    ngx_pool_t   pool;

    /* the decoder's contract: dst holds cursor->len bytes */
    dst = malloc(raw->len ? raw->len : 1);

    if (ngx_http_supportdesk_cursor_decode(raw, dst, &seq) == NGX_OK) {
        FUZZ_ASSERT(seq.data == dst && seq.len >= 1 && seq.len <= raw->len,
                    "decoded inside dst");
        for (i = 0; i < seq.len; i++) {
            FUZZ_ASSERT(seq.data[i] >= '0' && seq.data[i] <= '9', "digits");
        }

        memset(&pool, 0, sizeof(pool));
        FUZZ_ASSERT(ngx_http_supportdesk_cursor_encode(&pool, seq.data, seq.len,
                                                       &c) == NGX_OK, "encode");
        u_char *d2 = malloc(c.len ? c.len : 1);
        FUZZ_ASSERT(ngx_http_supportdesk_cursor_decode(&c, d2, &again)
                    == NGX_OK && again.len == seq.len
                    && memcmp(again.data, seq.data, seq.len) == 0,
                    "encode/decode round trip");
        free(d2);
    }

    free(dst);
}


static void
decode(ngx_str_t *raw)
{
    u_char     *dst;
    ngx_str_t   out;

    dst = malloc(raw->len ? raw->len : 1);

    if (ngx_http_supportdesk_percent_decode(raw, dst, &out, 1) == NGX_OK) {
        FUZZ_ASSERT(out.data == dst && out.len <= raw->len, "decode bounds");
    }

    free(dst);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *buf, *pos, *end, *last;
    ngx_str_t    name, value;
    ngx_uint_t   n;

    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    pos = buf;
    end = buf + size;
    n = 0;

    for ( ;; ) {
        last = pos;

        if (!ngx_http_supportdesk_query_next(&pos, end, &name, &value)) {
            FUZZ_ASSERT(pos == end, "the whole string is consumed");
            break;
        }

        FUZZ_ASSERT(pos > last && pos <= end, "progress");
        FUZZ_ASSERT(name.data >= buf && name.data + name.len <= end,
                    "name inside");
        FUZZ_ASSERT(value.data >= buf && value.data + value.len <= end,
                    "value inside");
        FUZZ_ASSERT(memchr(name.data, '&', name.len) == NULL
                    && memchr(value.data, '&', value.len) == NULL,
                    "pieces end at &");

        decode(&name);
        decode(&value);
        cursor(&value);

        FUZZ_ASSERT(++n <= size, "bounded");
    }

    /* the whole input as one cursor too */
    value.data = buf;
    value.len = size;
    cursor(&value);

    free(buf);
    fuzz_pool_reset();

    return 0;
}
