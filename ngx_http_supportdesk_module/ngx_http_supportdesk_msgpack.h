
/*
 * The answer an idempotency record keeps (redis/lib.lua: cmsgpack.pack()
 * of the write script's answer), read back in the worker: a replay is
 * answered from an HMGET of the record, without running the script.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_MSGPACK_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_MSGPACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>


/* deeper answers are left to the script (ours nest two levels) */
#define NGX_HTTP_SUPPORTDESK_MSGPACK_DEPTH  8


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
