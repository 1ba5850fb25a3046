
/*
 * A customer's notes (add, list newest first, delete) and notification
 * settings.  Each is one script that also checks the customer exists, so
 * a note can never hang off a deleted customer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_module.h"


#define NGX_HTTP_SUPPORTDESK_NOTE_MAX      65535
#define NGX_HTTP_SUPPORTDESK_NOTE_PREFIX   "note_"


/* stored under the names clients use: a handful per customer */
typedef struct {
    ngx_str_t    name;
} ngx_http_supportdesk_setting_t;


static ngx_int_t ngx_http_supportdesk_note_keys(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, int argc);
static void ngx_http_supportdesk_note_add_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_note_list_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_note_delete_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_notif_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_note_json(ngx_http_supportdesk_json_t *json,
    u_char *id, size_t id_len, time_t created, u_char *text, size_t len);
static ngx_http_supportdesk_ctx_t *ngx_http_supportdesk_note_ctx(
    ngx_http_request_t *r);


static ngx_http_supportdesk_setting_t  ngx_http_supportdesk_settings[] = {
    { ngx_string("newTicket") },
    { ngx_string("newComment") },
    { ngx_string("ticketReassigned") },
    { ngx_null_string }
};


ngx_int_t
ngx_http_supportdesk_note_validate_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t    rc;
    json_t      *note;
    const char  *key;
    json_t      *value;

    rc = ngx_http_supportdesk_customer_validate_id(r, ctx);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    json_object_foreach(ctx->body, key, value) {
        if (ngx_strcmp(key, "note") != 0) {
            ngx_http_supportdesk_report_add(ctx->report, key, ngx_strlen(key),
                                            "is not a known field");
        }
    }

    note = json_object_get(ctx->body, "note");

    if (note == NULL) {
        ngx_http_supportdesk_report_add(ctx->report, "note", 4,
                                        "is required");

    } else if (!json_is_string(note)) {
        ngx_http_supportdesk_report_add(ctx->report, "note", 4,
                                        "must be a string");

    } else if (json_string_length(note) == 0
               || json_string_length(note) > NGX_HTTP_SUPPORTDESK_NOTE_MAX)
    {
        ngx_http_supportdesk_report_add(ctx->report, "note", 4,
                                        "must be 1-65535 bytes");
    }

    return ctx->report->n ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_note_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char  *p;
    json_t  *note;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

    if (p == NULL
        || ngx_http_supportdesk_note_keys(r, ctx, 7) != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "noteseq", NULL,
                                          &ctx->argv[4], &ctx->argvlen[4])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "4";
    ctx->argv[5] = (const char *) p;
    ctx->argvlen[5] = ngx_sprintf(p, "%T", ngx_time()) - p;

    note = json_object_get(ctx->body, "note");
    ctx->argv[6] = json_string_value(note);
    ctx->argvlen[6] = json_string_length(note);

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(NOTE_ADD),
                                     ngx_http_supportdesk_note_add_done);
}


ngx_int_t
ngx_http_supportdesk_note_validate_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_supportdesk_customer_validate_id(r, ctx);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_supportdesk_query_parse(r, ctx, 1);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    return ctx->report->n ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_note_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                        *p;
    ngx_http_supportdesk_query_t  *q;

    q = &ctx->query;
    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);

    if (p == NULL
        || ngx_http_supportdesk_note_keys(r, ctx, 8) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "3";

    if (q->cursor.len) {
        ctx->argv[4] = (const char *) q->cursor.data;
        ctx->argvlen[4] = q->cursor.len;

    } else {
        ctx->argv[4] = "+inf";
        ctx->argvlen[4] = 4;
    }

    ctx->argv[5] = (const char *) p;
    p = ngx_sprintf(p, "%ui", q->limit);
    ctx->argvlen[5] = p - (u_char *) ctx->argv[5];

    ctx->argv[6] = (const char *) p;
    p = ngx_sprintf(p, "%ui", ctx->conf->list_scan_limit);
    ctx->argvlen[6] = p - (u_char *) ctx->argv[6];

    ctx->argv[7] = q->text.len ? (const char *) q->text.data : "";
    ctx->argvlen[7] = q->text.len;

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(NOTE_LIST),
                                     ngx_http_supportdesk_note_list_done);
}


ngx_int_t
ngx_http_supportdesk_note_validate_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_supportdesk_customer_validate_id(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->number = ngx_http_supportdesk_parse_id(&ctx->params[1],
                                         NGX_HTTP_SUPPORTDESK_NOTE_PREFIX);

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_note_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);

    if (p == NULL
        || ngx_http_supportdesk_note_keys(r, ctx, 5) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "3";
    ctx->argv[4] = (const char *) p;
    ctx->argvlen[4] = ngx_sprintf(p, "%ui", ctx->number) - p;

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(NOTE_DELETE),
                                     ngx_http_supportdesk_note_delete_done);
}


ngx_int_t
ngx_http_supportdesk_notif_validate_patch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t                        rc;
    const char                      *key;
    json_t                          *value;
    ngx_http_supportdesk_setting_t  *s;

    rc = ngx_http_supportdesk_customer_validate_id(r, ctx);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    json_object_foreach(ctx->body, key, value) {
        for (s = ngx_http_supportdesk_settings; s->name.len; s++) {
            if (ngx_strcmp(key, s->name.data) == 0) {
                break;
            }
        }

        if (s->name.len == 0) {
            ngx_http_supportdesk_report_add(ctx->report, key, ngx_strlen(key),
                                            "is not a known setting");

        } else if (!json_is_boolean(value)) {
            ngx_http_supportdesk_report_add(ctx->report, key, ngx_strlen(key),
                                            "must be true or false");
        }
    }

    return ctx->report->n ? NGX_DECLINED : NGX_OK;
}


/* GET, and PATCH with the settings of the body */

ngx_int_t
ngx_http_supportdesk_notif(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    int                              n;
    json_t                          *value;
    ngx_http_supportdesk_setting_t  *s;

    if (ngx_http_supportdesk_args(r, ctx, 9) != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "c", &ctx->external_id,
                                          &ctx->argv[1], &ctx->argvlen[1])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notif", &ctx->external_id,
                                          &ctx->argv[2], &ctx->argvlen[2])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "2";
    ctx->argvlen[0] = 1;
    n = 3;

    for (s = ngx_http_supportdesk_settings; ctx->body && s->name.len; s++) {
        value = json_object_get(ctx->body, (const char *) s->name.data);

        if (value) {
            ctx->argv[n] = (const char *) s->name.data;
            ctx->argvlen[n++] = s->name.len;
            ctx->argv[n] = json_is_true(value) ? "1" : "0";
            ctx->argvlen[n++] = 1;
        }
    }

    ctx->argc = n;

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(NOTIFICATIONS),
                                     ngx_http_supportdesk_notif_done);
}


/* argv[1..3]: the customer, its notes and their order; argv[0] numkeys */

static ngx_int_t
ngx_http_supportdesk_note_keys(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, int argc)
{
    if (ngx_http_supportdesk_args(r, ctx, argc) != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "c", &ctx->external_id,
                                          &ctx->argv[1], &ctx->argvlen[1])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notes", &ctx->external_id,
                                          &ctx->argv[2], &ctx->argvlen[2])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notez", &ctx->external_id,
                                          &ctx->argv[3], &ctx->argvlen[3])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->argvlen[0] = 1;

    return NGX_OK;
}


static void
ngx_http_supportdesk_note_add_done(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_request_t  *r = data;

    u_char                       id[NGX_INT_T_LEN];
    json_t                      *note;
    ngx_http_supportdesk_ctx_t  *ctx;
    ngx_http_supportdesk_json_t  json;

    ctx = ngx_http_supportdesk_note_ctx(r);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER) {
        note = json_object_get(ctx->body, "note");

        if (ngx_http_supportdesk_envelope_start(r, &json,
                                        json_string_length(note) * 2 + 256)
            != NGX_OK)
        {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_http_supportdesk_json_literal(&json, "{\"note\":");
            ngx_http_supportdesk_note_json(&json, id,
                          ngx_sprintf(id, "%L", reply->integer) - id,
                          ngx_time(), (u_char *) json_string_value(note),
                          json_string_length(note));
            ngx_http_supportdesk_json_literal(&json, "}");
            rc = ngx_http_supportdesk_envelope_send(r, NGX_HTTP_CREATED,
                                                    &json);
        }

    } else {
        rc = ngx_http_supportdesk_script_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static void
ngx_http_supportdesk_note_list_done(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t                       i;
    time_t                       created;
    ngx_str_t                    cursor;
    redisReply                  *id, *c, *text, *next;
    ngx_http_supportdesk_json_t  json;

    (void) ngx_http_supportdesk_note_ctx(r);

    if (rc != NGX_OK || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_supportdesk_finish(r,
                         ngx_http_supportdesk_script_failure(r, rc, reply));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || (reply->elements - 2) % 3
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING
        || ngx_http_supportdesk_envelope_start(r, &json, 1024) != NGX_OK)
    {
        ngx_http_supportdesk_finish(r,
                    ngx_http_supportdesk_redis_failure(r, NGX_OK, reply));
        return;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"notes\":[");

    for (i = 2; i < reply->elements; i += 3) {
        id = reply->element[i];
        c = reply->element[i + 1];
        text = reply->element[i + 2];

        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        created = ngx_atotm((u_char *) c->str, c->len);

        ngx_http_supportdesk_note_json(&json, (u_char *) id->str, id->len,
                                       created == NGX_ERROR ? 0 : created,
                                       (u_char *) text->str, text->len);
    }

    ngx_http_supportdesk_json_literal(&json, "],\"nextCursor\":");

    next = reply->element[1];

    if (next->len == 0) {
        ngx_http_supportdesk_json_literal(&json, "null");

    } else if (ngx_http_supportdesk_cursor_encode(r->pool,
                                                  (u_char *) next->str,
                                                  next->len, &cursor)
               == NGX_OK)
    {
        ngx_http_supportdesk_json_string(&json, cursor.data, cursor.len);

    } else {
        json.failed = 1;
    }

    ngx_http_supportdesk_json_literal(&json, ",\"total\":");
    ngx_http_supportdesk_json_int(&json, reply->element[0]->integer);
    ngx_http_supportdesk_json_literal(&json, "}");

    ngx_http_supportdesk_finish(r,
                ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json));
}


static void
ngx_http_supportdesk_note_delete_done(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_request_t  *r = data;

    (void) ngx_http_supportdesk_note_ctx(r);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER) {
        rc = ngx_http_supportdesk_send_deleted(r);

    } else {
        rc = ngx_http_supportdesk_script_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static void
ngx_http_supportdesk_notif_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t                           i;
    ngx_uint_t                       on;
    redisReply                      *f, *v;
    ngx_http_supportdesk_json_t      json;
    ngx_http_supportdesk_setting_t  *s;

    (void) ngx_http_supportdesk_note_ctx(r);

    if (rc != NGX_OK || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_supportdesk_finish(r,
                         ngx_http_supportdesk_script_failure(r, rc, reply));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY
        || ngx_http_supportdesk_envelope_start(r, &json, 256) != NGX_OK)
    {
        ngx_http_supportdesk_finish(r,
                    ngx_http_supportdesk_redis_failure(r, NGX_OK, reply));
        return;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"notifications\":{");

    for (s = ngx_http_supportdesk_settings; s->name.len; s++) {
        on = 1;

        for (i = 0; i + 1 < reply->elements; i += 2) {
            f = reply->element[i];
            v = reply->element[i + 1];

            if (f->len == s->name.len
                && ngx_strncmp(f->str, s->name.data, f->len) == 0)
            {
                on = (v->len == 1 && v->str[0] == '1');
            }
        }

        if (s != ngx_http_supportdesk_settings) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        ngx_http_supportdesk_json_string(&json, s->name.data, s->name.len);

        if (on) {
            ngx_http_supportdesk_json_literal(&json, ":true");

        } else {
            ngx_http_supportdesk_json_literal(&json, ":false");
        }
    }

    ngx_http_supportdesk_json_literal(&json, "}}");

    ngx_http_supportdesk_finish(r,
                ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json));
}


static void
ngx_http_supportdesk_note_json(ngx_http_supportdesk_json_t *json, u_char *id,
    size_t id_len, time_t created, u_char *text, size_t len)
{
    /* notes are never edited: updatedAt is createdAt */
    ngx_http_supportdesk_json_literal(json,
                               "{\"id\":\"" NGX_HTTP_SUPPORTDESK_NOTE_PREFIX);
    ngx_http_supportdesk_json_raw(json, id, id_len);
    ngx_http_supportdesk_json_literal(json, "\",\"text\":");
    ngx_http_supportdesk_json_string(json, text, len);
    ngx_http_supportdesk_json_literal(json, ",\"createdAt\":");
    ngx_http_supportdesk_json_time(json, created);
    ngx_http_supportdesk_json_literal(json, ",\"updatedAt\":");
    ngx_http_supportdesk_json_time(json, created);
    ngx_http_supportdesk_json_literal(json, "}");
}


static ngx_http_supportdesk_ctx_t *
ngx_http_supportdesk_note_ctx(ngx_http_request_t *r)
{
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    return ctx;
}
