
/*
 * The error filter (ngx_http_supportdesk_filter.c): nginx's own error
 * pages as envelopes inside a supportdesk location.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_FILTER_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_FILTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* joins the header and body filter chains (postconfiguration) */
void ngx_http_supportdesk_filter_init(void);


#endif /* _NGX_HTTP_SUPPORTDESK_FILTER_H_INCLUDED_ */
