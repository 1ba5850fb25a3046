
/*
 * The bulk-update job runner: one per worker and Redis server, on a
 * cancelable timer.  It claims a job under a lease (redis/job_claim.lua),
 * then runs it in bounded chunks (redis/job_chunk.lua), one per turn of the
 * timer, so neither Redis nor the worker stalls.  A chunk updates its
 * customers and moves the job's cursor in one atomic script, and all
 * progress lives in Redis: when a worker dies or is reloaded away, its
 * lease runs out and another worker, or another gateway, goes on from the
 * cursor.  The HTTP side of jobs is ngx_http_supportdesk_jobs.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_runner.h"
#include "ngx_http_supportdesk_store.h"
#include "ngx_http_supportdesk_metrics.h"


#define NGX_HTTP_SUPPORTDESK_JOB_LEASE     3000
#define NGX_HTTP_SUPPORTDESK_JOB_POLL      500
#define NGX_HTTP_SUPPORTDESK_JOB_RETRY     1000
#define NGX_HTTP_SUPPORTDESK_JOB_ARGS      18


/* one per worker and Redis server */
typedef struct {
    ngx_http_supportdesk_redis_conf_t   *redis;
    ngx_http_supportdesk_main_conf_t    *smcf;
    ngx_uint_t                           chunk_size;
    ngx_event_t                          timer;
    ngx_http_supportdesk_redis_op_t     *op;
    /* the arguments of the command in flight; reset before the next */
    ngx_pool_t                          *pool;

    u_char                               token[64];
    size_t                               token_len;

    /* the claimed job, "<app>/<n>"; len 0 when none */
    u_char            member[NGX_HTTP_SUPPORTDESK_APP_ID_MAX
                             + NGX_INT_T_LEN + 2];
    size_t                               member_len;
    ngx_str_t                            app;
    ngx_str_t                            number;
} ngx_http_supportdesk_runner_t;


static void ngx_http_supportdesk_runner_tick(ngx_event_t *ev);
static void ngx_http_supportdesk_runner_claimed(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_runner_chunked(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_runner_schedule(
    ngx_http_supportdesk_runner_t *runner, ngx_msec_t delay);
static void ngx_http_supportdesk_runner_now_ms(
    ngx_http_supportdesk_args_t *args);


static ngx_array_t  ngx_http_supportdesk_runners;


ngx_int_t
ngx_http_supportdesk_runner_init_process(ngx_cycle_t *cycle)
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

        runner->pool = ngx_create_pool(1024, cycle->log);
        if (runner->pool == NULL) {
            return NGX_ERROR;
        }

        runner->redis = rcfp[i];
        runner->smcf = smcf;
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
ngx_http_supportdesk_runner_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_supportdesk_runner_t  **runners;

    runners = ngx_http_supportdesk_runners.elts;

    for (i = 0; i < ngx_http_supportdesk_runners.nelts; i++) {
        if (runners[i]->timer.timer_set) {
            ngx_del_timer(&runners[i]->timer);
        }

        /* the pool frees the op itself when it closes */
        if (runners[i]->op != NULL) {
            ngx_http_supportdesk_redis_abandon(runners[i]->op);
            runners[i]->op = NULL;
        }

        ngx_destroy_pool(runners[i]->pool);
    }

    ngx_http_supportdesk_runners.nelts = 0;
}


static void
ngx_http_supportdesk_runner_tick(ngx_event_t *ev)
{
    ngx_http_supportdesk_runner_t  *runner = ev->data;

    ngx_int_t                               script;
    ngx_str_t                               none;
    ngx_http_supportdesk_args_t             args;
    ngx_http_supportdesk_redis_handler_pt   handler;

    if (ngx_exiting || ngx_quit || ngx_terminate || runner->op != NULL) {
        return;
    }

    /* the previous command's reply is in: its arguments may go */
    ngx_reset_pool(runner->pool);

    ngx_http_supportdesk_args_init(&args, runner->pool,
                                   NGX_HTTP_SUPPORTDESK_JOB_ARGS);

    if (runner->member_len == 0) {
        /* 1 sd:jobs now_ms lease token */
        ngx_http_supportdesk_args_literal(&args, "1");
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOBS_QUEUE);
        ngx_http_supportdesk_runner_now_ms(&args);
        ngx_http_supportdesk_args_uint(&args, NGX_HTTP_SUPPORTDESK_JOB_LEASE);
        ngx_http_supportdesk_args_add(&args, runner->token, runner->token_len);

        script = NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CLAIM;
        handler = ngx_http_supportdesk_runner_claimed;

    } else {
        /* the writer's keys, job order sd:jobs, the writer's arguments,
           prefix token now_ms lease chunk member */
        ngx_str_null(&none);

        ngx_http_supportdesk_args_literal(&args, "6");
        ngx_http_supportdesk_args_feed_keys(&args, &runner->app, &none, -1);
        ngx_http_supportdesk_args_key_literal(&args, &runner->app, "job",
                                              &runner->number);
        ngx_http_supportdesk_args_key_literal(&args, &runner->app, "order",
                                              NULL);
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOBS_QUEUE);
        ngx_http_supportdesk_args_feed_argv(&args, &none, &none,
                                            runner->smcf);
        ngx_http_supportdesk_args_key_literal(&args, &runner->app, "", NULL);
        ngx_http_supportdesk_args_add(&args, runner->token, runner->token_len);
        ngx_http_supportdesk_runner_now_ms(&args);
        ngx_http_supportdesk_args_uint(&args, NGX_HTTP_SUPPORTDESK_JOB_LEASE);
        ngx_http_supportdesk_args_uint(&args, runner->chunk_size);
        ngx_http_supportdesk_args_add(&args, runner->member,
                                      runner->member_len);

        script = NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CHUNK;
        handler = ngx_http_supportdesk_runner_chunked;
    }

    if (!args.failed) {
        runner->op = ngx_http_supportdesk_redis_send(runner->redis,
                                                     script, args.argc,
                                                     args.argv, args.argvlen,
                                                     handler, runner,
                                                     ev->log);
    }

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

    app_len = (slash != NULL) ? (size_t) (slash - (u_char *) reply->str) : 0;

    if (slash == NULL || slash + 1 == end
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

    runner->app.data = runner->member;
    runner->app.len = app_len;
    runner->number.data = runner->member + app_len + 1;
    runner->number.len = reply->len - app_len - 1;

    ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                  "supportdesk: running bulk-update job \"%*s\"",
                  runner->member_len, runner->member);

    ngx_http_supportdesk_metrics_job_claimed();

    ngx_http_supportdesk_runner_schedule(runner, 1);
}


static void
ngx_http_supportdesk_runner_chunked(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_runner_t  *runner = data;

    ngx_uint_t  replayed;

    runner->op = NULL;

    if (rc == NGX_OK) {
        /* the events the chunk appended, for the metrics */
        reply = ngx_http_supportdesk_store_unwrap(reply, &replayed);
    }

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

    ngx_http_supportdesk_metrics_job_ended((u_char *) reply->str, reply->len);

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

static void
ngx_http_supportdesk_runner_now_ms(ngx_http_supportdesk_args_t *args)
{
    u_char      *p;
    ngx_time_t  *tp;

    p = ngx_pnalloc(args->pool, NGX_INT64_LEN);
    if (p == NULL) {
        args->failed = 1;
        return;
    }

    tp = ngx_timeofday();

    ngx_http_supportdesk_args_add(args, p,
                                  ngx_sprintf(p, "%T%03M", tp->sec, tp->msec)
                                  - p);
}
