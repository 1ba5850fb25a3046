
/*
 * MessagePack as Redis's cmsgpack wrote it, read as the reply the script
 * would have sent for the Lua value: Redis turns a Lua number into an
 * integer, true into 1, false into a nil bulk and a table into an array.
 * What this file is not sure to convert the same way is declined, never
 * guessed.  msgpack_next() reads one value's head in place (a list page is
 * walked so); msgpack_reply() builds the whole tree in a pool (an
 * idempotency record's answer, which the replay answers like a script's
 * reply).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_msgpack.h"


/* a Lua number holds integers exactly up to here */
#define NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX  ((int64_t) 1 << 53)


typedef struct {
    ngx_http_supportdesk_msgpack_t   text;
    ngx_pool_t                      *pool;
} ngx_http_supportdesk_msgpack_tree_t;


static ngx_int_t ngx_http_supportdesk_msgpack_value(
    ngx_http_supportdesk_msgpack_tree_t *tree, ngx_uint_t depth,
    redisReply **reply);
static ngx_int_t ngx_http_supportdesk_msgpack_length(
    ngx_http_supportdesk_msgpack_t *mp, size_t size, uint64_t *n);


ngx_int_t
ngx_http_supportdesk_msgpack_next(ngx_http_supportdesk_msgpack_t *mp,
    ngx_http_supportdesk_msgpack_item_t *item)
{
    u_char    b;
    size_t    size;
    uint64_t  n;

    if (mp->p == mp->last) {
        return NGX_DECLINED;
    }

    b = *mp->p++;

    /* positive and negative fixint */
    if (b <= 0x7f || b >= 0xe0) {
        item->type = REDIS_REPLY_INTEGER;
        item->integer = (int8_t) b;
        return NGX_OK;
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
        item->type = REDIS_REPLY_NIL;
        return NGX_OK;

    case 0xc3:  /* true */
        item->type = REDIS_REPLY_INTEGER;
        item->integer = 1;
        return NGX_OK;

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

        item->type = REDIS_REPLY_INTEGER;
        item->integer = (int64_t) n;
        return NGX_OK;

    case 0xd0:  /* int 8, 16, 32, 64: sign-extended from their width */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        size = 1 << (b - 0xd0);

        if (ngx_http_supportdesk_msgpack_length(mp, size, &n) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (size < 8 && (n & ((uint64_t) 1 << (8 * size - 1)))) {
            n |= ~(uint64_t) 0 << (8 * size);
        }

        item->type = REDIS_REPLY_INTEGER;
        item->integer = (int64_t) n;

        if (item->integer > NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX
            || item->integer < -NGX_HTTP_SUPPORTDESK_MSGPACK_INT_MAX)
        {
            return NGX_DECLINED;
        }

        return NGX_OK;

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
         * ext: not in what the scripts pack
         */
        return NGX_DECLINED;
    }

string:

    if (n > (uint64_t) (mp->last - mp->p)) {
        return NGX_DECLINED;
    }

    item->type = REDIS_REPLY_STRING;
    item->str = mp->p;
    item->len = n;
    mp->p += n;

    return NGX_OK;

array:

    /* every element takes a byte at least: a count is never trusted more */
    if (n > (uint64_t) (mp->last - mp->p)) {
        return NGX_DECLINED;
    }

    item->type = REDIS_REPLY_ARRAY;
    item->len = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_msgpack_reply(ngx_pool_t *pool, const u_char *p,
    size_t len, redisReply **reply)
{
    ngx_int_t                            rc;
    ngx_http_supportdesk_msgpack_tree_t  tree;

    tree.text.p = p;
    tree.text.last = p + len;
    tree.pool = pool;

    rc = ngx_http_supportdesk_msgpack_value(&tree, 0, reply);

    /* a second value would be a second result of cmsgpack.unpack() */
    if (rc == NGX_OK && tree.text.p != tree.text.last) {
        return NGX_DECLINED;
    }

    return rc;
}


ngx_int_t
ngx_http_supportdesk_msgpack_check(const u_char *p, size_t len)
{
    size_t                               pending;
    ngx_http_supportdesk_msgpack_t       mp;
    ngx_http_supportdesk_msgpack_item_t  item;

    mp.p = p;
    mp.last = p + len;

    /* the values still to read: next() bounds an array's count by the text */
    for (pending = 1; pending; pending--) {
        if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (item.type == REDIS_REPLY_ARRAY) {
            pending += item.len;
        }
    }

    return (mp.p == mp.last) ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_supportdesk_msgpack_value(ngx_http_supportdesk_msgpack_tree_t *tree,
    ngx_uint_t depth, redisReply **reply)
{
    size_t                               i;
    ngx_int_t                            rc;
    redisReply                          *r;
    ngx_http_supportdesk_msgpack_item_t  item;

    rc = ngx_http_supportdesk_msgpack_next(&tree->text, &item);
    if (rc != NGX_OK) {
        return rc;
    }

    if (item.type == REDIS_REPLY_ARRAY
        && depth == NGX_HTTP_SUPPORTDESK_MSGPACK_DEPTH)
    {
        return NGX_DECLINED;
    }

    r = ngx_pcalloc(tree->pool, sizeof(redisReply));
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->type = item.type;
    *reply = r;

    switch (item.type) {

    case REDIS_REPLY_INTEGER:
        r->integer = item.integer;
        return NGX_OK;

    case REDIS_REPLY_STRING:
        r->str = ngx_pnalloc(tree->pool, item.len + 1);
        if (r->str == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(r->str, item.str, item.len);
        r->str[item.len] = '\0';
        r->len = item.len;
        return NGX_OK;

    case REDIS_REPLY_ARRAY:
        break;

    default: /* REDIS_REPLY_NIL */
        return NGX_OK;
    }

    if (item.len) {
        r->element = ngx_palloc(tree->pool, item.len * sizeof(redisReply *));
        if (r->element == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < item.len; i++) {
        rc = ngx_http_supportdesk_msgpack_value(tree, depth + 1,
                                                &r->element[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    r->elements = item.len;

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
