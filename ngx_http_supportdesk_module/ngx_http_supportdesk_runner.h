
/*
 * The bulk-update job runner (ngx_http_supportdesk_runner.c): started and
 * stopped with each worker.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_RUNNER_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_RUNNER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_int_t ngx_http_supportdesk_runner_init_process(ngx_cycle_t *cycle);
void ngx_http_supportdesk_runner_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_SUPPORTDESK_RUNNER_H_INCLUDED_ */
