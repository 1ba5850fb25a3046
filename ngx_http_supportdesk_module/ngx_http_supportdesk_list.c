
/*
 * GET /customers: one page in creation order (redis/list.lua), filters and
 * a scan budget applied on the server, so a huge app costs one bounded
 * script per page.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


/* numkeys, order key, prefix, after, limit, budget, notes, email, name */
#define NGX_HTTP_SUPPORTDESK_LIST_ARGS  9


static ngx_int_t ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_list_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_query_step(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_QUERY_CUSTOMERS);
}


ngx_int_t
ngx_http_supportdesk_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t                     *meta;
    ngx_uint_t                     i;
    ngx_http_supportdesk_args_t    args;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;
    meta = q->metadata.elts;

    ngx_http_supportdesk_args_init(&args, r->pool,
                                       NGX_HTTP_SUPPORTDESK_LIST_ARGS
                                       + q->metadata.nelts);

    ngx_http_supportdesk_args_literal(&args, "1");
    ngx_http_supportdesk_args_app_key(&args, ctx, "order", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "", NULL);

    ngx_http_supportdesk_args_str_or(&args, &q->cursor, "0");

    ngx_http_supportdesk_args_uint(&args, q->limit);
    ngx_http_supportdesk_args_uint(&args, ctx->conf->list_scan_limit);

    if (q->notes_count) {
        ngx_http_supportdesk_args_literal(&args, "1");

    } else {
        ngx_http_supportdesk_args_literal(&args, "0");
    }

    ngx_http_supportdesk_args_str(&args, &q->email);
    ngx_http_supportdesk_args_str(&args, &q->name);

    for (i = 0; i < q->metadata.nelts; i++) {
        ngx_http_supportdesk_args_str(&args, &meta[i]);
    }

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_SCRIPT_LIST,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                           ngx_http_supportdesk_list_send);
}


/*
 * {total, next sequence or "", externalId, the customer's field values in
 * sd.customer_fields order[, notesCount], ...}
 */

static ngx_int_t
ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                         i, step;
    ngx_str_t                      xid, cursor;
    redisReply                    *e;
    ngx_http_supportdesk_json_t    json;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;
    step = q->notes_count ? 3 : 2;

    if (reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING
        || (reply->elements - 2) % step)
    {
        return ngx_http_supportdesk_store_unexpected(r, reply);
    }

    if (ngx_http_supportdesk_envelope_start(r, &json,
                                            256 * (reply->elements + 1))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"customers\":[");

    for (i = 2; i < reply->elements; i += step) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING
            || reply->element[i + 1]->type != REDIS_REPLY_ARRAY
            || (step == 3
                && reply->element[i + 2]->type != REDIS_REPLY_INTEGER))
        {
            return ngx_http_supportdesk_store_unexpected(r, reply);
        }

        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        xid.data = (u_char *) e->str;
        xid.len = e->len;

        if (ngx_http_supportdesk_record_render_values(&json, &xid,
                                                      reply->element[i + 1])
            != NGX_OK)
        {
            return ngx_http_supportdesk_store_unexpected(r, reply);
        }

        if (step == 3 && !json.failed) {
            /* reopen the customer object to add its note count */
            json.pos--;
            ngx_http_supportdesk_json_literal(&json, ",\"notesCount\":");
            ngx_http_supportdesk_json_int(&json,
                                          reply->element[i + 2]->integer);
            ngx_http_supportdesk_json_literal(&json, "}");
        }
    }

    ngx_http_supportdesk_json_literal(&json, "],\"nextCursor\":");

    e = reply->element[1];

    if (e->len == 0) {
        ngx_http_supportdesk_json_literal(&json, "null");

    } else {
        if (ngx_http_supportdesk_cursor_encode(r->pool, (u_char *) e->str,
                                               e->len, &cursor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_supportdesk_json_string(&json, cursor.data, cursor.len);
    }

    ngx_http_supportdesk_json_literal(&json, ",\"total\":");
    ngx_http_supportdesk_json_int(&json, reply->element[0]->integer);
    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
