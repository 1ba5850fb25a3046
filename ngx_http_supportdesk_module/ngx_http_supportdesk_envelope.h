
/*
 * The JSON envelope every API response travels in, and the small JSON
 * writer that builds it in the request pool.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_ENVELOPE_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_ENVELOPE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_validate.h"


typedef struct {
    ngx_pool_t   *pool;
    u_char       *start;
    u_char       *pos;
    u_char       *end;
    ngx_uint_t    failed;     /* out of memory: checked once, at send */
} ngx_http_supportdesk_json_t;


/* statuses nginx has no name for */
#define NGX_HTTP_SUPPORTDESK_GONE           410
#define NGX_HTTP_SUPPORTDESK_UNPROCESSABLE  422


/* an API error: code and message NULL mean the status's usual ones */
typedef struct {
    ngx_uint_t                        status;
    const char                       *code;
    const char                       *message;
    ngx_http_supportdesk_report_t    *report;
} ngx_http_supportdesk_error_t;


#define ngx_http_supportdesk_json_literal(json, text)                         \
    ngx_http_supportdesk_json_raw(json, (u_char *) text, sizeof(text) - 1)


void ngx_http_supportdesk_json_raw(ngx_http_supportdesk_json_t *json,
    u_char *p, size_t len);
void ngx_http_supportdesk_json_string(ngx_http_supportdesk_json_t *json,
    u_char *p, size_t len);
void ngx_http_supportdesk_json_time(ngx_http_supportdesk_json_t *json,
    time_t t);
/* a time stored as decimal seconds (a customer's "c", "u") */
void ngx_http_supportdesk_json_stored_time(ngx_http_supportdesk_json_t *json,
    u_char *p, size_t len);
void ngx_http_supportdesk_json_int(ngx_http_supportdesk_json_t *json,
    int64_t n);

/* opens {"success":true,"data": ; the caller writes the data value */
ngx_int_t ngx_http_supportdesk_envelope_start(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, size_t size);
ngx_int_t ngx_http_supportdesk_envelope_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_supportdesk_json_t *json);

/* code and message NULL: the usual ones for the status */
ngx_int_t ngx_http_supportdesk_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message,
    ngx_http_supportdesk_report_t *report);

ngx_int_t ngx_http_supportdesk_send_api_error(ngx_http_request_t *r,
    const ngx_http_supportdesk_error_t *err);

/* {"deleted":true} */
ngx_int_t ngx_http_supportdesk_send_deleted(ngx_http_request_t *r);

/* "body is over the limit of <limit> bytes", in the pool */
const char *ngx_http_supportdesk_too_large_message(ngx_pool_t *pool,
    size_t limit);

/* builds an error envelope without sending it (for the error filter) */
ngx_int_t ngx_http_supportdesk_error_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message,
    ngx_http_supportdesk_report_t *report, ngx_str_t *body);

/* the error object alone, for per-item results */
void ngx_http_supportdesk_json_error(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, ngx_uint_t status, const char *code,
    const char *message, ngx_http_supportdesk_report_t *report);

/* "Allow: methods" for a 405 (methods kept by reference); NGX_ERROR */
ngx_int_t ngx_http_supportdesk_allow_header(ngx_http_request_t *r,
    ngx_str_t *methods);

ngx_int_t ngx_http_supportdesk_send_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);

/*
 * The headers set so far, then b, whole, as the body of type: what
 * send_body() does once its API headers are on, and the metrics page
 * (no API answer: none of those headers) as it is
 */
ngx_int_t ngx_http_supportdesk_send_buffer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_buf_t *b);

/* 304 with the ETag (ctx->etag), no body */
ngx_int_t ngx_http_supportdesk_send_not_modified(ngx_http_request_t *r);

extern ngx_str_t  ngx_http_supportdesk_content_type;

extern const ngx_http_supportdesk_error_t
    ngx_http_supportdesk_customer_not_found;


#endif /* _NGX_HTTP_SUPPORTDESK_ENVELOPE_H_INCLUDED_ */
