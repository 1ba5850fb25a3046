
/*
 * GET /customers: one page in creation order (redis/list.lua), filters and
 * a scan budget applied on the server, so a huge app costs one bounded
 * script per page.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_module.h"


/* order key, prefix, after, limit, budget, notes, email, name */
#define NGX_HTTP_SUPPORTDESK_LIST_ARGS  9


static void ngx_http_supportdesk_list_done(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_list_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_query_parse(r, ctx, 0);
}


ngx_int_t
ngx_http_supportdesk_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                        *p;
    ngx_uint_t                     i;
    ngx_str_t                     *meta;
    ngx_http_supportdesk_query_t  *q;

    q = &ctx->query;
    meta = q->metadata.elts;

    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN + sizeof("sd:{}:") - 1
                             + ctx->app.len);

    if (p == NULL
        || ngx_http_supportdesk_args(r, ctx, NGX_HTTP_SUPPORTDESK_LIST_ARGS
                                             + q->metadata.nelts)
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "order", NULL,
                                          &ctx->argv[1], &ctx->argvlen[1])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "1";
    ctx->argvlen[0] = 1;

    ctx->argv[2] = (const char *) p;
    p = ngx_sprintf(p, "sd:{%V}:", &ctx->app);
    ctx->argvlen[2] = p - (u_char *) ctx->argv[2];

    if (q->cursor.len) {
        ctx->argv[3] = (const char *) q->cursor.data;
        ctx->argvlen[3] = q->cursor.len;

    } else {
        ctx->argv[3] = "0";
        ctx->argvlen[3] = 1;
    }

    ctx->argv[4] = (const char *) p;
    p = ngx_sprintf(p, "%ui", q->limit);
    ctx->argvlen[4] = p - (u_char *) ctx->argv[4];

    ctx->argv[5] = (const char *) p;
    p = ngx_sprintf(p, "%ui", ctx->conf->list_scan_limit);
    ctx->argvlen[5] = p - (u_char *) ctx->argv[5];

    ctx->argv[6] = q->notes_count ? "1" : "0";
    ctx->argvlen[6] = 1;

    ctx->argv[7] = q->email.len ? (const char *) q->email.data : "";
    ctx->argvlen[7] = q->email.len;
    ctx->argv[8] = q->name.len ? (const char *) q->name.data : "";
    ctx->argvlen[8] = q->name.len;

    for (i = 0; i < q->metadata.nelts; i++) {
        ctx->argv[9 + i] = meta[i].len ? (const char *) meta[i].data : "";
        ctx->argvlen[9 + i] = meta[i].len;
    }

    return ngx_http_supportdesk_call(r, ctx, ngx_http_supportdesk_script(LIST),
                                     ngx_http_supportdesk_list_done);
}


static void
ngx_http_supportdesk_list_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    if (rc == NGX_OK
        && reply->type == REDIS_REPLY_ARRAY
        && reply->elements >= 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        rc = ngx_http_supportdesk_list_send(r, ctx, reply);

    } else {
        rc = ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static ngx_int_t
ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                        i, step;
    ngx_str_t                     xid, cursor;
    redisReply                   *e;
    ngx_http_supportdesk_json_t   json;

    step = ctx->query.notes_count ? 3 : 2;

    if ((reply->elements - 2) % step) {
        return ngx_http_supportdesk_redis_failure(r, NGX_OK, reply);
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
            || reply->element[i + 1]->type != REDIS_REPLY_ARRAY)
        {
            return ngx_http_supportdesk_redis_failure(r, NGX_OK, reply);
        }

        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        xid.data = (u_char *) e->str;
        xid.len = e->len;

        if (ngx_http_supportdesk_render_customer(&json, &xid,
                                                 reply->element[i + 1])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
