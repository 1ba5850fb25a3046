
/*
 * Bulk-update jobs: POST /customers/bulk-update accepts one (202), GET
 * /jobs/{id} reports on it, and every worker runs a small job runner.
 *
 * The runner claims a job under a lease (redis/job_claim.lua), then runs
 * it in bounded chunks (redis/job_chunk.lua), one per turn of a timer, so
 * neither Redis nor the worker stalls.  A chunk updates its customers and
 * moves the job's cursor in one atomic script, and all progress lives in
 * Redis: when a worker dies or is reloaded away, its lease runs out and
 * another worker, or another gateway, goes on from the cursor.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_module.h"
#include "ngx_http_supportdesk_auth.h"


#define NGX_HTTP_SUPPORTDESK_JOB_PREFIX    "job_"
#define NGX_HTTP_SUPPORTDESK_JOBS_QUEUE    "sd:jobs"
#define NGX_HTTP_SUPPORTDESK_JOB_LEASE     3000
#define NGX_HTTP_SUPPORTDESK_JOB_POLL      500
#define NGX_HTTP_SUPPORTDESK_JOB_RETRY     1000
#define NGX_HTTP_SUPPORTDESK_IDS_MAX       1000
#define NGX_HTTP_SUPPORTDESK_JOB_ARGS      11


/* one per worker and Redis server: all it needs lives here, not in a pool */
typedef struct {
    ngx_http_supportdesk_redis_conf_t   *redis;
    ngx_uint_t                           chunk_size;
    ngx_event_t                          timer;
    ngx_http_supportdesk_redis_op_t     *op;

    u_char                               token[64];
    size_t                               token_len;

    /* the claimed job, "<app>/<n>"; len 0 when none */
    u_char            member[NGX_HTTP_SUPPORTDESK_APP_MAX_LEN
                             + NGX_INT_T_LEN + 2];
    size_t            member_len;
    u_char            job_key[NGX_HTTP_SUPPORTDESK_APP_MAX_LEN
                              + NGX_INT_T_LEN + 16];
    u_char            order_key[NGX_HTTP_SUPPORTDESK_APP_MAX_LEN + 16];
    u_char            prefix[NGX_HTTP_SUPPORTDESK_APP_MAX_LEN + 8];
    u_char                               numbers[4][NGX_INT64_LEN];

    const char                          *argv[NGX_HTTP_SUPPORTDESK_JOB_ARGS];
    size_t                               argvlen[NGX_HTTP_SUPPORTDESK_JOB_ARGS];
} ngx_http_supportdesk_runner_t;


static ngx_int_t ngx_http_supportdesk_bulk_filter(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, json_t *filter, json_t *spec);
static ngx_int_t ngx_http_supportdesk_bulk_set(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, json_t *set, json_t *changes);
static ngx_int_t ngx_http_supportdesk_json_arg(ngx_http_request_t *r,
    json_t *value, const char **arg, size_t *len);
static void ngx_http_supportdesk_bulk_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_job_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_runner_tick(ngx_event_t *ev);
static void ngx_http_supportdesk_runner_claimed(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_runner_chunked(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_runner_schedule(
    ngx_http_supportdesk_runner_t *runner, ngx_msec_t delay);
static size_t ngx_http_supportdesk_now_ms(u_char *buf);


static ngx_array_t  ngx_http_supportdesk_runners;


ngx_int_t
ngx_http_supportdesk_bulk_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    json_t                         *filter, *set, *value, *spec, *changes;
    const char                     *key;
    ngx_http_supportdesk_report_t  *rep;

    rep = ngx_http_supportdesk_report(r, ctx);
    if (rep == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_foreach(ctx->body, key, value) {
        if (ngx_strcmp(key, "filter") != 0 && ngx_strcmp(key, "set") != 0) {
            ngx_http_supportdesk_report_add(rep, key, ngx_strlen(key),
                                            "is not a known field");
        }
    }

    filter = json_object_get(ctx->body, "filter");
    set = json_object_get(ctx->body, "set");

    if (!json_is_object(filter)) {
        ngx_http_supportdesk_report_add(rep, "filter", 6,
                                        filter ? "must be an object"
                                               : "is required");
    }

    if (!json_is_object(set)) {
        ngx_http_supportdesk_report_add(rep, "set", 3,
                                        set ? "must be an object"
                                            : "is required");
    }

    if (rep->n) {
        return NGX_DECLINED;
    }

    /* the job's own copies, compact JSON the chunk script decodes */
    spec = json_object();
    changes = json_array();

    if (spec == NULL || changes == NULL) {
        json_decref(spec);
        json_decref(changes);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_supportdesk_bulk_filter(r, ctx, filter, spec) != NGX_OK
        || ngx_http_supportdesk_bulk_set(r, ctx, set, changes) != NGX_OK
        || ngx_http_supportdesk_args(r, ctx, 9) != NGX_OK
        || ngx_http_supportdesk_json_arg(r, spec, &ctx->argv[7],
                                         &ctx->argvlen[7])
           != NGX_OK
        || ngx_http_supportdesk_json_arg(r, changes, &ctx->argv[8],
                                         &ctx->argvlen[8])
           != NGX_OK)
    {
        json_decref(spec);
        json_decref(changes);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(spec);
    json_decref(changes);

    return rep->n ? NGX_DECLINED : NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_bulk_filter(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, json_t *filter, json_t *spec)
{
    u_char                         *p, *field;
    size_t                          i, len;
    json_t                         *value, *item, *meta, *ids, *pair;
    const char                     *key, *text;
    ngx_str_t                       s;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;
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

            ids = json_array();
            if (ids == NULL || json_object_set_new(spec, "ids", ids) != 0) {
                return NGX_ERROR;
            }

            json_array_foreach(value, i, item) {
                if (!json_is_string(item)) {
                    ngx_http_supportdesk_report_add(rep, (char *) field,
                                p - field, "must hold strings only");
                    break;
                }

                if (json_array_append(ids, item) != 0) {
                    return NGX_ERROR;
                }
            }

        } else if (len > 9 && ngx_strncmp(key, "metadata.", 9) == 0) {
            if (json_is_string(value)) {
                text = json_string_value(value);
                item = json_string(text);

            } else if (json_is_integer(value) || json_is_boolean(value)
                       || json_is_real(value))
            {
                text = json_dumps(value, JSON_ENCODE_ANY);
                if (text == NULL) {
                    return NGX_ERROR;
                }

                item = json_string(text);
                free((void *) text);

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
    ngx_http_supportdesk_ctx_t *ctx, json_t *set, json_t *changes)
{
    u_char                                 *p;
    ngx_uint_t                              i;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_violation_t       *v;
    ngx_http_supportdesk_customer_input_t  *in;
    char                                   *m;

    in = &ctx->input;
    rep.n = 0;

    (void) ngx_http_supportdesk_validate_customer(set,
                                          NGX_HTTP_SUPPORTDESK_FORBID_EMAIL,
                                          in, &rep);

    /* reported as set.<field>, apart from the filter's */
    for (i = 0; i < rep.n; i++) {
        v = &rep.v[i];
        p = ngx_pnalloc(r->pool, v->field.len + 4);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, "set.", 4);
        ngx_memcpy(p + 4, v->field.data, v->field.len);
        ngx_http_supportdesk_report_add(ctx->report, (char *) p,
                                        v->field.len + 4,
                                        (char *) v->message.data);
    }

    if (rep.n) {
        return NGX_OK;
    }

    if (!(in->set_name || in->set_phone || in->clear_phone
          || in->set_avatar_url || in->clear_avatar_url
          || in->set_metadata || in->clear_metadata))
    {
        ngx_http_supportdesk_report_add(ctx->report, "set", 3,
                                        "must change at least one field");
        return NGX_OK;
    }

#define ngx_http_supportdesk_change(name, value)                              \
    if (json_array_append_new(changes, json_string(name)) != 0              \
        || json_array_append_new(changes,                                     \
               json_stringn((value).data ? (char *) (value).data : "",         \
                            (value).len)) != 0)                               \
    {                                                                         \
        return NGX_ERROR;                                                     \
    }

    if (in->set_name) {
        ngx_http_supportdesk_change("n", in->name);
    }

    if (in->set_phone || in->clear_phone) {
        ngx_http_supportdesk_change("p", in->phone);
    }

    if (in->set_avatar_url || in->clear_avatar_url) {
        ngx_http_supportdesk_change("a", in->avatar_url);
    }

#undef ngx_http_supportdesk_change

    if (in->set_metadata || in->clear_metadata) {
        m = in->set_metadata
            ? json_dumps(in->metadata, NGX_HTTP_SUPPORTDESK_METADATA_FLAGS)
            : NULL;

        if (json_array_append_new(changes, json_string("m")) != 0
            || json_array_append_new(changes, json_string(m ? m : "")) != 0)
        {
            free(m);
            return NGX_ERROR;
        }

        free(m);
    }

    return NGX_OK;
}


/* a compact JSON copy in the request pool: jansson's buffer is freed here */

static ngx_int_t
ngx_http_supportdesk_json_arg(ngx_http_request_t *r, json_t *value,
    const char **arg, size_t *len)
{
    char    *text;
    u_char  *p;

    text = json_dumps(value, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    *len = ngx_strlen(text);
    p = ngx_pnalloc(r->pool, *len);

    if (p == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(p, text, *len);
    free(text);

    *arg = (const char *) p;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_bulk(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + sizeof("sd:{}:") + ctx->app.len);

    if (p == NULL
        || ngx_http_supportdesk_build_key(r, ctx, "seq", NULL,
                                          &ctx->argv[1], &ctx->argvlen[1])
           != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "jobseq", NULL,
                                          &ctx->argv[2], &ctx->argvlen[2])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "3";
    ctx->argvlen[0] = 1;
    ctx->argv[3] = NGX_HTTP_SUPPORTDESK_JOBS_QUEUE;
    ctx->argvlen[3] = sizeof(NGX_HTTP_SUPPORTDESK_JOBS_QUEUE) - 1;

    ctx->argv[4] = (const char *) p;
    p = ngx_sprintf(p, "sd:{%V}:", &ctx->app);
    ctx->argvlen[4] = p - (u_char *) ctx->argv[4];

    ctx->argv[5] = (const char *) ctx->app.data;
    ctx->argvlen[5] = ctx->app.len;

    ctx->argv[6] = (const char *) p;
    ctx->argvlen[6] = ngx_sprintf(p, "%T", ngx_time()) - p;

    return ngx_http_supportdesk_call(r, ctx,
                                     ngx_http_supportdesk_script(JOB_CREATE),
                                     ngx_http_supportdesk_bulk_done);
}


static void
ngx_http_supportdesk_bulk_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_http_supportdesk_ctx_t   *ctx;
    ngx_http_supportdesk_json_t   json;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    if (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER) {
        if (ngx_http_supportdesk_envelope_start(r, &json, 128) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_http_supportdesk_json_literal(&json,
                       "{\"jobId\":\"" NGX_HTTP_SUPPORTDESK_JOB_PREFIX);
            ngx_http_supportdesk_json_int(&json, reply->integer);
            ngx_http_supportdesk_json_literal(&json, "\"}");
            rc = ngx_http_supportdesk_envelope_send(r, NGX_HTTP_ACCEPTED,
                                                    &json);
        }

    } else {
        rc = ngx_http_supportdesk_redis_failure(r, rc, reply);
    }

    ngx_http_supportdesk_finish(r, rc);
}


ngx_int_t
ngx_http_supportdesk_job_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ctx->number = ngx_http_supportdesk_parse_id(&ctx->params[0],
                                         NGX_HTTP_SUPPORTDESK_JOB_PREFIX);

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_job_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char     buf[NGX_INT_T_LEN];
    ngx_str_t  n;

    n.data = buf;
    n.len = ngx_sprintf(buf, "%ui", ctx->number) - buf;

    if (ngx_http_supportdesk_args(r, ctx, 2) != NGX_OK
        || ngx_http_supportdesk_build_key(r, ctx, "job", &n, &ctx->argv[1],
                                          &ctx->argvlen[1])
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->argv[0] = "HGETALL";
    ctx->argvlen[0] = 7;

    return ngx_http_supportdesk_call(r, ctx, NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                     ngx_http_supportdesk_job_done);
}


static void
ngx_http_supportdesk_job_done(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t                        i;
    time_t                        t;
    redisReply                   *f, *v, *status, *matched, *updated, *c, *u;
    ngx_http_supportdesk_ctx_t   *ctx;
    ngx_http_supportdesk_json_t   json;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    ctx->op = NULL;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_supportdesk_finish(r,
                         ngx_http_supportdesk_redis_failure(r, rc, reply));
        return;
    }

    status = NULL;
    matched = NULL;
    updated = NULL;
    c = NULL;
    u = NULL;

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->len == 6 && ngx_strncmp(f->str, "status", 6) == 0) {
            status = v;
        } else if (f->len == 7 && ngx_strncmp(f->str, "matched", 7) == 0) {
            matched = v;
        } else if (f->len == 7 && ngx_strncmp(f->str, "updated", 7) == 0) {
            updated = v;
        } else if (f->len == 1 && f->str[0] == 'c') {
            c = v;
        } else if (f->len == 1 && f->str[0] == 'u') {
            u = v;
        }
    }

    if (status == NULL || matched == NULL || updated == NULL || c == NULL
        || u == NULL)
    {
        ngx_http_supportdesk_finish(r,
                   ngx_http_supportdesk_send_error(r, NGX_HTTP_NOT_FOUND,
                                   "NOT_FOUND", "no such job in this app",
                                   NULL));
        return;
    }

    if (ngx_http_supportdesk_envelope_start(r, &json, 256) != NGX_OK) {
        ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_supportdesk_json_literal(&json,
                 "{\"job\":{\"id\":\"" NGX_HTTP_SUPPORTDESK_JOB_PREFIX);
    ngx_http_supportdesk_json_int(&json, ctx->number);
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

    ngx_http_supportdesk_finish(r,
                ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json));
}


/* the runner */

ngx_int_t
ngx_http_supportdesk_jobs_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                            i;
    ngx_http_supportdesk_runner_t        *runner;
    ngx_http_supportdesk_main_conf_t     *smcf;
    ngx_http_supportdesk_redis_conf_t   **rcfp;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_supportdesk_module);

    if (ngx_array_init(&ngx_http_supportdesk_runners, cycle->pool,
                       smcf->redis_confs.nelts,
                       sizeof(ngx_http_supportdesk_runner_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rcfp = smcf->redis_confs.elts;

    for (i = 0; i < smcf->redis_confs.nelts; i++) {
        runner = ngx_pcalloc(cycle->pool,
                             sizeof(ngx_http_supportdesk_runner_t));
        if (runner == NULL) {
            return NGX_ERROR;
        }

        *(ngx_http_supportdesk_runner_t **)
            ngx_array_push(&ngx_http_supportdesk_runners) = runner;

        runner->redis = rcfp[i];
        runner->chunk_size = smcf->job_chunk_size;
        runner->token_len = ngx_sprintf(runner->token, "%P:%T:%08xD",
                                        ngx_pid, ngx_time(),
                                        (uint32_t) ngx_random())
                            - runner->token;

        runner->timer.handler = ngx_http_supportdesk_runner_tick;
        runner->timer.data = runner;
        runner->timer.log = cycle->log;
        /* polling for jobs must not hold up a graceful exit */
        runner->timer.cancelable = 1;

        ngx_http_supportdesk_runner_schedule(runner,
                           NGX_HTTP_SUPPORTDESK_JOB_POLL / 2
                           + ngx_random() % NGX_HTTP_SUPPORTDESK_JOB_POLL);
    }

    return NGX_OK;
}


void
ngx_http_supportdesk_jobs_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_supportdesk_runner_t  **runners;

    runners = ngx_http_supportdesk_runners.elts;

    for (i = 0; i < ngx_http_supportdesk_runners.nelts; i++) {
        if (runners[i]->timer.timer_set) {
            ngx_del_timer(&runners[i]->timer);
        }

        /* the pool frees the op itself when it closes */
        if (runners[i]->op) {
            ngx_http_supportdesk_redis_abandon(runners[i]->op);
            runners[i]->op = NULL;
        }
    }

    ngx_http_supportdesk_runners.nelts = 0;
}


static void
ngx_http_supportdesk_runner_tick(ngx_event_t *ev)
{
    ngx_http_supportdesk_runner_t  *runner = ev->data;

    int         argc;
    ngx_int_t   script;
    ngx_http_supportdesk_redis_handler_pt  handler;

    if (ngx_exiting || ngx_quit || ngx_terminate || runner->op) {
        return;
    }

    runner->argv[1] = NGX_HTTP_SUPPORTDESK_JOBS_QUEUE;
    runner->argvlen[1] = sizeof(NGX_HTTP_SUPPORTDESK_JOBS_QUEUE) - 1;

    if (runner->member_len == 0) {
        /* 1 sd:jobs now_ms lease token */
        runner->argv[0] = "1";
        runner->argvlen[0] = 1;
        runner->argv[2] = (const char *) runner->numbers[0];
        runner->argvlen[2] = ngx_http_supportdesk_now_ms(runner->numbers[0]);
        runner->argv[3] = (const char *) runner->numbers[1];
        runner->argvlen[3] = ngx_sprintf(runner->numbers[1], "%d",
                                         NGX_HTTP_SUPPORTDESK_JOB_LEASE)
                             - runner->numbers[1];
        runner->argv[4] = (const char *) runner->token;
        runner->argvlen[4] = runner->token_len;

        argc = 5;
        script = ngx_http_supportdesk_script(JOB_CLAIM);
        handler = ngx_http_supportdesk_runner_claimed;

    } else {
        /* 3 job order sd:jobs prefix token now now_ms lease chunk member */
        runner->argv[0] = "3";
        runner->argvlen[0] = 1;
        runner->argv[1] = (const char *) runner->job_key;
        runner->argvlen[1] = ngx_strlen(runner->job_key);
        runner->argv[2] = (const char *) runner->order_key;
        runner->argvlen[2] = ngx_strlen(runner->order_key);
        runner->argv[3] = NGX_HTTP_SUPPORTDESK_JOBS_QUEUE;
        runner->argvlen[3] = sizeof(NGX_HTTP_SUPPORTDESK_JOBS_QUEUE) - 1;
        runner->argv[4] = (const char *) runner->prefix;
        runner->argvlen[4] = ngx_strlen(runner->prefix);
        runner->argv[5] = (const char *) runner->token;
        runner->argvlen[5] = runner->token_len;
        runner->argv[6] = (const char *) runner->numbers[0];
        runner->argvlen[6] = ngx_sprintf(runner->numbers[0], "%T", ngx_time())
                             - runner->numbers[0];
        runner->argv[7] = (const char *) runner->numbers[1];
        runner->argvlen[7] = ngx_http_supportdesk_now_ms(runner->numbers[1]);
        runner->argv[8] = (const char *) runner->numbers[2];
        runner->argvlen[8] = ngx_sprintf(runner->numbers[2], "%d",
                                         NGX_HTTP_SUPPORTDESK_JOB_LEASE)
                             - runner->numbers[2];
        runner->argv[9] = (const char *) runner->numbers[3];
        runner->argvlen[9] = ngx_sprintf(runner->numbers[3], "%ui",
                                         runner->chunk_size)
                             - runner->numbers[3];
        runner->argv[10] = (const char *) runner->member;
        runner->argvlen[10] = runner->member_len;

        argc = 11;
        script = ngx_http_supportdesk_script(JOB_CHUNK);
        handler = ngx_http_supportdesk_runner_chunked;
    }

    runner->op = ngx_http_supportdesk_redis_send(runner->redis, NULL, script,
                                                 argc, runner->argv,
                                                 runner->argvlen, handler,
                                                 runner, ev->log);
    if (runner->op == NULL) {
        ngx_http_supportdesk_runner_schedule(runner,
                                             NGX_HTTP_SUPPORTDESK_JOB_RETRY);
    }
}


static void
ngx_http_supportdesk_runner_claimed(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_runner_t  *runner = data;

    u_char  *slash, *end;
    size_t   app_len;

    runner->op = NULL;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_STRING) {
        if (rc == NGX_OK && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                          "supportdesk: claiming a job failed: %s",
                          reply->str);
        }

        /* nil: nothing to do; an error: try again later */
        ngx_http_supportdesk_runner_schedule(runner,
                     rc == NGX_OK && reply->type == REDIS_REPLY_NIL
                     ? NGX_HTTP_SUPPORTDESK_JOB_POLL
                     : NGX_HTTP_SUPPORTDESK_JOB_RETRY);
        return;
    }

    end = (u_char *) reply->str + reply->len;
    slash = NULL;

    if (reply->len < sizeof(runner->member)) {
        slash = ngx_strlchr((u_char *) reply->str, end, '/');
    }

    app_len = slash ? (size_t) (slash - (u_char *) reply->str) : 0;

    if (slash == NULL
        || !ngx_http_supportdesk_valid_app((u_char *) reply->str, app_len))
    {
        ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                      "supportdesk: claimed a malformed job \"%*s\"",
                      reply->len, reply->str);
        ngx_http_supportdesk_runner_schedule(runner,
                                             NGX_HTTP_SUPPORTDESK_JOB_RETRY);
        return;
    }

    ngx_memcpy(runner->member, reply->str, reply->len);
    runner->member_len = reply->len;

    ngx_sprintf(runner->job_key, "sd:{%*s}:job:%*s%Z", app_len, reply->str,
                (size_t) (end - slash - 1), slash + 1);
    ngx_sprintf(runner->order_key, "sd:{%*s}:order%Z", app_len, reply->str);
    ngx_sprintf(runner->prefix, "sd:{%*s}:%Z", app_len, reply->str);

    ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                  "supportdesk: running bulk-update job \"%*s\"",
                  runner->member_len, runner->member);

    ngx_http_supportdesk_runner_schedule(runner, 1);
}


static void
ngx_http_supportdesk_runner_chunked(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_runner_t  *runner = data;

    runner->op = NULL;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_STRING) {
        if (rc == NGX_OK && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                          "supportdesk: job \"%*s\" chunk failed: %s",
                          runner->member_len, runner->member, reply->str);
        }

        /* the lease runs out if this lasts; the cursor is safe in Redis */
        ngx_http_supportdesk_runner_schedule(runner,
                                             NGX_HTTP_SUPPORTDESK_JOB_RETRY);
        return;
    }

    if (reply->len == 7 && ngx_strncmp(reply->str, "running", 7) == 0) {
        /* yield to requests between chunks, then go on */
        ngx_http_supportdesk_runner_schedule(runner, 1);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                  "supportdesk: bulk-update job \"%*s\": %*s",
                  runner->member_len, runner->member, reply->len, reply->str);

    runner->member_len = 0;
    ngx_http_supportdesk_runner_schedule(runner, 1);
}


static void
ngx_http_supportdesk_runner_schedule(ngx_http_supportdesk_runner_t *runner,
    ngx_msec_t delay)
{
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(&runner->timer, delay);
}


/* leases are compared across workers and hosts: wall clock, not monotonic */

static size_t
ngx_http_supportdesk_now_ms(u_char *buf)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return ngx_sprintf(buf, "%T%03M", tp->sec, tp->msec) - buf;
}
