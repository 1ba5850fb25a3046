
/*
 * The supportdesk_redis* directives, a module of their own in the .so:
 * which Redis a level names (one server, a cluster's seeds, sentinels),
 * each address parsed and resolved here, at configuration time (a host
 * name left to the workers where the location has a resolver), and the
 * settings to reach it, merged level by level.  The API module takes a
 * location's result in its postconfiguration, once every module's merge
 * has run (so the order of the two modules does not matter).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_conf.h"
#include "ngx_http_supportdesk_redis_conf.h"


#define NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS  "127.0.0.1:6379"


static void *ngx_http_supportdesk_redis_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_supportdesk_redis_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_supportdesk_redis_conf_one(
    ngx_http_supportdesk_redis_loc_conf_t *rlcf, void *own);
static char *ngx_http_supportdesk_redis_conf_server(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_conf_cluster(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_conf_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_conf_addrs(ngx_conf_t *cf,
    ngx_str_t *values, ngx_uint_t n, const char *directive,
    ngx_array_t **addrs);
static ngx_url_t *ngx_http_supportdesk_redis_conf_parse(ngx_conf_t *cf,
    ngx_str_t *value, const char *directive, ngx_uint_t names);
static ngx_int_t ngx_http_supportdesk_redis_conf_host(ngx_conf_t *cf,
    ngx_http_supportdesk_redis_loc_conf_t *rlcf,
    ngx_http_core_loc_conf_t *clcf, ngx_http_supportdesk_redis_conf_t *redis);
static ngx_int_t ngx_http_supportdesk_redis_conf_resolve(ngx_conf_t *cf,
    ngx_url_t *u, const char *directive);
static ngx_uint_t ngx_http_supportdesk_redis_conf_is_name(ngx_url_t *u);
static char *ngx_http_supportdesk_redis_conf_wait(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_supportdesk_redis_conf_password(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_redis_positive = {
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

/* the output and a reply: the same range */
static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_bytes_bounds = {
    ngx_http_supportdesk_check_bounds, 64 * 1024, 1024 * 1024 * 1024,
    "must be between 64k and 1024m"
};

static ngx_http_supportdesk_bounds_t
    ngx_http_supportdesk_reply_elements_bounds = {
    ngx_http_supportdesk_check_bounds, 16, 16 * 1024 * 1024,
    "must be between 16 and 16777216"
};

static ngx_http_supportdesk_bounds_t  ngx_http_supportdesk_verify_depth_bounds
    = {
    ngx_http_supportdesk_check_bounds, 1, 100, "must be between 1 and 100"
};


static ngx_command_t  ngx_http_supportdesk_redis_commands[] = {

    { ngx_string("supportdesk_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_supportdesk_redis_conf_server,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_supportdesk_redis_conf_cluster,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_supportdesk_redis_conf_sentinel,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_supportdesk_redis_conf_wait,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_ssl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.tls.enable),
      NULL },

    { ngx_string("supportdesk_redis_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.tls.verify),
      NULL },

    { ngx_string("supportdesk_redis_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.tls.verify_depth),
      &ngx_http_supportdesk_verify_depth_bounds },

    { ngx_string("supportdesk_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.tls.name),
      NULL },

    { ngx_string("supportdesk_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.tls.trusted_certificate),
      NULL },

    { ngx_string("supportdesk_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.tls.certificate),
      NULL },

    { ngx_string("supportdesk_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.tls.certificate_key),
      NULL },

    { ngx_string("supportdesk_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_supportdesk_redis_conf_password,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("supportdesk_redis_db"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.db),
      &ngx_http_supportdesk_db_bounds },

    { ngx_string("supportdesk_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.connect_timeout),
      &ngx_http_supportdesk_redis_positive },

    { ngx_string("supportdesk_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.timeout),
      &ngx_http_supportdesk_redis_positive },

    { ngx_string("supportdesk_redis_connections"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.connections),
      &ngx_http_supportdesk_connections_bounds },

    { ngx_string("supportdesk_redis_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.max_pending),
      &ngx_http_supportdesk_pending_bounds },

    { ngx_string("supportdesk_redis_max_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t, settings.max_output),
      &ngx_http_supportdesk_bytes_bounds },

    { ngx_string("supportdesk_redis_max_reply_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.max_reply_size),
      &ngx_http_supportdesk_bytes_bounds },

    { ngx_string("supportdesk_redis_max_reply_elements"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_supportdesk_redis_loc_conf_t,
               settings.max_reply_elements),
      &ngx_http_supportdesk_reply_elements_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_supportdesk_redis_module_ctx = {
    NULL,                                    /* preconfiguration */
    NULL,                                    /* postconfiguration */

    NULL,                                    /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_supportdesk_redis_create_loc_conf,
                                             /* create location configuration */
    ngx_http_supportdesk_redis_merge_loc_conf
                                             /* merge location configuration */
};


ngx_module_t  ngx_http_supportdesk_redis_module = {
    NGX_MODULE_V1,
    &ngx_http_supportdesk_redis_module_ctx,  /* module context */
    ngx_http_supportdesk_redis_commands,     /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    NULL,                                    /* init module */
    NULL,                                    /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    NULL,                                    /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_supportdesk_redis_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_supportdesk_redis_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->settings.user = { 0, NULL };
     *     rlcf->settings.password = { 0, NULL };
     */

    rlcf->url = NGX_CONF_UNSET_PTR;
    rlcf->cluster = NGX_CONF_UNSET_PTR;
    rlcf->sentinel = NGX_CONF_UNSET_PTR;
    rlcf->settings.db = NGX_CONF_UNSET;
    rlcf->settings.connect_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->settings.timeout = NGX_CONF_UNSET_MSEC;
    rlcf->settings.connections = NGX_CONF_UNSET_UINT;
    rlcf->settings.max_pending = NGX_CONF_UNSET_UINT;
    rlcf->settings.max_output = NGX_CONF_UNSET_SIZE;
    rlcf->settings.max_reply_size = NGX_CONF_UNSET_SIZE;
    rlcf->settings.max_reply_elements = NGX_CONF_UNSET_UINT;
    rlcf->settings.wait_replicas = NGX_CONF_UNSET_UINT;
    rlcf->settings.wait_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->settings.tls.enable = NGX_CONF_UNSET;
    rlcf->settings.tls.verify = NGX_CONF_UNSET;
    rlcf->settings.tls.verify_depth = NGX_CONF_UNSET_UINT;

    return rlcf;
}


static char *
ngx_http_supportdesk_redis_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_supportdesk_redis_loc_conf_t  *prev = parent;
    ngx_http_supportdesk_redis_loc_conf_t  *conf = child;

    ngx_http_supportdesk_redis_conf_t  *redis;

    /* one server, a cluster or sentinels: the innermost level that names
       one of them */
    if (conf->url == NGX_CONF_UNSET_PTR
        && conf->cluster == NGX_CONF_UNSET_PTR
        && conf->sentinel == NGX_CONF_UNSET_PTR)
    {
        conf->url = prev->url;
        conf->cluster = prev->cluster;
        conf->sentinel = prev->sentinel;
        conf->sentinel_master = prev->sentinel_master;
    }

    if (conf->url == NGX_CONF_UNSET_PTR) {
        conf->url = NULL;
    }

    if (conf->cluster == NGX_CONF_UNSET_PTR) {
        conf->cluster = NULL;
    }

    if (conf->sentinel == NGX_CONF_UNSET_PTR) {
        conf->sentinel = NULL;
    }

    /* user and password come as one pair, from one level */
    redis = &conf->settings;

    if (redis->password.data == NULL) {
        redis->user = prev->settings.user;
        redis->password = prev->settings.password;
    }

    ngx_conf_merge_value(redis->db, prev->settings.db, 0);
    ngx_conf_merge_msec_value(redis->connect_timeout,
                              prev->settings.connect_timeout, 1000);
    ngx_conf_merge_msec_value(redis->timeout, prev->settings.timeout,
                              2000);
    ngx_conf_merge_uint_value(redis->connections,
                              prev->settings.connections, 2);
    /* ten full batches, or a few hundred ms of a busy Redis */
    ngx_conf_merge_uint_value(redis->max_pending,
                              prev->settings.max_pending, 10000);
    ngx_conf_merge_size_value(redis->max_output,
                              prev->settings.max_output,
                              8 * 1024 * 1024);
    /* the largest reply the API asks for is a notes page, about 6.5 MiB */
    ngx_conf_merge_size_value(redis->max_reply_size,
                              prev->settings.max_reply_size,
                              16 * 1024 * 1024);
    ngx_conf_merge_uint_value(redis->max_reply_elements,
                              prev->settings.max_reply_elements,
                              65536);

    ngx_conf_merge_value(redis->tls.enable, prev->settings.tls.enable,
                         0);
    ngx_conf_merge_value(redis->tls.verify, prev->settings.tls.verify,
                         0);
    ngx_conf_merge_uint_value(redis->tls.verify_depth,
                              prev->settings.tls.verify_depth, 1);
    ngx_conf_merge_str_value(redis->tls.name, prev->settings.tls.name,
                             "");
    ngx_conf_merge_str_value(redis->tls.trusted_certificate,
                             prev->settings.tls.trusted_certificate, "");
    ngx_conf_merge_str_value(redis->tls.certificate,
                             prev->settings.tls.certificate, "");
    ngx_conf_merge_str_value(redis->tls.certificate_key,
                             prev->settings.tls.certificate_key, "");

    if (redis->wait_replicas == NGX_CONF_UNSET_UINT) {
        redis->wait_replicas = prev->settings.wait_replicas;
        redis->wait_timeout = prev->settings.wait_timeout;
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

    return NGX_CONF_OK;
}


ngx_http_supportdesk_redis_conf_t *
ngx_http_supportdesk_redis_location(ngx_conf_t *cf,
    ngx_http_supportdesk_redis_loc_conf_t *rlcf,
    ngx_http_core_loc_conf_t *clcf)
{
    ngx_str_t                           value;
    ngx_http_supportdesk_redis_conf_t  *redis;

    redis = &rlcf->settings;

    redis->seeds = NULL;
    redis->sentinels = NULL;
    ngx_str_null(&redis->sentinel_master);

    if (rlcf->cluster != NULL) {
        redis->seeds = rlcf->cluster;
        redis->addr = rlcf->cluster->elts;

    } else if (rlcf->sentinel != NULL) {
        redis->sentinels = rlcf->sentinel;
        redis->sentinel_master = rlcf->sentinel_master;
        /* for the logs until a sentinel names the master */
        redis->addr = rlcf->sentinel->elts;

    } else {
        if (rlcf->url == NULL) {
            ngx_str_set(&value, NGX_HTTP_SUPPORTDESK_DEFAULT_REDIS);

            rlcf->url = ngx_http_supportdesk_redis_conf_parse(cf, &value,
                                                        "supportdesk_redis", 0);
            if (rlcf->url == NULL) {
                return NULL;
            }
        }

        if (ngx_http_supportdesk_redis_conf_host(cf, rlcf, clcf, redis)
            != NGX_OK)
        {
            return NULL;
        }
    }

    return redis;
}


/*
 * A level names one Redis: supportdesk_redis, _cluster or _sentinel, once.
 * own: the setting of the directive at hand.  NULL: it may be set.
 */

static char *
ngx_http_supportdesk_redis_conf_one(
    ngx_http_supportdesk_redis_loc_conf_t *rlcf, void *own)
{
    if (own != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (rlcf->url != NGX_CONF_UNSET_PTR
        || rlcf->cluster != NGX_CONF_UNSET_PTR
        || rlcf->sentinel != NGX_CONF_UNSET_PTR)
    {
        return "cannot be combined with another of \"supportdesk_redis\", "
               "\"supportdesk_redis_cluster\" and "
               "\"supportdesk_redis_sentinel\" at the same level";
    }

    return NULL;
}


static char *
ngx_http_supportdesk_redis_conf_server(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf = conf;

    char       *refusal;
    ngx_str_t  *value;

    refusal = ngx_http_supportdesk_redis_conf_one(rlcf, rlcf->url);
    if (refusal != NULL) {
        return refusal;
    }

    value = cf->args->elts;

    /* a name waits for the location's resolver, known at merge */
    rlcf->url = ngx_http_supportdesk_redis_conf_parse(cf, &value[1],
                                                        "supportdesk_redis",
                                                        1);
    if (rlcf->url == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * supportdesk_redis_cluster host:port ...: seed nodes, each resolved here
 * to every address it has (the map names the rest of the cluster).
 */

static char *
ngx_http_supportdesk_redis_conf_cluster(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf = conf;

    char       *refusal;
    ngx_str_t  *value;

    refusal = ngx_http_supportdesk_redis_conf_one(rlcf, rlcf->cluster);
    if (refusal != NULL) {
        return refusal;
    }

    value = cf->args->elts;

    return ngx_http_supportdesk_redis_conf_addrs(cf, &value[1],
                                            cf->args->nelts - 1,
                                            "supportdesk_redis_cluster",
                                            &rlcf->cluster);
}


/*
 * supportdesk_redis_sentinel <master-name> host:port ...: the sentinels
 * that know where the master is.
 */

static char *
ngx_http_supportdesk_redis_conf_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf = conf;

    char       *refusal;
    ngx_str_t  *value;

    refusal = ngx_http_supportdesk_redis_conf_one(rlcf, rlcf->sentinel);
    if (refusal != NULL) {
        return refusal;
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

    rlcf->sentinel_master = value[1];

    return ngx_http_supportdesk_redis_conf_addrs(cf, &value[2],
                                            cf->args->nelts - 2,
                                            "supportdesk_redis_sentinel",
                                            &rlcf->sentinel);
}


/* TCP addresses, each resolved here to every address it has */

static char *
ngx_http_supportdesk_redis_conf_addrs(ngx_conf_t *cf, ngx_str_t *values,
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
        u = ngx_http_supportdesk_redis_conf_parse(cf, &values[i], directive, 0);
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
ngx_http_supportdesk_redis_conf_parse(ngx_conf_t *cf, ngx_str_t *value,
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

    if (u->naddrs == 0 && names && ngx_http_supportdesk_redis_conf_is_name(u)) {
        return u;
    }

    if (u->naddrs == 0
        && ngx_http_supportdesk_redis_conf_resolve(cf, u, directive) != NGX_OK)
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
ngx_http_supportdesk_redis_conf_host(ngx_conf_t *cf,
    ngx_http_supportdesk_redis_loc_conf_t *rlcf,
    ngx_http_core_loc_conf_t *clcf, ngx_http_supportdesk_redis_conf_t *redis)
{
    ngx_url_t   *u;
    ngx_addr_t  *unresolved;

    u = rlcf->url;

    ngx_str_null(&redis->host);
    redis->port = 0;
    redis->resolver = NULL;
    redis->resolver_timeout = 0;

    if (ngx_http_supportdesk_redis_conf_is_name(u)
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
        && ngx_http_supportdesk_redis_conf_resolve(cf, u, "supportdesk_redis")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    redis->addr = &u->addrs[0];

    return NGX_OK;
}


/* resolved at configuration time, blocking (nginx -t says what failed) */

static ngx_int_t
ngx_http_supportdesk_redis_conf_resolve(ngx_conf_t *cf, ngx_url_t *u,
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
ngx_http_supportdesk_redis_conf_is_name(ngx_url_t *u)
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
ngx_http_supportdesk_redis_conf_wait(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_msec_t   t;

    if (rlcf->settings.wait_replicas != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->settings.wait_replicas = 0;
        rlcf->settings.wait_timeout = 0;
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

    rlcf->settings.wait_replicas = n;
    rlcf->settings.wait_timeout = t;

    return NGX_CONF_OK;
}


static char *
ngx_http_supportdesk_redis_conf_password(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_supportdesk_redis_loc_conf_t  *rlcf = conf;

    ngx_str_t  *value;

    if (rlcf->settings.password.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (value[1].len == 0) {
            return "has an empty user name";
        }

        rlcf->settings.user = value[1];
        rlcf->settings.password = value[2];

    } else {
        rlcf->settings.password = value[1];
    }

    if (rlcf->settings.password.len == 0) {
        return "has an empty password";
    }

    return NGX_CONF_OK;
}
