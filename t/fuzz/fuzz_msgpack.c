
/*
 * libFuzzer: an idempotency record's answer read back,
 * ngx_http_supportdesk_msgpack_reply(), on any bytes (a record in Redis
 * is data the worker did not write itself).  It never reads past the
 * input, allocates in proportion to it, and what it builds is a reply
 * tree of the types it promises: integers within 2^53, 0-terminated
 * strings of the given length, arrays nested within the depth bound.
 * msgpack_check() on the same bytes takes whatever msgpack_reply() built.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_msgpack.h"
#include "fuzz_common.h"


static size_t fuzz_check(redisReply *r, ngx_uint_t depth);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *copy;
    ngx_int_t    rc;
    redisReply  *reply;

    /* a buffer of exactly the input's size: ASan sees a read past it */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    reply = NULL;
    rc = ngx_http_supportdesk_msgpack_reply(NULL, copy, size, &reply);

    FUZZ_ASSERT(rc == NGX_OK || rc == NGX_DECLINED, "OK or DECLINED");

    if (rc == NGX_OK) {
        /* every value took one byte of the input at least */
        FUZZ_ASSERT(fuzz_check(reply, 0) <= size, "values <= bytes");
    }

    /* what a replay hands upsert's handler: whatever builds, checks too */
    FUZZ_ASSERT(ngx_http_supportdesk_msgpack_check(copy, size) == NGX_OK
                || rc != NGX_OK, "check takes what reply takes");

    free(copy);
    fuzz_pool_reset();

    return 0;
}


/* the values in r, checked */

static size_t
fuzz_check(redisReply *r, ngx_uint_t depth)
{
    size_t  i, n;

    FUZZ_ASSERT(r != NULL, "a value");

    switch (r->type) {

    case REDIS_REPLY_INTEGER:
        FUZZ_ASSERT(r->integer <= ((long long) 1 << 53)
                    && r->integer >= -((long long) 1 << 53),
                    "an integer a Lua number holds");
        return 1;

    case REDIS_REPLY_NIL:
        return 1;

    case REDIS_REPLY_STRING:
        FUZZ_ASSERT(r->str != NULL && r->str[r->len] == '\0',
                    "a 0-terminated string");
        return 1;

    case REDIS_REPLY_ARRAY:
        FUZZ_ASSERT(depth < NGX_HTTP_SUPPORTDESK_MSGPACK_DEPTH,
                    "within the depth bound");
        n = 1;

        for (i = 0; i < r->elements; i++) {
            n += fuzz_check(r->element[i], depth + 1);
        }

        return n;

    default:
        FUZZ_ASSERT(0, "a type the decoder promises");
        return 0;
    }
}
