
/*
 * An idempotency record's answer, MessagePack as Redis's cmsgpack wrote
 * it, decoded into the reply the script would have sent for it: Redis
 * turns a Lua number into an integer, true into 1, false into a nil bulk
 * and a table into an array.  What this file is not sure to convert the
 * same way is declined, never guessed: the script answers those.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_msgpack.h"


/* a Lua number holds integers exactly up to here */
#define NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX  ((int64_t) 1 << 53)


typedef struct {
    const u_char  *p;
    const u_char  *last;
    ngx_pool_t    *pool;
} ngx_http_supportdesk_msgpack_t;


static ngx_int_t ngx_http_supportdesk_msgpack_value(
    ngx_http_supportdesk_msgpack_t *mp, ngx_uint_t depth,
    redisReply **reply);
static ngx_int_t ngx_http_supportdesk_msgpack_length(
    ngx_http_supportdesk_msgpack_t *mp, size_t size, uint64_t *n);
static redisReply *ngx_http_supportdesk_msgpack_new(
    ngx_http_supportdesk_msgpack_t *mp, int type);


ngx_int_t
ngx_http_supportdesk_msgpack_reply(ngx_pool_t *pool, const u_char *p,
    size_t len, redisReply **reply)
{
    ngx_int_t                       rc;
    ngx_http_supportdesk_msgpack_t  mp;

    mp.p = p;
    mp.last = p + len;
    mp.pool = pool;

    rc = ngx_http_supportdesk_msgpack_value(&mp, 0, reply);

    /* a second value would be a second result of cmsgpack.unpack() */
    if (rc == NGX_OK && mp.p != mp.last) {
        return NGX_DECLINED;
    }

    return rc;
}


static ngx_int_t
ngx_http_supportdesk_msgpack_value(ngx_http_supportdesk_msgpack_t *mp,
    ngx_uint_t depth, redisReply **reply)
{
    u_char       b;
    int64_t      integer;
    uint64_t     n, i;
    ngx_int_t    rc;
    redisReply  *r;

    if (mp->p == mp->last) {
        return NGX_DECLINED;
    }

    b = *mp->p++;

    /* positive and negative fixint */
    if (b <= 0x7f || b >= 0xe0) {
        integer = (int8_t) b;
        goto integer;
    }

    /* fixarray, fixstr */
    if (b >= 0x90 && b <= 0x9f) {
        n = b & 0x0f;
        goto array;
    }

    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
        goto string;
    }

    switch (b) {

    case 0xc2:  /* false */
        *reply = ngx_http_supportdesk_msgpack_new(mp, REDIS_REPLY_NIL);
        return (*reply == NULL) ? NGX_ERROR : NGX_OK;

    case 0xc3:  /* true */
        integer = 1;
        goto integer;

    case 0xcc:  /* uint 8, 16, 32, 64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (ngx_http_supportdesk_msgpack_length(mp, 1 << (b - 0xcc), &n)
            != NGX_OK
            || n > (uint64_t) NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX)
        {
            return NGX_DECLINED;
        }

        integer = (int64_t) n;
        goto integer;

    case 0xd0:  /* int 8, 16, 32, 64: sign-extended from their width */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        i = 1 << (b - 0xd0);

        if (ngx_http_supportdesk_msgpack_length(mp, i, &n) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (i < 8 && (n & ((uint64_t) 1 << (8 * i - 1)))) {
            n |= ~(uint64_t) 0 << (8 * i);
        }

        integer = (int64_t) n;

        if (integer > NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX
            || integer < -NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX)
        {
            return NGX_DECLINED;
        }

        goto integer;

    case 0xd9:  /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        if (ngx_http_supportdesk_msgpack_length(mp, 1 << (b - 0xd9), &n)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        goto string;

    case 0xdc:  /* array 16, 32 */
    case 0xdd:
        if (ngx_http_supportdesk_msgpack_length(mp, 2 << (b - 0xdc), &n)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        goto array;

    default:
        /*
         * nil (a hole that would end its Lua array), maps, floats, bin and
         * ext: not in a recorded answer
         */
        return NGX_DECLINED;
    }

integer:

    r = ngx_http_supportdesk_msgpack_new(mp, REDIS_REPLY_INTEGER);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->integer = integer;
    *reply = r;

    return NGX_OK;

string:

    if (n > (uint64_t) (mp->last - mp->p)) {
        return NGX_DECLINED;
    }

    r = ngx_http_supportdesk_msgpack_new(mp, REDIS_REPLY_STRING);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->str = ngx_pnalloc(mp->pool, n + 1);
    if (r->str == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(r->str, mp->p, n);
    r->str[n] = '\0';
    r->len = n;
    mp->p += n;
    *reply = r;

    return NGX_OK;

array:

    /* every element takes a byte at least: no allocation beyond the input */
    if (depth == NGX_HTTP_SUPPORTDESK_MSGPACK_DEPTH
        || n > (uint64_t) (mp->last - mp->p))
    {
        return NGX_DECLINED;
    }

    r = ngx_http_supportdesk_msgpack_new(mp, REDIS_REPLY_ARRAY);
    if (r == NULL) {
        return NGX_ERROR;
    }

    if (n) {
        r->element = ngx_palloc(mp->pool, n * sizeof(redisReply *));
        if (r->element == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < n; i++) {
        rc = ngx_http_supportdesk_msgpack_value(mp, depth + 1,
                                                &r->element[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    r->elements = n;
    *reply = r;

    return NGX_OK;
}


/* a big-endian unsigned of size bytes */

static ngx_int_t
ngx_http_supportdesk_msgpack_length(ngx_http_supportdesk_msgpack_t *mp,
    size_t size, uint64_t *n)
{
    size_t  i;

    if ((size_t) (mp->last - mp->p) < size) {
        return NGX_DECLINED;
    }

    *n = 0;

    for (i = 0; i < size; i++) {
        *n = (*n << 8) | *mp->p++;
    }

    return NGX_OK;
}


static redisReply *
ngx_http_supportdesk_msgpack_new(ngx_http_supportdesk_msgpack_t *mp, int type)
{
    redisReply  *r;

    r = ngx_pcalloc(mp->pool, sizeof(redisReply));
    if (r != NULL) {
        r->type = type;
    }

    return r;
}
