
/*
 * The actions the route table names: one validate step (before any storage
 * work; may be NULL) and one run step (the Redis work) per method of a
 * route.  Each file keeps its own state behind ctx->data.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_ACTIONS_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_ACTIONS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"


/* ngx_http_supportdesk_customers.c: /customers/{externalId} */
ngx_int_t ngx_http_supportdesk_customer_validate_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_upsert(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_customer_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_list.c: GET /customers */
ngx_int_t ngx_http_supportdesk_list_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_batch.c: PATCH /customers */
ngx_int_t ngx_http_supportdesk_batch_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_batch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_notes.c: /customers/{externalId}/notes[/{noteId}] */
ngx_int_t ngx_http_supportdesk_note_validate_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_add(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_validate_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_validate_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_note_delete(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_notifications.c: .../{externalId}/notifications */
ngx_int_t ngx_http_supportdesk_notif_validate_patch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_notif(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_jobs.c: POST /customers/bulk-update, GET /jobs/{id} */
ngx_int_t ngx_http_supportdesk_bulk_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_bulk(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_job_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_job_get(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);

/* ngx_http_supportdesk_events.c: GET /events, the change feed */
ngx_int_t ngx_http_supportdesk_events_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
ngx_int_t ngx_http_supportdesk_events(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);


#endif /* _NGX_HTTP_SUPPORTDESK_ACTIONS_H_INCLUDED_ */
