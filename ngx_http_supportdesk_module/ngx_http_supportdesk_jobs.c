
/*
 * Bulk-update jobs, their HTTP side: POST /customers/bulk-update accepts
 * one (202) and GET /jobs/{id} reports on it.  The work itself is the job
 * runner's (ngx_http_supportdesk_runner.c), in bounded chunks on timers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_IDS_MAX       1000
/* registrations a job may need: a second one only after a runner dropped
   the app meanwhile, a third is not expected */
#define NGX_HTTP_SUPPORTDESK_BULK_TRIES    3


/* the accepted job, as redis/job_create.lua stores it */
typedef struct {
    ngx_str_t                            filter;     /* compact JSON */
    ngx_str_t                            changes;    /* [field, value...] */
    /* an externalId filter's ids (ngx_str_t), in the request pool; NULL
       without one */
    ngx_array_t                         *ids;
    /* the app's stamp in sd:jobapps, and the gone mark the app's queue
       answered to the last one (redis/job_apps.lua) */
    ngx_str_t                            stamp;
    ngx_str_t                            gone;
    ngx_uint_t                           tries;
} ngx_http_supportdesk_bulk_t;


static ngx_int_t ngx_http_supportdesk_bulk_filter(ngx_http_request_t *r,
    ngx_http_supportdesk_report_t *rep, json_t *filter, ngx_str_t *text,
    json_t *spec, ngx_http_supportdesk_bulk_t *bulk);
static ngx_int_t ngx_http_supportdesk_bulk_set(ngx_http_request_t *r,
    ngx_http_supportdesk_report_t *rep, json_t *set, ngx_str_t *text,
    json_t *changes);
static ngx_int_t ngx_http_supportdesk_bulk_change(json_t *changes,
    const char *field, ngx_str_t *value);
static ngx_int_t ngx_http_supportdesk_json_arg(ngx_http_request_t *r,
    json_t *value, ngx_str_t *arg);
static ngx_int_t ngx_http_supportdesk_bulk_register(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_bulk_registered(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_bulk_create(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_bulk_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_reply_copy(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *to);
static ngx_int_t ngx_http_supportdesk_job_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_bulk_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    json_t                         *filter, *set, *spec, *changes;
    ngx_int_t                       rc;
    ngx_str_t                       ftext, stext;
    ngx_http_supportdesk_bulk_t    *bulk;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;
    bulk = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_bulk_t));

    if (bulk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    filter = json_object_get(ctx->body, "filter");
    set = json_object_get(ctx->body, "set");

    if (!json_is_object(filter)) {
        ngx_http_supportdesk_report_add(rep, "filter", 6,
                                        filter != NULL ? "must be an object"
                                               : "is required");
    }

    if (!json_is_object(set)) {
        ngx_http_supportdesk_report_add(rep, "set", 3,
                                        set != NULL ? "must be an object"
                                            : "is required");
    }

    if (rep->n) {
        return NGX_OK;
    }

    /* the job's own copies, compact JSON the chunk script decodes */
    spec = json_object();
    changes = json_array();

    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    /* their text as sent, where numbers are taken from */
    if (spec != NULL && changes != NULL
        && ngx_http_supportdesk_json_member(&ctx->body_text, "filter", 6,
                                            &ftext) == NGX_OK
        && ngx_http_supportdesk_json_member(&ctx->body_text, "set", 3,
                                            &stext) == NGX_OK
        && ngx_http_supportdesk_bulk_filter(r, rep, filter, &ftext, spec,
                                            bulk)
           == NGX_OK
        && ngx_http_supportdesk_bulk_set(r, rep, set, &stext, changes)
           == NGX_OK
        && ngx_http_supportdesk_json_arg(r, spec, &bulk->filter) == NGX_OK
        && ngx_http_supportdesk_json_arg(r, changes, &bulk->changes)
           == NGX_OK)
    {
        ctx->data = bulk;
        rc = NGX_OK;
    }

    json_decref(spec);
    json_decref(changes);

    return rc;
}


static ngx_int_t
ngx_http_supportdesk_bulk_filter(ngx_http_request_t *r,
    ngx_http_supportdesk_report_t *rep, json_t *filter, ngx_str_t *text,
    json_t *spec, ngx_http_supportdesk_bulk_t *bulk)
{
    const char                     *key;
    u_char                         *p, *field;
    size_t                          i, len;
    json_t                         *value, *item, *meta, *pair;
    ngx_str_t                       s, raw, *id;

    meta = NULL;

    json_object_foreach(filter, key, value) {
        /* the report outlives this frame: the name goes to the pool */
        len = ngx_strlen(key);
        field = ngx_pnalloc(r->pool, sizeof("filter.") - 1 + len);
        if (field == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(field, "filter.%s", key);

        if (ngx_strcmp(key, "email") == 0 || ngx_strcmp(key, "name") == 0) {
            if (!json_is_string(value)) {
                ngx_http_supportdesk_report_add(rep, (char *) field,
                                                p - field, "must be a string");
                continue;
            }

            /* matched case-insensitively: stored lowercase */
            s.len = json_string_length(value);
            s.data = ngx_pnalloc(r->pool, s.len + 1);
            if (s.data == NULL) {
                return NGX_ERROR;
            }

            ngx_strlow(s.data, (u_char *) json_string_value(value), s.len);

            if (json_object_set_new(spec, key,
                                    json_stringn((char *) s.data, s.len))
                != 0)
            {
                return NGX_ERROR;
            }

        } else if (ngx_strcmp(key, "externalId") == 0) {
            if (!json_is_array(value) || json_array_size(value) == 0
                || json_array_size(value) > NGX_HTTP_SUPPORTDESK_IDS_MAX)
            {
                ngx_http_supportdesk_report_add(rep, (char *) field,
                                p - field,
                                "must be an array of 1 to 1000 externalIds");
                continue;
            }

            /* not in the filter: job_create.lua stores them, each once,
               where the job's chunks look them up one by one */
            bulk->ids = ngx_array_create(r->pool, json_array_size(value),
                                         sizeof(ngx_str_t));
            if (bulk->ids == NULL) {
                return NGX_ERROR;
            }

            json_array_foreach(value, i, item) {
                if (!json_is_string(item)) {
                    ngx_http_supportdesk_report_add(rep, (char *) field,
                                p - field, "must hold strings only");
                    break;
                }

                id = ngx_array_push(bulk->ids);
                if (id == NULL) {
                    return NGX_ERROR;
                }

                id->len = json_string_length(item);
                id->data = ngx_pnalloc(r->pool, id->len + 1);
                if (id->data == NULL) {
                    return NGX_ERROR;
                }

                ngx_memcpy(id->data, json_string_value(item), id->len);
            }

        } else if (len > 9 && ngx_strncmp(key, "metadata.", 9) == 0) {
            if (json_is_string(value)) {
                item = json_string(json_string_value(value));

            } else if (json_is_number(value) || json_is_boolean(value)) {
                /* its text as sent: a number's digits are its own */
                if (ngx_http_supportdesk_json_member(text, key, len, &raw)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                item = json_stringn((char *) raw.data, raw.len);

            } else {
                ngx_http_supportdesk_report_add(rep, (char *) field,
                          p - field, "must be a string, number or boolean");
                continue;
            }

            if (meta == NULL) {
                meta = json_array();
                if (meta == NULL
                    || json_object_set_new(spec, "meta", meta) != 0)
                {
                    json_decref(item);
                    return NGX_ERROR;
                }
            }

            pair = json_pack("[so]", key + 9, item);
            if (pair == NULL || json_array_append_new(meta, pair) != 0) {
                return NGX_ERROR;
            }

        } else {
            ngx_http_supportdesk_report_add(rep, (char *) field, p - field,
                                            "is not a known filter");
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_bulk_set(ngx_http_request_t *r,
    ngx_http_supportdesk_report_t *report, json_t *set, ngx_str_t *text,
    json_t *changes)
{
    u_char                                 *p;
    ngx_str_t                               meta;
    ngx_uint_t                              i;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_violation_t       *v;
    ngx_http_supportdesk_customer_input_t   in;

    rep.n = 0;

    (void) ngx_http_supportdesk_validate_customer(set, text,
                                          NGX_HTTP_SUPPORTDESK_FORBID_EMAIL,
                                          &in, &rep);

    /* reported as set.<field>, apart from the filter's */
    for (i = 0; i < rep.n; i++) {
        v = &rep.v[i];
        p = ngx_pnalloc(r->pool, v->field.len + 4);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, "set.", 4);
        ngx_memcpy(p + 4, v->field.data, v->field.len);
        ngx_http_supportdesk_report_add(report, (char *) p, v->field.len + 4,
                                        (char *) v->message.data);
    }

    if (rep.n) {
        return NGX_OK;
    }

    if (!(in.set_name || in.set_phone || in.clear_phone
          || in.set_avatar_url || in.clear_avatar_url
          || in.set_metadata || in.clear_metadata))
    {
        ngx_http_supportdesk_report_add(report, "set", 3,
                                        "must change at least one field");
        return NGX_OK;
    }

    if ((in.set_name
         && ngx_http_supportdesk_bulk_change(changes, "n", &in.name)
            != NGX_OK)
        || ((in.set_phone || in.clear_phone)
            && ngx_http_supportdesk_bulk_change(changes, "p", &in.phone)
               != NGX_OK)
        || ((in.set_avatar_url || in.clear_avatar_url)
            && ngx_http_supportdesk_bulk_change(changes, "a", &in.avatar_url)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (!(in.set_metadata || in.clear_metadata)) {
        return NGX_OK;
    }

    ngx_str_null(&meta);

    if (in.set_metadata
        && ngx_http_supportdesk_record_metadata(r->pool, &in, &meta)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a cleared field travels as an empty value */
    return ngx_http_supportdesk_bulk_change(changes, "m", &meta);
}


static ngx_int_t
ngx_http_supportdesk_bulk_change(json_t *changes, const char *field,
    ngx_str_t *value)
{
    if (json_array_append_new(changes, json_string(field)) != 0
        || json_array_append_new(changes,
                                 json_stringn(value->data
                                              ? (char *) value->data : "",
                                              value->len))
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a compact JSON copy in the request pool: jansson's buffer is freed here */

static ngx_int_t
ngx_http_supportdesk_json_arg(ngx_http_request_t *r, json_t *value,
    ngx_str_t *arg)
{
    char  *text;

    text = json_dumps(value, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    arg->len = ngx_strlen(text);
    arg->data = ngx_pnalloc(r->pool, arg->len);

    if (arg->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(arg->data, text, arg->len);
    free(text);

    return NGX_OK;
}


/*
 * Two steps, as a cluster has sd:jobapps and the app's keys in different
 * slots: the app is registered where runners look for work (sd:jobapps),
 * then the job is queued in the app's slot under the stamp the first step
 * answered.  A gateway that dies in between leaves at most an app
 * registered with nothing to run, which runners drop; a job is never
 * queued without its app registered (redis/job_apps.lua says why).
 *
 * Under an Idempotency-Key the app's side goes first, under stamp 0,
 * which it never queues under: a replay (or a refusal) is answered at once
 * and registers nothing, as a replay changes nothing; otherwise it answers
 * "stale" and the two steps follow.
 */

ngx_int_t
ngx_http_supportdesk_bulk(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_bulk_t  *bulk;

    if (ctx->idempotency_key.len) {
        bulk = ctx->data;
        ngx_str_set(&bulk->stamp, "0");

        return ngx_http_supportdesk_bulk_create(r, ctx);
    }

    return ngx_http_supportdesk_bulk_register(r, ctx);
}


static ngx_int_t
ngx_http_supportdesk_bulk_register(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_args_t   args;
    ngx_http_supportdesk_bulk_t  *bulk;

    bulk = ctx->data;
    bulk->tries++;

    ngx_http_supportdesk_args_init(&args, r->pool, 5);

    /* 1 sd:jobapps register app gone */
    ngx_http_supportdesk_args_literal(&args, "1");
    ngx_http_supportdesk_args_literal(&args, NGX_HTTP_SUPPORTDESK_JOB_APPS);
    ngx_http_supportdesk_args_literal(&args, "register");
    ngx_http_supportdesk_args_str(&args, &ctx->app);
    ngx_http_supportdesk_args_str_or(&args, &bulk->gone, "");

    return ngx_http_supportdesk_store_call(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_APPS,
                                       &args,
                                       NGX_HTTP_SUPPORTDESK_REPLY_STRING,
                                       ngx_http_supportdesk_bulk_registered);
}


static ngx_int_t
ngx_http_supportdesk_bulk_registered(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_int_t                     rc;
    ngx_http_supportdesk_bulk_t  *bulk;

    bulk = ctx->data;

    if (ngx_http_supportdesk_reply_copy(r, reply, &bulk->stamp) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_supportdesk_bulk_create(r, ctx);

    /* the request goes on with the second step's reply */
    return (rc == NGX_DONE) ? NGX_AGAIN : rc;
}


static ngx_int_t
ngx_http_supportdesk_bulk_create(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t                    *id;
    ngx_uint_t                    i, nids;
    ngx_http_supportdesk_args_t   args;
    ngx_http_supportdesk_bulk_t  *bulk;

    bulk = ctx->data;
    nids = (bulk->ids != NULL) ? bulk->ids->nelts : 0;

    ngx_http_supportdesk_args_init(&args, r->pool, 17 + nids);

    ngx_http_supportdesk_args_literal(&args, "7");
    ngx_http_supportdesk_args_write_keys(&args, ctx, -1);
    ngx_http_supportdesk_args_app_key(&args, ctx, "seq", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "jobseq", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "jobq", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "jobgone", NULL);
    ngx_http_supportdesk_args_write_argv(&args, r, ctx);
    ngx_http_supportdesk_args_app_key(&args, ctx, "", NULL);
    ngx_http_supportdesk_args_str(&args, &bulk->stamp);
    ngx_http_supportdesk_args_str(&args, &bulk->filter);
    ngx_http_supportdesk_args_str(&args, &bulk->changes);

    id = (nids > 0) ? bulk->ids->elts : NULL;

    for (i = 0; i < nids; i++) {
        ngx_http_supportdesk_args_str(&args, &id[i]);
    }

    return ngx_http_supportdesk_store_call(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CREATE,
                                       &args,
                                       NGX_HTTP_SUPPORTDESK_REPLY_INTEGER
                                       |NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                       ngx_http_supportdesk_bulk_done);
}


/* the job number; or {"stale", gone mark}: the app was dropped meanwhile */

static ngx_int_t
ngx_http_supportdesk_bulk_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_int_t                     rc;
    ngx_http_supportdesk_json_t   json;
    ngx_http_supportdesk_bulk_t  *bulk;

    bulk = ctx->data;

    if (reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements != 2
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len != 5
            || ngx_strncmp(reply->element[0]->str, "stale", 5) != 0)
        {
            return ngx_http_supportdesk_store_unexpected(r, reply);
        }

        if (bulk->tries >= NGX_HTTP_SUPPORTDESK_BULK_TRIES) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "supportdesk: bulk-update job of \"%V\": the app "
                          "was dropped from " NGX_HTTP_SUPPORTDESK_JOB_APPS
                          " %ui times while it was registered", &ctx->app,
                          bulk->tries);
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "supportdesk: job of \"%V\": registering again",
                       &ctx->app);

        if (ngx_http_supportdesk_reply_copy(r, reply->element[1], &bulk->gone)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_supportdesk_bulk_register(r, ctx);

        return (rc == NGX_DONE) ? NGX_AGAIN : rc;
    }

    if (ngx_http_supportdesk_envelope_start(r, &json, 128) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json,
                             "{\"jobId\":\"" NGX_HTTP_SUPPORTDESK_JOB_PREFIX);
    ngx_http_supportdesk_json_int(&json, reply->integer);
    ngx_http_supportdesk_json_literal(&json, "\"}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_ACCEPTED, &json);
}


/* a short string reply, kept for the next command (replies go with it) */

static ngx_int_t
ngx_http_supportdesk_reply_copy(ngx_http_request_t *r, redisReply *reply,
    ngx_str_t *to)
{
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0
        || reply->len > NGX_INT64_LEN)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: a job stamp that is not one");
        return NGX_ERROR;
    }

    to->data = ngx_pnalloc(r->pool, reply->len);
    if (to->data == NULL) {
        return NGX_ERROR;
    }

    to->len = reply->len;
    ngx_memcpy(to->data, reply->str, reply->len);

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_job_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_id_step(r, ctx, &ctx->params[0],
                                        NGX_HTTP_SUPPORTDESK_JOB_PREFIX);
}


ngx_int_t
ngx_http_supportdesk_job_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                        buf[NGX_INT_T_LEN];
    ngx_str_t                     n;
    ngx_http_supportdesk_args_t   args;

    n.data = buf;
    n.len = ngx_sprintf(buf, "%ui", *(ngx_uint_t *) ctx->data) - buf;

    ngx_http_supportdesk_args_init(&args, r->pool, 2);

    ngx_http_supportdesk_args_literal(&args, "HGETALL");
    ngx_http_supportdesk_args_app_key(&args, ctx, "job", &n);

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_ARRAY,
                                           ngx_http_supportdesk_job_done);
}


static ngx_int_t
ngx_http_supportdesk_job_done(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    time_t                        t;
    ngx_uint_t                    i;
    redisReply                   *v[6], *status, *matched, *updated, *c, *u;
    ngx_http_supportdesk_json_t   json;
    static ngx_str_t              names[] = {
        ngx_string("status"), ngx_string("matched"), ngx_string("updated"),
        ngx_string("c"), ngx_string("u"), ngx_null_string
    };

    ngx_http_supportdesk_store_fields(reply, names, v);

    /* an empty hash, or not one of our jobs */
    for (i = 0; names[i].len; i++) {
        if (v[i] == NULL) {
            return ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                                   "NOT_FOUND",
                                                   "no such job in this app",
                                                   NULL);
        }
    }

    status = v[0];
    matched = v[1];
    updated = v[2];
    c = v[3];
    u = v[4];

    if (ngx_http_supportdesk_envelope_start(r, &json, 256) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json,
                 "{\"job\":{\"id\":\"" NGX_HTTP_SUPPORTDESK_JOB_PREFIX);
    ngx_http_supportdesk_json_int(&json, *(ngx_uint_t *) ctx->data);
    ngx_http_supportdesk_json_literal(&json, "\",\"status\":");
    ngx_http_supportdesk_json_string(&json, (u_char *) status->str,
                                     status->len);
    ngx_http_supportdesk_json_literal(&json, ",\"matched\":");
    ngx_http_supportdesk_json_int(&json, ngx_atoi((u_char *) matched->str,
                                                  matched->len));
    ngx_http_supportdesk_json_literal(&json, ",\"updated\":");
    ngx_http_supportdesk_json_int(&json, ngx_atoi((u_char *) updated->str,
                                                  updated->len));
    ngx_http_supportdesk_json_literal(&json, ",\"createdAt\":");
    t = ngx_atotm((u_char *) c->str, c->len);
    ngx_http_supportdesk_json_time(&json, t == NGX_ERROR ? 0 : t);
    ngx_http_supportdesk_json_literal(&json, ",\"updatedAt\":");
    t = ngx_atotm((u_char *) u->str, u->len);
    ngx_http_supportdesk_json_time(&json, t == NGX_ERROR ? 0 : t);
    ngx_http_supportdesk_json_literal(&json, "}}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}
