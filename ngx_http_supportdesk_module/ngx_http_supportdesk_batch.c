
/*
 * PATCH /customers: batch upsert.
 *
 * Each valid item is one run of redis/upsert.lua, all pipelined on one
 * connection in request order: every item is atomic on its own, a failing
 * item changes nothing, two items claiming one email behave as if sent one
 * after the other, and no single script runs long.
 *
 * Under an Idempotency-Key the items are not one atomic step, so the batch
 * holds the key's record while they run: redis/batch_begin.lua takes it
 * (or answers a replay, 409 while another request holds it, 422 for
 * another body), pipelined right in front of the items, which run only
 * while it is held and each record their own answer; redis/batch_end.lua
 * then records the whole answer.  A batch cut off half-way, retried with
 * the same key, replays the items already applied and applies the rest.
 *
 * Memory: a jansson tree costs about 16 times the text it is parsed from
 * (a 1 MiB batch of small values: 16 MiB in 500,000 allocations), so the
 * body's tree leaves the items out (ngx_http_supportdesk_parse_batch())
 * and they are parsed one at a time: each item's tree is freed as soon as
 * it is validated and what its Redis arguments need is copied out of it.
 * Its metadata is stored from the body's own text, which the request
 * keeps.  In flight, a batch holds the body, those copies and its
 * commands: about 3 times the body, never a tree.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_BATCH_MAX  1000


typedef struct ngx_http_supportdesk_batch_s  ngx_http_supportdesk_batch_t;

typedef struct {
    ngx_http_supportdesk_batch_t       *batch;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_str_t                           external_id;   /* len 0: none */
    /* the item's outcome; status 0: it succeeded */
    ngx_http_supportdesk_error_t        error;
    ngx_int_t                           created;
    /* what it changes, its strings copied out of the item's tree */
    ngx_http_supportdesk_customer_input_t  in;
    ngx_http_supportdesk_args_t         args;
} ngx_http_supportdesk_batch_item_t;


struct ngx_http_supportdesk_batch_s {
    ngx_http_request_t                 *request;
    ngx_http_supportdesk_batch_item_t  *items;
    ngx_uint_t                          nitems;
    /* replies still due; the answer goes out when none is */
    ngx_uint_t                          pending;

    /* under an Idempotency-Key: the request's hold on the key's record */
    ngx_str_t                           token;
    ngx_http_supportdesk_redis_op_t    *hold;
    /* what batch_begin.lua answered instead of "go" */
    ngx_http_supportdesk_error_t        refused;
    ngx_str_t                           replay;
    /* the answer's data, once rendered */
    ngx_str_t                           data;
};


static ngx_int_t ngx_http_supportdesk_batch_parse(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch);
static ngx_int_t ngx_http_supportdesk_batch_item(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_item_t *item, json_t *obj, ngx_str_t *text);
static ngx_int_t ngx_http_supportdesk_batch_copy(ngx_pool_t *pool,
    ngx_str_t *s);
static ngx_int_t ngx_http_supportdesk_batch_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch,
    ngx_uint_t i);
static ngx_int_t ngx_http_supportdesk_batch_hold(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch,
    ngx_int_t script, ngx_str_t *data);
static void ngx_http_supportdesk_batch_abandon(void *data);
static void ngx_http_supportdesk_batch_begun(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_batch_ended(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_batch_complete(
    ngx_http_supportdesk_batch_t *batch);
static ngx_int_t ngx_http_supportdesk_batch_render(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch);
static ngx_int_t ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch);


ngx_int_t
ngx_http_supportdesk_batch_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_str_t                          text;
    ngx_uint_t                         n;
    json_t                            *list;
    ngx_pool_cleanup_t                *cln;
    ngx_http_supportdesk_batch_t      *batch;
    ngx_http_supportdesk_report_t     *rep;
    ngx_http_supportdesk_json_iter_t   it;

    rep = ctx->report;

    list = json_object_get(ctx->body, "customers");

    if (list == NULL) {
        ngx_http_supportdesk_report_add(rep, "customers", 9, "is required");
        return NGX_OK;
    }

    if (!json_is_array(list)) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "must be an array");
        return NGX_OK;
    }

    /* the items are counted before any is parsed */
    n = 0;
    ngx_http_supportdesk_json_array(&it, &ctx->items);

    while ((rc = ngx_http_supportdesk_json_next(&it, &text)) == NGX_OK) {
        n++;
    }

    if (rc != NGX_DONE) {
        /* ngx_http_supportdesk_parse_batch() split them once already */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "supportdesk: the batch items cannot be told apart");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (n == 0 || n > NGX_HTTP_SUPPORTDESK_BATCH_MAX) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "must hold 1 to 1000 items");
    }

    batch = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_batch_t));
    if (batch == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    batch->request = r;

    if (rep->n == 0) {
        batch->items = ngx_pcalloc(r->pool,
                               n * sizeof(ngx_http_supportdesk_batch_item_t));
        cln = ngx_pool_cleanup_add(r->pool, 0);

        if (batch->items == NULL || cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the request may go before its replies: they then go nowhere */
        cln->handler = ngx_http_supportdesk_batch_abandon;
        cln->data = batch;

        batch->nitems = n;
    }

    /* refused or not, the body must be JSON first */
    rc = ngx_http_supportdesk_batch_parse(r, ctx, batch);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->data = batch;

    return NGX_OK;
}


/*
 * Every item parsed alone, validated when the batch is valid so far, its
 * tree freed at once.  Only one item's tree is ever in memory.
 */

static ngx_int_t
ngx_http_supportdesk_batch_parse(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch)
{
    json_t                            *obj;
    ngx_int_t                          rc;
    ngx_str_t                          text;
    ngx_uint_t                         i;
    const char                        *invalid;
    ngx_http_supportdesk_json_iter_t   it;

    ngx_http_supportdesk_json_array(&it, &ctx->items);

    for (i = 0;
         ngx_http_supportdesk_json_next(&it, &text) == NGX_OK;
         i++)
    {
        obj = ngx_http_supportdesk_parse_value(text.data, text.len, &invalid,
                                               NULL);
        if (obj == NULL) {
            ctx->invalid_json = invalid;
            return NGX_HTTP_BAD_REQUEST;
        }

        rc = NGX_OK;

        if (i < batch->nitems) {
            batch->items[i].batch = batch;
            rc = ngx_http_supportdesk_batch_item(r, &batch->items[i], obj,
                                                 &text);
        }

        json_decref(obj);

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The items' arguments are built once the request is known to be valid
 * (the Idempotency-Key is checked with the other rules).
 */

ngx_int_t
ngx_http_supportdesk_batch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                             *p;
    ngx_int_t                           rc;
    ngx_uint_t                          i;
    ngx_http_supportdesk_batch_t       *batch;
    ngx_http_supportdesk_redis_op_t    *prev;
    ngx_http_supportdesk_batch_item_t  *item;

    batch = ctx->data;

    if (ctx->idempotency_key.len) {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN * 3 + 2);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* this request's hold, told apart from a retry's */
        batch->token.data = p;
        batch->token.len = ngx_sprintf(p, "%P:%uA:%08xD", ngx_pid,
                                       r->connection->number,
                                       (uint32_t) ngx_random())
                           - p;
    }

    for (i = 0; i < batch->nitems; i++) {
        if (ngx_http_supportdesk_batch_args(r, ctx, batch, i) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    prev = NULL;

    if (ctx->idempotency_key.len) {
        rc = ngx_http_supportdesk_batch_hold(r, ctx, batch,
                                        NGX_HTTP_SUPPORTDESK_SCRIPT_BATCH_BEGIN,
                                        NULL);
        if (rc != NGX_OK) {
            return rc;
        }

        prev = batch->hold;
    }

    for (i = 0; i < batch->nitems; i++) {
        item = &batch->items[i];

        if (item->error.status) {
            continue;
        }

        item->op = ngx_http_supportdesk_store_queue(r, ctx, prev,
                                        NGX_HTTP_SUPPORTDESK_SCRIPT_UPSERT,
                                        &item->args,
                                        ngx_http_supportdesk_batch_done,
                                        item);
        if (item->op == NULL) {
            if (prev == NULL) {
                return NGX_HTTP_SERVICE_UNAVAILABLE;
            }

            /* the connection died under the batch: the rest fails too */
            item->error.status = NGX_HTTP_SERVICE_UNAVAILABLE;
            continue;
        }

        prev = item->op;
        batch->pending++;
    }

    if (batch->pending == 0) {
        return ngx_http_supportdesk_batch_send(r, batch);
    }

    ngx_http_supportdesk_watch_client(r);

    return NGX_DONE;
}


/*
 * One item: validated, and what outlives its tree copied to the pool.
 * NGX_OK also when the item is refused: that is its result, not ours.
 */

static ngx_int_t
ngx_http_supportdesk_batch_item(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_item_t *item, json_t *obj, ngx_str_t *text)
{
    json_t                                 *xid;
    ngx_uint_t                              i;
    ngx_http_supportdesk_report_t           report, *rep;
    ngx_http_supportdesk_customer_input_t  *in;

    in = &item->in;

    /* a report of its own only for an item that fails */
    rep = &report;
    rep->n = 0;

    if (!json_is_object(obj)) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "items must be objects");

    } else {
        xid = json_object_get(obj, "externalId");

        if (json_is_string(xid)) {
            item->external_id.data = (u_char *) json_string_value(xid);
            item->external_id.len = json_string_length(xid);

            if (ngx_http_supportdesk_batch_copy(r->pool, &item->external_id)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        (void) ngx_http_supportdesk_validate_customer(obj, text,
                                      NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID,
                                      in, rep);
    }

    /* the tree goes next: nothing may point into it */
    in->metadata = NULL;

    if (rep->n) {
        rep = ngx_palloc(r->pool, sizeof(ngx_http_supportdesk_report_t));
        if (rep == NULL) {
            return NGX_ERROR;
        }

        *rep = report;

        for (i = 0; i < rep->n; i++) {
            if (ngx_http_supportdesk_batch_copy(r->pool, &rep->v[i].field)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        item->error.status = NGX_HTTP_BAD_REQUEST;
        item->error.code = "VALIDATION_ERROR";
        item->error.report = rep;
        return NGX_OK;
    }

    /* metadata_text points into the body, which the request keeps */
    if (ngx_http_supportdesk_batch_copy(r->pool, &in->email) != NGX_OK
        || ngx_http_supportdesk_batch_copy(r->pool, &in->name) != NGX_OK
        || ngx_http_supportdesk_batch_copy(r->pool, &in->phone) != NGX_OK
        || ngx_http_supportdesk_batch_copy(r->pool, &in->avatar_url)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_batch_copy(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    if (s->len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, s->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s->data, s->len);
    s->data = p;

    return NGX_OK;
}


/* the arguments of a valid item's upsert */

static ngx_int_t
ngx_http_supportdesk_batch_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch,
    ngx_uint_t i)
{
    ngx_str_t                           none;
    ngx_http_supportdesk_upsert_t       up;
    ngx_http_supportdesk_batch_item_t  *item;

    item = &batch->items[i];

    if (item->error.status) {
        return NGX_OK;
    }

    ngx_str_null(&none);

    up.external_id = &item->external_id;
    up.if_match = &none;
    up.if_none_match = &none;
    up.item = ctx->idempotency_key.len ? (ngx_int_t) i : -1;
    up.token = &batch->token;

    return ngx_http_supportdesk_record_upsert_args(&item->args, r, ctx, &up,
                                                   &item->in);
}


/*
 * batch_begin.lua (takes the hold, data NULL) or batch_end.lua (records
 * data, the answer): the writer's keys and arguments, then the token.
 */

static ngx_int_t
ngx_http_supportdesk_batch_hold(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_t *batch,
    ngx_int_t script, ngx_str_t *data)
{
    ngx_http_supportdesk_args_t            args;
    ngx_http_supportdesk_redis_handler_pt  handler;

    ngx_http_supportdesk_args_init(&args, r->pool, 11);
    ngx_http_supportdesk_args_literal(&args, "3");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_str(&args, &batch->token);

    if (data == NULL) {
        /* the items behind it answer within the timeout, or not at all */
        ngx_http_supportdesk_args_uint(&args,
                                       2 * ctx->conf->redis->timeout);
        handler = ngx_http_supportdesk_batch_begun;

    } else {
        ngx_http_supportdesk_args_str(&args, data);
        handler = ngx_http_supportdesk_batch_ended;
    }

    batch->hold = ngx_http_supportdesk_store_queue(r, ctx, NULL, script,
                                                   &args, handler, batch);
    if (batch->hold == NULL) {
        return args.failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
                           : NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    batch->pending++;

    return NGX_OK;
}


static void
ngx_http_supportdesk_batch_abandon(void *data)
{
    ngx_http_supportdesk_batch_t  *batch = data;

    ngx_uint_t  i;

    if (batch->hold != NULL) {
        ngx_http_supportdesk_redis_abandon(batch->hold);
        batch->hold = NULL;
    }

    for (i = 0; i < batch->nitems; i++) {
        if (batch->items[i].op != NULL) {
            ngx_http_supportdesk_redis_abandon(batch->items[i].op);
            batch->items[i].op = NULL;
        }
    }
}


static void
ngx_http_supportdesk_batch_begun(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_batch_t  *batch = data;

    ngx_uint_t                   replayed;
    ngx_http_request_t          *r;
    ngx_http_supportdesk_ctx_t  *ctx;

    r = batch->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    batch->hold = NULL;

    if (rc != NGX_OK) {
        batch->refused.status = rc;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (ngx_http_supportdesk_store_error(r, reply, &batch->refused)
            != NGX_OK)
        {
            batch->refused.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        reply = ngx_http_supportdesk_store_unwrap(reply, &replayed);

        if (replayed && reply->type == REDIS_REPLY_STRING) {
            /* the reply goes with this callback: keep the answer */
            batch->replay.data = ngx_pnalloc(r->pool, reply->len);
            if (batch->replay.data == NULL) {
                batch->refused.status = NGX_HTTP_INTERNAL_SERVER_ERROR;

            } else {
                batch->replay.len = reply->len;
                ngx_memcpy(batch->replay.data, reply->str, reply->len);
                ctx->replayed = 1;
            }

        } else if (replayed || reply->type != REDIS_REPLY_STRING
                   || reply->len != 2 || ngx_strncmp(reply->str, "go", 2) != 0)
        {
            batch->refused.status =
                               ngx_http_supportdesk_store_unexpected(r, reply);
        }
    }

    ngx_http_supportdesk_batch_complete(batch);
}


static void
ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_batch_item_t  *item = data;

    ngx_uint_t                            replayed;
    ngx_http_request_t                   *r;
    ngx_http_supportdesk_record_packed_t  packed;

    r = item->batch->request;
    item->op = NULL;

    if (rc != NGX_OK) {
        item->error.status = rc;
        ngx_http_supportdesk_batch_complete(item->batch);
        return;
    }

    reply = ngx_http_supportdesk_store_unwrap(reply, &replayed);

    if (reply->type == REDIS_REPLY_STRING) {
        if (ngx_http_supportdesk_record_unpack((u_char *) reply->str,
                                               reply->len, &packed,
                                               r->connection->log)
            == NGX_OK)
        {
            item->created = packed.created;

        } else {
            item->error.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER)
    {
        item->created = reply->element[0]->integer;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (ngx_http_supportdesk_store_error(r, reply, &item->error)
            != NGX_OK)
        {
            item->error.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        item->error.status = ngx_http_supportdesk_store_unexpected(r, reply);
    }

    ngx_http_supportdesk_batch_complete(item->batch);
}


static void
ngx_http_supportdesk_batch_ended(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_batch_t  *batch = data;

    batch->hold = NULL;

    /*
     * The items are applied and answered: that is the answer, recorded or
     * not.  Not recorded (Redis went, the hold ran out), a retry replays
     * the items one by one.
     */
    if (rc != NGX_OK || reply->type != REDIS_REPLY_INTEGER
        || reply->integer != 1)
    {
        ngx_log_error(NGX_LOG_WARN, batch->request->connection->log, 0,
                      "supportdesk: the answer of a batch was not recorded "
                      "under its Idempotency-Key");
    }

    ngx_http_supportdesk_batch_complete(batch);
}


/* one reply less; with none left, the answer (or its record) goes out */

static void
ngx_http_supportdesk_batch_complete(ngx_http_supportdesk_batch_t *batch)
{
    ngx_int_t                    rc;
    ngx_http_request_t          *r;
    ngx_http_supportdesk_ctx_t  *ctx;

    if (--batch->pending) {
        return;
    }

    r = batch->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx->idempotency_key.len && batch->data.data == NULL
        && batch->refused.status == 0 && batch->replay.data == NULL)
    {
        rc = ngx_http_supportdesk_batch_render(r, batch);

        if (rc == NGX_OK) {
            rc = ngx_http_supportdesk_batch_hold(r, ctx, batch,
                                        NGX_HTTP_SUPPORTDESK_SCRIPT_BATCH_END,
                                        &batch->data);
        }

        if (rc == NGX_OK) {
            return;
        }
    }

    ngx_http_supportdesk_finish(r, ngx_http_supportdesk_batch_send(r, batch));
}


static ngx_int_t
ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch)
{
    ngx_http_supportdesk_json_t  json;

    if (batch->refused.status) {
        return ngx_http_supportdesk_send_api_error(r, &batch->refused);
    }

    if (batch->replay.data == NULL && batch->data.data == NULL
        && ngx_http_supportdesk_batch_render(r, batch) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_supportdesk_envelope_start(r, &json, 64) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (batch->replay.data != NULL) {
        ngx_http_supportdesk_json_raw(&json, batch->replay.data,
                                      batch->replay.len);

    } else {
        ngx_http_supportdesk_json_raw(&json, batch->data.data,
                                      batch->data.len);
    }

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}


/* {"results":[...]}: the answer's data, also what a replay answers */

static ngx_int_t
ngx_http_supportdesk_batch_render(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_json_t         json;
    ngx_http_supportdesk_batch_item_t  *item;

    json.pool = r->pool;
    json.failed = 0;
    json.start = ngx_pnalloc(r->pool, 128 * batch->nitems + 64);
    if (json.start == NULL) {
        return NGX_ERROR;
    }

    json.pos = json.start;
    json.end = json.start + 128 * batch->nitems + 64;

    ngx_http_supportdesk_json_literal(&json, "{\"results\":[");

    for (i = 0; i < batch->nitems; i++) {
        item = &batch->items[i];

        if (i) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        ngx_http_supportdesk_json_literal(&json, "{\"externalId\":");

        if (item->external_id.data != NULL) {
            ngx_http_supportdesk_json_string(&json, item->external_id.data,
                                             item->external_id.len);
        } else {
            ngx_http_supportdesk_json_literal(&json, "null");
        }

        if (item->error.status == 0) {
            if (item->created) {
                ngx_http_supportdesk_json_literal(&json,
                          ",\"success\":true,\"wasCreated\":true}");
            } else {
                ngx_http_supportdesk_json_literal(&json,
                          ",\"success\":true,\"wasCreated\":false}");
            }

            continue;
        }

        ngx_http_supportdesk_json_literal(&json,
                                          ",\"success\":false,\"error\":");
        ngx_http_supportdesk_json_error(r, &json, item->error.status,
                                        item->error.code,
                                        item->error.message,
                                        item->error.report);
        ngx_http_supportdesk_json_literal(&json, "}");
    }

    ngx_http_supportdesk_json_literal(&json, "]}");

    if (json.failed) {
        return NGX_ERROR;
    }

    batch->data.data = json.start;
    batch->data.len = json.pos - json.start;

    return NGX_OK;
}
