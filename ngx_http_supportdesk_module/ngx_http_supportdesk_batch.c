
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

#include "ngx_http_supportdesk_module.h"


#define NGX_HTTP_SUPPORTDESK_BATCH_MAX  1000


struct ngx_http_supportdesk_batch_item_s {
    ngx_http_request_t                 *request;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_str_t                           external_id;   /* len 0: none */
    ngx_http_supportdesk_report_t      *report;
    ngx_uint_t                          status;        /* 0: succeeded */
    const char                         *code;
    const char                         *message;
    ngx_int_t                           created;

    int                                 argc;
    const char                        **argv;
    size_t                             *argvlen;
};


static ngx_int_t ngx_http_supportdesk_batch_item(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_batch_item_t *item,
    json_t *obj);
static void ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);


ngx_int_t
ngx_http_supportdesk_batch_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    size_t                              i, n;
    json_t                             *list, *value;
    const char                         *key;
    ngx_http_supportdesk_report_t      *rep;
    ngx_http_supportdesk_batch_item_t  *item;

    rep = ngx_http_supportdesk_report(r, ctx);
    if (rep == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_foreach(ctx->body, key, value) {
        if (ngx_strcmp(key, "customers") != 0) {
            ngx_http_supportdesk_report_add(rep, key, ngx_strlen(key),
                                            "is not a known field");
        }
    }

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
        return NGX_DECLINED;
    }

    ctx->items = ngx_pcalloc(r->pool,
                             n * sizeof(ngx_http_supportdesk_batch_item_t));
    if (ctx->items == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->nitems = n;

    for (i = 0; i < n; i++) {
        item = &ctx->items[i];
        item->request = r;

        if (ngx_http_supportdesk_batch_item(r, ctx, item,
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
    ngx_http_supportdesk_customer_input_t   in;

    item->report = ngx_pcalloc(r->pool,
                               sizeof(ngx_http_supportdesk_report_t));
    if (item->report == NULL) {
        return NGX_ERROR;
    }

    if (!json_is_object(obj)) {
        ngx_http_supportdesk_report_add(item->report, "customers", 9,
                                        "items must be objects");

    } else {
        xid = json_object_get(obj, "externalId");

        if (json_is_string(xid)) {
            item->external_id.data = (u_char *) json_string_value(xid);
            item->external_id.len = json_string_length(xid);
        }

        (void) ngx_http_supportdesk_validate_customer(obj,
                                      NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID,
                                      &in, item->report);
    }

    if (item->report->n) {
        item->status = NGX_HTTP_BAD_REQUEST;
        item->code = "VALIDATION_ERROR";
        return NGX_OK;
    }

    item->report = NULL;

    return ngx_http_supportdesk_upsert_args(r, ctx, &item->external_id, &in,
                                            &item->argc, &item->argv,
                                            &item->argvlen);
}


ngx_int_t
ngx_http_supportdesk_batch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_redis_op_t    *prev;
    ngx_http_supportdesk_batch_item_t  *item;

    prev = NULL;

    for (i = 0; i < ctx->nitems; i++) {
        item = &ctx->items[i];

        if (item->status) {
            continue;
        }

        if (prev == NULL) {
            item->op = ngx_http_supportdesk_redis_send(ctx->conf->redis,
                                      &ctx->app,
                                      ngx_http_supportdesk_script(UPSERT),
                                      item->argc, item->argv, item->argvlen,
                                      ngx_http_supportdesk_batch_done, item,
                                      r->connection->log);
            if (item->op == NULL) {
                return NGX_HTTP_SERVICE_UNAVAILABLE;
            }

        } else {
            item->op = ngx_http_supportdesk_redis_send_after(prev,
                                      ngx_http_supportdesk_script(UPSERT),
                                      item->argc, item->argv, item->argvlen,
                                      ngx_http_supportdesk_batch_done, item,
                                      r->connection->log);
            if (item->op == NULL) {
                item->status = NGX_HTTP_SERVICE_UNAVAILABLE;
                continue;
            }
        }

        prev = item->op;
        ctx->pending++;
    }

    if (ctx->pending == 0) {
        return ngx_http_supportdesk_batch_send(r, ctx);
    }

    ngx_http_supportdesk_watch_client(r);

    return NGX_DONE;
}


void
ngx_http_supportdesk_batch_abandon(ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_uint_t  i;

    for (i = 0; i < ctx->nitems; i++) {
        if (ctx->items[i].op) {
            ngx_http_supportdesk_redis_abandon(ctx->items[i].op);
            ctx->items[i].op = NULL;
        }
    }
}


static void
ngx_http_supportdesk_batch_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_batch_item_t  *item = data;

    char                           *p, *end, *field;
    ngx_http_request_t             *r;
    ngx_http_supportdesk_ctx_t     *ctx;

    r = item->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    item->op = NULL;

    if (rc != NGX_OK) {
        item->status = rc;

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
               && reply->element[0]->type == REDIS_REPLY_INTEGER)
    {
        item->created = reply->element[0]->integer;

    } else if (reply->type == REDIS_REPLY_ERROR
               && ngx_strncmp(reply->str, "SD_EMAIL_EXISTS ", 16) == 0)
    {
        item->status = NGX_HTTP_CONFLICT;
        item->code = "CUSTOMER_EMAIL_EXISTS";
        item->message = "another customer of this app has that email";

    } else if (reply->type == REDIS_REPLY_ERROR
               && ngx_strncmp(reply->str, "SD_REQUIRED ", 12) == 0
               && (item->report = ngx_pcalloc(r->pool,
                                  sizeof(ngx_http_supportdesk_report_t)))
               && (p = ngx_pnalloc(r->pool, reply->len)))
    {
        item->status = NGX_HTTP_BAD_REQUEST;
        item->code = "VALIDATION_ERROR";

        /* the reply dies with this callback, the report outlives it */
        end = (char *) ngx_cpymem(p, reply->str + 12, reply->len - 12);

        while (p < end) {
            field = p;

            while (p < end && *p != ' ') {
                p++;
            }

            ngx_http_supportdesk_report_add(item->report, field, p - field,
                                            "is required on create");
            p++;
        }

    } else {
        item->status = ngx_http_supportdesk_redis_failure(r, NGX_OK, reply);
    }

    if (--ctx->pending) {
        return;
    }

    ngx_http_supportdesk_finish(r, ngx_http_supportdesk_batch_send(r, ctx));
}


static ngx_int_t
ngx_http_supportdesk_batch_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_json_t         json;
    ngx_http_supportdesk_batch_item_t  *item;

    if (ngx_http_supportdesk_envelope_start(r, &json, 128 * ctx->nitems + 64)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"results\":[");

    for (i = 0; i < ctx->nitems; i++) {
        item = &ctx->items[i];

        if (i) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        ngx_http_supportdesk_json_literal(&json, "{\"externalId\":");

        if (item->external_id.data) {
            ngx_http_supportdesk_json_string(&json, item->external_id.data,
                                             item->external_id.len);
        } else {
            ngx_http_supportdesk_json_literal(&json, "null");
        }

        if (item->status == 0) {
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
        ngx_http_supportdesk_json_error(r, &json, item->status, item->code,
                                        item->message, item->report);
        ngx_http_supportdesk_json_literal(&json, "}");
    }

    ngx_http_supportdesk_json_literal(&json, "]}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
