
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
#include "ngx_http_supportdesk_msgpack.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


/* numkeys, order key, prefix, after, limit, budget, notes, email, name */
#define NGX_HTTP_SUPPORTDESK_LIST_ARGS  9


/* a customer of a page as render_values() takes it, pointing into the page */
typedef struct {
    redisReply   array;
    redisReply  *element[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];
    redisReply   value[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];
} ngx_http_supportdesk_list_values_t;


static ngx_int_t ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_customer(
    ngx_http_supportdesk_json_t *json, ngx_http_supportdesk_msgpack_t *mp,
    ngx_uint_t notes_count);


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
                                           NGX_HTTP_SUPPORTDESK_REPLY_STRING,
                                           ngx_http_supportdesk_list_send);
}


/*
 * One string: cmsgpack.pack() of {total, next sequence or "", externalId,
 * {the customer's field values in sd.customer_fields order, false for an
 * unset one}[, notesCount], ...}, walked in place: no reply object per
 * value (a page of 20 is about 240 values).
 */

static ngx_int_t
ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                                i, n, step, size;
    int64_t                               total;
    ngx_int_t                             rc;
    ngx_str_t                             cursor;
    ngx_http_supportdesk_json_t           json;
    ngx_http_supportdesk_query_t         *q;
    ngx_http_supportdesk_msgpack_t        mp;
    ngx_http_supportdesk_msgpack_item_t   item, next;

    q = ctx->data;
    step = q->notes_count ? 3 : 2;

    mp.p = (u_char *) reply->str;
    mp.last = mp.p + reply->len;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY
        || item.len < 2
        || (item.len - 2) % step)
    {
        goto unexpected;
    }

    n = item.len;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_INTEGER
        || ngx_http_supportdesk_msgpack_next(&mp, &next) != NGX_OK
        || next.type != REDIS_REPLY_STRING)
    {
        goto unexpected;
    }

    total = item.integer;

    /*
     * the page's bytes plus the names and quotes of each customer it can
     * hold (the buffer grows if a page needs more): never a size a forged
     * element count could inflate
     */
    size = reply->len + 160 * ngx_min((n - 2) / step, q->limit) + 128;

    if (ngx_http_supportdesk_envelope_start(r, &json, size) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"customers\":[");

    for (i = 2; i < n; i += step) {
        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        rc = ngx_http_supportdesk_list_customer(&json, &mp, step == 3);
        if (rc != NGX_OK) {
            goto unexpected;
        }
    }

    if (mp.p != mp.last) {
        goto unexpected;
    }

    ngx_http_supportdesk_json_literal(&json, "],\"nextCursor\":");

    if (next.len == 0) {
        ngx_http_supportdesk_json_literal(&json, "null");

    } else {
        if (ngx_http_supportdesk_cursor_encode(r->pool, (u_char *) next.str,
                                               next.len, &cursor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_supportdesk_json_string(&json, cursor.data, cursor.len);
    }

    ngx_http_supportdesk_json_literal(&json, ",\"total\":");
    ngx_http_supportdesk_json_int(&json, total);
    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);

unexpected:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "supportdesk: unexpected list page from redis at byte %uz "
                  "of %uz", (size_t) (mp.p - (u_char *) reply->str),
                  reply->len);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* externalId, {values}[, notesCount]: rendered from the text in place */

static ngx_int_t
ngx_http_supportdesk_list_customer(ngx_http_supportdesk_json_t *json,
    ngx_http_supportdesk_msgpack_t *mp, ngx_uint_t notes_count)
{
    size_t                                k;
    ngx_str_t                             xid;
    ngx_http_supportdesk_list_values_t    v;
    ngx_http_supportdesk_msgpack_item_t   item;

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_STRING)
    {
        return NGX_ERROR;
    }

    xid.data = (u_char *) item.str;
    xid.len = item.len;

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY
        || item.len != NGX_HTTP_SUPPORTDESK_RECORD_FIELDS)
    {
        return NGX_ERROR;
    }

    /* strings and nils only: render_values() refuses anything else */
    for (k = 0; k < NGX_HTTP_SUPPORTDESK_RECORD_FIELDS; k++) {
        if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
            || item.type == REDIS_REPLY_ARRAY)
        {
            return NGX_ERROR;
        }

        v.value[k].type = item.type;
        v.value[k].str = (char *) item.str;
        v.value[k].len = item.len;
        v.element[k] = &v.value[k];
    }

    v.array.type = REDIS_REPLY_ARRAY;
    v.array.elements = NGX_HTTP_SUPPORTDESK_RECORD_FIELDS;
    v.array.element = v.element;

    if (ngx_http_supportdesk_record_render_values(json, &xid, &v.array)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!notes_count) {
        return NGX_OK;
    }

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_INTEGER)
    {
        return NGX_ERROR;
    }

    if (!json->failed) {
        /* reopen the customer object to add its note count */
        json->pos--;
        ngx_http_supportdesk_json_literal(json, ",\"notesCount\":");
        ngx_http_supportdesk_json_int(json, item.integer);
        ngx_http_supportdesk_json_literal(json, "}");
    }

    return NGX_OK;
}
