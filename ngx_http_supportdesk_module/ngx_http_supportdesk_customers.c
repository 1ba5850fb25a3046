
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

#include "ngx_http_supportdesk_module.h"
#include "ngx_http_supportdesk_envelope.h"


/* 4 keys + now + externalId + 5 field/value pairs */
#define NGX_HTTP_SUPPORTDESK_UPSERT_ARGS  17


static ngx_int_t ngx_http_supportdesk_customer_keys(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, const char **argv, size_t *argvlen);
static void ngx_http_supportdesk_upsert_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_get_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_delete_done(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_send_customer(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *hash, ngx_int_t created);
static ngx_int_t ngx_http_supportdesk_script_error(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_http_supportdesk_ctx_t *ngx_http_supportdesk_reply_ctx(
    ngx_http_request_t *r);


ngx_int_t
ngx_http_supportdesk_customer_validate_id(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                         *dst;
    ngx_http_supportdesk_report_t  *rep;

    rep = ngx_http_supportdesk_report(r, ctx);
    dst = ngx_pnalloc(r->pool, ctx->params[0].len + 1);

    if (rep == NULL || dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_supportdesk_decode_external_id(&ctx->params[0], dst,
                                                   &ctx->external_id, rep);

    return rep->n ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_customer_validate_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_supportdesk_customer_validate_id(r, ctx);

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    (void) ngx_http_supportdesk_validate_customer(ctx->body, 0, &ctx->input,
                                                  ctx->report);

    return ctx->report->n ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_customer_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    if (ngx_http_supportdesk_upsert_args(r, ctx, &ctx->external_id,
                                         &ctx->input, &ctx->argc,
                                         &ctx->argv, &ctx->argvlen)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(UPSERT),
                                     ngx_http_supportdesk_upsert_done);
}


/* the EVALSHA arguments of redis/upsert.lua for one customer */

ngx_int_t
ngx_http_supportdesk_upsert_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *external_id,
    ngx_http_supportdesk_customer_input_t *in, int *argcp,
    const char ***argvp, size_t **argvlenp)
{
    int           n;
    u_char       *p;
    size_t       *argvlen;
    ngx_str_t     key;
    const char  **argv;

    argv = ngx_palloc(r->pool,
                      NGX_HTTP_SUPPORTDESK_UPSERT_ARGS * sizeof(const char *));
    argvlen = ngx_palloc(r->pool,
                         NGX_HTTP_SUPPORTDESK_UPSERT_ARGS * sizeof(size_t));
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

    if (argv == NULL || argvlen == NULL || p == NULL) {
        return NGX_ERROR;
    }

    key = ctx->external_id;
    ctx->external_id = *external_id;

    if (ngx_http_supportdesk_customer_keys(r, ctx, argv, argvlen) != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "seq", NULL, &argv[4],
                                          &argvlen[4])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->external_id = key;

    argv[0] = "4";
    argvlen[0] = 1;

    argv[5] = (const char *) p;
    argvlen[5] = ngx_sprintf(p, "%T", ngx_time()) - p;

    argv[6] = (const char *) external_id->data;
    argvlen[6] = external_id->len;

    n = 7;

#define ngx_http_supportdesk_pair(name, value)                                \
    argv[n] = name;                                                           \
    argvlen[n++] = 1;                                                         \
    argv[n] = (value).data ? (const char *) (value).data : "";               \
    argvlen[n++] = (value).len

    if (in->set_email) {
        ngx_http_supportdesk_pair("e", in->email);
    }

    if (in->set_name) {
        ngx_http_supportdesk_pair("n", in->name);
    }

    if (in->set_phone || in->clear_phone) {
        /* a cleared field travels as an empty value */
        ngx_http_supportdesk_pair("p", in->phone);
    }

    if (in->set_avatar_url || in->clear_avatar_url) {
        ngx_http_supportdesk_pair("a", in->avatar_url);
    }

#undef ngx_http_supportdesk_pair

    if (in->set_metadata) {
        p = ngx_pnalloc(r->pool, in->metadata_len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (json_dumpb(in->metadata, (char *) p, in->metadata_len,
                       NGX_HTTP_SUPPORTDESK_METADATA_FLAGS)
            != in->metadata_len)
        {
            return NGX_ERROR;
        }

        argv[n] = "m";
        argvlen[n++] = 1;
        argv[n] = (const char *) p;
        argvlen[n++] = in->metadata_len;

    } else if (in->clear_metadata) {
        argv[n] = "m";
        argvlen[n++] = 1;
        argv[n] = "";
        argvlen[n++] = 0;
    }

    *argcp = n;
    *argvp = argv;
    *argvlenp = argvlen;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_customer_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    size_t       *argvlen;
    const char  **argv;

    argv = ngx_palloc(r->pool, 2 * sizeof(const char *));
    argvlen = ngx_palloc(r->pool, 2 * sizeof(size_t));

    if (argv == NULL || argvlen == NULL
        || ngx_http_supportdesk_build_key(r, ctx, "c", &ctx->external_id,
                                          &argv[1], &argvlen[1])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = "HGETALL";
    argvlen[0] = 7;

    ctx->argc = 2;
    ctx->argv = argv;
    ctx->argvlen = argvlen;

    return ngx_http_supportdesk_call(r, ctx, NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                     ngx_http_supportdesk_get_done);
}


ngx_int_t
ngx_http_supportdesk_customer_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    size_t       *argvlen;
    const char  **argv;

    argv = ngx_palloc(r->pool, 8 * sizeof(const char *));
    argvlen = ngx_palloc(r->pool, 8 * sizeof(size_t));

    if (argv == NULL || argvlen == NULL
        || ngx_http_supportdesk_customer_keys(r, ctx, argv, argvlen)
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notes", &ctx->external_id,
                                          &argv[4], &argvlen[4])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notez", &ctx->external_id,
                                          &argv[5], &argvlen[5])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "notif", &ctx->external_id,
                                          &argv[6], &argvlen[6])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = "6";
    argvlen[0] = 1;
    argv[7] = (const char *) ctx->external_id.data;
    argvlen[7] = ctx->external_id.len;

    ctx->argc = 8;
    ctx->argv = argv;
    ctx->argvlen = argvlen;

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(DELETE),
                                     ngx_http_supportdesk_delete_done);
}


/* argv[1..3]: the customer hash, the email index, the creation order */

static ngx_int_t
ngx_http_supportdesk_customer_keys(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, const char **argv, size_t *argvlen)
{
    if (ngx_http_supportdesk_build_key(r, ctx, "c", &ctx->external_id,
                                       &argv[1], &argvlen[1])
        != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "emails", NULL,
                                          &argv[2], &argvlen[2])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "order", NULL,
                                          &argv[3], &argvlen[3])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_supportdesk_upsert_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_supportdesk_reply_ctx(r);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_ERROR) {
        rc = ngx_http_supportdesk_script_error(r, ctx, reply);

    } else if (rc == NGX_OK
               && reply->type == REDIS_REPLY_ARRAY
               && reply->elements == 2
               && reply->element[0]->type == REDIS_REPLY_INTEGER
               && reply->element[1]->type == REDIS_REPLY_ARRAY)
    {
        rc = ngx_http_supportdesk_send_customer(r, ctx, reply->element[1],
                                                reply->element[0]->integer);

    } else {
        rc = ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static void
ngx_http_supportdesk_get_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_supportdesk_reply_ctx(r);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0) {
            rc = ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                   "CUSTOMER_NOT_FOUND",
                                   "no customer with that externalId in "
                                   "this app", NULL);
        } else {
            rc = ngx_http_supportdesk_send_customer(r, ctx, reply, -1);
        }

    } else {
        rc = ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static void
ngx_http_supportdesk_delete_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    (void) ngx_http_supportdesk_reply_ctx(r);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer == 0) {
            rc = ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                   "CUSTOMER_NOT_FOUND",
                                   "no customer with that externalId in "
                                   "this app", NULL);

        } else {
            rc = ngx_http_supportdesk_send_deleted(r);
        }

    } else {
        rc = ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static ngx_http_supportdesk_ctx_t *
ngx_http_supportdesk_reply_ctx(ngx_http_request_t *r)
{
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    return ctx;
}


static ngx_int_t
ngx_http_supportdesk_script_error(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    char                           *p, *end, *field;
    ngx_http_supportdesk_report_t  *rep;

    if (ngx_strncmp(reply->str, "SD_EMAIL_EXISTS ", 16) == 0) {
        rep = ngx_http_supportdesk_report(r, ctx);
        if (rep == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_supportdesk_report_add(rep, "email", 5,
                                "is already used by another customer");

        return ngx_http_supportdesk_send_error(r, NGX_HTTP_CONFLICT,
                                "CUSTOMER_EMAIL_EXISTS",
                                "another customer of this app has that email",
                                rep);
    }

    if (ngx_strncmp(reply->str, "SD_REQUIRED ", 12) == 0) {
        rep = ngx_http_supportdesk_report(r, ctx);
        if (rep == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the reply dies with this callback, the report outlives it */
        p = ngx_pnalloc(r->pool, reply->len - 12 + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        end = (char *) ngx_cpymem(p, reply->str + 12, reply->len - 12);

        while (p < end) {
            field = p;

            while (p < end && *p != ' ') {
                p++;
            }

            ngx_http_supportdesk_report_add(rep, field, p - field,
                                            "is required on create");
            p++;
        }

        return ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "VALIDATION_ERROR", NULL, rep);
    }

    return ngx_http_supportdesk_redis_failure(r, NGX_OK, reply);
}


static ngx_int_t
ngx_http_supportdesk_send_customer(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *hash, ngx_int_t created)
{
    ngx_http_supportdesk_json_t  json;

    if (ngx_http_supportdesk_envelope_start(r, &json, 1024) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"customer\":");

    if (ngx_http_supportdesk_render_customer(&json, &ctx->external_id, hash)
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


ngx_int_t
ngx_http_supportdesk_render_customer(ngx_http_supportdesk_json_t *json,
    ngx_str_t *external_id, redisReply *hash)
{
    size_t       i;
    time_t       t;
    redisReply  *name, *value, *seq, *email, *cname, *phone, *avatar, *meta,
                *created, *updated;

    seq = NULL;
    email = NULL;
    cname = NULL;
    phone = NULL;
    avatar = NULL;
    meta = NULL;
    created = NULL;
    updated = NULL;

    for (i = 0; i + 1 < hash->elements; i += 2) {
        name = hash->element[i];
        value = hash->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING
            || name->len != 1)
        {
            continue;
        }

        switch (name->str[0]) {
        case 's':
            seq = value;
            break;
        case 'e':
            email = value;
            break;
        case 'n':
            cname = value;
            break;
        case 'p':
            phone = value;
            break;
        case 'a':
            avatar = value;
            break;
        case 'm':
            meta = value;
            break;
        case 'c':
            created = value;
            break;
        case 'u':
            updated = value;
            break;
        }
    }

    if (seq == NULL || email == NULL || cname == NULL || created == NULL
        || updated == NULL)
    {
        return NGX_ERROR;
    }

    ngx_http_supportdesk_json_literal(json, "{\"id\":\"cus_");
    ngx_http_supportdesk_json_raw(json, (u_char *) seq->str, seq->len);
    ngx_http_supportdesk_json_literal(json, "\",\"externalId\":");
    ngx_http_supportdesk_json_string(json, external_id->data,
                                     external_id->len);
    ngx_http_supportdesk_json_literal(json, ",\"email\":");
    ngx_http_supportdesk_json_string(json, (u_char *) email->str, email->len);
    ngx_http_supportdesk_json_literal(json, ",\"name\":");
    ngx_http_supportdesk_json_string(json, (u_char *) cname->str, cname->len);

    if (phone) {
        ngx_http_supportdesk_json_literal(json, ",\"phone\":");
        ngx_http_supportdesk_json_string(json, (u_char *) phone->str,
                                         phone->len);
    }

    if (avatar) {
        ngx_http_supportdesk_json_literal(json, ",\"avatarUrl\":");
        ngx_http_supportdesk_json_string(json, (u_char *) avatar->str,
                                         avatar->len);
    }

    if (meta) {
        /* stored as the compact JSON the validator accepted */
        ngx_http_supportdesk_json_literal(json, ",\"metadata\":");
        ngx_http_supportdesk_json_raw(json, (u_char *) meta->str, meta->len);
    }

    ngx_http_supportdesk_json_literal(json, ",\"createdAt\":");
    t = ngx_atotm((u_char *) created->str, created->len);
    ngx_http_supportdesk_json_time(json, t == NGX_ERROR ? 0 : t);

    ngx_http_supportdesk_json_literal(json, ",\"updatedAt\":");
    t = ngx_atotm((u_char *) updated->str, updated->len);
    ngx_http_supportdesk_json_time(json, t == NGX_ERROR ? 0 : t);

    ngx_http_supportdesk_json_literal(json, "}");

    return NGX_OK;
}



ngx_int_t
ngx_http_supportdesk_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, int argc)
{
    ctx->argv = ngx_palloc(r->pool, argc * sizeof(const char *));
    ctx->argvlen = ngx_palloc(r->pool, argc * sizeof(size_t));

    if (ctx->argv == NULL || ctx->argvlen == NULL) {
        return NGX_ERROR;
    }

    ctx->argc = argc;

    return NGX_OK;
}


/*
 * A script's failure as an envelope: its "no such customer / note" errors
 * are 404s, anything else is Redis failing.
 */

ngx_int_t
ngx_http_supportdesk_script_failure(ngx_http_request_t *r, ngx_int_t rc,
    redisReply *reply)
{
    if (rc != NGX_OK || reply->type != REDIS_REPLY_ERROR) {
        return ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    if (ngx_strncmp(reply->str, "SD_NO_CUSTOMER ", 15) == 0) {
        return ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                   "CUSTOMER_NOT_FOUND",
                                   "no customer with that externalId in "
                                   "this app", NULL);
    }

    if (ngx_strncmp(reply->str, "SD_NO_NOTE ", 11) == 0) {
        return ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                   "NOTE_NOT_FOUND",
                                   "no such note on that customer", NULL);
    }

    return ngx_http_supportdesk_redis_failure(r, rc, reply);
}


ngx_int_t
ngx_http_supportdesk_send_deleted(ngx_http_request_t *r)
{
    ngx_http_supportdesk_json_t  json;

    if (ngx_http_supportdesk_envelope_start(r, &json, 128) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"deleted\":true}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
