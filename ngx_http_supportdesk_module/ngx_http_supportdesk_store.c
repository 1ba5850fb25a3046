
/*
 * Storage calls: arguments and keys in, one checked reply out, every Redis
 * and script error mapped to the API's answer here and nowhere else.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_store.h"
#include "ngx_http_supportdesk_envelope.h"
#include "ngx_http_supportdesk_metrics.h"
#include "ngx_http_supportdesk_msgpack.h"


typedef struct {
    ngx_str_t                            prefix;
    ngx_http_supportdesk_error_t         error;
    /* the rest of the reply names fields: "SD_REQUIRED email name" */
    ngx_uint_t                           fields;
    const char                          *field_message;
} ngx_http_supportdesk_refusal_t;


/* a command of a request: its handler, behind the Redis time's count */
typedef struct {
    ngx_http_supportdesk_redis_handler_pt  handler;
    void                                  *data;
    ngx_http_supportdesk_ctx_t            *ctx;
} ngx_http_supportdesk_store_timed_t;


/* a write held behind the read of its idempotency record */
typedef struct {
    ngx_http_request_t                    *request;
    ngx_int_t                              script;
    ngx_http_supportdesk_args_t            args;
} ngx_http_supportdesk_store_held_t;


static void ngx_http_supportdesk_args_decimal(
    ngx_http_supportdesk_args_t *args, uint64_t n);
static void ngx_http_supportdesk_store_timed(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_store_replays(
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx,
    ngx_int_t script, ngx_http_supportdesk_args_t *args);
static void ngx_http_supportdesk_store_recorded(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_store_replay(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *record,
    redisReply **answer);
static void ngx_http_supportdesk_store_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_store_answered(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t rc);
static ngx_int_t ngx_http_supportdesk_store_check(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_store_refused_fields(
    ngx_http_request_t *r, redisReply *reply, size_t skip,
    const char *message, ngx_http_supportdesk_report_t *rep);


/* what our scripts refuse with redis.error_reply() */
static ngx_http_supportdesk_refusal_t  ngx_http_supportdesk_refusals[] = {

    { ngx_string("SD_EMAIL_EXISTS "),
      { NGX_HTTP_CONFLICT, "CUSTOMER_EMAIL_EXISTS",
        "another customer of this app has that email", NULL },
      1, "is already used by another customer" },

    { ngx_string("SD_REQUIRED "),
      { NGX_HTTP_BAD_REQUEST, "VALIDATION_ERROR", NULL, NULL },
      1, "is required on create" },

    { ngx_string("SD_NO_CUSTOMER "),
      { NGX_HTTP_NOT_FOUND, "CUSTOMER_NOT_FOUND",
        "no customer with that externalId in this app", NULL },
      0, NULL },

    { ngx_string("SD_NO_NOTE "),
      { NGX_HTTP_NOT_FOUND, "NOTE_NOT_FOUND",
        "no such note on that customer", NULL },
      0, NULL },

    { ngx_string("SD_PRECONDITION_FAILED "),
      { NGX_HTTP_PRECONDITION_FAILED, "PRECONDITION_FAILED",
        "the customer's current ETag does not satisfy the condition", NULL },
      1, "does not hold" },

    { ngx_string("SD_IDEMPOTENCY_KEY_REUSED "),
      { NGX_HTTP_SUPPORTDESK_UNPROCESSABLE, "IDEMPOTENCY_KEY_REUSED",
        "this Idempotency-Key was used with another method, route or body",
        NULL },
      0, NULL },

    { ngx_string("SD_IDEMPOTENCY_KEY_IN_USE "),
      { NGX_HTTP_CONFLICT, "IDEMPOTENCY_KEY_IN_USE",
        "a request with this Idempotency-Key is still being applied", NULL },
      0, NULL },

    { ngx_string("SD_CURSOR_EXPIRED "),
      { NGX_HTTP_SUPPORTDESK_GONE, "CURSOR_EXPIRED",
        "events after this cursor are no longer retained: resynchronise "
        "with GET /customers", NULL },
      0, NULL },

    { ngx_string("SD_BAD_CURSOR "),
      { NGX_HTTP_BAD_REQUEST, "VALIDATION_ERROR", NULL, NULL },
      1, "is not an event of this feed" },

    { ngx_string("SD_BATCH_GONE "),
      { NGX_HTTP_SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE",
        "the batch ran out of time: retry it with the same Idempotency-Key",
        NULL },
      0, NULL },

    { ngx_null_string, { 0, NULL, NULL, NULL }, 0, NULL }
};


/*
 * Redis refusing the work for now: the client may retry.  A script's
 * redis.call() raises the refusal of its command with the same prefix.
 */
static ngx_str_t  ngx_http_supportdesk_unavailable[] = {
    ngx_string("LOADING"),
    ngx_string("BUSY"),
    ngx_string("MASTERDOWN"),
    ngx_string("READONLY"),
    ngx_string("NOAUTH"),
    ngx_string("WRONGPASS"),
    ngx_string("OOM"),
    ngx_string("CLUSTERDOWN"),
    ngx_string("TRYAGAIN"),
    /* min-replicas-to-write not met */
    ngx_string("NOREPLICAS"),
    /* stop-writes-on-bgsave-error after a failed save */
    ngx_string("MISCONF"),
    /* an ACL that denies a command or key (scripts are checked at connect) */
    ngx_string("NOPERM"),
    /* a redirection the pool could not follow (malformed), or a cluster
       node given as supportdesk_redis */
    ngx_string("MOVED"),
    ngx_string("ASK"),
    ngx_null_string
};


void
ngx_http_supportdesk_args_init(ngx_http_supportdesk_args_t *args,
    ngx_pool_t *pool, int n)
{
    args->argv = ngx_palloc(pool, n * sizeof(const char *));
    args->argvlen = ngx_palloc(pool, n * sizeof(size_t));
    args->argc = 0;
    args->pool = pool;

    /* no room at all: every add fails */
    args->failed = (args->argv == NULL || args->argvlen == NULL);
    args->nalloc = args->failed ? 0 : n;
}


void
ngx_http_supportdesk_args_add(ngx_http_supportdesk_args_t *args,
    const u_char *data, size_t len)
{
    if (args->argc == args->nalloc) {
        args->failed = 1;
        return;
    }

    /* an unset string has no data: the encoder copies len bytes of it */
    args->argv[args->argc] = (data != NULL) ? (const char *) data : "";
    args->argvlen[args->argc++] = len;
}


void
ngx_http_supportdesk_args_add_or(ngx_http_supportdesk_args_t *args,
    ngx_str_t *s, const u_char *text, size_t len)
{
    if (s->len) {
        ngx_http_supportdesk_args_add(args, s->data, s->len);

    } else {
        ngx_http_supportdesk_args_add(args, text, len);
    }
}


void
ngx_http_supportdesk_args_uint(ngx_http_supportdesk_args_t *args,
    ngx_uint_t n)
{
    ngx_http_supportdesk_args_decimal(args, n);
}


void
ngx_http_supportdesk_args_time(ngx_http_supportdesk_args_t *args)
{
    ngx_http_supportdesk_args_decimal(args, ngx_time());
}


/* n in decimal, in the pool: the one way args_uint() and args_time() add */

static void
ngx_http_supportdesk_args_decimal(ngx_http_supportdesk_args_t *args,
    uint64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(args->pool, NGX_INT64_LEN);
    if (p == NULL) {
        args->failed = 1;
        return;
    }

    ngx_http_supportdesk_args_add(args, p,
                                  ngx_http_supportdesk_decimal(p, n) - p);
}


void
ngx_http_supportdesk_args_key(ngx_http_supportdesk_args_t *args,
    ngx_str_t *app, const u_char *type, size_t type_len, ngx_str_t *suffix)
{
    u_char  *p, *start;

    start = ngx_pnalloc(args->pool, sizeof("sd:{}::") - 1 + app->len
                                    + type_len
                                    + (suffix != NULL ? suffix->len : 0));
    if (start == NULL) {
        args->failed = 1;
        return;
    }

    /* an empty type leaves the app's prefix, "sd:{<app>}:" */
    p = ngx_cpymem(start, "sd:{", sizeof("sd:{") - 1);
    p = ngx_cpymem(p, app->data, app->len);
    p = ngx_cpymem(p, "}:", sizeof("}:") - 1);
    p = ngx_cpymem(p, type, type_len);

    if (suffix != NULL) {
        *p++ = ':';
        p = ngx_cpymem(p, suffix->data, suffix->len);
    }

    ngx_http_supportdesk_args_add(args, start, p - start);
}


void
ngx_http_supportdesk_args_feed_keys(ngx_http_supportdesk_args_t *args,
    ngx_str_t *app, ngx_str_t *idem, ngx_int_t item)
{
    u_char     *p;
    ngx_str_t   suffix;

    ngx_http_supportdesk_args_key_literal(args, app, "events", NULL);
    ngx_http_supportdesk_args_key_literal(args, app, "eventseq", NULL);

    if (idem->len == 0) {
        ngx_http_supportdesk_args_key_literal(args, app, "idem:", NULL);
        return;
    }

    if (item < 0) {
        ngx_http_supportdesk_args_key_literal(args, app, "idem", idem);
        return;
    }

    /* "idemitem:<item>:<key>": no key of its own can look like it */
    p = ngx_pnalloc(args->pool, NGX_INT_T_LEN + 1 + idem->len);
    if (p == NULL) {
        args->failed = 1;
        return;
    }

    suffix.data = p;
    suffix.len = ngx_sprintf(p, "%i:%V", item, idem) - p;

    ngx_http_supportdesk_args_key_literal(args, app, "idemitem", &suffix);
}


void
ngx_http_supportdesk_args_feed_argv(ngx_http_supportdesk_args_t *args,
    ngx_str_t *fp, ngx_str_t *idempotency_ttl,
    ngx_http_supportdesk_main_conf_t *smcf)
{
    ngx_http_supportdesk_args_time(args);
    ngx_http_supportdesk_args_str(args, fp);
    ngx_http_supportdesk_args_str(args, idempotency_ttl);
    ngx_http_supportdesk_args_str(args, &smcf->events_max_count_text);
    ngx_http_supportdesk_args_str(args, &smcf->events_max_age_text);
}


void
ngx_http_supportdesk_args_write_argv(ngx_http_supportdesk_args_t *args,
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_args_feed_argv(args, &ctx->fingerprint,
                                  &ctx->conf->idempotency_ttl_text,
                                  ngx_http_get_module_main_conf(r,
                                                ngx_http_supportdesk_module));
}


ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_store_queue(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_redis_op_t *prev,
    ngx_int_t script, ngx_http_supportdesk_args_t *args,
    ngx_http_supportdesk_redis_handler_pt handler, void *data)
{
    ngx_http_supportdesk_redis_op_t     *op;
    ngx_http_supportdesk_store_timed_t  *t;

    t = ngx_palloc(r->pool, sizeof(ngx_http_supportdesk_store_timed_t));
    if (t == NULL) {
        args->failed = 1;
    }

    if (args->failed) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "supportdesk: building the Redis arguments failed");
        return NULL;
    }

    t->handler = handler;
    t->data = data;
    t->ctx = ctx;

    if (prev != NULL) {
        op = ngx_http_supportdesk_redis_send_after(prev, script, args->argc,
                                        args->argv, args->argvlen,
                                        ngx_http_supportdesk_store_timed, t,
                                        r->connection->log);
    } else {
        op = ngx_http_supportdesk_redis_send(ctx->conf->redis,
                                             script, args->argc, args->argv,
                                             args->argvlen,
                                             ngx_http_supportdesk_store_timed,
                                             t, r->connection->log);
    }

    /* a NULL op is logged by the pool, which knows why (at most 1/s) */

    if (op != NULL) {
        /* $supportdesk_redis_time: from the first command due ... */
        if (ctx->redis_due++ == 0) {
            ctx->redis_since = ngx_current_msec;
        }

        ctx->redis_used = 1;
    }

    return op;
}


/* ... to the last reply of those due together */

static void
ngx_http_supportdesk_store_timed(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_store_timed_t  *t = data;

    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = t->ctx;

    if (ctx->redis_due && --ctx->redis_due == 0) {
        ctx->redis_time += ngx_current_msec - ctx->redis_since;
    }

    t->handler(t->data, rc, reply);
}


ngx_int_t
ngx_http_supportdesk_store_call(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t script,
    ngx_http_supportdesk_args_t *args, ngx_uint_t flags,
    ngx_http_supportdesk_reply_pt reply)
{
    ngx_int_t  rc;

    ctx->reply = reply;
    ctx->reply_flags = flags;

    rc = ngx_http_supportdesk_store_replays(r, ctx, script, args);

    if (rc == NGX_DECLINED) {
        ctx->op = ngx_http_supportdesk_store_queue(r, ctx, NULL, script, args,
                                               ngx_http_supportdesk_store_done,
                                               r);

    } else if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->op == NULL) {
        return args->failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
                            : NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_http_supportdesk_watch_client(r);

    return NGX_DONE;
}


/*
 * A write under an Idempotency-Key reads its record first (HMGET, the cost
 * of a get), and a replay is answered from it: the script, with its
 * library, its 18 arguments and the unpacking of the record in Lua, cost
 * Redis five times a get for the same answer.  Anything but a finished
 * record of this very request (none, another request's, one still being
 * applied, one this worker cannot read) sends the script, which decides
 * again in its atomic step, so this changes no answer.  Not with
 * supportdesk_redis_wait: a replay through the script waits for the
 * replicas as the first answer did.
 */

static ngx_int_t
ngx_http_supportdesk_store_replays(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t script,
    ngx_http_supportdesk_args_t *args)
{
    ngx_http_supportdesk_args_t         record;
    ngx_http_supportdesk_store_held_t  *held;

    if (ctx->fingerprint.len == 0 || args->failed
        || ctx->conf->redis->wait_replicas)
    {
        return NGX_DECLINED;
    }

    /* the scripts that open with sd.replay() (redis/lib.lua) */
    switch (script) {

    case NGX_HTTP_SUPPORTDESK_SCRIPT_UPSERT:
    case NGX_HTTP_SUPPORTDESK_SCRIPT_DELETE:
    case NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_ADD:
    case NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_DELETE:
    case NGX_HTTP_SUPPORTDESK_SCRIPT_NOTIFICATIONS:
        break;

    default:
        return NGX_DECLINED;
    }

    held = ngx_palloc(r->pool, sizeof(ngx_http_supportdesk_store_held_t));
    if (held == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    held->request = r;
    held->script = script;
    held->args = *args;

    ngx_http_supportdesk_args_init(&record, r->pool, 5);
    ngx_http_supportdesk_args_literal(&record, "HMGET");
    ngx_http_supportdesk_args_app_key(&record, ctx, "idem",
                                      &ctx->idempotency_key);
    ngx_http_supportdesk_args_literal(&record, "f");
    ngx_http_supportdesk_args_literal(&record, "r");
    ngx_http_supportdesk_args_literal(&record, "busy");

    ctx->op = ngx_http_supportdesk_store_queue(r, ctx, NULL,
                                        NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                        &record,
                                        ngx_http_supportdesk_store_recorded,
                                        held);
    if (ctx->op == NULL && record.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_supportdesk_store_recorded(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_store_held_t  *held = data;

    redisReply                  *answer;
    ngx_http_request_t          *r;
    ngx_http_supportdesk_ctx_t  *ctx;

    r = held->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    if (rc == NGX_OK) {
        rc = ngx_http_supportdesk_store_replay(r, ctx, reply, &answer);

        if (rc == NGX_OK) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "supportdesk: replayed from the record");

            ctx->replayed = 1;
            ngx_http_supportdesk_metrics_replay();

            ngx_http_supportdesk_store_answered(r, ctx,
                          ngx_http_supportdesk_store_check(r, ctx, answer));
            return;
        }

        if (rc == NGX_DECLINED) {
            ctx->op = ngx_http_supportdesk_store_queue(r, ctx, NULL,
                                          held->script, &held->args,
                                          ngx_http_supportdesk_store_done, r);
            if (ctx->op != NULL) {
                return;
            }

            rc = held->args.failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                   : NGX_HTTP_SERVICE_UNAVAILABLE;
        }
    }

    /* Redis failed the read (a timeout, the connection lost): as the write */
    ngx_http_supportdesk_store_answered(r, ctx, rc);
}


/*
 * The recorded answer when the HMGET of f, r, busy found this request's
 * finished record: NGX_OK; NGX_DECLINED when the script must decide;
 * a status on failure.
 */

static ngx_int_t
ngx_http_supportdesk_store_replay(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *record, redisReply **answer)
{
    ngx_int_t    rc;
    redisReply  *f, *recorded;

    if (record->type != REDIS_REPLY_ARRAY || record->elements != 3) {
        return NGX_DECLINED;
    }

    f = record->element[0];
    recorded = record->element[1];

    if (f->type != REDIS_REPLY_STRING
        || recorded->type != REDIS_REPLY_STRING
        || record->element[2]->type != REDIS_REPLY_NIL
        || f->len != ctx->fingerprint.len
        || ngx_strncmp(f->str, ctx->fingerprint.data, f->len) != 0)
    {
        return NGX_DECLINED;
    }

    if (ctx->reply_flags & NGX_HTTP_SUPPORTDESK_REPLY_PACKED) {
        rc = ngx_http_supportdesk_msgpack_check((u_char *) recorded->str,
                                                recorded->len);
        *answer = recorded;

    } else {
        rc = ngx_http_supportdesk_msgpack_reply(r->pool,
                                                (u_char *) recorded->str,
                                                recorded->len, answer);
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "supportdesk: an idempotency record's answer this "
                      "worker cannot read: left to the script");
    }

    return (rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
}


static void
ngx_http_supportdesk_store_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_uint_t                    replayed;
    ngx_connection_t             *c;
    ngx_http_supportdesk_ctx_t   *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    if (rc == NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "supportdesk: redis reply type %d", reply->type);

        reply = ngx_http_supportdesk_store_unwrap(reply, &replayed);
        ctx->replayed = replayed;

        rc = ngx_http_supportdesk_store_check(r, ctx, reply);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "supportdesk: redis failed the command: %i", rc);
    }

    ngx_http_supportdesk_store_answered(r, ctx, rc);
}


static void
ngx_http_supportdesk_store_answered(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t rc)
{
    ngx_connection_t  *c;

    /* the action holds the request on (a long poll waits) */
    if (rc == NGX_AGAIN) {
        return;
    }

    c = r->connection;

    if (ctx->reply_flags & NGX_HTTP_SUPPORTDESK_REPLY_RESUME) {
        /* back into the phases, which find the answer in ctx */
        ctx->status = (rc == NGX_OK) ? 0 : rc;
        ngx_http_core_run_phases(r);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_http_supportdesk_finish(r, rc);
}


static ngx_int_t
ngx_http_supportdesk_store_check(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_uint_t                    type;
    ngx_http_supportdesk_error_t  err;

    switch (reply->type) {

    case REDIS_REPLY_ERROR:
        if (ngx_http_supportdesk_store_error(r, reply, &err) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ctx->reply_flags & NGX_HTTP_SUPPORTDESK_REPLY_RESUME) {
            return err.status;
        }

        return ngx_http_supportdesk_send_api_error(r, &err);

    case REDIS_REPLY_STRING:
        type = NGX_HTTP_SUPPORTDESK_REPLY_STRING;
        break;

    case REDIS_REPLY_ARRAY:
        type = NGX_HTTP_SUPPORTDESK_REPLY_ARRAY;
        break;

    case REDIS_REPLY_INTEGER:
        type = NGX_HTTP_SUPPORTDESK_REPLY_INTEGER;
        break;

    case REDIS_REPLY_NIL:
        type = NGX_HTTP_SUPPORTDESK_REPLY_NIL;
        break;

    default:
        type = 0;
    }

    if (!(ctx->reply_flags & type)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: unexpected redis reply type %d",
                      reply->type);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ctx->reply(r, ctx, reply);
}


redisReply *
ngx_http_supportdesk_store_unwrap(redisReply *reply, ngx_uint_t *replayed)
{
    redisReply  *mark;

    *replayed = 0;

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2 || reply->elements > 3)
    {
        return reply;
    }

    mark = reply->element[0];

    /* our scripts return no other status reply inside an array */
    if (mark->type != REDIS_REPLY_STATUS) {
        return reply;
    }

    /* {SD_EVENTS, n, answer}: a write that appended n events */
    if (reply->elements == 3
        && mark->len == sizeof("SD_EVENTS") - 1
        && ngx_strncmp(mark->str, "SD_EVENTS", mark->len) == 0
        && reply->element[1]->type == REDIS_REPLY_INTEGER)
    {
        ngx_http_supportdesk_metrics_events(
                                    (ngx_uint_t) reply->element[1]->integer);
        return reply->element[2];
    }

    if (reply->elements != 2
        || mark->len != sizeof("SD_REPLAY") - 1
        || ngx_strncmp(mark->str, "SD_REPLAY", mark->len) != 0)
    {
        return reply;
    }

    *replayed = 1;
    ngx_http_supportdesk_metrics_replay();

    return reply->element[1];
}


ngx_int_t
ngx_http_supportdesk_store_error(ngx_http_request_t *r, redisReply *reply,
    ngx_http_supportdesk_error_t *err)
{
    size_t                           len;
    ngx_str_t                       *name;
    ngx_http_supportdesk_refusal_t  *refusal;

    len = reply->len;

    for (refusal = ngx_http_supportdesk_refusals; refusal->prefix.len;
         refusal++)
    {
        if (len < refusal->prefix.len
            || ngx_strncmp(reply->str, refusal->prefix.data,
                           refusal->prefix.len)
               != 0)
        {
            continue;
        }

        *err = refusal->error;

        if (!refusal->fields) {
            return NGX_OK;
        }

        err->report = ngx_pcalloc(r->pool,
                                  sizeof(ngx_http_supportdesk_report_t));
        if (err->report == NULL) {
            return NGX_ERROR;
        }

        return ngx_http_supportdesk_store_refused_fields(r, reply,
                                                      refusal->prefix.len,
                                                      refusal->field_message,
                                                      err->report);
    }

    ngx_memzero(err, sizeof(ngx_http_supportdesk_error_t));

    for (name = ngx_http_supportdesk_unavailable; name->len; name++) {
        if (len >= name->len
            && ngx_strncmp(reply->str, name->data, name->len) == 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "supportdesk: redis cannot serve: %s", reply->str);
            err->status = NGX_HTTP_SERVICE_UNAVAILABLE;
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "supportdesk: unexpected redis error: %s", reply->str);
    err->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    return NGX_OK;
}


void
ngx_http_supportdesk_store_fields(redisReply *hash, ngx_str_t *names,
    redisReply **values)
{
    size_t       i;
    ngx_uint_t   n;
    redisReply  *f;

    for (n = 0; names[n].len; n++) {
        values[n] = NULL;
    }

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = hash->element[i];

        if (f->type != REDIS_REPLY_STRING
            || hash->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        for (n = 0; names[n].len; n++) {
            if (f->len == names[n].len
                && ngx_strncmp(f->str, names[n].data, f->len) == 0)
            {
                values[n] = hash->element[i + 1];
                break;
            }
        }
    }
}


ngx_int_t
ngx_http_supportdesk_store_unexpected(ngx_http_request_t *r,
    redisReply *reply)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "supportdesk: unexpected redis reply (type %d, %uz "
                  "elements)", reply->type, reply->elements);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* "<prefix>email name": one violation per field name */

static ngx_int_t
ngx_http_supportdesk_store_refused_fields(ngx_http_request_t *r,
    redisReply *reply, size_t skip, const char *message,
    ngx_http_supportdesk_report_t *rep)
{
    char  *p, *end, *field;

    /* the reply dies with its callback, the report outlives it */
    p = ngx_pnalloc(r->pool, reply->len - skip + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    end = (char *) ngx_cpymem(p, reply->str + skip, reply->len - skip);

    while (p < end) {
        field = p;

        while (p < end && *p != ' ') {
            p++;
        }

        if (p > field) {
            ngx_http_supportdesk_report_add(rep, field, p - field, message);
        }

        p++;
    }

    return NGX_OK;
}


void
ngx_http_supportdesk_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        rc = ngx_http_supportdesk_send_error(r, rc, NULL, NULL, NULL);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "supportdesk: finalize %i", rc);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * A client that leaves ends the request, and the op is then abandoned.  Not
 * while a body is still to come (the key lookup runs before it is read):
 * peeking at the socket then would race nginx's own body reading.  As with
 * proxy_ignore_client_abort, an EOF cannot tell a client that left from
 * one that only half-closed (shutdown(SHUT_WR)) and still reads:
 * supportdesk_ignore_client_abort on answers both.
 */

void
ngx_http_supportdesk_watch_client(ngx_http_request_t *r)
{
    ngx_http_supportdesk_loc_conf_t  *slcf;

    if (r->read_event_handler != ngx_http_block_reading) {
        return;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    if (slcf->ignore_client_abort) {
        return;
    }

    if (r->request_body == NULL
        && (r->headers_in.content_length_n > 0 || r->headers_in.chunked))
    {
        return;
    }

    r->read_event_handler = ngx_http_test_reading;
}

