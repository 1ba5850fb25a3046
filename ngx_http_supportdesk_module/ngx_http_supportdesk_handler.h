
/*
 * The request handler (ngx_http_supportdesk_handler.c): the rewrite phase
 * handler (route and key), the location's content handler and the log
 * phase handler that counts requests for the metrics.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_HANDLER_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_HANDLER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_supportdesk_rewrite_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_supportdesk_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_supportdesk_content_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_supportdesk_log_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_SUPPORTDESK_HANDLER_H_INCLUDED_ */
