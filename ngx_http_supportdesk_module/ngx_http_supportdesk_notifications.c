
/*
 * /customers/{externalId}/notifications: a customer's three notification
 * settings, read (GET) or changed (PATCH) by redis/notifications.lua, which
 * also checks that the customer exists.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_SETTINGS    3
/* numkeys, the customer, its settings, then a pair per setting */
#define NGX_HTTP_SUPPORTDESK_NOTIF_ARGS  (3 + 2 * NGX_HTTP_SUPPORTDESK_SETTINGS)


static ngx_int_t ngx_http_supportdesk_notif_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


/* stored under the names clients use: a handful per customer */
static ngx_str_t  ngx_http_supportdesk_settings[] = {
    ngx_string("newTicket"),
    ngx_string("newComment"),
    ngx_string("ticketReassigned"),
    ngx_null_string
};


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

    ngx_http_supportdesk_args_literal(&args, "2");
    ngx_http_supportdesk_args_app_key(&args, ctx, "c", &ctx->external_id);
    ngx_http_supportdesk_args_app_key(&args, ctx, "notif", &ctx->external_id);

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


/* HGETALL of the settings: an unset one is on */

static ngx_int_t
ngx_http_supportdesk_notif_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_uint_t                    i;
    redisReply                   *v[NGX_HTTP_SUPPORTDESK_SETTINGS];
    ngx_http_supportdesk_json_t   json;

    ngx_http_supportdesk_store_fields(reply, ngx_http_supportdesk_settings,
                                      v);

    if (ngx_http_supportdesk_envelope_start(r, &json, 256) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"notifications\":{");

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SETTINGS; i++) {
        if (i) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        ngx_http_supportdesk_json_string(&json,
                                         ngx_http_supportdesk_settings[i].data,
                                         ngx_http_supportdesk_settings[i].len);

        if (v[i] == NULL || (v[i]->len == 1 && v[i]->str[0] == '1')) {
            ngx_http_supportdesk_json_literal(&json, ":true");

        } else {
            ngx_http_supportdesk_json_literal(&json, ":false");
        }
    }

    ngx_http_supportdesk_json_literal(&json, "}}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
