
/*
 * The module's variables, for log_format, limit_req and the like:
 * $supportdesk_app (the app of the request's API key), $supportdesk_route
 * (the route's template) and $supportdesk_redis_time (the time its Redis
 * commands were due).  They read the request's context, nothing more.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_variables.h"


static ngx_str_t  ngx_http_supportdesk_app_name = ngx_string("supportdesk_app");
static ngx_str_t  ngx_http_supportdesk_route_var_name =
    ngx_string("supportdesk_route");
static ngx_str_t  ngx_http_supportdesk_redis_time_name =
    ngx_string("supportdesk_redis_time");


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


/* the route's template, as the metrics' route label; empty: none matched */

static ngx_int_t
ngx_http_supportdesk_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL || ctx->route_name == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ctx->route_name->len;
    v->data = ctx->route_name->data;

    return NGX_OK;
}


/*
 * The time the request's Redis commands were due, in seconds to the
 * millisecond ("0.002"), as $upstream_response_time; empty when it sent
 * none.  Commands due together (a batch's) count once.
 */

static ngx_int_t
ngx_http_supportdesk_redis_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                      *p;
    ngx_msec_t                   ms;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL || !ctx->redis_used) {
        v->not_found = 1;
        return NGX_OK;
    }

    ms = ctx->redis_time;

    /* still due (the client left, the request ends first) */
    if (ctx->redis_due) {
        ms += ngx_current_msec - ctx->redis_since;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) (ms / 1000), ms % 1000) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    /* not cacheable: limit_req may read it before the key is resolved */
    var = ngx_http_add_variable(cf, &ngx_http_supportdesk_app_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_supportdesk_app_variable;

    var = ngx_http_add_variable(cf, &ngx_http_supportdesk_route_var_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_supportdesk_route_variable;

    var = ngx_http_add_variable(cf, &ngx_http_supportdesk_redis_time_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_supportdesk_redis_time_variable;

    return NGX_OK;
}
