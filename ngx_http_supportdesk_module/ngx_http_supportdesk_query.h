
/*
 * The query strings of the listing routes (GET /customers, GET .../notes)
 * and the opaque cursors they hand out.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_QUERY_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_QUERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"


/* which parameters a route takes */
#define NGX_HTTP_SUPPORTDESK_QUERY_CUSTOMERS  0
#define NGX_HTTP_SUPPORTDESK_QUERY_NOTES      1
#define NGX_HTTP_SUPPORTDESK_QUERY_EVENTS     2


typedef struct {
    ngx_uint_t                           limit;
    ngx_str_t                            cursor;     /* decoded: digits */
    ngx_str_t                            email;      /* lowercase */
    ngx_str_t                            name;       /* lowercase */
    ngx_str_t                            text;       /* lowercase */
    ngx_array_t                          metadata;   /* ngx_str_t pairs */
    /* GET /events: the cursor (an event id, len 0: none), seconds */
    ngx_str_t                            after;
    ngx_uint_t                           wait;
    unsigned                             notes_count:1;
} ngx_http_supportdesk_query_t;


/* the next name=value of a query string; 0 at its end */
ngx_uint_t ngx_http_supportdesk_query_next(u_char **pos, u_char *end,
    ngx_str_t *name, ngx_str_t *value);

/*
 * The validate step of a listing route: r->args parsed into a query kept
 * behind ctx->data, every violation in the request's report.
 */
ngx_int_t ngx_http_supportdesk_query_step(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_uint_t route);

ngx_int_t ngx_http_supportdesk_cursor_encode(ngx_pool_t *pool,
    u_char *seq, size_t len, ngx_str_t *cursor);
ngx_int_t ngx_http_supportdesk_cursor_decode(ngx_str_t *cursor, u_char *dst,
    ngx_str_t *seq);

/*
 * The validate step of a route on a note or a job: the number of the id
 * ("note_12", "job_3") behind ctx->data, 0 for anything the API did not
 * issue (0 names nothing: a lookup of it answers "not found" like any
 * other).
 */
ngx_int_t ngx_http_supportdesk_id_step(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *id, const char *prefix);


#endif /* _NGX_HTTP_SUPPORTDESK_QUERY_H_INCLUDED_ */
