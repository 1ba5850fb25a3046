
/*
 * /customers/{externalId}/notifications: a customer's three notification
 * settings, read (GET, redis/notif_read.lua, no-writes) or changed (PATCH,
 * redis/notifications.lua); both check that the customer exists.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


/* numkeys, 3 + 2 keys, 5 + 1 arguments, then a pair per setting */
#define NGX_HTTP_SUPPORTDESK_NOTIF_ARGS                                       \
    (12 + 2 * NGX_HTTP_SUPPORTDESK_SETTINGS)


static ngx_int_t ngx_http_supportdesk_notif_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_notif_validate_patch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    const char                     *key;
    json_t                         *value;
    ngx_str_t                      *s;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;

    json_object_foreach(ctx->body, key, value) {
        for (s = ngx_http_supportdesk_settings; s->len; s++) {
            if (ngx_strcmp(key, s->data) == 0) {
                break;
            }
        }

        if (s->len == 0) {
            ngx_http_supportdesk_report_add(rep, key, ngx_strlen(key),
                                            "is not a known setting");

        } else if (!json_is_boolean(value)) {
            ngx_http_supportdesk_report_add(rep, key, ngx_strlen(key),
                                            "must be true or false");
        }
    }

    return NGX_OK;
}


/* GET, and PATCH with the settings of the body */

ngx_int_t
ngx_http_supportdesk_notif(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    json_t                       *value;
    ngx_str_t                    *s;
    ngx_http_supportdesk_args_t   args;

    ngx_http_supportdesk_args_init(&args, r->pool,
                                       NGX_HTTP_SUPPORTDESK_NOTIF_ARGS);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        /* a read, no-writes: served while Redis pauses writes */
        ngx_http_supportdesk_args_literal(&args, "2");
        ngx_http_supportdesk_args_app_key(&args, ctx, "c",
                                          &ctx->external_id);
        ngx_http_supportdesk_args_app_key(&args, ctx, "notif",
                                          &ctx->external_id);

        return ngx_http_supportdesk_store_call(r, ctx,
                                     NGX_HTTP_SUPPORTDESK_SCRIPT_NOTIF_READ,
                                     &args,
                                     NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                     ngx_http_supportdesk_notif_done);
    }

    ngx_http_supportdesk_args_literal(&args, "5");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_args_app_key(&args, ctx, "c", &ctx->external_id);
    ngx_http_supportdesk_args_app_key(&args, ctx, "notif", &ctx->external_id);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_str(&args, &ctx->external_id);

    for (s = ngx_http_supportdesk_settings; ctx->body && s->len; s++) {
        value = json_object_get(ctx->body, (const char *) s->data);

        if (value == NULL) {
            continue;
        }

        ngx_http_supportdesk_args_str(&args, s);

        if (json_is_true(value)) {
            ngx_http_supportdesk_args_literal(&args, "1");

        } else {
            ngx_http_supportdesk_args_literal(&args, "0");
        }
    }

    return ngx_http_supportdesk_store_call(r, ctx,
                                     NGX_HTTP_SUPPORTDESK_SCRIPT_NOTIFICATIONS,
                                     &args,
                                     NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                     ngx_http_supportdesk_notif_done);
}


/* HGETALL of the settings */

static ngx_int_t
ngx_http_supportdesk_notif_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_http_supportdesk_json_t  json;

    if (ngx_http_supportdesk_envelope_start(r, &json, 256) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"notifications\":");
    ngx_http_supportdesk_record_settings(&json, reply);
    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
