
/*
 * X-API-Key -> app id, with a cache shared by all workers.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_AUTH_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"


ngx_int_t ngx_http_supportdesk_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);

/* the name of a key in the cache (NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN bytes) */
void ngx_http_supportdesk_auth_tag(ngx_http_request_t *r, ngx_str_t *key,
    u_char *tag);

/* SHA-256 of the parts one after the other into md (32 bytes) */
ngx_int_t ngx_http_supportdesk_auth_sha256(ngx_str_t *parts, ngx_uint_t n,
    u_char *md);
/* the worker's hashing context, at exit */
void ngx_http_supportdesk_auth_sha256_free(void);

/*
 * NGX_OK: app found (app->data points into r->pool); NGX_DECLINED: known
 * bad key; NGX_AGAIN: ask Redis, with *known set when the cache knew the
 * key as good till its ttl passed (app is the one it had).
 */
ngx_int_t ngx_http_supportdesk_auth_lookup(ngx_http_request_t *r,
    u_char *tag, ngx_str_t *app, ngx_uint_t *known);

/*
 * The Redis step for a cache miss: HGET sd:apikey:<hex> app.  NGX_DONE:
 * the phases run again once the answer is in ctx (app, or status).  A key
 * the cache did not know (!ctx->key_known) past the worker's bound of
 * supportdesk_key_lookup_rate a second: 401 without a lookup.
 */
ngx_int_t ngx_http_supportdesk_auth_fetch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);


#endif /* _NGX_HTTP_SUPPORTDESK_AUTH_H_INCLUDED_ */
