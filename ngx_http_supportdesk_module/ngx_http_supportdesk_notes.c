
/*
 * A customer's notes: add, list newest first, delete.  Each is one script
 * that also checks the customer exists, so a note can never hang off a
 * deleted customer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_NOTE_MAX      65535


static void ngx_http_supportdesk_note_keys(ngx_http_supportdesk_ctx_t *ctx,
    ngx_http_supportdesk_args_t *args);
static ngx_int_t ngx_http_supportdesk_note_added(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_note_listed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_note_deleted(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_note_validate_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    json_t                         *note;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;

    note = json_object_get(ctx->body, "note");

    if (note == NULL) {
        ngx_http_supportdesk_report_add(rep, "note", 4, "is required");

    } else if (!json_is_string(note)) {
        ngx_http_supportdesk_report_add(rep, "note", 4, "must be a string");

    } else if (json_string_length(note) == 0
               || json_string_length(note) > NGX_HTTP_SUPPORTDESK_NOTE_MAX)
    {
        ngx_http_supportdesk_report_add(rep, "note", 4,
                                        "must be 1-65535 bytes");
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_note_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    json_t                       *note;
    ngx_http_supportdesk_args_t   args;

    ngx_http_supportdesk_args_init(&args, r->pool, 15);

    note = json_object_get(ctx->body, "note");

    ngx_http_supportdesk_args_literal(&args, "7");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_note_keys(ctx, &args);
    ngx_http_supportdesk_args_app_key(&args, ctx, "noteseq", NULL);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_str(&args, &ctx->external_id);
    ngx_http_supportdesk_args_add(&args, (u_char *) json_string_value(note),
                                  json_string_length(note));

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_ADD,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                           ngx_http_supportdesk_note_added);
}


ngx_int_t
ngx_http_supportdesk_note_validate_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_query_step(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_QUERY_NOTES);
}


ngx_int_t
ngx_http_supportdesk_note_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_args_t    args;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;

    ngx_http_supportdesk_args_init(&args, r->pool, 8);

    ngx_http_supportdesk_args_literal(&args, "3");
    ngx_http_supportdesk_note_keys(ctx, &args);

    ngx_http_supportdesk_args_str_or(&args, &q->cursor, "+inf");

    ngx_http_supportdesk_args_uint(&args, q->limit);
    ngx_http_supportdesk_args_uint(&args, ctx->conf->list_scan_limit);
    ngx_http_supportdesk_args_str(&args, &q->text);

    return ngx_http_supportdesk_store_call(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_LIST,
                                       &args,
                                       NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                       ngx_http_supportdesk_note_listed);
}


ngx_int_t
ngx_http_supportdesk_note_validate_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_id_step(r, ctx, &ctx->params[1],
                                        NGX_HTTP_SUPPORTDESK_NOTE_PREFIX);
}


ngx_int_t
ngx_http_supportdesk_note_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_uint_t                   *number;
    ngx_http_supportdesk_args_t   args;

    number = ctx->data;

    ngx_http_supportdesk_args_init(&args, r->pool, 14);

    ngx_http_supportdesk_args_literal(&args, "6");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_note_keys(ctx, &args);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_str(&args, &ctx->external_id);
    ngx_http_supportdesk_args_uint(&args, *number);

    return ngx_http_supportdesk_store_call(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_DELETE,
                                       &args,
                                       NGX_HTTP_SUPPORTDESK_REPLY_INTEGER,
                                       ngx_http_supportdesk_note_deleted);
}


/* the keys every note script opens with: the customer, its notes and
   their order */

static void
ngx_http_supportdesk_note_keys(ngx_http_supportdesk_ctx_t *ctx,
    ngx_http_supportdesk_args_t *args)
{
    ngx_http_supportdesk_args_app_key(args, ctx, "c", &ctx->external_id);
    ngx_http_supportdesk_args_app_key(args, ctx, "notes", &ctx->external_id);
    ngx_http_supportdesk_args_app_key(args, ctx, "notez", &ctx->external_id);
}


static ngx_int_t
ngx_http_supportdesk_note_added(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    u_char                        buf[NGX_INT64_LEN];
    time_t                        created;
    json_t                       *note;
    redisReply                   *id, *c;
    ngx_http_supportdesk_json_t   json;

    /* {number, createdAt}: a replay answers the note as it was made */
    if (reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || (reply->element[1]->type != REDIS_REPLY_STRING
            && reply->element[1]->type != REDIS_REPLY_INTEGER))
    {
        return ngx_http_supportdesk_store_unexpected(r, reply);
    }

    id = reply->element[0];
    c = reply->element[1];
    created = (c->type == REDIS_REPLY_INTEGER)
              ? (time_t) c->integer
              : ngx_atotm((u_char *) c->str, c->len);

    note = json_object_get(ctx->body, "note");

    if (ngx_http_supportdesk_envelope_start(r, &json,
                                        json_string_length(note) * 2 + 256)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"note\":");
    ngx_http_supportdesk_record_note(&json, buf,
                                   ngx_sprintf(buf, "%L", id->integer) - buf,
                                   created == NGX_ERROR ? 0 : created,
                                   (u_char *) json_string_value(note),
                                   json_string_length(note));
    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_CREATED, &json);
}


/* {total, next bound or "", number, createdAt, text, ...} */

static ngx_int_t
ngx_http_supportdesk_note_listed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                        i;
    time_t                        created;
    ngx_str_t                     cursor;
    redisReply                   *id, *c, *text, *next;
    ngx_http_supportdesk_json_t   json;

    if (reply->elements < 2
        || (reply->elements - 2) % 3
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return ngx_http_supportdesk_store_unexpected(r, reply);
    }

    if (ngx_http_supportdesk_envelope_start(r, &json, 1024) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"notes\":[");

    for (i = 2; i < reply->elements; i += 3) {
        id = reply->element[i];
        c = reply->element[i + 1];
        text = reply->element[i + 2];

        if (id->type != REDIS_REPLY_STRING || c->type != REDIS_REPLY_STRING
            || text->type != REDIS_REPLY_STRING)
        {
            return ngx_http_supportdesk_store_unexpected(r, reply);
        }

        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        created = ngx_atotm((u_char *) c->str, c->len);

        ngx_http_supportdesk_record_note(&json, (u_char *) id->str, id->len,
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

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}


static ngx_int_t
ngx_http_supportdesk_note_deleted(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    return ngx_http_supportdesk_send_deleted(r);
}
