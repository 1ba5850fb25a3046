
/*
 * GET /events: an app's change feed (the stream sd:{app}:events that every
 * write script appends to, see redis/lib.lua), oldest first, from a cursor.
 *
 * A long poll (wait > 0) with nothing to return waits in this worker
 * without a blocking command on the pipelined connections and without a
 * Redis poll per waiting request: every 100 ms, one short read per app
 * that has waiters (redis/events_last.lua, the number of its newest
 * event); a waiter whose cursor is behind it reads its page again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_EVENTS_TICK  100


typedef struct ngx_http_supportdesk_watch_s  ngx_http_supportdesk_watch_t;


/* a request waiting for its app's next event */
typedef struct {
    ngx_queue_t                          queue;
    ngx_http_supportdesk_watch_t        *watch;
    ngx_http_request_t                  *request;
    /* the number of the last event it has */
    uint64_t                             after;
    ngx_event_t                          deadline;
} ngx_http_supportdesk_waiter_t;


/* the apps of this worker with waiters: one read each per tick */
struct ngx_http_supportdesk_watch_s {
    ngx_queue_t                          queue;
    ngx_queue_t                          waiters;
    ngx_http_supportdesk_redis_conf_t   *redis;
    ngx_http_supportdesk_redis_op_t     *op;
    /* its waiters are being answered: it must outlive the loop */
    ngx_uint_t                           walking;
    ngx_str_t                            app;
    u_char               app_data[NGX_HTTP_SUPPORTDESK_APP_ID_MAX];

    /* the read's arguments: they live as long as its op */
    u_char               key[sizeof("sd:{}:eventseq")
                             + NGX_HTTP_SUPPORTDESK_APP_ID_MAX];
    const char                          *argv[2];
    size_t                               argvlen[2];
};


static ngx_int_t ngx_http_supportdesk_events_read(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_events_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_events_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static void ngx_http_supportdesk_events_event(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, redisReply *entry);
static ngx_int_t ngx_http_supportdesk_events_wait(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *newest);
static void ngx_http_supportdesk_events_unwait(void *data);
static void ngx_http_supportdesk_events_wake(
    ngx_http_supportdesk_waiter_t *w, ngx_uint_t read);
static void ngx_http_supportdesk_events_deadline(ngx_event_t *ev);
static void ngx_http_supportdesk_events_tick(ngx_event_t *ev);
static void ngx_http_supportdesk_events_last(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_events_unwatch(
    ngx_http_supportdesk_watch_t *watch);
static uint64_t ngx_http_supportdesk_event_number(u_char *id, size_t len);
static time_t ngx_http_supportdesk_event_time(u_char *id, size_t len);


static ngx_queue_t  ngx_http_supportdesk_watches;
static ngx_event_t  ngx_http_supportdesk_events_timer;


ngx_int_t
ngx_http_supportdesk_events_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_query_step(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_QUERY_EVENTS);
}


ngx_int_t
ngx_http_supportdesk_events(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_events_read(r, ctx);
}


static ngx_int_t
ngx_http_supportdesk_events_read(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_args_t    args;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;

    ngx_http_supportdesk_args_init(&args, r->pool, 5);
    ngx_http_supportdesk_args_literal(&args, "2");
    ngx_http_supportdesk_args_app_key(&args, ctx, "events", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "eventseq", NULL);
    ngx_http_supportdesk_args_str(&args, &q->after);
    ngx_http_supportdesk_args_uint(&args, q->limit);

    return ngx_http_supportdesk_store_call(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_EVENTS_READ,
                                       &args,
                                       NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                       ngx_http_supportdesk_events_done);
}


/* {the newest event id, {id, {field, value...}}...} */

static ngx_int_t
ngx_http_supportdesk_events_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                         i;
    redisReply                    *e;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;

    if (reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return ngx_http_supportdesk_store_unexpected(r, reply);
    }

    for (i = 1; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || e->element[0]->type != REDIS_REPLY_STRING
            || e->element[1]->type != REDIS_REPLY_ARRAY)
        {
            return ngx_http_supportdesk_store_unexpected(r, reply);
        }
    }

    if (reply->elements == 1 && q->wait && !ngx_exiting) {
        return ngx_http_supportdesk_events_wait(r, ctx, reply->element[0]);
    }

    return ngx_http_supportdesk_events_send(r, ctx, reply);
}


static ngx_int_t
ngx_http_supportdesk_events_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                          i;
    redisReply                     *last;
    ngx_http_supportdesk_json_t     json;
    ngx_http_supportdesk_query_t   *q;

    q = ctx->data;

    if (ngx_http_supportdesk_envelope_start(r, &json,
                              512 * (reply != NULL ? reply->elements : 1))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"events\":[");

    /* NULL: a long poll that waited for nothing */
    for (i = 1; reply != NULL && i < reply->elements; i++) {
        if (i > 1) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        ngx_http_supportdesk_events_event(r, &json, reply->element[i]);
    }

    /* the last event returned; else the cursor sent; else where the feed
       stands: a client can always send it back */
    ngx_http_supportdesk_json_literal(&json, "],\"nextCursor\":");

    if (reply != NULL && reply->elements > 1) {
        last = reply->element[reply->elements - 1]->element[0];
        ngx_http_supportdesk_json_string(&json, (u_char *) last->str,
                                         last->len);

    } else if (q->after.len || reply == NULL) {
        ngx_http_supportdesk_json_string(&json, q->after.data, q->after.len);

    } else {
        ngx_http_supportdesk_json_string(&json,
                                         (u_char *) reply->element[0]->str,
                                         reply->element[0]->len);
    }

    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}


/*
 * One event: {"id","type","externalId","at","data"}.  Its fields are those
 * lib.lua and the write scripts give it (README: the change feed).
 */

static void
ngx_http_supportdesk_events_event(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, redisReply *entry)
{
    u_char           *p, *end, *start;
    time_t            created;
    ngx_str_t         xid, type;
    ngx_uint_t        n;
    redisReply       *id, *fields, *v[7];
    static ngx_str_t  names[] = {
        ngx_string("t"), ngx_string("x"), ngx_string("ch"),
        ngx_string("note"), ngx_string("c"), ngx_string("text"),
        ngx_null_string
    };

    id = entry->element[0];
    fields = entry->element[1];

    ngx_http_supportdesk_store_fields(fields, names, v);

    ngx_str_null(&type);
    ngx_str_null(&xid);

    if (v[0] != NULL) {
        type.data = (u_char *) v[0]->str;
        type.len = v[0]->len;
    }

    if (v[1] != NULL) {
        xid.data = (u_char *) v[1]->str;
        xid.len = v[1]->len;
    }

    ngx_http_supportdesk_json_literal(json, "{\"id\":");
    ngx_http_supportdesk_json_string(json, (u_char *) id->str, id->len);
    ngx_http_supportdesk_json_literal(json, ",\"type\":");
    ngx_http_supportdesk_json_string(json, type.data, type.len);
    ngx_http_supportdesk_json_literal(json, ",\"externalId\":");
    ngx_http_supportdesk_json_string(json, xid.data, xid.len);

    /* the id's first part is when Redis added it, in ms */
    ngx_http_supportdesk_json_literal(json, ",\"at\":");
    ngx_http_supportdesk_json_time(json,
                                   ngx_http_supportdesk_event_time(
                                       (u_char *) id->str, id->len));

    ngx_http_supportdesk_json_literal(json, ",\"data\":{");

#define ngx_http_supportdesk_is_type(name)                                   \
    (type.len == sizeof(name) - 1                                            \
     && ngx_strncmp(type.data, name, type.len) == 0)

    if (ngx_http_supportdesk_is_type("customer.created")
        || ngx_http_supportdesk_is_type("customer.updated"))
    {
        ngx_http_supportdesk_json_literal(json, "\"customer\":");

        if (ngx_http_supportdesk_record_render(json, &xid, fields, NULL)
            != NGX_OK)
        {
            ngx_http_supportdesk_json_literal(json, "null");
        }

        if (v[2] != NULL) {
            /* "email,name": the fields the update changed */
            ngx_http_supportdesk_json_literal(json, ",\"changed\":[");

            p = (u_char *) v[2]->str;
            end = p + v[2]->len;

            for (n = 0; p < end; n++) {
                start = p;

                while (p < end && *p != ',') {
                    p++;
                }

                if (n) {
                    ngx_http_supportdesk_json_literal(json, ",");
                }

                ngx_http_supportdesk_json_string(json, start, p - start);
                p++;
            }

            ngx_http_supportdesk_json_literal(json, "]");
        }

    } else if (ngx_http_supportdesk_is_type("note.created")
               && v[3] != NULL && v[4] != NULL && v[5] != NULL)
    {
        created = ngx_atotm((u_char *) v[4]->str, v[4]->len);

        ngx_http_supportdesk_json_literal(json, "\"note\":");
        ngx_http_supportdesk_record_note(json, (u_char *) v[3]->str,
                                         v[3]->len,
                                         created == NGX_ERROR ? 0 : created,
                                         (u_char *) v[5]->str, v[5]->len);

    } else if (ngx_http_supportdesk_is_type("note.deleted") && v[3] != NULL) {
        ngx_http_supportdesk_json_literal(json,
                             "\"noteId\":\"" NGX_HTTP_SUPPORTDESK_NOTE_PREFIX);
        ngx_http_supportdesk_json_raw(json, (u_char *) v[3]->str, v[3]->len);
        ngx_http_supportdesk_json_literal(json, "\"");

    } else if (ngx_http_supportdesk_is_type("notifications.updated")) {
        ngx_http_supportdesk_json_literal(json, "\"notifications\":");
        ngx_http_supportdesk_record_settings(json, fields);
    }

#undef ngx_http_supportdesk_is_type

    ngx_http_supportdesk_json_literal(json, "}}");
}


/*
 * Nothing after the cursor yet: the request waits (it stays counted; the
 * store does not finish it) until an event comes, wait seconds pass, or
 * the worker exits.
 */

static ngx_int_t
ngx_http_supportdesk_events_wait(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *newest)
{
    ngx_queue_t                    *x;
    ngx_pool_cleanup_t             *cln;
    ngx_http_supportdesk_watch_t   *watch;
    ngx_http_supportdesk_query_t   *q;
    ngx_http_supportdesk_waiter_t  *w;

    q = ctx->data;

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_waiter_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (w == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* without a cursor: from where the feed stands now */
    if (q->after.len == 0) {
        q->after.data = ngx_pnalloc(r->pool, newest->len);
        if (q->after.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        q->after.len = newest->len;
        ngx_memcpy(q->after.data, newest->str, newest->len);
    }

    if (ngx_http_supportdesk_watches.next == NULL) {
        ngx_queue_init(&ngx_http_supportdesk_watches);
    }

    watch = NULL;

    for (x = ngx_queue_head(&ngx_http_supportdesk_watches);
         x != ngx_queue_sentinel(&ngx_http_supportdesk_watches);
         x = ngx_queue_next(x))
    {
        watch = ngx_queue_data(x, ngx_http_supportdesk_watch_t, queue);

        if (watch->redis == ctx->conf->redis
            && watch->app.len == ctx->app.len
            && ngx_strncmp(watch->app.data, ctx->app.data, ctx->app.len) == 0)
        {
            break;
        }

        watch = NULL;
    }

    if (watch == NULL) {
        /* per worker, outliving any one request: not in a request pool */
        watch = ngx_calloc(sizeof(ngx_http_supportdesk_watch_t),
                           r->connection->log);
        if (watch == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_queue_init(&watch->waiters);
        watch->redis = ctx->conf->redis;
        watch->app.data = watch->app_data;
        watch->app.len = ctx->app.len;
        ngx_memcpy(watch->app_data, ctx->app.data, ctx->app.len);

        watch->argv[0] = "1";
        watch->argvlen[0] = 1;
        watch->argv[1] = (const char *) watch->key;
        watch->argvlen[1] = ngx_sprintf(watch->key, "sd:{%V}:eventseq",
                                        &watch->app)
                            - watch->key;

        ngx_queue_insert_tail(&ngx_http_supportdesk_watches, &watch->queue);
    }

    w->watch = watch;
    w->request = r;
    w->after = ngx_http_supportdesk_event_number(q->after.data,
                                                 q->after.len);
    w->deadline.handler = ngx_http_supportdesk_events_deadline;
    w->deadline.data = w;
    w->deadline.log = r->connection->log;

    ngx_queue_insert_tail(&watch->waiters, &w->queue);
    ngx_add_timer(&w->deadline, q->wait * 1000);

    cln->handler = ngx_http_supportdesk_events_unwait;
    cln->data = w;

    if (!ngx_http_supportdesk_events_timer.timer_set) {
        ngx_http_supportdesk_events_timer.handler =
                                            ngx_http_supportdesk_events_tick;
        ngx_http_supportdesk_events_timer.log = ngx_cycle->log;
        ngx_add_timer(&ngx_http_supportdesk_events_timer,
                      NGX_HTTP_SUPPORTDESK_EVENTS_TICK);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "supportdesk: waiting for events of \"%V\" after %uL",
                   &ctx->app, w->after);

    return NGX_AGAIN;
}


/* the request is gone (or answered): it waits no more */

static void
ngx_http_supportdesk_events_unwait(void *data)
{
    ngx_http_supportdesk_waiter_t  *w = data;

    ngx_http_supportdesk_watch_t  *watch;

    if (w->deadline.timer_set) {
        ngx_del_timer(&w->deadline);
    }

    watch = w->watch;
    if (watch == NULL) {
        return;
    }

    ngx_queue_remove(&w->queue);
    w->watch = NULL;

    if (ngx_queue_empty(&watch->waiters) && watch->op == NULL
        && !watch->walking)
    {
        ngx_http_supportdesk_events_unwatch(watch);
    }
}


/* read: events came, the page is read again; else the empty answer */

static void
ngx_http_supportdesk_events_wake(ngx_http_supportdesk_waiter_t *w,
    ngx_uint_t read)
{
    ngx_int_t                    rc;
    ngx_http_request_t          *r;
    ngx_http_supportdesk_ctx_t  *ctx;

    r = w->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    ngx_http_supportdesk_events_unwait(w);

    if (read) {
        rc = ngx_http_supportdesk_events_read(r, ctx);
        if (rc == NGX_DONE) {
            return;
        }

    } else {
        rc = ngx_http_supportdesk_events_send(r, ctx, NULL);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static void
ngx_http_supportdesk_events_deadline(ngx_event_t *ev)
{
    ngx_http_supportdesk_events_wake(ev->data, 0);
}


/*
 * Every tick, one read per app with waiters; while any waits, the timer
 * is not cancelable: a worker shutting down gracefully answers them here
 * first, at once.
 */

static void
ngx_http_supportdesk_events_tick(ngx_event_t *ev)
{
    ngx_queue_t                    *x, *next, *y;
    ngx_http_supportdesk_watch_t   *watch;
    ngx_http_supportdesk_waiter_t  *w;

    if (ngx_http_supportdesk_watches.next == NULL) {
        return;
    }

    for (x = ngx_queue_head(&ngx_http_supportdesk_watches);
         x != ngx_queue_sentinel(&ngx_http_supportdesk_watches);
         x = next)
    {
        next = ngx_queue_next(x);
        watch = ngx_queue_data(x, ngx_http_supportdesk_watch_t, queue);

        if (ngx_exiting || ngx_quit || ngx_terminate) {
            watch->walking = 1;

            while (!ngx_queue_empty(&watch->waiters)) {
                y = ngx_queue_head(&watch->waiters);
                w = ngx_queue_data(y, ngx_http_supportdesk_waiter_t, queue);
                ngx_http_supportdesk_events_wake(w, 0);
            }

            watch->walking = 0;

            if (watch->op == NULL) {
                ngx_http_supportdesk_events_unwatch(watch);
            }

            continue;
        }

        if (watch->op != NULL || ngx_queue_empty(&watch->waiters)) {
            continue;
        }

        watch->op = ngx_http_supportdesk_redis_send(watch->redis,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_EVENTS_LAST,
                                       2, watch->argv, watch->argvlen,
                                       ngx_http_supportdesk_events_last,
                                       watch, ev->log);
    }

    if (!ngx_queue_empty(&ngx_http_supportdesk_watches)) {
        ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_EVENTS_TICK);
    }
}


static void
ngx_http_supportdesk_events_last(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_watch_t  *watch = data;

    uint64_t                        newest;
    ngx_queue_t                    *x, *next;
    ngx_http_supportdesk_waiter_t  *w;

    watch->op = NULL;
    watch->walking = 1;

    /* Redis unreachable or slow: the waiters keep waiting, or time out */
    if (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER) {
        newest = (uint64_t) reply->integer;

        for (x = ngx_queue_head(&watch->waiters);
             x != ngx_queue_sentinel(&watch->waiters);
             x = next)
        {
            next = ngx_queue_next(x);
            w = ngx_queue_data(x, ngx_http_supportdesk_waiter_t, queue);

            if (w->after < newest) {
                ngx_http_supportdesk_events_wake(w, 1);
            }
        }
    }

    watch->walking = 0;

    if (ngx_queue_empty(&watch->waiters) && watch->op == NULL) {
        ngx_http_supportdesk_events_unwatch(watch);
    }
}


static void
ngx_http_supportdesk_events_unwatch(ngx_http_supportdesk_watch_t *watch)
{
    ngx_queue_remove(&watch->queue);
    ngx_free(watch);

    if (ngx_queue_empty(&ngx_http_supportdesk_watches)
        && ngx_http_supportdesk_events_timer.timer_set)
    {
        ngx_del_timer(&ngx_http_supportdesk_events_timer);
    }
}


/* "<ms>-<n>": n, the event's number in its feed */

static uint64_t
ngx_http_supportdesk_event_number(u_char *id, size_t len)
{
    u_char    *p, *end;
    uint64_t   n;

    end = id + len;
    p = ngx_strlchr(id, end, '-');

    if (p == NULL) {
        return 0;
    }

    for (n = 0, p++; p < end && *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
    }

    return n;
}


/* "<ms>-<n>": when it was added */

static time_t
ngx_http_supportdesk_event_time(u_char *id, size_t len)
{
    u_char    *p, *end;
    uint64_t   ms;

    end = id + len;

    for (ms = 0, p = id; p < end && *p >= '0' && *p <= '9'; p++) {
        ms = ms * 10 + (*p - '0');
    }

    return (time_t) (ms / 1000);
}
