
/*
 * Module glue: directives, configuration, the request pipeline, the
 * $supportdesk_app variable, and the filter that turns nginx's own error
 * pages (413 for a body over the limit, 400 for a broken chunked body...)
 * into envelopes inside a supportdesk location.
 *
 * Pipeline: rewrite phase (route, API key: so $supportdesk_app is there for
 * limit_req and the access log) -> content handler (body, validation) ->
 * the route's run step (Redis) -> envelope.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_module.h"
#include "ngx_http_supportdesk_auth.h"
#include "ngx_http_supportdesk_envelope.h"


#define NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS  "127.0.0.1:6379"
#define NGX_HTTP_SUPPORTDESK_MAX_CONNECTIONS  64


static ngx_int_t ngx_http_supportdesk_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_supportdesk_content_handler(ngx_http_request_t *r);
static void ngx_http_supportdesk_body_handler(ngx_http_request_t *r);
static void ngx_http_supportdesk_body_timeout_guard(ngx_http_request_t *r);
static void ngx_http_supportdesk_proceed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_uint_t ngx_http_supportdesk_is_json(ngx_http_request_t *r);
static size_t ngx_http_supportdesk_body_limit(ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_send_too_large(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_http_supportdesk_ctx_t *ngx_http_supportdesk_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_supportdesk_cleanup(void *data);

static ngx_int_t ngx_http_supportdesk_header_filter(ngx_http_request_t *r);
static ngx_uint_t ngx_http_supportdesk_api_path(ngx_http_request_t *r);
static ngx_int_t ngx_http_supportdesk_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_supportdesk_app_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_supportdesk_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_supportdesk_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_supportdesk_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_supportdesk_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_uint_t ngx_http_supportdesk_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_http_supportdesk_redis_conf_t *ngx_http_supportdesk_upstream(
    ngx_conf_t *cf, ngx_http_supportdesk_loc_conf_t *slcf);
static char *ngx_http_supportdesk(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_supportdesk_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_url_t *ngx_http_supportdesk_parse_redis(ngx_conf_t *cf,
    ngx_str_t *value);
static char *ngx_http_supportdesk_redis_password(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_check_positive_msec(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_supportdesk_check_positive_size(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_supportdesk_check_connections(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_supportdesk_check_db(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_supportdesk_check_scan_limit(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_supportdesk_check_chunk_size(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_supportdesk_check_zone_size(ngx_conf_t *cf,
    void *post, void *data);

static ngx_int_t ngx_http_supportdesk_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_supportdesk_init_process(ngx_cycle_t *cycle);
static void ngx_http_supportdesk_exit_process(ngx_cycle_t *cycle);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_conf_post_handler_pt  ngx_http_supportdesk_positive_msec_p =
    ngx_http_supportdesk_check_positive_msec;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_positive_size_p =
    ngx_http_supportdesk_check_positive_size;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_connections_p =
    ngx_http_supportdesk_check_connections;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_db_p =
    ngx_http_supportdesk_check_db;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_zone_size_p =
    ngx_http_supportdesk_check_zone_size;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_scan_limit_p =
    ngx_http_supportdesk_check_scan_limit;
static ngx_conf_post_handler_pt  ngx_http_supportdesk_chunk_size_p =
    ngx_http_supportdesk_check_chunk_size;


static ngx_command_t  ngx_http_supportdesk_commands[] = {

    { ngx_string("supportdesk"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_supportdesk,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_supportdesk_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_supportdesk_redis_password,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_db"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_db),
      &ngx_http_supportdesk_db_p },

    { ngx_string("supportdesk_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_connect_timeout),
      &ngx_http_supportdesk_positive_msec_p },

    { ngx_string("supportdesk_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_timeout),
      &ngx_http_supportdesk_positive_msec_p },

    { ngx_string("supportdesk_redis_connections"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_connections),
      &ngx_http_supportdesk_connections_p },

    { ngx_string("supportdesk_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, max_body_size),
      &ngx_http_supportdesk_positive_size_p },

    { ngx_string("supportdesk_batch_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, batch_max_body_size),
      &ngx_http_supportdesk_positive_size_p },

    { ngx_string("supportdesk_list_scan_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, list_scan_limit),
      &ngx_http_supportdesk_scan_limit_p },

    { ngx_string("supportdesk_job_chunk_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, job_chunk_size),
      &ngx_http_supportdesk_chunk_size_p },

    { ngx_string("supportdesk_key_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, key_cache_size),
      &ngx_http_supportdesk_zone_size_p },

    { ngx_string("supportdesk_key_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, key_cache_ttl),
      &ngx_http_supportdesk_positive_msec_p },

    { ngx_string("supportdesk_key_cache_negative_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, key_cache_negative_ttl),
      &ngx_http_supportdesk_positive_msec_p },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_supportdesk_module_ctx = {
    ngx_http_supportdesk_preconfiguration,   /* preconfiguration */
    ngx_http_supportdesk_postconfiguration,  /* postconfiguration */

    ngx_http_supportdesk_create_main_conf,   /* create main configuration */
    ngx_http_supportdesk_init_main_conf,     /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_supportdesk_create_loc_conf,    /* create location configuration */
    ngx_http_supportdesk_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_supportdesk_module = {
    NGX_MODULE_V1,
    &ngx_http_supportdesk_module_ctx,        /* module context */
    ngx_http_supportdesk_commands,           /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    ngx_http_supportdesk_init_module,        /* init module */
    ngx_http_supportdesk_init_process,       /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    ngx_http_supportdesk_exit_process,       /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_supportdesk_app_name = ngx_string("supportdesk_app");
static ngx_str_t  ngx_http_supportdesk_key_header = ngx_string("X-API-Key");


/* rewrite phase: route and API key, before limit_req looks at the app */

static ngx_int_t
ngx_http_supportdesk_rewrite_handler(ngx_http_request_t *r)
{
    u_char                           *q;
    ngx_int_t                         rc;
    ngx_str_t                         path;
    ngx_list_part_t                  *part;
    ngx_table_elt_t                  *h;
    ngx_uint_t                        i;
    ngx_http_supportdesk_ctx_t       *ctx;
    ngx_http_supportdesk_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    if (!slcf->enabled || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx) {
        /* back from the Redis key lookup, or an internal redirect */
        return ctx->op ? NGX_DONE : NGX_DECLINED;
    }

    ctx = ngx_http_supportdesk_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* routes match the raw path: %2F stays inside its segment */
    path = r->unparsed_uri;
    q = ngx_strlchr(path.data, path.data + path.len, '?');
    if (q) {
        path.len = q - path.data;
    }

    if (path.len < slcf->prefix.len
        || ngx_strncmp(path.data, slcf->prefix.data, slcf->prefix.len) != 0)
    {
        ctx->status = NGX_HTTP_NOT_FOUND;
        return NGX_DECLINED;
    }

    path.data += slcf->prefix.len;
    path.len -= slcf->prefix.len;

    rc = ngx_http_supportdesk_route(r, ctx, &path);
    if (rc != NGX_OK) {
        ctx->status = rc;
        return NGX_DECLINED;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == ngx_http_supportdesk_key_header.len
            && ngx_strncasecmp(h[i].key.data,
                               ngx_http_supportdesk_key_header.data,
                               h[i].key.len)
               == 0)
        {
            ctx->api_key = h[i].value;
            break;
        }
    }

    if (ctx->api_key.len == 0) {
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        return NGX_DECLINED;
    }

    if (ngx_http_supportdesk_auth_hash(&ctx->api_key, ctx->key_hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_supportdesk_auth_lookup(r, ctx->key_hash, &ctx->app);

    switch (rc) {

    case NGX_OK:
        return NGX_DECLINED;

    case NGX_DECLINED:
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        return NGX_DECLINED;

    case NGX_AGAIN:
        rc = ngx_http_supportdesk_auth_fetch(r, ctx);

        if (rc == NGX_DONE) {
            /* ngx_http_supportdesk_auth_done() runs the phases again */
            return NGX_DONE;
        }

        ctx->status = rc;
        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_supportdesk_content_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL) {
        /* a subrequest or a location nginx reached without the rewrite */
        ctx = ngx_http_supportdesk_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->status = NGX_HTTP_NOT_FOUND;
    }

    if (ctx->status) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_supportdesk_send_error(r, ctx->status, NULL, NULL,
                                               NULL);
    }

    if (ctx->action->has_body) {
        if (r->headers_in.content_length_n
            > (off_t) ngx_http_supportdesk_body_limit(ctx))
        {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_supportdesk_send_too_large(r, ctx);
        }

        if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
            && !ngx_http_supportdesk_is_json(r))
        {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_supportdesk_send_error(r,
                                        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        NULL, NULL, NULL);
        }

        rc = ngx_http_read_client_request_body(r,
                                          ngx_http_supportdesk_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* 413 and friends: the error filter makes them envelopes */
            return rc;
        }

        /* still reading: nginx's handler is in place until the body is in */
        if (r->read_event_handler != ngx_http_block_reading
#if (NGX_HTTP_V2)
            && r->stream == NULL
#endif
           )
        {
            ctx->body_reader = r->read_event_handler;
            r->read_event_handler = ngx_http_supportdesk_body_timeout_guard;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;
    ngx_http_supportdesk_proceed(r, ctx);

    return NGX_DONE;
}


/*
 * nginx ends a request whose body stalls past client_body_timeout without
 * a word (it terminates on 408); the client gets the envelope instead.
 */

static void
ngx_http_supportdesk_body_timeout_guard(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (!r->connection->read->timedout) {
        ctx->body_reader(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                  "supportdesk: client timed out sending the body");

    r->connection->read->timedout = 0;
    r->read_event_handler = ngx_http_block_reading;
    r->keepalive = 0;

    rc = ngx_http_supportdesk_send_error(r, NGX_HTTP_REQUEST_TIME_OUT, NULL,
                             "the request body did not arrive within "
                             "client_body_timeout", NULL);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_supportdesk_body_handler(ngx_http_request_t *r)
{
    ngx_http_supportdesk_proceed(r,
                    ngx_http_get_module_ctx(r, ngx_http_supportdesk_module));
}


static void
ngx_http_supportdesk_proceed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_str_t   body;

    if (ctx->action->has_body) {
        if (ngx_http_supportdesk_read_body(r, &body) != NGX_OK) {
            ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        /* a chunked body announces no length: nginx checked the larger */
        if (body.len > ngx_http_supportdesk_body_limit(ctx)) {
            ngx_http_supportdesk_finish(r,
                            ngx_http_supportdesk_send_too_large(r, ctx));
            return;
        }

        ctx->body = ngx_http_supportdesk_parse_object(body.data, body.len,
                                                      &ctx->invalid_json,
                                                      NULL);
        if (ctx->body == NULL) {
            ngx_http_supportdesk_finish(r,
                ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                "INVALID_JSON",
                                                ctx->invalid_json, NULL));
            return;
        }
    }

    rc = ctx->action->validate(r, ctx);

    if (rc == NGX_DECLINED) {
        ngx_http_supportdesk_finish(r,
            ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "VALIDATION_ERROR", NULL,
                                            ctx->report));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_supportdesk_finish(r, rc);
        return;
    }

    rc = ctx->action->run(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_supportdesk_finish(r, rc);
    }
}


/*
 * nginx enforces the larger of the two limits for the location (the batch
 * route takes bigger bodies); the route's own is checked here.
 */

static size_t
ngx_http_supportdesk_body_limit(ngx_http_supportdesk_ctx_t *ctx)
{
    return ctx->action->batch_body ? ctx->conf->batch_max_body_size
                                   : ctx->conf->max_body_size;
}


static ngx_int_t
ngx_http_supportdesk_send_too_large(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char  *message;

    message = ngx_pnalloc(r->pool, 64);
    if (message == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(message, "body is over the limit of %uz bytes%Z",
                       ngx_http_supportdesk_body_limit(ctx));

    r->keepalive = 0;

    return ngx_http_supportdesk_send_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           NULL, (char *) message, NULL);
}


void
ngx_http_supportdesk_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        rc = ngx_http_supportdesk_send_error(r, rc, NULL, NULL, NULL);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_supportdesk_call(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_int_t script,
    ngx_http_supportdesk_redis_handler_pt handler)
{
    ctx->op = ngx_http_supportdesk_redis_send(ctx->conf->redis, &ctx->app,
                                              script, ctx->argc, ctx->argv,
                                              ctx->argvlen, handler, r,
                                              r->connection->log);
    if (ctx->op == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: redis unavailable, answering 503");
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_http_supportdesk_watch_client(r);

    return NGX_DONE;
}


/*
 * A client that leaves ends the request, and the op is then abandoned.  Not
 * while a body is still to come (the key lookup runs before it is read):
 * peeking at the socket then would race nginx's own body reading.
 */

void
ngx_http_supportdesk_watch_client(ngx_http_request_t *r)
{
    if (r->read_event_handler != ngx_http_block_reading) {
        return;
    }

    if (r->request_body == NULL
        && (r->headers_in.content_length_n > 0 || r->headers_in.chunked))
    {
        return;
    }

    r->read_event_handler = ngx_http_test_reading;
}


ngx_int_t
ngx_http_supportdesk_redis_failure(ngx_http_request_t *r, ngx_int_t rc,
    redisReply *reply)
{
    ngx_uint_t    i;
    static char  *unavailable[] = { "LOADING", "BUSY", "MASTERDOWN",
                                    "READONLY", "NOAUTH", "WRONGPASS",
                                    "OOM", "CLUSTERDOWN", "TRYAGAIN", NULL };

    if (rc != NGX_OK) {
        return rc;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        for (i = 0; unavailable[i]; i++) {
            if (ngx_strncmp(reply->str, unavailable[i],
                            ngx_strlen(unavailable[i]))
                == 0)
            {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "supportdesk: redis cannot serve: %s",
                              reply->str);
                return NGX_HTTP_SERVICE_UNAVAILABLE;
            }
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: unexpected redis error: %s", reply->str);

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "supportdesk: unexpected redis reply type %d",
                      reply->type);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


ngx_int_t
ngx_http_supportdesk_build_key(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, const char *type, ngx_str_t *suffix,
    const char **arg, size_t *len)
{
    u_char  *p, *start;
    size_t   size;

    /* sd:{<app>}:<type>[:<suffix>]: every key of an app in one slot */
    size = sizeof("sd:{}::") + ctx->app.len + ngx_strlen(type)
           + (suffix ? suffix->len : 0);

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(start, "sd:{", 4);
    p = ngx_cpymem(p, ctx->app.data, ctx->app.len);
    p = ngx_cpymem(p, "}:", 2);
    p = ngx_cpymem(p, type, ngx_strlen(type));

    if (suffix) {
        *p++ = ':';
        p = ngx_cpymem(p, suffix->data, suffix->len);
    }

    *arg = (const char *) start;
    *len = p - start;

    return NGX_OK;
}


ngx_http_supportdesk_report_t *
ngx_http_supportdesk_report(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    if (ctx->report == NULL) {
        ctx->report = ngx_pcalloc(r->pool,
                                  sizeof(ngx_http_supportdesk_report_t));
    }

    return ctx->report;
}


static ngx_int_t
ngx_http_supportdesk_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    /* several buffers, or spilled to a temp file: gather in one piece */
    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            size = b->file_last - b->file_pos;
            n = ngx_read_file(b->file, p, size, b->file_pos);

            if (n != (ssize_t) size) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "supportdesk: reading the body from \"%V\" "
                              "returned %z of %uz bytes",
                              &b->file->name, n, size);
                return NGX_ERROR;
            }

            p += size;

        } else if (b->last > b->pos) {
            /* an empty buffer of a chunked body may have no memory at all */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_supportdesk_is_json(ngx_http_request_t *r)
{
    u_char           *p, *end;
    ngx_table_elt_t  *h;
    static u_char     type[] = "application/json";

    h = r->headers_in.content_type;
    if (h == NULL) {
        return 0;
    }

    p = h->value.data;
    end = p + h->value.len;

    if ((size_t) (end - p) < sizeof(type) - 1
        || ngx_strncasecmp(p, type, sizeof(type) - 1) != 0)
    {
        return 0;
    }

    p += sizeof(type) - 1;

    /* parameters such as charset may follow */
    return p == end || *p == ';' || *p == ' ' || *p == '\t';
}


static ngx_http_supportdesk_ctx_t *
ngx_http_supportdesk_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_supportdesk_cleanup;
    cln->data = ctx;

    ctx->conf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    ngx_http_set_ctx(r, ctx, ngx_http_supportdesk_module);

    return ctx;
}


static void
ngx_http_supportdesk_cleanup(void *data)
{
    ngx_http_supportdesk_ctx_t  *ctx = data;

    /* the request is gone: its reply, when it comes, goes nowhere */
    if (ctx->op) {
        ngx_http_supportdesk_redis_abandon(ctx->op);
        ctx->op = NULL;
    }

    ngx_http_supportdesk_batch_abandon(ctx);

    if (ctx->body) {
        json_decref(ctx->body);
        ctx->body = NULL;
    }
}


static ngx_int_t
ngx_http_supportdesk_header_filter(ngx_http_request_t *r)
{
    u_char                           *p;
    ngx_str_t                         message;
    ngx_http_supportdesk_ctx_t       *ctx;
    ngx_http_supportdesk_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    if (r != r->main
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST
        || !(slcf->enabled || ngx_http_supportdesk_api_path(r)))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx && (ctx->responded || ctx->replacing)) {
        return ngx_http_next_header_filter(r);
    }

    /* nginx answered on its own (a special response): swap the page */
    if (ctx == NULL) {
        ctx = ngx_http_supportdesk_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    message.data = NULL;

    if (r->headers_out.status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        message.data = ngx_pnalloc(r->pool, 64);
        if (message.data == NULL) {
            return NGX_ERROR;
        }

        /* the route's own limit once it is known, else the one nginx
           applied: the location's largest */
        p = ngx_sprintf(message.data, "body is over the limit of %uz bytes%Z",
                        ctx->action
                        ? ngx_http_supportdesk_body_limit(ctx)
                        : ngx_max(slcf->max_body_size,
                                  slcf->batch_max_body_size));
        message.len = p - message.data;
    }

    if (ngx_http_supportdesk_error_body(r, r->headers_out.status, NULL,
                                        (const char *) message.data, NULL,
                                        &ctx->replacement)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->replacing = 1;

    r->headers_out.content_type = ngx_http_supportdesk_content_type;
    r->headers_out.content_type_len = ngx_http_supportdesk_content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ctx->replacement.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_http_clear_etag(r);
    ngx_http_clear_last_modified(r);

    return ngx_http_next_header_filter(r);
}


/*
 * nginx refuses some requests before it looks for a location (a request
 * line with %00, a URI too long): if the raw path is below a supportdesk
 * prefix, the client still gets the envelope.  Only then: a location that
 * was found and is not ours (a proxy_pass under the prefix) keeps its own
 * errors.
 */

static ngx_uint_t
ngx_http_supportdesk_api_path(ngx_http_request_t *r)
{
    size_t                             len;
    ngx_str_t                         *prefix;
    ngx_uint_t                         i;
    ngx_http_core_srv_conf_t          *cscf;
    ngx_http_supportdesk_main_conf_t  *smcf;

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    /* r->unparsed_uri is not set yet when the URI failed to parse */
    if (cscf == NULL || r->loc_conf != cscf->ctx->loc_conf
        || r->uri_start == NULL || r->uri_end == NULL)
    {
        return 0;
    }

    len = r->uri_end - r->uri_start;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
    prefix = smcf->prefixes.elts;

    for (i = 0; i < smcf->prefixes.nelts; i++) {
        if (len >= prefix[i].len
            && ngx_strncmp(r->uri_start, prefix[i].data, prefix[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_supportdesk_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                   *b;
    ngx_uint_t                   last;
    ngx_chain_t                 *cl, out;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL || !ctx->replacing) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    /* nginx's page is consumed unsent; ours goes out in its place */
    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf || b->last_in_chain) {
            last = 1;
        }

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    if (!last || ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = ctx->replacement.data + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_supportdesk_app_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (ctx == NULL || ctx->app.len == 0) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    v->len = ctx->app.len;
    v->data = ctx->app.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    /* not cacheable: limit_req may read it before the key is resolved */
    var = ngx_http_add_variable(cf, &ngx_http_supportdesk_app_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_supportdesk_app_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_postconfiguration(ngx_conf_t *cf)
{
    void                              *cache;
    ngx_str_t                          name;
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);

    if (!smcf->used) {
        return NGX_OK;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_supportdesk_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_supportdesk_body_filter;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_supportdesk_rewrite_handler;

    ngx_str_set(&name, "request_id");
    smcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (smcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "supportdesk_keys");
    smcf->key_cache_zone = ngx_shared_memory_add(cf, &name,
                                                 smcf->key_cache_size,
                                                 &ngx_http_supportdesk_module);
    if (smcf->key_cache_zone == NULL) {
        return NGX_ERROR;
    }

    if (smcf->key_cache_zone->data == NULL) {
        cache = ngx_pcalloc(cf->pool, 2 * sizeof(void *));
        if (cache == NULL) {
            return NGX_ERROR;
        }

        smcf->key_cache_zone->init = ngx_http_supportdesk_auth_init_zone;
        smcf->key_cache_zone->data = cache;
    }

    return NGX_OK;
}


static void *
ngx_http_supportdesk_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_supportdesk_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->redis_confs, cf->pool, 4,
                       sizeof(ngx_http_supportdesk_redis_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&smcf->prefixes, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    smcf->key_cache_size = NGX_CONF_UNSET_SIZE;
    smcf->key_cache_ttl = NGX_CONF_UNSET_MSEC;
    smcf->key_cache_negative_ttl = NGX_CONF_UNSET_MSEC;
    smcf->job_chunk_size = NGX_CONF_UNSET_UINT;
    smcf->request_id_index = NGX_ERROR;

    return smcf;
}


static char *
ngx_http_supportdesk_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_supportdesk_main_conf_t  *smcf = conf;

    ngx_conf_init_size_value(smcf->key_cache_size, 1024 * 1024);
    ngx_conf_init_msec_value(smcf->key_cache_ttl, 10000);
    ngx_conf_init_msec_value(smcf->key_cache_negative_ttl, 2000);
    ngx_conf_init_uint_value(smcf->job_chunk_size, 500);

    return NGX_CONF_OK;
}


static void *
ngx_http_supportdesk_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_supportdesk_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->enabled = 0;
     *     slcf->prefix = { 0, NULL };
     *     slcf->redis_user = { 0, NULL };
     *     slcf->redis_password = { 0, NULL };
     *     slcf->redis = NULL;
     */

    slcf->redis_url = NGX_CONF_UNSET_PTR;
    slcf->redis_db = NGX_CONF_UNSET;
    slcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;
    slcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    slcf->redis_connections = NGX_CONF_UNSET;
    slcf->max_body_size = NGX_CONF_UNSET_SIZE;
    slcf->batch_max_body_size = NGX_CONF_UNSET_SIZE;
    slcf->list_scan_limit = NGX_CONF_UNSET_UINT;

    return slcf;
}


static char *
ngx_http_supportdesk_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_supportdesk_loc_conf_t  *prev = parent;
    ngx_http_supportdesk_loc_conf_t  *conf = child;

    ngx_str_t                   value;
    ngx_http_core_loc_conf_t   *clcf;

    ngx_conf_merge_ptr_value(conf->redis_url, prev->redis_url, NULL);

    /* user and password come as one pair, from one level */
    if (conf->redis_password.data == NULL) {
        conf->redis_user = prev->redis_user;
        conf->redis_password = prev->redis_password;
    }

    ngx_conf_merge_value(conf->redis_db, prev->redis_db, 0);
    ngx_conf_merge_msec_value(conf->redis_connect_timeout,
                              prev->redis_connect_timeout, 1000);
    ngx_conf_merge_msec_value(conf->redis_timeout, prev->redis_timeout, 2000);
    ngx_conf_merge_value(conf->redis_connections, prev->redis_connections, 2);
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->batch_max_body_size,
                              prev->batch_max_body_size, 1024 * 1024);
    ngx_conf_merge_uint_value(conf->list_scan_limit, prev->list_scan_limit,
                              1000);

    if (!conf->enabled) {
        return NGX_CONF_OK;
    }

    if (conf->redis_url == NULL) {
        ngx_str_set(&value, NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS);

        conf->redis_url = ngx_http_supportdesk_parse_redis(cf, &value);
        if (conf->redis_url == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    conf->redis = ngx_http_supportdesk_upstream(cf, conf);
    if (conf->redis == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * nginx checks the body size itself, before the content handler and for
     * chunked bodies too; our error filter turns its 413 into the envelope.
     * The module's own limit replaces client_max_body_size here.
     */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->client_max_body_size = ngx_max(conf->max_body_size,
                                         conf->batch_max_body_size);

    return NGX_CONF_OK;
}


static ngx_http_supportdesk_redis_conf_t *
ngx_http_supportdesk_upstream(ngx_conf_t *cf,
    ngx_http_supportdesk_loc_conf_t *slcf)
{
    ngx_uint_t                            i;
    ngx_addr_t                           *addr;
    ngx_http_supportdesk_main_conf_t     *smcf;
    ngx_http_supportdesk_redis_conf_t   **rcfp, *rcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);
    addr = &slcf->redis_url->addrs[0];

    /* locations with the same settings share one pool per worker */
    rcfp = smcf->redis_confs.elts;

    for (i = 0; i < smcf->redis_confs.nelts; i++) {
        rcf = rcfp[i];

        if (ngx_cmp_sockaddr(rcf->addr->sockaddr, rcf->addr->socklen,
                             addr->sockaddr, addr->socklen, 1)
               == NGX_OK
            && rcf->db == slcf->redis_db
            && rcf->connect_timeout == slcf->redis_connect_timeout
            && rcf->timeout == slcf->redis_timeout
            && rcf->connections == (ngx_uint_t) slcf->redis_connections
            && ngx_http_supportdesk_str_eq(&rcf->user, &slcf->redis_user)
            && ngx_http_supportdesk_str_eq(&rcf->password,
                                           &slcf->redis_password))
        {
            return rcf;
        }
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_supportdesk_redis_conf_t));
    if (rcf == NULL) {
        return NULL;
    }

    rcf->addr = addr;
    rcf->user = slcf->redis_user;
    rcf->password = slcf->redis_password;
    rcf->db = slcf->redis_db;
    rcf->connect_timeout = slcf->redis_connect_timeout;
    rcf->timeout = slcf->redis_timeout;
    rcf->connections = slcf->redis_connections;

    rcfp = ngx_array_push(&smcf->redis_confs);
    if (rcfp == NULL) {
        return NULL;
    }

    *rcfp = rcf;

    return rcf;
}


/* unset strings have no data: never hand NULL to strncmp */

static ngx_uint_t
ngx_http_supportdesk_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_strncmp(a->data, b->data, a->len) == 0);
}


static char *
ngx_http_supportdesk(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t                         *prefix;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_supportdesk_main_conf_t  *smcf;

    if (slcf->enabled) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

#if (NGX_PCRE)
    if (clcf->regex) {
        return "must be used in a prefix location, not a regex location";
    }
#endif

    if (clcf->named) {
        return "must be used in a prefix location, not a named location";
    }

    slcf->enabled = 1;
    slcf->prefix = clcf->name;
    clcf->handler = ngx_http_supportdesk_content_handler;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);
    smcf->used = 1;

    prefix = ngx_array_push(&smcf->prefixes);
    if (prefix == NULL) {
        return NGX_CONF_ERROR;
    }

    *prefix = clcf->name;

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->redis_url != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    slcf->redis_url = ngx_http_supportdesk_parse_redis(cf, &value[1]);
    if (slcf->redis_url == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_url_t *
ngx_http_supportdesk_parse_redis(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_url_t  *u;

    u = ngx_pcalloc(cf->pool, sizeof(ngx_url_t));
    if (u == NULL) {
        return NULL;
    }

    u->url = *value;
    u->default_port = 6379;

    /* resolved here, at configuration time: workers never resolve names */
    if (value->len == 0 || ngx_parse_url(cf->pool, u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"supportdesk_redis\" address \"%V\"%s%s",
                           value, u->err ? ": " : "",
                           u->err ? u->err : "");
        return NULL;
    }

    if (u->naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"supportdesk_redis\" address \"%V\" resolves "
                           "to no address", value);
        return NULL;
    }

    return u;
}


static char *
ngx_http_supportdesk_redis_password(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->redis_password.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (value[1].len == 0) {
            return "has an empty user name";
        }

        slcf->redis_user = value[1];
        slcf->redis_password = value[2];

    } else {
        slcf->redis_password = value[1];
    }

    if (slcf->redis_password.len == 0) {
        return "has an empty password";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_positive_msec(ngx_conf_t *cf, void *post,
    void *data)
{
    ngx_msec_t  *msp = data;

    if (*msp == 0) {
        return "must be greater than zero";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_positive_size(ngx_conf_t *cf, void *post,
    void *data)
{
    size_t  *sp = data;

    if (*sp == 0) {
        return "must be greater than zero";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_connections(ngx_conf_t *cf, void *post,
    void *data)
{
    ngx_int_t  *np = data;

    if (*np < 1 || *np > NGX_HTTP_SUPPORTDESK_MAX_CONNECTIONS) {
        return "must be between 1 and 64";
    }

    return NGX_CONF_OK;
}


/* a returned message, unlike ngx_conf_check_num_bounds()'s, names the
   directive */

static char *
ngx_http_supportdesk_check_scan_limit(ngx_conf_t *cf, void *post, void *data)
{
    ngx_int_t  *np = data;

    if (*np < 1 || *np > 100000) {
        return "must be between 1 and 100000";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_chunk_size(ngx_conf_t *cf, void *post, void *data)
{
    ngx_int_t  *np = data;

    if (*np < 1 || *np > 10000) {
        return "must be between 1 and 10000";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_db(ngx_conf_t *cf, void *post, void *data)
{
    ngx_int_t  *np = data;

    if (*np < 0) {
        return "must not be negative";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_check_zone_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < 8 * ngx_pagesize) {
        return "is too small, it must be at least 32k";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_supportdesk_init_module(ngx_cycle_t *cycle)
{
    return ngx_http_supportdesk_redis_init_scripts(cycle->log);
}


static ngx_int_t
ngx_http_supportdesk_init_process(ngx_cycle_t *cycle)
{
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_supportdesk_module);
    if (smcf == NULL || !smcf->used) {
        return NGX_OK;
    }

    if (ngx_http_supportdesk_redis_init_process(cycle, &smcf->redis_confs)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_supportdesk_jobs_init_process(cycle);
}


static void
ngx_http_supportdesk_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_supportdesk_module);
    if (smcf == NULL || !smcf->used) {
        return;
    }

    ngx_http_supportdesk_jobs_exit_process(cycle);
    ngx_http_supportdesk_redis_exit_process(cycle, &smcf->redis_confs);
}
