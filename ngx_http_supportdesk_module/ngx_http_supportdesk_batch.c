
/*
 * PATCH /customers: batch upsert.
 *
 * Each valid item is one run of redis/upsert.lua, all pipelined on one
 * connection in request order: every item is atomic on its own, a failing
 * item changes nothing, two items claiming one email behave as if sent one
 * after the other, and no single script runs long.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_BATCH_MAX  1000


typedef struct {
    ngx_http_request_t                 *request;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_str_t                           external_id;   /* len 0: none */
    /* the item's outcome; status 0: it succeeded */
    ngx_http_supportdesk_error_t        error;
    ngx_int_t                           created;
    ngx_http_supportdesk_args_t         args;
} ngx_http_supportdesk_batch_item_t;


typedef struct {
    ngx_http_supportdesk_batch_item_t  *items;
    ngx_uint_t                          nitems;
    /* replies still due; the answer goes out when none is */
    ngx_uint_t                          pending;
} ngx_http_supportdesk_batch_t;


static ngx_int_t ngx_http_supportdesk_batch_item(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_item_t *item,
    json_t *obj);
static void ngx_http_supportdesk_batch_abandon(void *data);
static void ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch);


ngx_int_t
ngx_http_supportdesk_batch_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    size_t                          i, n;
    json_t                         *list;
    ngx_pool_cleanup_t             *cln;
    ngx_http_supportdesk_batch_t   *batch;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;

    list = json_object_get(ctx->body, "customers");
    n = json_array_size(list);

    if (list == NULL) {
        ngx_http_supportdesk_report_add(rep, "customers", 9, "is required");

    } else if (!json_is_array(list)) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "must be an array");

    } else if (n == 0 || n > NGX_HTTP_SUPPORTDESK_BATCH_MAX) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "must hold 1 to 1000 items");
    }

    if (rep->n) {
        return NGX_OK;
    }

    batch = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_batch_t));
    if (batch == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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
    ctx->data = batch;

    for (i = 0; i < n; i++) {
        batch->items[i].request = r;

        if (ngx_http_supportdesk_batch_item(r, ctx, &batch->items[i],
                                            json_array_get(list, i))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


/* NGX_OK also when the item is refused: that is its result, not ours */

static ngx_int_t
ngx_http_supportdesk_batch_item(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_item_t *item,
    json_t *obj)
{
    json_t                                 *xid;
    ngx_http_supportdesk_report_t          *rep;
    ngx_http_supportdesk_customer_input_t   in;

    rep = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_report_t));
    if (rep == NULL) {
        return NGX_ERROR;
    }

    if (!json_is_object(obj)) {
        ngx_http_supportdesk_report_add(rep, "customers", 9,
                                        "items must be objects");

    } else {
        xid = json_object_get(obj, "externalId");

        if (json_is_string(xid)) {
            item->external_id.data = (u_char *) json_string_value(xid);
            item->external_id.len = json_string_length(xid);
        }

        (void) ngx_http_supportdesk_validate_customer(obj,
                                      NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID,
                                      &in, rep);
    }

    if (rep->n) {
        item->error.status = NGX_HTTP_BAD_REQUEST;
        item->error.code = "VALIDATION_ERROR";
        item->error.report = rep;
        return NGX_OK;
    }

    return ngx_http_supportdesk_record_upsert_args(&item->args, r->pool,
                                                   &ctx->app,
                                                   &item->external_id, &in);
}


ngx_int_t
ngx_http_supportdesk_batch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_batch_t       *batch;
    ngx_http_supportdesk_redis_op_t    *prev;
    ngx_http_supportdesk_batch_item_t  *item;

    batch = ctx->data;
    prev = NULL;

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


static void
ngx_http_supportdesk_batch_abandon(void *data)
{
    ngx_http_supportdesk_batch_t  *batch = data;

    ngx_uint_t  i;

    for (i = 0; i < batch->nitems; i++) {
        if (batch->items[i].op != NULL) {
            ngx_http_supportdesk_redis_abandon(batch->items[i].op);
            batch->items[i].op = NULL;
        }
    }
}


static void
ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_batch_item_t  *item = data;

    ngx_http_request_t            *r;
    ngx_http_supportdesk_ctx_t    *ctx;
    ngx_http_supportdesk_batch_t  *batch;

    r = item->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    batch = ctx->data;
    item->op = NULL;

    if (rc != NGX_OK) {
        item->error.status = rc;

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

    if (--batch->pending) {
        return;
    }

    ngx_http_supportdesk_finish(r, ngx_http_supportdesk_batch_send(r, batch));
}


static ngx_int_t
ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_batch_t *batch)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_json_t         json;
    ngx_http_supportdesk_batch_item_t  *item;

    if (ngx_http_supportdesk_envelope_start(r, &json,
                                            128 * batch->nitems + 64)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
