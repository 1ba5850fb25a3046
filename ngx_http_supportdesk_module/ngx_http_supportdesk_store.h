
/*
 * Storage calls: what every action does to talk to Redis.  Arguments are
 * built with lengths taken from ngx_str_t or sizeof, keys carry the app's
 * hash tag, a reply is checked once for its type, and every error Redis or
 * a script answers is mapped to the API's answer in one place.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_STORE_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_envelope.h"


/* the reply types a store_call() handler accepts */
#define NGX_HTTP_SUPPORTDESK_REPLY_STRING    0x01
#define NGX_HTTP_SUPPORTDESK_REPLY_ARRAY     0x02
#define NGX_HTTP_SUPPORTDESK_REPLY_INTEGER   0x04
#define NGX_HTTP_SUPPORTDESK_REPLY_NIL       0x08
/* the answer goes back to the phases (ctx->status), not to the client */
#define NGX_HTTP_SUPPORTDESK_REPLY_RESUME    0x100
/*
 * the script answers cmsgpack.pack() of its answer (a string the handler
 * reads in place): a replay hands it the record's answer as it is kept
 */
#define NGX_HTTP_SUPPORTDESK_REPLY_PACKED    0x200


/* a command's arguments, in r->pool: they live until its reply */
typedef struct {
    const char                 **argv;
    size_t                      *argvlen;
    int                          argc;
    int                          nalloc;
    ngx_pool_t                  *pool;
    /* out of memory or room: checked once, by the call */
    ngx_uint_t                   failed;
} ngx_http_supportdesk_args_t;


/* room for n arguments; a failure shows as args->failed, like any other */
void ngx_http_supportdesk_args_init(ngx_http_supportdesk_args_t *args,
    ngx_pool_t *pool, int n);
void ngx_http_supportdesk_args_add(ngx_http_supportdesk_args_t *args,
    const u_char *data, size_t len);
void ngx_http_supportdesk_args_add_or(ngx_http_supportdesk_args_t *args,
    ngx_str_t *s, const u_char *text, size_t len);
void ngx_http_supportdesk_args_uint(ngx_http_supportdesk_args_t *args,
    ngx_uint_t n);
/* now, in unix seconds */
void ngx_http_supportdesk_args_time(ngx_http_supportdesk_args_t *args);
/* sd:{<app>}:<type>[:<suffix>]: every key of an app in one slot; an
   empty type gives the app's prefix, sd:{<app>}: */
void ngx_http_supportdesk_args_key(ngx_http_supportdesk_args_t *args,
    ngx_str_t *app, const u_char *type, size_t type_len, ngx_str_t *suffix);

/*
 * What every write script opens with (redis/lib.lua): right after numkeys,
 * its three keys (the change feed, its counter, the idempotency record of
 * idem, under item when item >= 0: a batch's items); right after the
 * script's own keys, its five arguments.  fp is the request's fingerprint,
 * len 0 without an Idempotency-Key.
 */
void ngx_http_supportdesk_args_feed_keys(ngx_http_supportdesk_args_t *args,
    ngx_str_t *app, ngx_str_t *idem, ngx_int_t item);
void ngx_http_supportdesk_args_feed_argv(ngx_http_supportdesk_args_t *args,
    ngx_str_t *fp, ngx_str_t *idempotency_ttl,
    ngx_http_supportdesk_main_conf_t *smcf);

/* the same for a request's write, from its context */
#define ngx_http_supportdesk_args_write_keys(args, ctx, item)                \
    ngx_http_supportdesk_args_feed_keys(args, &(ctx)->app,                    \
                                        &(ctx)->idempotency_key, item)
void ngx_http_supportdesk_args_write_argv(ngx_http_supportdesk_args_t *args,
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx);

#define ngx_http_supportdesk_args_literal(args, text)                        \
    ngx_http_supportdesk_args_add(args, (u_char *) text, sizeof(text) - 1)
#define ngx_http_supportdesk_args_str(args, s)                               \
    ngx_http_supportdesk_args_add(args, (s)->data, (s)->len)
/* s, or text when s is empty */
#define ngx_http_supportdesk_args_str_or(args, s, text)                      \
    ngx_http_supportdesk_args_add_or(args, s, (u_char *) text,               \
                                     sizeof(text) - 1)
#define ngx_http_supportdesk_args_key_literal(args, app, type, suffix)       \
    ngx_http_supportdesk_args_key(args, app, (u_char *) type,                \
                                  sizeof(type) - 1, suffix)
#define ngx_http_supportdesk_args_app_key(args, ctx, type, suffix)           \
    ngx_http_supportdesk_args_key_literal(args, &(ctx)->app, type, suffix)


/*
 * Sends the command for the request and answers it once the reply is in
 * (every command of a request counts in $supportdesk_redis_time):
 * an error reply through ngx_http_supportdesk_store_error(), a reply of
 * another type than flags allows as a 500, else through reply().  Returns
 * NGX_DONE, or a status to answer at once (503 when Redis is unreachable).
 */
ngx_int_t ngx_http_supportdesk_store_call(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t script,
    ngx_http_supportdesk_args_t *args, ngx_uint_t flags,
    ngx_http_supportdesk_reply_pt reply);

/*
 * Queues one of several commands of a request (a batch): behind prev on its
 * connection when prev is not NULL, so replies keep the request's order.
 * NULL when Redis cannot take it (logged).
 */
ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_store_queue(
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx,
    ngx_http_supportdesk_redis_op_t *prev, ngx_int_t script,
    ngx_http_supportdesk_args_t *args,
    ngx_http_supportdesk_redis_handler_pt handler, void *data);

/*
 * A write script's answer recorded under an Idempotency-Key comes wrapped
 * as {SD_REPLAY, answer}: the answer, with *replayed set; one that appended
 * n events to the feed as {SD_EVENTS, n, answer}: the answer; else reply.
 * Both are counted for the metrics.
 */
redisReply *ngx_http_supportdesk_store_unwrap(redisReply *reply,
    ngx_uint_t *replayed);

/*
 * An error reply as the API answers it: our scripts' SD_* refusals as
 * their errors, Redis refusing the work (LOADING, OOM, READONLY...) as
 * 503, anything else as 500; logged.  NGX_ERROR: out of memory.
 */
ngx_int_t ngx_http_supportdesk_store_error(ngx_http_request_t *r,
    redisReply *reply, ngx_http_supportdesk_error_t *err);

/*
 * The string values of an HGETALL reply's fields named in names (ending
 * with a null string), into values (NULL where absent), in names' order.
 */
void ngx_http_supportdesk_store_fields(redisReply *hash, ngx_str_t *names,
    redisReply **values);

/* a reply of the right type but the wrong shape: logged, 500 */
ngx_int_t ngx_http_supportdesk_store_unexpected(ngx_http_request_t *r,
    redisReply *reply);

/* answers rc (a status becomes its error envelope) and ends the request */
void ngx_http_supportdesk_finish(ngx_http_request_t *r, ngx_int_t rc);

/* ends the request when its client leaves while Redis works */
void ngx_http_supportdesk_watch_client(ngx_http_request_t *r);



#endif /* _NGX_HTTP_SUPPORTDESK_STORE_H_INCLUDED_ */
