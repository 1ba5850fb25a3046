
/*
 * The supportdesk_redis* directives: a module of their own in the .so
 * (ngx_http_supportdesk_redis_module), whose location configuration holds
 * which Redis a level names (one server, a cluster's seeds or sentinels)
 * and the settings to reach it.  The API module takes a location's result
 * with ngx_http_supportdesk_redis_location() in its postconfiguration,
 * when every module's merge has run: the two modules' order is free.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_REDIS_CONF_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_REDIS_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_redis.h"


typedef struct {
    /* supportdesk_redis: one server */
    ngx_url_t                           *url;
    /* supportdesk_redis_cluster: the seed nodes (ngx_addr_t) */
    ngx_array_t                         *cluster;
    /* supportdesk_redis_sentinel: the master's name, the sentinels */
    ngx_str_t                            sentinel_master;
    ngx_array_t                         *sentinel;
    /* the settings of this level; addr and the rest are set by
       ngx_http_supportdesk_redis_location() */
    ngx_http_supportdesk_redis_conf_t    settings;
} ngx_http_supportdesk_redis_loc_conf_t;


extern ngx_module_t  ngx_http_supportdesk_redis_module;


/*
 * A location that serves the API, every merge done: its Redis settings,
 * complete (the server, cluster or sentinels it names, or the default
 * server; a host name resolved now, or by the workers where the location,
 * clcf, has a resolver).  NULL: an error, logged.
 */
ngx_http_supportdesk_redis_conf_t *ngx_http_supportdesk_redis_location(
    ngx_conf_t *cf, ngx_http_supportdesk_redis_loc_conf_t *rlcf,
    ngx_http_core_loc_conf_t *clcf);


#endif /* _NGX_HTTP_SUPPORTDESK_REDIS_CONF_H_INCLUDED_ */
