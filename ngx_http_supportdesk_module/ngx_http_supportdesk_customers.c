
/*
 * /customers/{externalId}: upsert (PATCH), GET, DELETE.
 *
 * Each is one Redis round trip: GET is a plain HGETALL, upsert and delete
 * are one server-side script each (redis/upsert.lua, redis/delete.lua) so
 * the customer hash, the email index and the creation order never disagree.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


static ngx_int_t ngx_http_supportdesk_upsert_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_get_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_delete_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_send_customer(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *hash, ngx_int_t created);


ngx_int_t
ngx_http_supportdesk_customer_validate_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_customer_input_t  *in;

    in = ngx_palloc(r->pool, sizeof(ngx_http_supportdesk_customer_input_t));
    if (in == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_supportdesk_validate_customer(ctx->body, &ctx->body_text,
                                                  0, in, ctx->report);

    ctx->data = in;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_customer_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t                      none;
    ngx_http_supportdesk_args_t    args;
    ngx_http_supportdesk_upsert_t  up;

    ngx_str_null(&none);

    up.external_id = &ctx->external_id;
    up.if_match = &ctx->if_match;
    up.if_none_match = &ctx->if_none_match;
    up.item = -1;
    up.token = &none;

    if (ngx_http_supportdesk_record_upsert_args(&args, r, ctx, &up,
                                                ctx->data)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_SCRIPT_UPSERT,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_STRING
                                           |NGX_HTTP_SUPPORTDESK_REPLY_ARRAY
                                           |NGX_HTTP_SUPPORTDESK_REPLY_PACKED,
                                           ngx_http_supportdesk_upsert_done);
}


ngx_int_t
ngx_http_supportdesk_customer_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_args_t  args;

    ngx_http_supportdesk_args_init(&args, r->pool, 2);

    ngx_http_supportdesk_args_literal(&args, "HGETALL");
    ngx_http_supportdesk_args_app_key(&args, ctx, "c", &ctx->external_id);

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                           ngx_http_supportdesk_get_done);
}


ngx_int_t
ngx_http_supportdesk_customer_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t                    *xid;
    ngx_http_supportdesk_args_t   args;

    ngx_http_supportdesk_args_init(&args, r->pool, 17);

    xid = &ctx->external_id;

    /* the customer, its indexes, then what it owns alone (redis/delete.lua) */
    ngx_http_supportdesk_args_literal(&args, "9");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_args_app_key(&args, ctx, "c", xid);
    ngx_http_supportdesk_args_app_key(&args, ctx, "emails", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "order", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "notes", xid);
    ngx_http_supportdesk_args_app_key(&args, ctx, "notez", xid);
    ngx_http_supportdesk_args_app_key(&args, ctx, "notif", xid);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_str(&args, xid);
    ngx_http_supportdesk_args_str(&args, &ctx->if_match);

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_SCRIPT_DELETE,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_INTEGER,
                                           ngx_http_supportdesk_delete_done);
}


/*
 * {wasCreated, HGETALL}: packed in one string as the script answers it and
 * its record keeps it; an array as the script replays a record itself (and
 * as earlier gateways' scripts answered)
 */

static ngx_int_t
ngx_http_supportdesk_upsert_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_http_supportdesk_record_packed_t  packed;

    if (reply->type == REDIS_REPLY_STRING) {
        if (ngx_http_supportdesk_record_unpack((u_char *) reply->str,
                                               reply->len, &packed,
                                               r->connection->log)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_supportdesk_send_customer(r, ctx, &packed.hash,
                                                  packed.created);
    }

    if (reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return ngx_http_supportdesk_store_unexpected(r, reply);
    }

    return ngx_http_supportdesk_send_customer(r, ctx, reply->element[1],
                                              reply->element[0]->integer);
}


static ngx_int_t
ngx_http_supportdesk_get_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    u_char      *p, *end, *tag;
    ngx_str_t   *etag;

    if (reply->elements == 0) {
        return ngx_http_supportdesk_send_api_error(r,
                                    &ngx_http_supportdesk_customer_not_found);
    }

    if (ctx->if_none_match.len == 0
        || ngx_http_supportdesk_record_etag(r->pool, reply, &ctx->etag)
           != NGX_OK)
    {
        return ngx_http_supportdesk_send_customer(r, ctx, reply, -1);
    }

    /* weak comparison: the client's copy is the current one */
    etag = &ctx->etag;
    p = ctx->if_none_match.data;
    end = p + ctx->if_none_match.len;

    if (ctx->if_none_match.len == 1 && *p == '*') {
        return ngx_http_supportdesk_send_not_modified(r);
    }

    while (p < end) {
        tag = p;

        while (p < end && *p != ' ') {
            p++;
        }

        if ((size_t) (p - tag) == etag->len
            && ngx_strncmp(tag, etag->data, etag->len) == 0)
        {
            return ngx_http_supportdesk_send_not_modified(r);
        }

        p++;
    }

    return ngx_http_supportdesk_send_customer(r, ctx, reply, -1);
}


static ngx_int_t
ngx_http_supportdesk_delete_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    if (reply->integer == 0) {
        return ngx_http_supportdesk_send_api_error(r,
                                    &ngx_http_supportdesk_customer_not_found);
    }

    return ngx_http_supportdesk_send_deleted(r);
}


/* created: 1 or 0 adds wasCreated, -1 (a GET) does not */

static ngx_int_t
ngx_http_supportdesk_send_customer(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *hash, ngx_int_t created)
{
    ngx_http_supportdesk_json_t  json;

    if (ngx_http_supportdesk_envelope_start(r, &json, 1024) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"customer\":");

    if (ngx_http_supportdesk_record_render(&json, &ctx->external_id, hash,
                                           &ctx->etag)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: customer \"%V\" of app \"%V\" has a "
                      "malformed record", &ctx->external_id, &ctx->app);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (created == 1) {
        ngx_http_supportdesk_json_literal(&json, ",\"wasCreated\":true}");

    } else if (created == 0) {
        ngx_http_supportdesk_json_literal(&json, ",\"wasCreated\":false}");

    } else {
        ngx_http_supportdesk_json_literal(&json, "}");
    }

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
