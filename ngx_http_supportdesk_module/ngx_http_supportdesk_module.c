
/*
 * Module glue: the directives and their configuration, the
 * $supportdesk_app variable, and the hooks that start and stop each
 * worker's Redis pool and job runner.  A request's way through the module
 * starts in ngx_http_supportdesk_handler.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_handler.h"
#include "ngx_http_supportdesk_filter.h"
#include "ngx_http_supportdesk_auth.h"
#include "ngx_http_supportdesk_runner.h"
#include "ngx_http_supportdesk_script.h"


#define NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS  "127.0.0.1:6379"


/*
 * A number a directive takes, with its bounds: unlike nginx's own
 * ngx_conf_check_num_bounds(), a refusal names the directive.
 */
typedef struct {
    ngx_conf_post_handler_pt             post_handler;
    ngx_uint_t                           low;
    ngx_uint_t                           high;
    const char                          *refusal;
} ngx_http_supportdesk_bounds_t;


static ngx_int_t ngx_http_supportdesk_app_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_supportdesk_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_supportdesk_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_supportdesk_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_supportdesk_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_supportdesk(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_supportdesk_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_url_t *ngx_http_supportdesk_parse_redis(ngx_conf_t *cf,
    ngx_str_t *value, const char *directive, ngx_uint_t names);
static ngx_int_t ngx_http_supportdesk_resolve_now(ngx_conf_t *cf,
    ngx_url_t *u, const char *directive);
static ngx_uint_t ngx_http_supportdesk_redis_is_name(ngx_url_t *u);
static ngx_int_t ngx_http_supportdesk_redis_host(ngx_conf_t *cf,
    ngx_http_supportdesk_loc_conf_t *conf,
    ngx_http_supportdesk_redis_conf_t *redis);
static char *ngx_http_supportdesk_redis_cluster(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_addrs(ngx_conf_t *cf,
    ngx_str_t *values, ngx_uint_t n, const char *directive,
    ngx_array_t **addrs);
static char *ngx_http_supportdesk_redis_wait(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_password(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_check_bounds(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_supportdesk_text(ngx_conf_t *cf, ngx_uint_t n,
    ngx_str_t *text);
static char *ngx_http_supportdesk_check_zone_size(ngx_conf_t *cf,
    void *post, void *data);

static ngx_int_t ngx_http_supportdesk_init_module(ngx_cycle_t *cycle);
static ngx_uint_t ngx_http_supportdesk_serving_process(void);
static ngx_int_t ngx_http_supportdesk_init_process(ngx_cycle_t *cycle);
static void ngx_http_supportdesk_exit_process(ngx_cycle_t *cycle);


/* msec and size values are machine words too: one check serves all */
static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_positive = {
    ngx_http_supportdesk_check_bounds, 1, NGX_MAX_INT_T_VALUE,
    "must be greater than zero"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_db_bounds = {
    ngx_http_supportdesk_check_bounds, 0, NGX_MAX_INT_T_VALUE,
    "must not be negative"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_connections_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 64, "must be between 1 and 64"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_pending_bounds = {
    ngx_http_supportdesk_check_bounds, 1, 1000000,
    "must be between 1 and 1000000"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_output_bounds = {
    ngx_http_supportdesk_check_bounds, 64 * 1024, 1024 * 1024 * 1024,
    "must be between 64k and 1024m"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_reply_size_bounds
    = {
    ngx_http_supportdesk_check_bounds, 64 * 1024, 1024 * 1024 * 1024,
    "must be between 64k and 1024m"
};

static ngx_http_supportdesk_bounds_t
    ngx_http_supportdesk_reply_elements_bounds = {
    ngx_http_supportdesk_check_bounds, 16, 16 * 1024 * 1024,
    "must be between 16 and 16777216"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_scan_limit_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 100000,
    "must be between 1 and 100000"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_lookup_rate_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 1000000,
    "must be between 1 and 1000000"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_chunk_size_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 10000,
    "must be between 1 and 10000"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_verify_depth_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 100, "must be between 1 and 100"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_job_ttl_bounds = {
    ngx_http_supportdesk_check_bounds, 1000, 365 * 24 * 60 * 60 * 1000LL,
    "must be between 1s and 365d"
};

/* Redis takes these in seconds */
static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_seconds_bounds = {
    ngx_http_supportdesk_check_bounds, 1000, NGX_MAX_INT32_VALUE,
    "must be at least 1s"
};

static ngx_http_supportdesk_bounds_t
    ngx_http_supportdesk_events_count_bounds = {
    ngx_http_supportdesk_check_bounds, 1, 100000000,
    "must be between 1 and 100000000"
};

static ngx_conf_post_handler_pt  ngx_http_supportdesk_zone_size_p =
    ngx_http_supportdesk_check_zone_size;


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

    { ngx_string("supportdesk_redis_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_supportdesk_redis_cluster,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_supportdesk_redis_sentinel,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_supportdesk_redis_wait,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_ssl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.enable),
      NULL },

    { ngx_string("supportdesk_redis_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.verify),
      NULL },

    { ngx_string("supportdesk_redis_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.verify_depth),
      &ngx_http_supportdesk_verify_depth_bounds },

    { ngx_string("supportdesk_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.name),
      NULL },

    { ngx_string("supportdesk_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.trusted_certificate),
      NULL },

    { ngx_string("supportdesk_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.certificate),
      NULL },

    { ngx_string("supportdesk_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.tls.certificate_key),
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
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.db),
      &ngx_http_supportdesk_db_bounds },

    { ngx_string("supportdesk_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t,
               redis_settings.connect_timeout),
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.timeout),
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_redis_connections"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t,
               redis_settings.connections),
      &ngx_http_supportdesk_connections_bounds },

    { ngx_string("supportdesk_redis_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.max_pending),
      &ngx_http_supportdesk_pending_bounds },

    { ngx_string("supportdesk_redis_max_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, redis_settings.max_output),
      &ngx_http_supportdesk_output_bounds },

    { ngx_string("supportdesk_redis_max_reply_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t,
               redis_settings.max_reply_size),
      &ngx_http_supportdesk_reply_size_bounds },

    { ngx_string("supportdesk_redis_max_reply_elements"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t,
               redis_settings.max_reply_elements),
      &ngx_http_supportdesk_reply_elements_bounds },

    { ngx_string("supportdesk_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, max_body_size),
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_batch_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, batch_max_body_size),
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_list_scan_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, list_scan_limit),
      &ngx_http_supportdesk_scan_limit_bounds },

    { ngx_string("supportdesk_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, idempotency_ttl),
      &ngx_http_supportdesk_seconds_bounds },

    { ngx_string("supportdesk_ignore_client_abort"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_loc_conf_t, ignore_client_abort),
      NULL },

    { ngx_string("supportdesk_events_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, events_max_age),
      &ngx_http_supportdesk_seconds_bounds },

    { ngx_string("supportdesk_events_max_count"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, events_max_count),
      &ngx_http_supportdesk_events_count_bounds },

    { ngx_string("supportdesk_job_chunk_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, job_chunk_size),
      &ngx_http_supportdesk_chunk_size_bounds },

    { ngx_string("supportdesk_job_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, job_ttl),
      &ngx_http_supportdesk_job_ttl_bounds },

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
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_key_cache_negative_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, key_cache_negative_ttl),
      &ngx_http_supportdesk_positive },

    { ngx_string("supportdesk_key_lookup_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_main_conf_t, key_lookup_rate),
      &ngx_http_supportdesk_lookup_rate_bounds },

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

    ngx_http_supportdesk_filter_init();

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_supportdesk_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_supportdesk_access_handler;

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
    smcf->key_lookup_rate = NGX_CONF_UNSET_UINT;
    smcf->job_chunk_size = NGX_CONF_UNSET_UINT;
    smcf->job_ttl = NGX_CONF_UNSET_MSEC;
    smcf->events_max_age = NGX_CONF_UNSET_MSEC;
    smcf->events_max_count = NGX_CONF_UNSET_UINT;
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
    ngx_conf_init_uint_value(smcf->key_lookup_rate, 100);
    ngx_conf_init_uint_value(smcf->job_chunk_size, 500);
    ngx_conf_init_msec_value(smcf->job_ttl, 24 * 60 * 60 * 1000);
    ngx_conf_init_msec_value(smcf->events_max_age, 24 * 60 * 60 * 1000);
    ngx_conf_init_uint_value(smcf->events_max_count, 100000);

    if (ngx_http_supportdesk_text(cf, smcf->events_max_age / 1000,
                                  &smcf->events_max_age_text)
        != NGX_OK
        || ngx_http_supportdesk_text(cf, smcf->events_max_count,
                                     &smcf->events_max_count_text)
           != NGX_OK
        || ngx_http_supportdesk_text(cf, smcf->job_ttl / 1000,
                                     &smcf->job_ttl_text)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

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
     *     slcf->redis_settings.user = { 0, NULL };
     *     slcf->redis_settings.password = { 0, NULL };
     *     slcf->redis = NULL;
     */

    slcf->redis_url = NGX_CONF_UNSET_PTR;
    slcf->redis_cluster = NGX_CONF_UNSET_PTR;
    slcf->redis_sentinel = NGX_CONF_UNSET_PTR;
    slcf->redis_settings.db = NGX_CONF_UNSET;
    slcf->redis_settings.connect_timeout = NGX_CONF_UNSET_MSEC;
    slcf->redis_settings.timeout = NGX_CONF_UNSET_MSEC;
    slcf->redis_settings.connections = NGX_CONF_UNSET_UINT;
    slcf->redis_settings.max_pending = NGX_CONF_UNSET_UINT;
    slcf->redis_settings.max_output = NGX_CONF_UNSET_SIZE;
    slcf->redis_settings.max_reply_size = NGX_CONF_UNSET_SIZE;
    slcf->redis_settings.max_reply_elements = NGX_CONF_UNSET_UINT;
    slcf->redis_settings.wait_replicas = NGX_CONF_UNSET_UINT;
    slcf->redis_settings.tls.enable = NGX_CONF_UNSET;
    slcf->redis_settings.tls.verify = NGX_CONF_UNSET;
    slcf->redis_settings.tls.verify_depth = NGX_CONF_UNSET_UINT;
    slcf->redis_settings.wait_timeout = NGX_CONF_UNSET_MSEC;
    slcf->max_body_size = NGX_CONF_UNSET_SIZE;
    slcf->batch_max_body_size = NGX_CONF_UNSET_SIZE;
    slcf->list_scan_limit = NGX_CONF_UNSET_UINT;
    slcf->idempotency_ttl = NGX_CONF_UNSET_MSEC;
    slcf->ignore_client_abort = NGX_CONF_UNSET;

    return slcf;
}


static char *
ngx_http_supportdesk_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_supportdesk_loc_conf_t  *prev = parent;
    ngx_http_supportdesk_loc_conf_t  *conf = child;

    ngx_str_t                           value;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_supportdesk_main_conf_t   *smcf;
    ngx_http_supportdesk_redis_conf_t  *redis;

    /* one server, a cluster or sentinels: the innermost level that names
       one of them */
    if (conf->redis_url == NGX_CONF_UNSET_PTR
        && conf->redis_cluster == NGX_CONF_UNSET_PTR
        && conf->redis_sentinel == NGX_CONF_UNSET_PTR)
    {
        conf->redis_url = prev->redis_url;
        conf->redis_cluster = prev->redis_cluster;
        conf->redis_sentinel = prev->redis_sentinel;
        conf->redis_sentinel_master = prev->redis_sentinel_master;
    }

    if (conf->redis_url == NGX_CONF_UNSET_PTR) {
        conf->redis_url = NULL;
    }

    if (conf->redis_cluster == NGX_CONF_UNSET_PTR) {
        conf->redis_cluster = NULL;
    }

    if (conf->redis_sentinel == NGX_CONF_UNSET_PTR) {
        conf->redis_sentinel = NULL;
    }

    /* user and password come as one pair, from one level */
    redis = &conf->redis_settings;

    if (redis->password.data == NULL) {
        redis->user = prev->redis_settings.user;
        redis->password = prev->redis_settings.password;
    }

    ngx_conf_merge_value(redis->db, prev->redis_settings.db, 0);
    ngx_conf_merge_msec_value(redis->connect_timeout,
                              prev->redis_settings.connect_timeout, 1000);
    ngx_conf_merge_msec_value(redis->timeout, prev->redis_settings.timeout,
                              2000);
    ngx_conf_merge_uint_value(redis->connections,
                              prev->redis_settings.connections, 2);
    /* ten full batches, or a few hundred ms of a busy Redis */
    ngx_conf_merge_uint_value(redis->max_pending,
                              prev->redis_settings.max_pending, 10000);
    ngx_conf_merge_size_value(redis->max_output,
                              prev->redis_settings.max_output,
                              8 * 1024 * 1024);
    /* the largest reply the API asks for is a notes page, about 6.5 MiB */
    ngx_conf_merge_size_value(redis->max_reply_size,
                              prev->redis_settings.max_reply_size,
                              16 * 1024 * 1024);
    ngx_conf_merge_uint_value(redis->max_reply_elements,
                              prev->redis_settings.max_reply_elements,
                              65536);

    ngx_conf_merge_value(redis->tls.enable, prev->redis_settings.tls.enable,
                         0);
    ngx_conf_merge_value(redis->tls.verify, prev->redis_settings.tls.verify,
                         0);
    ngx_conf_merge_uint_value(redis->tls.verify_depth,
                              prev->redis_settings.tls.verify_depth, 1);
    ngx_conf_merge_str_value(redis->tls.name, prev->redis_settings.tls.name,
                             "");
    ngx_conf_merge_str_value(redis->tls.trusted_certificate,
                             prev->redis_settings.tls.trusted_certificate, "");
    ngx_conf_merge_str_value(redis->tls.certificate,
                             prev->redis_settings.tls.certificate, "");
    ngx_conf_merge_str_value(redis->tls.certificate_key,
                             prev->redis_settings.tls.certificate_key, "");

    if (redis->wait_replicas == NGX_CONF_UNSET_UINT) {
        redis->wait_replicas = prev->redis_settings.wait_replicas;
        redis->wait_timeout = prev->redis_settings.wait_timeout;
    }

    if (redis->wait_replicas == NGX_CONF_UNSET_UINT) {
        redis->wait_replicas = 0;
        redis->wait_timeout = 0;
    }

    /* WAIT blocks on Redis: its reply must come within the timeout */
    if (redis->wait_replicas && redis->wait_timeout >= redis->timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"supportdesk_redis_wait\" timeout %Mms must be "
                           "shorter than \"supportdesk_redis_timeout\" %Mms",
                           redis->wait_timeout, redis->timeout);
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->batch_max_body_size,
                              prev->batch_max_body_size, 1024 * 1024);
    ngx_conf_merge_uint_value(conf->list_scan_limit, prev->list_scan_limit,
                              1000);
    ngx_conf_merge_value(conf->ignore_client_abort, prev->ignore_client_abort,
                         0);
    ngx_conf_merge_msec_value(conf->idempotency_ttl, prev->idempotency_ttl,
                              24 * 60 * 60 * 1000);

    if (ngx_http_supportdesk_text(cf, conf->idempotency_ttl / 1000,
                                  &conf->idempotency_ttl_text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!conf->enabled) {
        return NGX_CONF_OK;
    }

    redis->seeds = NULL;
    redis->sentinels = NULL;
    ngx_str_null(&redis->sentinel_master);

    if (conf->redis_cluster != NULL) {
        redis->seeds = conf->redis_cluster;
        redis->addr = conf->redis_cluster->elts;

    } else if (conf->redis_sentinel != NULL) {
        redis->sentinels = conf->redis_sentinel;
        redis->sentinel_master = conf->redis_sentinel_master;
        /* for the logs until a sentinel names the master */
        redis->addr = conf->redis_sentinel->elts;

    } else {
        if (conf->redis_url == NULL) {
            ngx_str_set(&value, NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS);

            conf->redis_url = ngx_http_supportdesk_parse_redis(cf, &value,
                                                            "supportdesk_redis",
                                                            0);
            if (conf->redis_url == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        if (ngx_http_supportdesk_redis_host(cf, conf, redis) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    /* locations with the same settings share one pool per worker */
    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);

    conf->redis = ngx_http_supportdesk_redis_conf_add(cf, &smcf->redis_confs,
                                                      redis);
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

    /*
     * A body up to the limit stays in memory: nginx would spill one over
     * client_body_buffer_size to a temp file, and reading it back would
     * block the worker.  nginx sizes the buffer by Content-Length, so only
     * a chunked body takes the whole of it.
     */
    if (clcf->client_body_buffer_size < (size_t) clcf->client_max_body_size) {
        clcf->client_body_buffer_size = clcf->client_max_body_size;
    }

    /* "off" (nginx defines the names in ngx_http_core_module.c only) */
    clcf->client_body_in_file_only = 0;

    return NGX_CONF_OK;
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

    if (slcf->redis_cluster != NGX_CONF_UNSET_PTR
        || slcf->redis_sentinel != NGX_CONF_UNSET_PTR)
    {
        return "cannot be combined with \"supportdesk_redis_cluster\" or "
               "\"supportdesk_redis_sentinel\" at the same level";
    }

    value = cf->args->elts;

    /* a name waits for the location's resolver, known at merge */
    slcf->redis_url = ngx_http_supportdesk_parse_redis(cf, &value[1],
                                                        "supportdesk_redis",
                                                        1);
    if (slcf->redis_url == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * supportdesk_redis_cluster host:port ...: seed nodes, each resolved here
 * to every address it has (the map names the rest of the cluster).
 */

static char *
ngx_http_supportdesk_redis_cluster(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->redis_cluster != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (slcf->redis_url != NGX_CONF_UNSET_PTR
        || slcf->redis_sentinel != NGX_CONF_UNSET_PTR)
    {
        return "cannot be combined with \"supportdesk_redis\" or "
               "\"supportdesk_redis_sentinel\" at the same level";
    }

    value = cf->args->elts;

    return ngx_http_supportdesk_redis_addrs(cf, &value[1],
                                            cf->args->nelts - 1,
                                            "supportdesk_redis_cluster",
                                            &slcf->redis_cluster);
}


/*
 * supportdesk_redis_sentinel <master-name> host:port ...: the sentinels
 * that know where the master is.
 */

static char *
ngx_http_supportdesk_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->redis_sentinel != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (slcf->redis_url != NGX_CONF_UNSET_PTR
        || slcf->redis_cluster != NGX_CONF_UNSET_PTR)
    {
        return "cannot be combined with \"supportdesk_redis\" or "
               "\"supportdesk_redis_cluster\" at the same level";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || ngx_strlchr(value[1].data,
                                         value[1].data + value[1].len, ' ')
                             != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"supportdesk_redis_sentinel\" master "
                           "name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    slcf->redis_sentinel_master = value[1];

    return ngx_http_supportdesk_redis_addrs(cf, &value[2],
                                            cf->args->nelts - 2,
                                            "supportdesk_redis_sentinel",
                                            &slcf->redis_sentinel);
}


/* TCP addresses, each resolved here to every address it has */

static char *
ngx_http_supportdesk_redis_addrs(ngx_conf_t *cf, ngx_str_t *values,
    ngx_uint_t n, const char *directive, ngx_array_t **addrs)
{
    ngx_uint_t   i, j;
    ngx_url_t   *u;
    ngx_addr_t  *a;

    *addrs = ngx_array_create(cf->pool, n, sizeof(ngx_addr_t));
    if (*addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        u = ngx_http_supportdesk_parse_redis(cf, &values[i], directive, 0);
        if (u == NULL) {
            return NGX_CONF_ERROR;
        }

        if (u->family == AF_UNIX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\" address \"%V\": only TCP addresses "
                               "here", directive, &values[i]);
            return NGX_CONF_ERROR;
        }

        for (j = 0; j < u->naddrs; j++) {
            a = ngx_array_push(*addrs);
            if (a == NULL) {
                return NGX_CONF_ERROR;
            }

            *a = u->addrs[j];
        }
    }

    return NGX_CONF_OK;
}


/*
 * A Redis address, resolved here, at configuration time.  With names set,
 * a host name is left unresolved (naddrs 0): the merge knows whether the
 * location has a resolver for the workers to use, or resolves it here.
 */

static ngx_url_t *
ngx_http_supportdesk_parse_redis(ngx_conf_t *cf, ngx_str_t *value,
    const char *directive, ngx_uint_t names)
{
    ngx_url_t  *u;

    u = ngx_pcalloc(cf->pool, sizeof(ngx_url_t));
    if (u == NULL) {
        return NULL;
    }

    u->url = *value;
    u->default_port = 6379;
    u->no_resolve = 1;

    if (value->len == 0 || ngx_parse_url(cf->pool, u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%s\" address \"%V\"%s%s",
                           directive, value, u->err != NULL ? ": " : "",
                           u->err != NULL ? u->err : "");
        return NULL;
    }

    if (u->port == 0) {
        u->port = u->default_port;
    }

    if (u->naddrs == 0 && names && ngx_http_supportdesk_redis_is_name(u)) {
        return u;
    }

    if (u->naddrs == 0
        && ngx_http_supportdesk_resolve_now(cf, u, directive) != NGX_OK)
    {
        return NULL;
    }

    return u;
}


/*
 * One server.  A host name, where the location has a resolver, is resolved
 * by the workers, and again later: the name may move (a managed Redis's
 * failover).  Without a resolver it is resolved here, once.
 */

static ngx_int_t
ngx_http_supportdesk_redis_host(ngx_conf_t *cf,
    ngx_http_supportdesk_loc_conf_t *conf,
    ngx_http_supportdesk_redis_conf_t *redis)
{
    ngx_url_t                 *u;
    ngx_addr_t                *unresolved;
    ngx_http_core_loc_conf_t  *clcf;

    u = conf->redis_url;
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    ngx_str_null(&redis->host);
    redis->port = 0;
    redis->resolver = NULL;
    redis->resolver_timeout = 0;

    if (ngx_http_supportdesk_redis_is_name(u)
        && clcf->resolver != NULL
        && clcf->resolver->connections.nelts > 0)
    {
        /* names the server in the logs until it is resolved */
        unresolved = ngx_pcalloc(cf->pool, sizeof(ngx_addr_t));
        if (unresolved == NULL) {
            return NGX_ERROR;
        }

        unresolved->name = u->url;

        redis->addr = unresolved;
        redis->host = u->host;
        redis->port = u->port;
        redis->resolver = clcf->resolver;
        redis->resolver_timeout = clcf->resolver_timeout;

        return NGX_OK;
    }

    if (u->naddrs == 0
        && ngx_http_supportdesk_resolve_now(cf, u, "supportdesk_redis")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    redis->addr = &u->addrs[0];

    return NGX_OK;
}


/* resolved at configuration time, blocking (nginx -t says what failed) */

static ngx_int_t
ngx_http_supportdesk_resolve_now(ngx_conf_t *cf, ngx_url_t *u,
    const char *directive)
{
    if (ngx_inet_resolve_host(cf->pool, u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%s\" address \"%V\"%s%s",
                           directive, &u->url, u->err != NULL ? ": " : "",
                           u->err != NULL ? u->err : "");
        return NGX_ERROR;
    }

    if (u->naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" address \"%V\" resolves to no address",
                           directive, &u->url);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a host name, not an address */

static ngx_uint_t
ngx_http_supportdesk_redis_is_name(ngx_url_t *u)
{
    if (u->family == AF_UNIX || u->host.len == 0 || u->host.data[0] == '[') {
        return 0;
    }

    return ngx_inet_addr(u->host.data, u->host.len) == INADDR_NONE;
}


/*
 * supportdesk_redis_wait <replicas> [<timeout>] | off: a write is answered
 * once that many replicas have it (WAIT, pipelined behind it), or 503.
 */

static char *
ngx_http_supportdesk_redis_wait(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_msec_t   t;

    if (slcf->redis_settings.wait_replicas != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        slcf->redis_settings.wait_replicas = 0;
        slcf->redis_settings.wait_timeout = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"supportdesk_redis_wait\" replicas \"%V\" must "
                           "be \"off\" or 1-100", &value[1]);
        return NGX_CONF_ERROR;
    }

    t = 100;

    if (cf->args->nelts == 3) {
        t = ngx_parse_time(&value[2], 0);
        if (t == (ngx_msec_t) NGX_ERROR || t < 1 || t > 60000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"supportdesk_redis_wait\" timeout \"%V\" "
                               "must be from 1ms to 60s", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    slcf->redis_settings.wait_replicas = n;
    slcf->redis_settings.wait_timeout = t;

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_redis_password(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->redis_settings.password.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (value[1].len == 0) {
            return "has an empty user name";
        }

        slcf->redis_settings.user = value[1];
        slcf->redis_settings.password = value[2];

    } else {
        slcf->redis_settings.password = value[1];
    }

    if (slcf->redis_settings.password.len == 0) {
        return "has an empty password";
    }

    return NGX_CONF_OK;
}


/* a number the scripts take, formatted once here, not per request */

static ngx_int_t
ngx_http_supportdesk_text(ngx_conf_t *cf, ngx_uint_t n, ngx_str_t *text)
{
    text->data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    text->len = ngx_sprintf(text->data, "%ui", n) - text->data;

    return NGX_OK;
}


static char *
ngx_http_supportdesk_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t                     *np = data;
    ngx_http_supportdesk_bounds_t  *bounds = post;

    /* a negative ngx_int_t reads as a huge ngx_uint_t: out of bounds */
    if (*np < bounds->low || *np > bounds->high) {
        return (char *) bounds->refusal;
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
    return ngx_http_supportdesk_script_init(cycle);
}


/* a worker, or the one process of "master_process off" */

static ngx_uint_t
ngx_http_supportdesk_serving_process(void)
{
    return ngx_process == NGX_PROCESS_WORKER
           || ngx_process == NGX_PROCESS_SINGLE;
}


static ngx_int_t
ngx_http_supportdesk_init_process(ngx_cycle_t *cycle)
{
    ngx_http_supportdesk_main_conf_t  *smcf;

    /*
     * Only the processes that serve requests talk to Redis.  The cache
     * manager and loader (NGX_PROCESS_HELPER) run this hook too: they would
     * hold connections they never use, and a job claimed by the loader
     * stalls when it exits, lease and all.
     */
    if (!ngx_http_supportdesk_serving_process()) {
        return NGX_OK;
    }

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

    return ngx_http_supportdesk_runner_init_process(cycle);
}


static void
ngx_http_supportdesk_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_supportdesk_main_conf_t  *smcf;

    if (!ngx_http_supportdesk_serving_process()) {
        return;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_supportdesk_module);
    if (smcf == NULL || !smcf->used) {
        return;
    }

    ngx_http_supportdesk_runner_exit_process(cycle);
    ngx_http_supportdesk_redis_exit_process(cycle, &smcf->redis_confs);
    ngx_http_supportdesk_auth_sha256_free();
}
