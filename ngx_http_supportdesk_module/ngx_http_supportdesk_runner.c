
/*
 * The bulk-update job runner: one per worker and Redis configuration, on
 * a cancelable timer, one command in flight at a time.
 *
 * Each turn it reads the registry of apps with work (sd:jobapps, the app
 * served least recently first; a plain ZRANGE on the requests'
 * connections: a read, which Redis serves while it pauses writes), then
 * asks those apps in turn for a job (redis/job_claim.lua, in the app's
 * slot) until one gives it a job under a lease.  It marks that app served
 * (redis/job_apps.lua, which puts it behind every other app), runs one
 * bounded chunk of the job (redis/job_chunk.lua), and looks again.
 * Claims, chunks and registry writes go on the pool's background
 * connection, so a write Redis holds back holds back no request.
 *
 * After each chunk the job pauses for four times the chunk's Redis time
 * (the chunk sets it, in Redis's time), so that one job keeps Redis busy
 * at most a fifth of the time whoever runs it; an app runs one job at a
 * time and apps take turns, so one app's jobs cannot starve another's.  A
 * chunk updates its customers and moves the job's cursor in one atomic
 * script, and all progress lives in Redis: when a worker dies or is
 * reloaded away, its lease runs out and another worker, or another
 * gateway, goes on from the cursor.
 *
 * An app leaves the registry as soon as the runner that ran its last job
 * finds its queue empty, or, registered by a gateway that died before it
 * queued its job, once its stamp is older than a grace period
 * (job_claim.lua writes its gone mark, job_apps.lua drops it; job_apps.lua
 * says why no job is lost between the two).  Jobs that a gateway of the
 * first layout queued in sd:jobs are moved to their apps' queues (adopted)
 * one by one.  The HTTP side of jobs is ngx_http_supportdesk_jobs.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_runner.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_JOB_LEASE         3000
#define NGX_HTTP_SUPPORTDESK_JOB_POLL          500
#define NGX_HTTP_SUPPORTDESK_JOB_RETRY         1000
/* how long an app with nothing queued stays registered: longer than a
   gateway takes between its two steps (jobs.c), so that it is rarely
   made to register again */
#define NGX_HTTP_SUPPORTDESK_JOB_GRACE         10000
/* the apps asked for a job per look at the registry */
#define NGX_HTTP_SUPPORTDESK_JOB_LOOK          16
/* sd:jobs is looked at on the first look and every this many */
#define NGX_HTTP_SUPPORTDESK_JOB_LEGACY_EVERY  20
#define NGX_HTTP_SUPPORTDESK_JOB_ADOPT_TRIES   3
#define NGX_HTTP_SUPPORTDESK_JOB_ARGS          20


/* what the runner sends next */
typedef enum {
    NGX_HTTP_SUPPORTDESK_RUNNER_LIST = 0,
    NGX_HTTP_SUPPORTDESK_RUNNER_CLAIM,
    NGX_HTTP_SUPPORTDESK_RUNNER_SERVED,
    NGX_HTTP_SUPPORTDESK_RUNNER_CHUNK,
    NGX_HTTP_SUPPORTDESK_RUNNER_TIDY,
    NGX_HTTP_SUPPORTDESK_RUNNER_DROP,
    NGX_HTTP_SUPPORTDESK_RUNNER_LEGACY,
    NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER,
    NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT,
    NGX_HTTP_SUPPORTDESK_RUNNER_ADOPTED
} ngx_http_supportdesk_runner_state_e;


/* an app of the registry, and its stamp there */
typedef struct {
    u_char                               id[NGX_HTTP_SUPPORTDESK_APP_ID_MAX];
    ngx_str_t                            app;
    u_char                               text[NGX_INT64_LEN];
    ngx_str_t                            stamp;
} ngx_http_supportdesk_runner_app_t;


/* one per worker and Redis configuration */
typedef struct {
    ngx_http_supportdesk_redis_conf_t   *redis;
    ngx_http_supportdesk_main_conf_t    *smcf;
    ngx_event_t                          timer;
    ngx_http_supportdesk_runner_state_e  state;
    ngx_http_supportdesk_redis_op_t     *op;
    /* the arguments of the command in flight; reset before the next */
    ngx_pool_t                          *pool;

    u_char                               token[64];
    size_t                               token_len;

    /* the registry as last read; the app asked now (its job, once
       claimed); the soonest a job met busy is free (ms) */
    ngx_http_supportdesk_runner_app_t    apps[NGX_HTTP_SUPPORTDESK_JOB_LOOK];
    ngx_uint_t                           napps;
    ngx_uint_t                           next;
    ngx_msec_t                           wait;
    ngx_uint_t                           looks;
    u_char                               number_text[NGX_INT_T_LEN];
    ngx_str_t                            number;

    /* the sd:jobs entry being adopted, "<app>/<n>"; its app, and the gone
       mark its queue answered */
    u_char            member_text[NGX_HTTP_SUPPORTDESK_APP_ID_MAX
                                  + NGX_INT_T_LEN + 2];
    ngx_str_t                            member;
    ngx_http_supportdesk_runner_app_t    legacy;
    ngx_str_t                            legacy_number;
    u_char                               gone_text[NGX_INT64_LEN];
    ngx_str_t                            gone;
    ngx_uint_t                           adopt_tries;
} ngx_http_supportdesk_runner_t;


static void ngx_http_supportdesk_runner_tick(ngx_event_t *ev);
static void ngx_http_supportdesk_runner_reply(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_msec_t ngx_http_supportdesk_runner_listed(
    ngx_http_supportdesk_runner_t *runner, redisReply *reply);
static ngx_msec_t ngx_http_supportdesk_runner_claimed(
    ngx_http_supportdesk_runner_t *runner, redisReply *reply);
static ngx_msec_t ngx_http_supportdesk_runner_chunked(
    ngx_http_supportdesk_runner_t *runner, redisReply *reply);
static ngx_msec_t ngx_http_supportdesk_runner_next_app(
    ngx_http_supportdesk_runner_t *runner);
static ngx_msec_t ngx_http_supportdesk_runner_legacy(
    ngx_http_supportdesk_runner_t *runner, redisReply *reply);
static ngx_msec_t ngx_http_supportdesk_runner_adopted(
    ngx_http_supportdesk_runner_t *runner, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_runner_copy(redisReply *reply,
    u_char *buf, size_t size, ngx_str_t *to, ngx_uint_t digits);
static ngx_uint_t ngx_http_supportdesk_runner_is(redisReply *reply,
    ngx_uint_t i, const char *text);
static void ngx_http_supportdesk_runner_schedule(
    ngx_http_supportdesk_runner_t *runner, ngx_msec_t delay);


static ngx_array_t  ngx_http_supportdesk_runners;

/* for the log, by state */
static const char  *ngx_http_supportdesk_runner_steps[] = {
    "reading " NGX_HTTP_SUPPORTDESK_JOB_APPS, "claiming a job",
    "marking an app served", "running a chunk", "tidying an app",
    "dropping an app",
    "reading " NGX_HTTP_SUPPORTDESK_JOBS_LEGACY, "registering an app",
    "adopting a job", "removing an adopted job"
};


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

    ngx_int_t                           script;
    ngx_str_t                           none, *app, *stamp;
    ngx_uint_t                          background;
    ngx_http_supportdesk_args_t         args;
    ngx_http_supportdesk_runner_app_t  *a;

    if (ngx_exiting || ngx_quit || ngx_terminate || runner->op != NULL) {
        return;
    }

    /* the previous command's reply is in: its arguments may go */
    ngx_reset_pool(runner->pool);

    ngx_http_supportdesk_args_init(&args, runner->pool,
                                   NGX_HTTP_SUPPORTDESK_JOB_ARGS);

    ngx_str_null(&none);
    script = NGX_HTTP_SUPPORTDESK_NO_SCRIPT;
    background = 1;

    /* the app the command is about: of the registry, or of sd:jobs */
    if (runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER
        || runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT)
    {
        a = &runner->legacy;

    } else {
        a = &runner->apps[ngx_min(runner->next,
                                  NGX_HTTP_SUPPORTDESK_JOB_LOOK - 1)];
    }

    app = &a->app;
    stamp = &a->stamp;

    switch (runner->state) {

    case NGX_HTTP_SUPPORTDESK_RUNNER_LIST:
        /* a read, with the requests */
        ngx_http_supportdesk_args_literal(&args, "ZRANGE");
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOB_APPS);
        ngx_http_supportdesk_args_literal(&args, "0");
        ngx_http_supportdesk_args_uint(&args,
                                       NGX_HTTP_SUPPORTDESK_JOB_LOOK - 1);
        ngx_http_supportdesk_args_literal(&args, "WITHSCORES");
        background = 0;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_CLAIM:
    case NGX_HTTP_SUPPORTDESK_RUNNER_TIDY:
    case NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT:
        /* 2 jobq jobgone prefix lease token stamp grace "" | tidy | n */
        ngx_http_supportdesk_args_literal(&args, "2");
        ngx_http_supportdesk_args_key_literal(&args, app, "jobq", NULL);
        ngx_http_supportdesk_args_key_literal(&args, app, "jobgone", NULL);
        ngx_http_supportdesk_args_key_literal(&args, app, "", NULL);
        ngx_http_supportdesk_args_uint(&args, NGX_HTTP_SUPPORTDESK_JOB_LEASE);
        ngx_http_supportdesk_args_add(&args, runner->token, runner->token_len);
        ngx_http_supportdesk_args_str(&args, stamp);
        ngx_http_supportdesk_args_uint(&args, NGX_HTTP_SUPPORTDESK_JOB_GRACE);

        if (runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT) {
            ngx_http_supportdesk_args_str(&args, &runner->legacy_number);

        } else if (runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_TIDY) {
            ngx_http_supportdesk_args_literal(&args, "tidy");

        } else {
            ngx_http_supportdesk_args_literal(&args, "");
        }

        script = NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CLAIM;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_SERVED:
    case NGX_HTTP_SUPPORTDESK_RUNNER_DROP:
    case NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER:
        /* 1 sd:jobapps op app stamp | gone */
        ngx_http_supportdesk_args_literal(&args, "1");
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOB_APPS);

        if (runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_SERVED) {
            ngx_http_supportdesk_args_literal(&args, "served");
            ngx_http_supportdesk_args_str(&args, app);
            ngx_http_supportdesk_args_str(&args, stamp);

        } else if (runner->state == NGX_HTTP_SUPPORTDESK_RUNNER_DROP) {
            ngx_http_supportdesk_args_literal(&args, "drop");
            ngx_http_supportdesk_args_str(&args, app);
            ngx_http_supportdesk_args_str(&args, stamp);

        } else {
            ngx_http_supportdesk_args_literal(&args, "register");
            ngx_http_supportdesk_args_str(&args, app);
            ngx_http_supportdesk_args_str(&args, &runner->gone);
        }

        script = NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_APPS;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_CHUNK:
        /* the writer's keys, job order jobq jobids, the writer's
           arguments, prefix token chunk number ttl */
        ngx_http_supportdesk_args_literal(&args, "7");
        ngx_http_supportdesk_args_feed_keys(&args, app, &none, -1);
        ngx_http_supportdesk_args_key_literal(&args, app, "job",
                                              &runner->number);
        ngx_http_supportdesk_args_key_literal(&args, app, "order", NULL);
        ngx_http_supportdesk_args_key_literal(&args, app, "jobq", NULL);
        ngx_http_supportdesk_args_key_literal(&args, app, "jobids",
                                              &runner->number);
        ngx_http_supportdesk_args_feed_argv(&args, &none, &none,
                                            runner->smcf);
        ngx_http_supportdesk_args_key_literal(&args, app, "", NULL);
        ngx_http_supportdesk_args_add(&args, runner->token, runner->token_len);
        ngx_http_supportdesk_args_uint(&args, runner->smcf->job_chunk_size);
        ngx_http_supportdesk_args_str(&args, &runner->number);
        ngx_http_supportdesk_args_str(&args, &runner->smcf->job_ttl_text);

        script = NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CHUNK;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_LEGACY:
        ngx_http_supportdesk_args_literal(&args, "ZRANGE");
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOBS_LEGACY);
        ngx_http_supportdesk_args_literal(&args, "0");
        ngx_http_supportdesk_args_literal(&args, "0");
        background = 0;
        break;

    default: /* NGX_HTTP_SUPPORTDESK_RUNNER_ADOPTED */
        ngx_http_supportdesk_args_literal(&args, "ZREM");
        ngx_http_supportdesk_args_literal(&args,
                                          NGX_HTTP_SUPPORTDESK_JOBS_LEGACY);
        ngx_http_supportdesk_args_str(&args, &runner->member);
    }

    if (!args.failed) {
        if (background) {
            runner->op = ngx_http_supportdesk_redis_send_background(
                                         runner->redis, script, args.argc,
                                         args.argv, args.argvlen,
                                         ngx_http_supportdesk_runner_reply,
                                         runner, ev->log);

        } else {
            runner->op = ngx_http_supportdesk_redis_send(runner->redis,
                                         script, args.argc,
                                         args.argv, args.argvlen,
                                         ngx_http_supportdesk_runner_reply,
                                         runner, ev->log);
        }
    }

    if (runner->op == NULL) {
        /* Redis cannot take it now: from the start, later */
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        ngx_http_supportdesk_runner_schedule(runner,
                                             NGX_HTTP_SUPPORTDESK_JOB_RETRY);
    }
}


static void
ngx_http_supportdesk_runner_reply(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_runner_t  *runner = data;

    ngx_msec_t                          delay;
    ngx_http_supportdesk_runner_app_t  *a;

    runner->op = NULL;

    if (rc != NGX_OK || reply->type == REDIS_REPLY_ERROR) {
        if (rc == NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                          "supportdesk: job runner: %s failed: %*s",
                          ngx_http_supportdesk_runner_steps[runner->state],
                          reply->len, reply->str);
        }

        /* the pool logs why it failed; all goes on from Redis later */
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        ngx_http_supportdesk_runner_schedule(runner,
                                             NGX_HTTP_SUPPORTDESK_JOB_RETRY);
        return;
    }

    switch (runner->state) {

    case NGX_HTTP_SUPPORTDESK_RUNNER_LIST:
        delay = ngx_http_supportdesk_runner_listed(runner, reply);
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_CLAIM:
        delay = ngx_http_supportdesk_runner_claimed(runner, reply);
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_SERVED:
        /*
         * The app's new stamp, for the tidy after its job's last chunk;
         * 0: another runner marked it first, the job is this runner's all
         * the same (its lease)
         */
        a = &runner->apps[runner->next];
        (void) ngx_http_supportdesk_runner_copy(reply, a->text, NGX_INT64_LEN,
                                                &a->stamp, 1);
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_CHUNK;
        delay = 1;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_CHUNK:
        delay = ngx_http_supportdesk_runner_chunked(runner, reply);
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_TIDY:
        /* {"empty", 1}: its last job done, the app leaves the registry */
        runner->state = ngx_http_supportdesk_runner_is(reply, 0, "empty")
                        && reply->elements == 2
                        && reply->element[1]->type == REDIS_REPLY_INTEGER
                        && reply->element[1]->integer == 1
                        ? NGX_HTTP_SUPPORTDESK_RUNNER_DROP
                        : NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        delay = 1;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_DROP:
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, runner->timer.log, 0,
                       "supportdesk: app \"%V\" with no jobs: dropped %i",
                       &runner->apps[runner->next].app,
                       reply->type == REDIS_REPLY_INTEGER ? reply->integer
                                                          : -1);
        /* the registry changed: read it again */
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        delay = 1;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_LEGACY:
        delay = ngx_http_supportdesk_runner_legacy(runner, reply);
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER:
        if (ngx_http_supportdesk_runner_copy(reply, runner->legacy.text,
                                             NGX_INT64_LEN,
                                             &runner->legacy.stamp, 1)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                          "supportdesk: job runner: registering an app "
                          "answered no stamp");
            runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
            delay = NGX_HTTP_SUPPORTDESK_JOB_RETRY;
            break;
        }

        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT;
        delay = 1;
        break;

    case NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT:
        delay = ngx_http_supportdesk_runner_adopted(runner, reply);
        break;

    default: /* NGX_HTTP_SUPPORTDESK_RUNNER_ADOPTED: the next one */
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LEGACY;
        delay = 1;
    }

    ngx_http_supportdesk_runner_schedule(runner, delay);
}


/* ZRANGE ... WITHSCORES: app, stamp, app, stamp... */

static ngx_msec_t
ngx_http_supportdesk_runner_listed(ngx_http_supportdesk_runner_t *runner,
    redisReply *reply)
{
    size_t                              i;
    ngx_http_supportdesk_runner_app_t  *a;

    runner->napps = 0;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                      "supportdesk: job runner: "
                      NGX_HTTP_SUPPORTDESK_JOB_APPS " is not a sorted set");
        return NGX_HTTP_SUPPORTDESK_JOB_RETRY;
    }

    for (i = 0; i + 1 < reply->elements
                && runner->napps < NGX_HTTP_SUPPORTDESK_JOB_LOOK; i += 2)
    {
        a = &runner->apps[runner->napps];

        if (ngx_http_supportdesk_runner_copy(reply->element[i], a->id,
                                             NGX_HTTP_SUPPORTDESK_APP_ID_MAX,
                                             &a->app, 0)
               != NGX_OK
            || !ngx_http_supportdesk_valid_app(a->app.data, a->app.len)
            || ngx_http_supportdesk_runner_copy(reply->element[i + 1],
                                                a->text, NGX_INT64_LEN,
                                                &a->stamp, 1)
               != NGX_OK)
        {
            /* not written by the module; left to whoever wrote it */
            ngx_log_error(NGX_LOG_WARN, runner->timer.log, 0,
                          "supportdesk: job runner: an entry of "
                          NGX_HTTP_SUPPORTDESK_JOB_APPS " that is not an "
                          "app and its stamp, passed over");
            continue;
        }

        runner->napps++;
    }

    if (runner->looks++ % NGX_HTTP_SUPPORTDESK_JOB_LEGACY_EVERY == 0) {
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LEGACY;
        return 1;
    }

    if (runner->napps == 0) {
        return NGX_HTTP_SUPPORTDESK_JOB_POLL;
    }

    runner->next = 0;
    runner->wait = NGX_HTTP_SUPPORTDESK_JOB_POLL;
    runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_CLAIM;

    return 1;
}


/* {"claimed", n, how} | {"busy", ms} | {"empty", 0 | 1} */

static ngx_msec_t
ngx_http_supportdesk_runner_claimed(ngx_http_supportdesk_runner_t *runner,
    redisReply *reply)
{
    ngx_str_t  *app;

    app = &runner->apps[runner->next].app;

    if (ngx_http_supportdesk_runner_is(reply, 0, "claimed")
        && reply->elements == 3
        && ngx_http_supportdesk_runner_copy(reply->element[1],
                                            runner->number_text,
                                            NGX_INT_T_LEN, &runner->number, 1)
           == NGX_OK
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        if (ngx_http_supportdesk_runner_is(reply, 2, "start")) {
            ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                          "supportdesk: running bulk-update job \"%V/%V\"",
                          app, &runner->number);

        } else if (ngx_http_supportdesk_runner_is(reply, 2, "takeover")) {
            ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                          "supportdesk: taking over bulk-update job "
                          "\"%V/%V\" (its lease ran out)",
                          app, &runner->number);

        } else {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, runner->timer.log, 0,
                           "supportdesk: resuming bulk-update job \"%V/%V\"",
                           app, &runner->number);
        }

        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_SERVED;
        return 1;
    }

    if (ngx_http_supportdesk_runner_is(reply, 0, "busy")
        && reply->elements == 2
        && reply->element[1]->type == REDIS_REPLY_INTEGER)
    {
        if (reply->element[1]->integer >= 0
            && (ngx_msec_t) reply->element[1]->integer < runner->wait)
        {
            runner->wait = (ngx_msec_t) reply->element[1]->integer;
        }

        return ngx_http_supportdesk_runner_next_app(runner);
    }

    if (ngx_http_supportdesk_runner_is(reply, 0, "empty")
        && reply->elements == 2
        && reply->element[1]->type == REDIS_REPLY_INTEGER)
    {
        if (reply->element[1]->integer == 1) {
            runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_DROP;
            return 1;
        }

        return ngx_http_supportdesk_runner_next_app(runner);
    }

    ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                  "supportdesk: job runner: claiming a job of \"%V\" "
                  "answered something else", app);

    return ngx_http_supportdesk_runner_next_app(runner);
}


/* {"running" | "done" | "lost", the job's pause in ms} */

static ngx_msec_t
ngx_http_supportdesk_runner_chunked(ngx_http_supportdesk_runner_t *runner,
    redisReply *reply)
{
    ngx_str_t  *app;

    app = &runner->apps[runner->next].app;

    /* the job pauses now (Redis holds when it is free again): the runner
       looks at the registry again, where this app went to the back */
    runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;

    if (ngx_http_supportdesk_runner_is(reply, 0, "lost")) {
        ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                      "supportdesk: bulk-update job \"%V/%V\": another "
                      "runner holds it now", app, &runner->number);

    } else if (ngx_http_supportdesk_runner_is(reply, 0, "done")) {
        ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                      "supportdesk: bulk-update job \"%V/%V\": done",
                      app, &runner->number);

        /* the app's last one? then it leaves the registry at once */
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_TIDY;

    } else if (!ngx_http_supportdesk_runner_is(reply, 0, "running")) {
        ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                      "supportdesk: bulk-update job \"%V/%V\": a chunk "
                      "answered something else", app, &runner->number);
    }

    return 1;
}


/* the next app of the registry, or a look at it again */

static ngx_msec_t
ngx_http_supportdesk_runner_next_app(ngx_http_supportdesk_runner_t *runner)
{
    if (++runner->next < runner->napps) {
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_CLAIM;
        return 1;
    }

    /* none had a job free: again when the first one met busy is free */
    runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;

    return ngx_max(runner->wait, 1);
}


/* ZRANGE sd:jobs 0 0: nothing, or "<app>/<n>" */

static ngx_msec_t
ngx_http_supportdesk_runner_legacy(ngx_http_supportdesk_runner_t *runner,
    redisReply *reply)
{
    u_char  *slash, *end;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        return 1;
    }

    if (ngx_http_supportdesk_runner_copy(reply->element[0],
                                         runner->member_text,
                                         sizeof(runner->member_text),
                                         &runner->member, 0)
        != NGX_OK)
    {
        /* too long to be ours, so too long to remove: left alone */
        ngx_log_error(NGX_LOG_WARN, runner->timer.log, 0,
                      "supportdesk: job runner: an entry of "
                      NGX_HTTP_SUPPORTDESK_JOBS_LEGACY " that is not a job");
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;
        return NGX_HTTP_SUPPORTDESK_JOB_POLL;
    }

    end = runner->member.data + runner->member.len;
    slash = ngx_strlchr(runner->member.data, end, '/');

    runner->legacy.app.data = runner->member.data;
    runner->legacy.app.len = (slash != NULL) ? slash - runner->member.data
                                             : 0;

    if (slash == NULL || slash + 1 == end
        || slash + 1 + NGX_INT_T_LEN < end
        || ngx_atoi(slash + 1, end - slash - 1) == NGX_ERROR
        || !ngx_http_supportdesk_valid_app(runner->legacy.app.data,
                                           runner->legacy.app.len))
    {
        ngx_log_error(NGX_LOG_WARN, runner->timer.log, 0,
                      "supportdesk: job runner: \"%V\" in "
                      NGX_HTTP_SUPPORTDESK_JOBS_LEGACY " is not a job, "
                      "removed", &runner->member);
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_ADOPTED;
        return 1;
    }

    runner->legacy_number.data = slash + 1;
    runner->legacy_number.len = end - slash - 1;
    runner->gone.len = 0;
    runner->adopt_tries = 0;
    runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER;

    return 1;
}


/* {"adopted"} | {"stale", gone mark} */

static ngx_msec_t
ngx_http_supportdesk_runner_adopted(ngx_http_supportdesk_runner_t *runner,
    redisReply *reply)
{
    if (ngx_http_supportdesk_runner_is(reply, 0, "adopted")) {
        ngx_log_error(NGX_LOG_INFO, runner->timer.log, 0,
                      "supportdesk: bulk-update job \"%V\" of "
                      NGX_HTTP_SUPPORTDESK_JOBS_LEGACY " moved to its app's "
                      "queue", &runner->member);
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_ADOPTED;
        return 1;
    }

    if (ngx_http_supportdesk_runner_is(reply, 0, "stale")
        && reply->elements == 2
        && ++runner->adopt_tries < NGX_HTTP_SUPPORTDESK_JOB_ADOPT_TRIES
        && ngx_http_supportdesk_runner_copy(reply->element[1],
                                            runner->gone_text, NGX_INT64_LEN,
                                            &runner->gone, 1)
           == NGX_OK)
    {
        runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_ADOPT_REGISTER;
        return 1;
    }

    ngx_log_error(NGX_LOG_ERR, runner->timer.log, 0,
                  "supportdesk: job runner: adopting \"%V\" failed",
                  &runner->member);
    runner->state = NGX_HTTP_SUPPORTDESK_RUNNER_LIST;

    return NGX_HTTP_SUPPORTDESK_JOB_RETRY;
}


/* a string reply into the runner's own buffer (replies go with them) */

static ngx_int_t
ngx_http_supportdesk_runner_copy(redisReply *reply, u_char *buf,
    size_t size, ngx_str_t *to, ngx_uint_t digits)
{
    size_t  i;

    if (reply->type != REDIS_REPLY_STRING || reply->len == 0
        || reply->len > size)
    {
        return NGX_ERROR;
    }

    for (i = 0; digits && i < reply->len; i++) {
        if (reply->str[i] < '0' || reply->str[i] > '9') {
            return NGX_ERROR;
        }
    }

    ngx_memcpy(buf, reply->str, reply->len);
    to->data = buf;
    to->len = reply->len;

    return NGX_OK;
}


/* whether element i of an array reply is the string text */

static ngx_uint_t
ngx_http_supportdesk_runner_is(redisReply *reply, ngx_uint_t i,
    const char *text)
{
    size_t       len;
    redisReply  *e;

    if (reply->type != REDIS_REPLY_ARRAY || i >= reply->elements) {
        return 0;
    }

    e = reply->element[i];
    len = ngx_strlen(text);

    return e->type == REDIS_REPLY_STRING && e->len == len
           && ngx_strncmp(e->str, text, len) == 0;
}


static void
ngx_http_supportdesk_runner_schedule(ngx_http_supportdesk_runner_t *runner,
    ngx_msec_t delay)
{
    if (runner->timer.timer_set) {
        ngx_del_timer(&runner->timer);
    }

    ngx_add_timer(&runner->timer, delay);
}
