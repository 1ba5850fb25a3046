
/*
 * The request handler: the module's two phase handlers and what lies
 * between them.
 *
 * Rewrite phase: the route (404, 405) and the API key as the key cache
 * knows it (401), so $supportdesk_app is known to limit_req and the
 * access log.  Access phase (after limit_req): the key's Redis lookup
 * when the cache cannot answer.  Content phase: an answer decided
 * earlier, else the body (its limit, Content-Type, a stall past
 * client_body_timeout), the path parameters and the action's validation,
 * then the action's Redis work.  Nothing here parses a route or talks to
 * Redis itself.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_handler.h"
#include "ngx_http_supportdesk_router.h"
#include "ngx_http_supportdesk_auth.h"
#include "ngx_http_supportdesk_store.h"
#include "ngx_http_supportdesk_envelope.h"
#include "ngx_http_supportdesk_metrics.h"
#include <openssl/evp.h>
#include <openssl/sha.h>


static void ngx_http_supportdesk_body_handler(ngx_http_request_t *r);
static void ngx_http_supportdesk_body_timeout_guard(ngx_http_request_t *r);
static void ngx_http_supportdesk_proceed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_send_too_large(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_uint_t ngx_http_supportdesk_read_headers(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static void ngx_http_supportdesk_check_headers(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_fingerprint(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *body);
static ngx_uint_t ngx_http_supportdesk_is_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_supportdesk_refuse_body(ngx_http_request_t *r);
static ngx_http_supportdesk_ctx_t *ngx_http_supportdesk_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_supportdesk_cleanup(void *data);


ngx_int_t
ngx_http_supportdesk_rewrite_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_uint_t                        api_key_twice, known;
    ngx_http_supportdesk_ctx_t       *ctx;
    ngx_http_supportdesk_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    if (!slcf->enabled || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx != NULL) {
        /* run again: a posted event, or an internal redirect */
        return NGX_DECLINED;
    }

    ctx = ngx_http_supportdesk_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_supportdesk_route_request(r, ctx, slcf);

    if (rc == NGX_HTTP_NOT_ALLOWED
        && ngx_http_supportdesk_allow_header(r, &ctx->allow) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        ctx->status = rc;
        return NGX_DECLINED;
    }

    api_key_twice = ngx_http_supportdesk_read_headers(r, ctx);

    if (api_key_twice) {
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        ctx->status_message = "X-API-Key must be sent once";
        return NGX_DECLINED;
    }

    if (ctx->api_key.len == 0) {
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        return NGX_DECLINED;
    }

    ngx_http_supportdesk_auth_tag(r, &ctx->api_key, ctx->key_tag);

    known = 0;
    rc = ngx_http_supportdesk_auth_lookup(r, ctx->key_tag, &ctx->app,
                                          &known);

    switch (rc) {

    case NGX_OK:
        ngx_http_supportdesk_metrics_key_cache(
                                      NGX_HTTP_SUPPORTDESK_METRICS_KEY_HIT);
        return NGX_DECLINED;

    case NGX_DECLINED:
        ngx_http_supportdesk_metrics_key_cache(
                                  NGX_HTTP_SUPPORTDESK_METRICS_KEY_NEGATIVE);
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        return NGX_DECLINED;

    case NGX_AGAIN:
        /* asked in the access phase, once limit_req has had its say */
        ctx->key_pending = 1;
        ctx->key_known = known;
        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * Access phase: the Redis lookup of a key the cache could not answer
 * for.  It comes after limit_req and limit_conn (preaccess), so that a
 * limit by client address refuses a flood of made-up keys before any of
 * them costs a lookup; $supportdesk_app is known to them for every key
 * the cache has (also past its ttl), empty for one it has never seen.
 */

ngx_int_t
ngx_http_supportdesk_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL || r != r->main) {
        return NGX_DECLINED;
    }

    if (ctx->op) {
        /* run again before the answer is in (a posted event) */
        return NGX_DONE;
    }

    if (!ctx->key_pending) {
        if (ctx->status) {
            /* refused: not the app it had */
            ngx_str_null(&ctx->app);
        }

        return NGX_DECLINED;
    }

    ctx->key_pending = 0;

    rc = ngx_http_supportdesk_auth_fetch(r, ctx);

    /* 401 without a lookup: supportdesk_key_lookup_rate was reached */
    ngx_http_supportdesk_metrics_key_cache(
                              (rc == NGX_HTTP_UNAUTHORIZED)
                              ? NGX_HTTP_SUPPORTDESK_METRICS_KEY_LIMITED
                              : NGX_HTTP_SUPPORTDESK_METRICS_KEY_MISS);

    if (rc == NGX_DONE) {
        /* the phases run again once Redis has answered */
        return NGX_DONE;
    }

    ctx->status = rc;
    ngx_str_null(&ctx->app);

    return NGX_DECLINED;
}


/*
 * Log phase (installed with supportdesk_metrics): every request of a
 * supportdesk location, and every one the error filter answered for it
 * before a location was found, is counted once, with the status logged.
 */

ngx_int_t
ngx_http_supportdesk_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                        status;
    ngx_http_supportdesk_ctx_t       *ctx;
    ngx_http_supportdesk_loc_conf_t  *slcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL) {
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

        if (!slcf->enabled) {
            return NGX_OK;
        }

    } else if (ctx->counted) {
        return NGX_OK;

    } else {
        ctx->counted = 1;
    }

    /* as $status */
    status = r->err_status ? r->err_status : r->headers_out.status;

    ngx_http_supportdesk_metrics_request(r, ctx ? ctx->route : 0, status,
                                         ctx ? ctx->error_code : NULL);

    return NGX_OK;
}


/*
 * The headers the API reads, in one pass: X-API-Key (returns 1 when it
 * came twice: a client error, never resolved by picking one), and those
 * checked later with the other rules of the request.
 */

static ngx_uint_t
ngx_http_supportdesk_read_headers(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t        *key;
    ngx_uint_t        i, twice;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    twice = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        key = &h[i].key;

#define ngx_http_supportdesk_is_header(name)                                 \
    (key->len == sizeof(name) - 1                                            \
     && ngx_strncasecmp(key->data, (u_char *) name, key->len) == 0)

        if (ngx_http_supportdesk_is_header("X-API-Key")) {
            twice |= (ctx->api_key.data != NULL);
            ctx->api_key = h[i].value;

        } else if (ngx_http_supportdesk_is_header("Idempotency-Key")) {
            ctx->idempotency_twice = (ctx->idempotency_header != NULL);
            ctx->idempotency_header = &h[i];

        } else if (ngx_http_supportdesk_is_header("If-Match")) {
            ctx->if_match_twice = (ctx->if_match_header != NULL);
            ctx->if_match_header = &h[i];

        } else if (ngx_http_supportdesk_is_header("If-None-Match")) {
            ctx->if_none_match_twice = (ctx->if_none_match_header != NULL);
            ctx->if_none_match_header = &h[i];
        }

#undef ngx_http_supportdesk_is_header
    }

    return twice;
}


ngx_int_t
ngx_http_supportdesk_content_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL) {
        /* a subrequest or a location nginx reached without the rewrite */
        ctx = ngx_http_supportdesk_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->status = NGX_HTTP_NOT_FOUND;
    }

    if (ctx->key_pending) {
        /* never a request on an unchecked key */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "supportdesk: the API key was not looked up: another "
                      "module ended the access phase first (satisfy any?)");
        ctx->key_pending = 0;
        ngx_str_null(&ctx->app);
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->status) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "supportdesk: answering %ui before the body",
                       ctx->status);

        rc = ngx_http_supportdesk_refuse_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_supportdesk_send_error(r, ctx->status, NULL,
                                               ctx->status_message, NULL);
    }

    if (ctx->action->has_body) {
        if (r->headers_in.content_length_n > (off_t) ctx->body_limit) {
            rc = ngx_http_supportdesk_refuse_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_supportdesk_send_too_large(r, ctx);
        }

        if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
            && !ngx_http_supportdesk_is_json(r))
        {
            rc = ngx_http_supportdesk_refuse_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_supportdesk_send_error(r,
                                        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        NULL, NULL, NULL);
        }

        rc = ngx_http_read_client_request_body(r,
                                          ngx_http_supportdesk_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* 413 and friends: the error filter makes them envelopes */
            return rc;
        }

        /* still reading: nginx's handler is in place until the body is in */
        if (r->read_event_handler != ngx_http_block_reading
#if (NGX_HTTP_V2)
            && r->stream == NULL
#endif
           )
        {
            ctx->body_reader = r->read_event_handler;
            r->read_event_handler = ngx_http_supportdesk_body_timeout_guard;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;
    ngx_http_supportdesk_proceed(r, ctx);

    return NGX_DONE;
}


/*
 * An error answered before the body: no "100 Continue" invites the upload
 * (as nginx does for its own 413), and the connection closes after the
 * answer, since the client may send the body or may not.
 */

static ngx_int_t
ngx_http_supportdesk_refuse_body(ngx_http_request_t *r)
{
    if (r->headers_in.expect != NULL && !r->expect_tested) {
        r->expect_tested = 1;
        r->keepalive = 0;
    }

    return ngx_http_discard_request_body(r);
}


/*
 * nginx ends a request whose body stalls past client_body_timeout without
 * a word (it terminates on 408); the client gets the envelope instead.
 */

static void
ngx_http_supportdesk_body_timeout_guard(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (!r->connection->read->timedout) {
        ctx->body_reader(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                  "supportdesk: client timed out sending the body");

    r->connection->read->timedout = 0;
    r->read_event_handler = ngx_http_block_reading;
    r->keepalive = 0;

    rc = ngx_http_supportdesk_send_error(r, NGX_HTTP_REQUEST_TIME_OUT, NULL,
                             "the request body did not arrive within "
                             "client_body_timeout", NULL);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_supportdesk_body_handler(ngx_http_request_t *r)
{
    ngx_http_supportdesk_proceed(r,
                    ngx_http_get_module_ctx(r, ngx_http_supportdesk_module));
}


/* the body is in: parse, decode the path, validate, then the action */

static void
ngx_http_supportdesk_proceed(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    const char  *invalid;
    u_char      *dst;
    ngx_int_t    rc;
    ngx_str_t    body;

    ngx_str_set(&body, "");

    if (ctx->action->has_body) {
        if (ngx_http_supportdesk_read_body(r, &body) != NGX_OK) {
            ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        /* a chunked body announces no length: nginx checked the larger */
        if (body.len > ctx->body_limit) {
            ngx_http_supportdesk_finish(r,
                            ngx_http_supportdesk_send_too_large(r, ctx));
            return;
        }

        ctx->body_text = body;

        if (ctx->action->batch_body) {
            /* a tree of the items would cost tens of MiB: one at a time */
            ctx->body = ngx_http_supportdesk_parse_batch(body.data, body.len,
                                                         "customers",
                                                         &ctx->items,
                                                         &invalid, NULL);
        } else {
            ctx->body = ngx_http_supportdesk_parse_object(body.data,
                                                          body.len,
                                                          &invalid, NULL);
        }

        if (ctx->body == NULL) {
            ngx_http_supportdesk_finish(r,
                ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                "INVALID_JSON", invalid,
                                                NULL));
            return;
        }
    }

    /* every check below reports here, so all come out together */
    ctx->report = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_report_t));
    if (ctx->report == NULL) {
        ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->action->external_id) {
        dst = ngx_pnalloc(r->pool, ctx->params[0].len + 1);
        if (dst == NULL) {
            ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        (void) ngx_http_supportdesk_decode_external_id(&ctx->params[0], dst,
                                                       &ctx->external_id,
                                                       ctx->report);
    }

    ngx_http_supportdesk_check_headers(r, ctx);

    if (ctx->action->fields != NULL) {
        ngx_http_supportdesk_report_unknown(ctx->body, ctx->action->fields,
                                            "is not a known field",
                                            ctx->report);
    }

    if (ctx->action->validate != NULL) {
        rc = ctx->action->validate(r, ctx);

        if (rc != NGX_OK) {
            if (ctx->invalid_json != NULL) {
                rc = ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                     "INVALID_JSON",
                                                     ctx->invalid_json, NULL);
            }

            ngx_http_supportdesk_finish(r, rc);
            return;
        }
    }

    if (ctx->report->n) {
        ngx_http_supportdesk_finish(r,
            ngx_http_supportdesk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "VALIDATION_ERROR", NULL,
                                            ctx->report));
        return;
    }

    if (ctx->idempotency_key.len
        && ngx_http_supportdesk_fingerprint(r, ctx, &body) != NGX_OK)
    {
        ngx_http_supportdesk_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ctx->action->run(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_supportdesk_finish(r, rc);
    }
}


/* Idempotency-Key, If-Match, If-None-Match where the route takes them */

static void
ngx_http_supportdesk_check_headers(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                         *dst;
    ngx_str_t                      *v;
    ngx_uint_t                      method;
    const char                     *msg;
    ngx_http_supportdesk_report_t  *rep;

    rep = ctx->report;

#define ngx_http_supportdesk_refuse_header(name, message)                    \
    ngx_http_supportdesk_report_add(rep, name, sizeof(name) - 1, message)

    if (ctx->action->write && ctx->idempotency_header != NULL) {
        v = &ctx->idempotency_header->value;
        msg = ctx->idempotency_twice
              ? "must be sent once"
              : ngx_http_supportdesk_check_idempotency_key(v->data, v->len);

        if (msg != NULL) {
            ngx_http_supportdesk_refuse_header("Idempotency-Key", msg);

        } else {
            ctx->idempotency_key = *v;
        }
    }

    if (!ctx->action->conditional) {
        return;
    }

    method = ctx->action->method;

    if (ctx->if_match_header != NULL && method != NGX_HTTP_GET) {
        v = &ctx->if_match_header->value;
        dst = ngx_pnalloc(r->pool, v->len + 1);

        if (dst == NULL) {
            rep->n = NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS;

        } else if (ctx->if_match_twice) {
            ngx_http_supportdesk_refuse_header("If-Match",
                                               "must be sent once");

        } else if (ngx_http_supportdesk_parse_etags(v, dst, &ctx->if_match, 0)
                   != NGX_OK)
        {
            ngx_http_supportdesk_refuse_header("If-Match",
                                   "must be * or a list of entity tags");
        }
    }

    if (ctx->if_none_match_header != NULL && method != NGX_HTTP_DELETE) {
        v = &ctx->if_none_match_header->value;
        dst = ngx_pnalloc(r->pool, v->len + 1);

        if (dst == NULL) {
            rep->n = NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS;

        } else if (ctx->if_none_match_twice) {
            ngx_http_supportdesk_refuse_header("If-None-Match",
                                               "must be sent once");

        } else if (ngx_http_supportdesk_parse_etags(v, dst,
                                                    &ctx->if_none_match, 1)
                   != NGX_OK)
        {
            ngx_http_supportdesk_refuse_header("If-None-Match",
                                   "must be * or a list of entity tags");

        } else if (method != NGX_HTTP_GET
                   && !(ctx->if_none_match.len == 1
                        && ctx->if_none_match.data[0] == '*'))
        {
            /* on a write only "create, never replace" makes sense */
            ngx_http_supportdesk_refuse_header("If-None-Match",
                                   "must be * on a write");
        }
    }

#undef ngx_http_supportdesk_refuse_header
}


/*
 * What makes a retry the same request: method, path and body, byte for
 * byte, as the hex SHA-256 the scripts compare.
 */

static ngx_int_t
ngx_http_supportdesk_fingerprint(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *body)
{
    u_char     *q, md[SHA256_DIGEST_LENGTH];
    ngx_str_t   parts[5];

    parts[0] = r->method_name;
    ngx_str_set(&parts[1], " ");
    parts[2] = r->unparsed_uri;
    ngx_str_set(&parts[3], "\n");
    parts[4] = *body;

    q = ngx_strlchr(parts[2].data, parts[2].data + parts[2].len, '?');
    if (q != NULL) {
        parts[2].len = q - parts[2].data;
    }

    ctx->fingerprint.data = ngx_pnalloc(r->pool, 2 * SHA256_DIGEST_LENGTH);

    if (ctx->fingerprint.data == NULL
        || ngx_http_supportdesk_auth_sha256(parts, 5, md) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->fingerprint.len = ngx_hex_dump(ctx->fingerprint.data, md,
                                        SHA256_DIGEST_LENGTH)
                           - ctx->fingerprint.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_send_too_large(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    r->keepalive = 0;

    return ngx_http_supportdesk_send_error(r,
                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NULL,
                          ngx_http_supportdesk_too_large_message(r->pool,
                                                         ctx->body_limit),
                          NULL);
}


static ngx_int_t
ngx_http_supportdesk_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    /* several buffers (what came with the headers, the rest): one piece */
    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* the location keeps bodies in memory (merge_loc_conf) */
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "supportdesk: the body was written to \"%V\"",
                          &b->file->name);
            return NGX_ERROR;
        }

        len += b->last - b->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last > b->pos) {
            /* an empty buffer of a chunked body may have no memory at all */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_supportdesk_is_json(ngx_http_request_t *r)
{
    u_char           *p, *end;
    ngx_table_elt_t  *h;
    static u_char     type[] = "application/json";

    h = r->headers_in.content_type;
    if (h == NULL) {
        return 0;
    }

    p = h->value.data;
    end = p + h->value.len;

    if ((size_t) (end - p) < sizeof(type) - 1
        || ngx_strncasecmp(p, type, sizeof(type) - 1) != 0)
    {
        return 0;
    }

    p += sizeof(type) - 1;

    /* parameters such as charset may follow */
    return p == end || *p == ';' || *p == ' ' || *p == '\t';
}


static ngx_http_supportdesk_ctx_t *
ngx_http_supportdesk_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_supportdesk_cleanup;
    cln->data = ctx;

    ctx->conf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    ngx_http_set_ctx(r, ctx, ngx_http_supportdesk_module);

    return ctx;
}


/*
 * What the request took that its pool does not free.  An action with more
 * to release (the ops of a batch) adds a pool cleanup of its own, which
 * runs before this one.
 */

static void
ngx_http_supportdesk_cleanup(void *data)
{
    ngx_http_supportdesk_ctx_t  *ctx = data;

    /* the request is gone: its reply, when it comes, goes nowhere */
    if (ctx->op != NULL) {
        ngx_http_supportdesk_redis_abandon(ctx->op);
        ctx->op = NULL;
    }

    if (ctx->body != NULL) {
        json_decref(ctx->body);
        ctx->body = NULL;
    }
}
