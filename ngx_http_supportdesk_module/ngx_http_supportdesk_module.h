
/*
 * ngx_http_supportdesk_module: the SupportDesk customer API at the edge.
 *
 * A request goes: ngx_http_supportdesk_module.c (content handler) ->
 * ngx_http_supportdesk_router.c (route + method) -> body read and
 * ngx_http_supportdesk_validate.c -> ngx_http_supportdesk_auth.c (key) ->
 * ngx_http_supportdesk_customers.c (the operation) ->
 * ngx_http_supportdesk_redis.c (pool) -> ngx_http_supportdesk_envelope.c.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_MODULE_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_supportdesk_redis.h"
#include "ngx_http_supportdesk_validate.h"
#include "ngx_http_supportdesk_envelope.h"


#define NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN   32
#define NGX_HTTP_SUPPORTDESK_APP_MAX_LEN    64
/* how metadata is stored; the validator measures it the same way */
#define NGX_HTTP_SUPPORTDESK_METADATA_FLAGS JSON_COMPACT


typedef struct {
    ngx_array_t                          redis_confs;
    /* the prefixes of every supportdesk location, for errors nginx raises
       before it found a location */
    ngx_array_t                          prefixes;
    ngx_shm_zone_t                      *key_cache_zone;
    size_t                               key_cache_size;
    ngx_msec_t                           key_cache_ttl;
    ngx_msec_t                           key_cache_negative_ttl;
    ngx_int_t                            request_id_index;
    ngx_uint_t                           job_chunk_size;
    ngx_flag_t                           used;
} ngx_http_supportdesk_main_conf_t;


typedef struct {
    ngx_flag_t                           enabled;
    ngx_str_t                            prefix;

    ngx_url_t                           *redis_url;
    ngx_str_t                            redis_user;
    ngx_str_t                            redis_password;
    ngx_int_t                            redis_db;
    ngx_msec_t                           redis_connect_timeout;
    ngx_msec_t                           redis_timeout;
    ngx_int_t                            redis_connections;
    size_t                               max_body_size;
    size_t                               batch_max_body_size;
    ngx_uint_t                           list_scan_limit;

    /* the shared upstream these settings resolve to, set at merge time */
    ngx_http_supportdesk_redis_conf_t   *redis;
} ngx_http_supportdesk_loc_conf_t;


typedef struct ngx_http_supportdesk_ctx_s  ngx_http_supportdesk_ctx_t;

typedef ngx_int_t (*ngx_http_supportdesk_step_pt)(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);


/* one method of one route */
typedef struct {
    ngx_uint_t                           method;
    unsigned                             has_body:1;
    /* the batch route: supportdesk_batch_max_body_size applies */
    unsigned                             batch_body:1;
    /* checks body and path parameters before any storage work */
    ngx_http_supportdesk_step_pt         validate;
    /* issues the Redis work once the key is known */
    ngx_http_supportdesk_step_pt         run;
} ngx_http_supportdesk_action_t;


#define NGX_HTTP_SUPPORTDESK_MAX_PARAMS  2


typedef struct ngx_http_supportdesk_batch_item_s
    ngx_http_supportdesk_batch_item_t;


/* GET /customers and GET .../notes, decoded from the query string */
typedef struct {
    ngx_uint_t                           limit;
    ngx_str_t                            cursor;     /* decoded: digits */
    ngx_str_t                            email;      /* lowercase */
    ngx_str_t                            name;       /* lowercase */
    ngx_str_t                            text;       /* lowercase */
    ngx_array_t                          metadata;   /* ngx_str_t pairs */
    unsigned                             notes_count:1;
} ngx_http_supportdesk_query_t;

struct ngx_http_supportdesk_ctx_s {
    ngx_http_supportdesk_loc_conf_t     *conf;
    ngx_http_supportdesk_action_t       *action;

    /* raw (still percent-encoded) path parameters from the route */
    ngx_str_t        params[NGX_HTTP_SUPPORTDESK_MAX_PARAMS];
    ngx_str_t                            external_id;

    ngx_str_t                            api_key;
    u_char           key_hash[NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN];
    ngx_str_t                            app;

    /* an answer decided before the content phase (404, 405, 401, 503) */
    ngx_uint_t                           status;

    json_t                              *body;
    ngx_http_supportdesk_customer_input_t  input;
    ngx_http_supportdesk_report_t       *report;
    const char                          *invalid_json;

    ngx_http_supportdesk_query_t         query;
    ngx_uint_t                           number;     /* of a note, a job */

    /* PATCH /customers: one op per item, answered when none is pending */
    ngx_http_supportdesk_batch_item_t   *items;
    ngx_uint_t                           nitems;
    ngx_uint_t                           pending;

    /* Redis command being answered; NULL when none is pending */
    ngx_http_supportdesk_redis_op_t     *op;
    int                                  argc;
    const char                         **argv;
    size_t                              *argvlen;

    /* nginx's body reading handler, behind our client_body_timeout guard */
    ngx_http_event_handler_pt            body_reader;

    /* the body nginx answered with itself, turned into an envelope */
    ngx_str_t                            replacement;

    unsigned                             key_checked:1;
    /* our own envelope went out: the error filter leaves it alone */
    unsigned                             responded:1;
    unsigned                             replacing:1;
    unsigned                             replaced:1;
};


extern ngx_module_t  ngx_http_supportdesk_module;


/* router */
ngx_int_t ngx_http_supportdesk_route(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path);

/* customers */
ngx_int_t ngx_http_supportdesk_customer_validate_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_validate_id(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_render_customer(
    ngx_http_supportdesk_json_t *json, ngx_str_t *external_id,
    redisReply *hash);

ngx_http_supportdesk_report_t *ngx_http_supportdesk_report(
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx);

/* list, notes, notifications, batch, jobs */
ngx_int_t ngx_http_supportdesk_list_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_validate_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_validate_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_validate_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_notif_validate_patch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_notif(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_batch_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_batch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
void ngx_http_supportdesk_batch_abandon(ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_bulk_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_bulk(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_job_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_job_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_jobs_init_process(ngx_cycle_t *cycle);
void ngx_http_supportdesk_jobs_exit_process(ngx_cycle_t *cycle);

/* shared pieces of the customer handlers */
ngx_int_t ngx_http_supportdesk_upsert_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *external_id,
    ngx_http_supportdesk_customer_input_t *in, int *argc,
    const char ***argv, size_t **argvlen);
ngx_int_t ngx_http_supportdesk_args(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, int argc);
ngx_int_t ngx_http_supportdesk_script_failure(ngx_http_request_t *r,
    ngx_int_t rc, redisReply *reply);
ngx_int_t ngx_http_supportdesk_send_deleted(ngx_http_request_t *r);

/* query strings and cursors (ngx_http_supportdesk_query.c) */
ngx_uint_t ngx_http_supportdesk_query_next(u_char **pos, u_char *end,
    ngx_str_t *name, ngx_str_t *value);
ngx_int_t ngx_http_supportdesk_query_decode(ngx_str_t *raw, u_char *dst,
    ngx_str_t *out);
ngx_int_t ngx_http_supportdesk_query_parse(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_uint_t notes);
ngx_int_t ngx_http_supportdesk_cursor_encode(ngx_pool_t *pool,
    u_char *seq, size_t len, ngx_str_t *cursor);
ngx_uint_t ngx_http_supportdesk_parse_id(ngx_str_t *id, const char *prefix);
ngx_int_t ngx_http_supportdesk_cursor_decode(ngx_str_t *cursor, u_char *dst,
    ngx_str_t *seq);

/* the shared step of every handler: send a Redis command for ctx */
ngx_int_t ngx_http_supportdesk_call(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t script,
    ngx_http_supportdesk_redis_handler_pt handler);
void ngx_http_supportdesk_finish(ngx_http_request_t *r, ngx_int_t rc);
void ngx_http_supportdesk_watch_client(ngx_http_request_t *r);
ngx_int_t ngx_http_supportdesk_redis_failure(ngx_http_request_t *r,
    ngx_int_t rc, redisReply *reply);
ngx_int_t ngx_http_supportdesk_build_key(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, const char *type, ngx_str_t *suffix,
    const char **arg, size_t *len);


#endif /* _NGX_HTTP_SUPPORTDESK_MODULE_H_INCLUDED_ */
