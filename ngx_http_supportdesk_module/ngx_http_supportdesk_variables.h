
/*
 * $supportdesk_app, $supportdesk_route, $supportdesk_redis_time.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_VARIABLES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* in preconfiguration: the variables, known to every later directive */
ngx_int_t ngx_http_supportdesk_variables_add(ngx_conf_t *cf);


#endif /* _NGX_HTTP_SUPPORTDESK_VARIABLES_H_INCLUDED_ */
