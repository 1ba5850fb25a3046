
/*
 * Redis replies, parsed by hiredis's redisReader into a connection's
 * arena: no malloc() per element, bounds checked before anything is
 * built.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_REPLY_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>


/* the bound a reply broke */
#define NGX_HTTP_SUPPORTDESK_REPLY_SIZE      1
#define NGX_HTTP_SUPPORTDESK_REPLY_ELEMENTS  2


typedef struct ngx_http_supportdesk_reply_block_s
    ngx_http_supportdesk_reply_block_t;


typedef struct {
    /* the block kept for the connection, and those a large reply added */
    ngx_http_supportdesk_reply_block_t  *base;
    ngx_http_supportdesk_reply_block_t  *extra;

    /* the reply being parsed: bytes of its strings, elements of its
       arrays, against the bounds (supportdesk_redis_max_reply_*) */
    size_t                               bytes;
    ngx_uint_t                           elements;
    size_t                               max_bytes;
    ngx_uint_t                           max_elements;
    /* NGX_HTTP_SUPPORTDESK_REPLY_SIZE or _ELEMENTS: the bound broken */
    ngx_uint_t                           refused;

    ngx_log_t                           *log;
} ngx_http_supportdesk_reply_arena_t;


/*
 * A reader whose replies are built in arena (bounds and log set by the
 * caller).  Its replies are valid until ngx_http_supportdesk_reply_done();
 * never pass them to freeReplyObject().  redisReaderFree() frees the
 * reader; ngx_http_supportdesk_reply_free() the arena.
 */
redisReader *ngx_http_supportdesk_reply_reader(
    ngx_http_supportdesk_reply_arena_t *arena);

/* the reply is handled: its memory is the next one's */
void ngx_http_supportdesk_reply_done(ngx_http_supportdesk_reply_arena_t *arena);

void ngx_http_supportdesk_reply_free(ngx_http_supportdesk_reply_arena_t *arena);

/*
 * A copy of a reply that must outlive its handling, in hiredis's own
 * layout (malloc() per element): freed by freeReplyObject().  NULL: no
 * memory, logged.
 */
redisReply *ngx_http_supportdesk_reply_copy(redisReply *reply,
    ngx_log_t *log);


#endif /* _NGX_HTTP_SUPPORTDESK_REPLY_H_INCLUDED_ */
