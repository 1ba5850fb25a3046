
/*
 * MessagePack as Redis's cmsgpack.pack() writes it, read in the worker:
 * the answer an idempotency record keeps (redis/lib.lua), so that a replay
 * is answered from an HMGET of the record without running the script; a
 * page of the list (redis/list.lua), one string Redis sends and the
 * worker walks without a reply object per value.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_MSGPACK_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_MSGPACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>


/* deeper answers are left to the script (ours nest two levels) */
#define NGX_HTTP_SUPPORTDESK_MSGPACK_DEPTH  8


/* a MessagePack text being read, one value after the other */
typedef struct {
    const u_char  *p;
    const u_char  *last;
} ngx_http_supportdesk_msgpack_t;


/*
 * One value's head: REDIS_REPLY_INTEGER (integer), REDIS_REPLY_STRING
 * (str, len: inside the text, not copied, not 0-terminated),
 * REDIS_REPLY_ARRAY (len elements follow, each read by its own call) or
 * REDIS_REPLY_NIL (false, as Redis answers a Lua false).
 */
typedef struct {
    int            type;
    int64_t        integer;
    const u_char  *str;
    size_t         len;
} ngx_http_supportdesk_msgpack_item_t;


/*
 * Reads the next value's head into item and moves past it (past a
 * string's bytes too).  NGX_DECLINED: what the module does not convert
 * the way Redis would (maps, nil, floats, integers beyond 2^53, bin,
 * ext), the end of the text or a value cut short; an array whose count
 * the rest of the text cannot hold (each element takes a byte at least).
 */
ngx_int_t ngx_http_supportdesk_msgpack_next(ngx_http_supportdesk_msgpack_t *mp,
    ngx_http_supportdesk_msgpack_item_t *item);


/*
 * NGX_OK when the len bytes at p are exactly one value whose every part
 * msgpack_next() reads (as msgpack_reply() would take it, without building
 * it); NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_supportdesk_msgpack_check(const u_char *p, size_t len);


/*
 * The reply Redis sends for the Lua value cmsgpack.unpack() makes of the
 * len bytes at p, built in pool (strings copied, 0-terminated).  Only
 * what the write scripts record is converted: integers, strings, arrays,
 * booleans; NGX_DECLINED for anything else (maps, nil, floats, integers
 * beyond 2^53, trailing bytes, a cut value), which the caller leaves to
 * the script.  NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_supportdesk_msgpack_reply(ngx_pool_t *pool,
    const u_char *p, size_t len, redisReply **reply);


#endif /* _NGX_HTTP_SUPPORTDESK_MSGPACK_H_INCLUDED_ */
