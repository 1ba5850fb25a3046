
/*
 * The types every layer of the module shares: its configuration, the
 * per-request context and the route's action.  Types only: each layer
 * declares its functions in a header of its own.
 *
 * A request flows down, file by file, and never calls back up:
 *
 *   ngx_http_supportdesk_module.c    module glue: directives, configuration,
 *                                    process hooks; beside it
 *                                    _redis_conf.c (the supportdesk_redis*
 *                                    directives, a module of their own),
 *                                    _variables.c, _conf.c
 *   ngx_http_supportdesk_handler.c   phases: route and key (rewrite), body,
 *                                    validation, the action (content)
 *   ngx_http_supportdesk_auth.c      X-API-Key -> app (shared cache, Redis)
 *   ngx_http_supportdesk_router.c    raw path and method -> action
 *   ngx_http_supportdesk_customers.c, _list.c, _batch.c, _notes.c,
 *   _notifications.c, _jobs.c        the actions
 *   ngx_http_supportdesk_query.c     query strings and cursors (listings)
 *   ngx_http_supportdesk_record.c    the customer record: upsert arguments,
 *                                    the stored hash rendered as JSON
 *   ngx_http_supportdesk_store.c     storage calls: keys, arguments, one
 *                                    reply check, errors mapped to answers
 *   ngx_http_supportdesk_redis.c     the Redis connection pool
 *   ngx_http_supportdesk_reply.c     its replies, parsed into an arena
 *   ngx_http_supportdesk_script.c    the embedded scripts and their SHA-1s
 *
 * Beside the request path: ngx_http_supportdesk_filter.c (nginx's own
 * error pages as envelopes), ngx_http_supportdesk_runner.c (the bulk-update
 * job runner, on timers); at the bottom, used by all:
 * ngx_http_supportdesk_validate.c (payload rules, pure C) and
 * ngx_http_supportdesk_envelope.c (the JSON writer and the envelope).
 */

#ifndef _NGX_HTTP_SUPPORTDESK_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_supportdesk_redis.h"
#include "ngx_http_supportdesk_validate.h"


#define NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN   32
#define NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN    16
#define NGX_HTTP_SUPPORTDESK_MAX_PARAMS     2
/* bulk-update jobs: their ids; the apps with jobs waiting, where runners
   find work; the single queue of the first layout, still drained */
#define NGX_HTTP_SUPPORTDESK_JOB_PREFIX     "job_"
#define NGX_HTTP_SUPPORTDESK_NOTE_PREFIX    "note_"
#define NGX_HTTP_SUPPORTDESK_JOB_APPS       "sd:jobapps"
#define NGX_HTTP_SUPPORTDESK_JOBS_LEGACY    "sd:jobs"


typedef struct {
    ngx_array_t                          redis_confs;
    /* the API's locations, whose Redis the postconfiguration settles, once
       every module (the Redis settings' too) has merged them */
    ngx_array_t                          locations;
    /* the prefixes of every supportdesk location, for errors nginx raises
       before it found a location */
    ngx_array_t                          prefixes;
    ngx_shm_zone_t                      *key_cache_zone;
    size_t                               key_cache_size;
    ngx_msec_t                           key_cache_ttl;
    ngx_msec_t                           key_cache_negative_ttl;
    /* lookups a second, per worker, of keys the cache does not know */
    ngx_uint_t                           key_lookup_rate;
    ngx_int_t                            request_id_index;
    ngx_uint_t                           job_chunk_size;
    /* how long a finished job is kept; in seconds, as job_chunk.lua
       takes it */
    ngx_msec_t                           job_ttl;
    ngx_str_t                            job_ttl_text;
    /* the change feed's retention, per app */
    ngx_msec_t                           events_max_age;
    ngx_uint_t                           events_max_count;
    /* as the write scripts take them: seconds, a count */
    ngx_str_t                            events_max_age_text;
    ngx_str_t                            events_max_count_text;
    ngx_flag_t                           used;
    /* supportdesk_metrics: a location serves them, so they are kept */
    ngx_flag_t                           metrics;
    ngx_shm_zone_t                      *metrics_zone;
} ngx_http_supportdesk_main_conf_t;


typedef struct {
    ngx_flag_t                           enabled;
    /* supportdesk_metrics in this location */
    ngx_flag_t                           metrics;
    ngx_str_t                            prefix;

    size_t                               max_body_size;
    size_t                               batch_max_body_size;
    ngx_uint_t                           list_scan_limit;
    ngx_msec_t                           idempotency_ttl;
    /* in seconds, as the write scripts take it */
    ngx_str_t                            idempotency_ttl_text;
    /* a client's EOF (a half-close too) does not end its request */
    ngx_flag_t                           ignore_client_abort;

    /* the Redis the location's supportdesk_redis* settings name (of
       ngx_http_supportdesk_redis_module), shared by the locations with the
       same settings; set at merge time */
    ngx_http_supportdesk_redis_conf_t   *redis;
} ngx_http_supportdesk_loc_conf_t;


typedef struct ngx_http_supportdesk_ctx_s  ngx_http_supportdesk_ctx_t;

/* an action's step: NGX_OK, NGX_DONE (answered later) or an HTTP status */
typedef ngx_int_t (*ngx_http_supportdesk_step_pt)(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* reads a Redis reply of an expected type; returns like a step, or
   NGX_AGAIN: not answered yet, the action goes on with the request */
typedef ngx_int_t (*ngx_http_supportdesk_reply_pt)(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


/* one method of one route */
typedef struct {
    ngx_uint_t                           method;
    unsigned                             has_body:1;
    /* the batch route: supportdesk_batch_max_body_size applies, and the
       body's "customers" are parsed an item at a time (by validate) */
    unsigned                             batch_body:1;
    /* the first path parameter is an externalId, decoded before validate */
    unsigned                             external_id:1;
    /* a write: takes an Idempotency-Key */
    unsigned                             write:1;
    /* takes If-Match / If-None-Match (one customer) */
    unsigned                             conditional:1;
    /* the body's fields (ending with a null string), the others refused
       before validate; NULL: validate checks them itself */
    ngx_str_t                           *fields;
    /* checks body and parameters before any storage work; may be NULL */
    ngx_http_supportdesk_step_pt         validate;
    /* issues the Redis work once the key is known */
    ngx_http_supportdesk_step_pt         run;
} ngx_http_supportdesk_action_t;


struct ngx_http_supportdesk_ctx_s {
    ngx_http_supportdesk_loc_conf_t     *conf;
    ngx_http_supportdesk_action_t       *action;
    /* the route matched (its number from 1, 0: none) and its template */
    ngx_uint_t                           route;
    ngx_str_t                           *route_name;

    /* raw (still percent-encoded) path parameters from the route */
    ngx_str_t        params[NGX_HTTP_SUPPORTDESK_MAX_PARAMS];
    ngx_str_t                            external_id;

    ngx_str_t                            api_key;
    /* the key's name in the key cache (ngx_http_supportdesk_auth.c) */
    u_char           key_tag[NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN];
    ngx_str_t                            app;
    /* the key's Redis lookup: due in the access phase (after limit_req),
       for a key the cache knew as good (then app is the one it had) or
       not; the second whose bound it was counted against */
    ngx_msec_t                           key_window;
    unsigned                             key_pending:1;
    unsigned                             key_known:1;
    unsigned                             key_spent:1;

    /* an answer decided before the content phase (404, 405, 401, 503),
       with its message (NULL: the usual one) */
    ngx_uint_t                           status;
    const char                          *status_message;
    /* the route's body limit, once routed */
    size_t                               body_limit;
    /* the route's methods, for the Allow header of a 405 */
    ngx_str_t                            allow;

    /* the body as it came, and as parsed; a batch's tree holds [] for
       its customers, whose text is items (ngx_http_supportdesk_json_next())
       */
    ngx_str_t                            body_text;
    json_t                              *body;
    ngx_str_t                            items;
    /* a validate step found the body not JSON after all (a batch item):
       the answer is INVALID_JSON with this message */
    const char                          *invalid_json;

    /* the headers the API reads besides the key, as they came (NULL: not
       sent), checked with the other rules; and sent twice */
    ngx_table_elt_t                     *idempotency_header;
    ngx_table_elt_t                     *if_match_header;
    ngx_table_elt_t                     *if_none_match_header;
    unsigned                             idempotency_twice:1;
    unsigned                             if_match_twice:1;
    unsigned                             if_none_match_twice:1;

    /* a write's Idempotency-Key and the request's fingerprint (SHA-256 of
       method, path and body, hex); len 0: none */
    ngx_str_t                            idempotency_key;
    ngx_str_t                            fingerprint;
    /* as the scripts take them (redis/lib.lua); len 0: not sent */
    ngx_str_t                            if_match;
    ngx_str_t                            if_none_match;
    /* the answer's ETag, set by the action */
    ngx_str_t                            etag;
    /* every violation found before storage work; set once routed and the
       body is in, so validate steps need not check it */
    ngx_http_supportdesk_report_t       *report;

    /* the action's own state */
    void                                *data;

    /* the Redis command being answered; NULL when none is pending */
    ngx_http_supportdesk_redis_op_t     *op;
    ngx_http_supportdesk_reply_pt        reply;
    ngx_uint_t                           reply_flags;

    /* nginx's body reading handler, behind our client_body_timeout guard */
    ngx_http_event_handler_pt            body_reader;

    /* the body nginx answered with itself, turned into an envelope */
    ngx_str_t                            replacement;

    /* the error code of the envelope sent, for the metrics; NULL: none */
    const char                          *error_code;

    /* $supportdesk_redis_time: the time commands of the request were due
       (a batch's pipelined commands together), the start of the current
       span, the commands due now */
    ngx_msec_t                           redis_time;
    ngx_msec_t                           redis_since;
    ngx_uint_t                           redis_due;

    /* the answer is one recorded under the Idempotency-Key */
    unsigned                             replayed:1;
    /* our own envelope went out: the error filter leaves it alone */
    unsigned                             responded:1;
    unsigned                             replacing:1;
    unsigned                             replaced:1;
    /* a command was sent for it ($supportdesk_redis_time is set) */
    unsigned                             redis_used:1;
    /* counted by the metrics already (the log phase runs once, but a
       request nginx finalizes twice must not count twice) */
    unsigned                             counted:1;
};


extern ngx_module_t  ngx_http_supportdesk_module;


#endif /* _NGX_HTTP_SUPPORTDESK_H_INCLUDED_ */
