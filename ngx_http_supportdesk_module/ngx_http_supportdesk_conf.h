
/*
 * Helpers for the directives of both modules of the .so: a number with
 * bounds whose refusal names the directive, a number as the text the
 * scripts take.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_CONF_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A number a directive takes, with its bounds: unlike nginx's own
 * ngx_conf_check_num_bounds(), a refusal names the directive.  msec and
 * size values are machine words too: one check serves all.
 */
typedef struct {
    ngx_conf_post_handler_pt             post_handler;
    ngx_uint_t                           low;
    ngx_uint_t                           high;
    const char                          *refusal;
} ngx_http_supportdesk_bounds_t;


char *ngx_http_supportdesk_check_bounds(ngx_conf_t *cf, void *post,
    void *data);

/* a number the scripts take, formatted once, not per request */
ngx_int_t ngx_http_supportdesk_conf_text(ngx_conf_t *cf, ngx_uint_t n,
    ngx_str_t *text);


#endif /* _NGX_HTTP_SUPPORTDESK_CONF_H_INCLUDED_ */
