
/*
 * Server-side Lua scripts, embedded at build time: the objs/Makefile rule
 * that config.make adds runs util/embed-scripts.sh, which turns every
 * redis/<name>.lua into one entry of ngx_http_supportdesk_scripts[]
 * (alphabetical order, file name without ".lua" as the name), written to
 * $NGX_OBJS/ngx_http_supportdesk_scripts.c.  The registry
 * (ngx_http_supportdesk_script.c) picks them from there by name.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_SCRIPTS_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_SCRIPTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_str_t   name;
    ngx_str_t   source;
} ngx_http_supportdesk_script_source_t;


extern ngx_http_supportdesk_script_source_t  ngx_http_supportdesk_scripts[];
extern ngx_uint_t                            ngx_http_supportdesk_nscripts;


#endif /* _NGX_HTTP_SUPPORTDESK_SCRIPTS_H_INCLUDED_ */
