
/*
 * The route table: the raw request path below the location prefix and the
 * method -> the action (ngx_http_supportdesk_router.c).
 */

#ifndef _NGX_HTTP_SUPPORTDESK_ROUTER_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_ROUTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"


/*
 * The request's raw path below the location's prefix, routed: NGX_OK with
 * ctx->action, ctx->params and ctx->body_limit set, NGX_HTTP_NOT_FOUND, or
 * NGX_HTTP_NOT_ALLOWED with ctx->allow set.
 */
ngx_int_t ngx_http_supportdesk_route_request(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_loc_conf_t *slcf);

/* a path already below the prefix: as above, ctx->body_limit aside */
ngx_int_t ngx_http_supportdesk_route(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path);

/* route n's template ("/customers/{externalId}"), n from 1; NULL past the
   last route */
ngx_str_t *ngx_http_supportdesk_route_name(ngx_uint_t n);


#endif /* _NGX_HTTP_SUPPORTDESK_ROUTER_H_INCLUDED_ */
