
/*
 * Module glue: the API's directives and their configuration, and the hooks
 * that start and stop each worker's Redis pool and job runner.  The
 * supportdesk_redis* directives are a module of their own
 * (ngx_http_supportdesk_redis_conf.c), the variables are in
 * ngx_http_supportdesk_variables.c.  A request's way through the module
 * starts in ngx_http_supportdesk_handler.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_conf.h"
#include "ngx_http_supportdesk_redis_conf.h"
#include "ngx_http_supportdesk_handler.h"
#include "ngx_http_supportdesk_filter.h"
#include "ngx_http_supportdesk_auth.h"
#include "ngx_http_supportdesk_runner.h"
#include "ngx_http_supportdesk_script.h"
#include "ngx_http_supportdesk_router.h"
#include "ngx_http_supportdesk_metrics.h"
#include "ngx_http_supportdesk_variables.h"


/* an API location: its configuration, its Redis settings', its core's */
typedef struct {
    ngx_http_supportdesk_loc_conf_t        *slcf;
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf;
    ngx_http_core_loc_conf_t               *clcf;
} ngx_http_supportdesk_location_t;


static ngx_int_t ngx_http_supportdesk_redis_postconfiguration(ngx_conf_t *cf,
    ngx_http_supportdesk_main_conf_t *smcf);
static ngx_int_t ngx_http_supportdesk_metrics_postconfiguration(
    ngx_conf_t *cf, ngx_http_supportdesk_main_conf_t *smcf);
static ngx_int_t ngx_http_supportdesk_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_supportdesk_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_supportdesk_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_supportdesk_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_supportdesk(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_supportdesk_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_supportdesk_check_zone_size(ngx_conf_t *cf,
    void *post, void *data);

static ngx_int_t ngx_http_supportdesk_init_module(ngx_cycle_t *cycle);
static ngx_uint_t ngx_http_supportdesk_serving_process(void);
static ngx_int_t ngx_http_supportdesk_init_process(ngx_cycle_t *cycle);
static void ngx_http_supportdesk_exit_process(ngx_cycle_t *cycle);


static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_positive = {
    ngx_http_supportdesk_check_bounds, 1, NGX_MAX_INT_T_VALUE,
    "must be greater than zero"
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

    { ngx_string("supportdesk_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_supportdesk_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

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


static ngx_int_t
ngx_http_supportdesk_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_supportdesk_variables_add(cf);
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

    if (smcf->metrics
        && ngx_http_supportdesk_metrics_postconfiguration(cf, smcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!smcf->used) {
        return NGX_OK;
    }

    if (ngx_http_supportdesk_redis_postconfiguration(cf, smcf) != NGX_OK) {
        return NGX_ERROR;
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


/* each API location's Redis: locations with the same settings share one
   pool per worker */

static ngx_int_t
ngx_http_supportdesk_redis_postconfiguration(ngx_conf_t *cf,
    ngx_http_supportdesk_main_conf_t *smcf)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_location_t    *location;
    ngx_http_supportdesk_redis_conf_t  *redis;

    location = smcf->locations.elts;

    for (i = 0; i < smcf->locations.nelts; i++) {
        redis = ngx_http_supportdesk_redis_location(cf, location[i].rlcf,
                                                    location[i].clcf);
        if (redis == NULL) {
            return NGX_ERROR;
        }

        location[i].slcf->redis = ngx_http_supportdesk_redis_conf_add(cf,
                                                   &smcf->redis_confs, redis);
        if (location[i].slcf->redis == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the zone, the route templates, the log phase handler that counts */

static ngx_int_t
ngx_http_supportdesk_metrics_postconfiguration(ngx_conf_t *cf,
    ngx_http_supportdesk_main_conf_t *smcf)
{
    ngx_str_t                  *name;
    ngx_uint_t                  n;
    ngx_str_t                   names[NGX_HTTP_SUPPORTDESK_METRICS_ROUTES];
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    smcf->metrics_zone = ngx_http_supportdesk_metrics_zone(cf,
                                                 &ngx_http_supportdesk_module);
    if (smcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    for (n = 0; n < NGX_HTTP_SUPPORTDESK_METRICS_ROUTES; n++) {
        name = ngx_http_supportdesk_route_name(n + 1);
        if (name == NULL) {
            break;
        }

        names[n] = *name;
    }

    if (ngx_http_supportdesk_metrics_routes(cf, names, n) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_supportdesk_log_handler;

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

    if (ngx_array_init(&smcf->locations, cf->pool, 4,
                       sizeof(ngx_http_supportdesk_location_t))
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

    if (ngx_http_supportdesk_conf_text(cf, smcf->events_max_age / 1000,
                                       &smcf->events_max_age_text)
        != NGX_OK
        || ngx_http_supportdesk_conf_text(cf, smcf->events_max_count,
                                          &smcf->events_max_count_text)
           != NGX_OK
        || ngx_http_supportdesk_conf_text(cf, smcf->job_ttl / 1000,
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
     *     slcf->redis = NULL;
     */

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

    ngx_http_core_loc_conf_t              *clcf;
    ngx_http_supportdesk_location_t       *location;
    ngx_http_supportdesk_main_conf_t      *smcf;

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

    if (ngx_http_supportdesk_conf_text(cf, conf->idempotency_ttl / 1000,
                                       &conf->idempotency_ttl_text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!conf->enabled) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* its Redis settings may be merged after this (the other module's) */
    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);

    location = ngx_array_push(&smcf->locations);
    if (location == NULL) {
        return NGX_CONF_ERROR;
    }

    location->slcf = conf;
    location->rlcf = ngx_http_conf_get_module_loc_conf(cf,
                                            ngx_http_supportdesk_redis_module);
    location->clcf = clcf;

    /*
     * nginx checks the body size itself, before the content handler and for
     * chunked bodies too; our error filter turns its 413 into the envelope.
     * The module's own limit replaces client_max_body_size here.
     */
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

    if (slcf->metrics) {
        return "cannot be combined with \"supportdesk_metrics\"";
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


/* supportdesk_metrics: this location serves the metrics, which are kept */

static char *
ngx_http_supportdesk_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_supportdesk_loc_conf_t  *slcf = conf;

    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_supportdesk_main_conf_t  *smcf;

    if (slcf->metrics) {
        return "is duplicate";
    }

    if (slcf->enabled) {
        return "cannot be combined with \"supportdesk\"";
    }

    slcf->metrics = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_supportdesk_metrics_handler;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_supportdesk_module);
    smcf->metrics = 1;

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
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_supportdesk_module);

    /* the events appended are counted only for the metrics */
    return ngx_http_supportdesk_script_init(cycle,
                                            smcf != NULL && smcf->metrics);
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
    if (smcf == NULL) {
        return NGX_OK;
    }

    /* before the pool: it counts its connections from the start */
    ngx_http_supportdesk_metrics_init_process(smcf->metrics_zone);

    if (!smcf->used) {
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
    if (smcf == NULL) {
        return;
    }

    if (smcf->used) {
        ngx_http_supportdesk_runner_exit_process(cycle);
        ngx_http_supportdesk_redis_exit_process(cycle, &smcf->redis_confs);
        ngx_http_supportdesk_auth_sha256_free();
    }

    ngx_http_supportdesk_metrics_exit_process();
}
