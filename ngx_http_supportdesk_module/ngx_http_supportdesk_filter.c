
/*
 * The error filter: inside a supportdesk location, the error pages nginx
 * raises on its own (a 413 for a body over the limit, a 400 for a broken
 * chunked body, a 408, limit_req's 429) go out as envelopes too.  Our own
 * envelopes pass untouched.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_filter.h"
#include "ngx_http_supportdesk_router.h"
#include "ngx_http_supportdesk_envelope.h"


static ngx_int_t ngx_http_supportdesk_header_filter(ngx_http_request_t *r);
static ngx_uint_t ngx_http_supportdesk_api_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_supportdesk_refused_method(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path);
static ngx_int_t ngx_http_supportdesk_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


void
ngx_http_supportdesk_filter_init(void)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_supportdesk_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_supportdesk_body_filter;
}


static ngx_int_t
ngx_http_supportdesk_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                         path;
    const char                       *message;
    ngx_http_supportdesk_ctx_t       *ctx;
    ngx_http_supportdesk_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_supportdesk_module);

    ngx_str_null(&path);

    if (r != r->main
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST
        || !(slcf->enabled || ngx_http_supportdesk_api_path(r, &path)))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx != NULL && (ctx->responded || ctx->replacing)) {
        return ngx_http_next_header_filter(r);
    }

    /*
     * nginx answered on its own (a special response): swap the page.  It
     * may do so before the handler made a context (a 413 for a
     * Content-Length over the location's limit comes before the rewrite
     * phase); nothing is pending then, so a bare one does.
     */
    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_supportdesk_module);
    }

    message = NULL;

    if (r->headers_out.status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        /*
         * nginx refuses a Content-Length over the location's largest limit
         * before the rewrite phase routed the request: route it here, for
         * the limit of its route.  No route: the limit nginx applied.
         */
        if (ctx->action == NULL && slcf->enabled) {
            (void) ngx_http_supportdesk_route_request(r, ctx, slcf);
        }

        message = ngx_http_supportdesk_too_large_message(r->pool,
                                 ctx->body_limit
                                 ? ctx->body_limit
                                 : ngx_max(slcf->max_body_size,
                                           slcf->batch_max_body_size));
    }

    /* nginx refuses TRACE and CONNECT before it looks for a location */
    if (r->headers_out.status == NGX_HTTP_NOT_ALLOWED && ctx->action == NULL
        && path.data != NULL
        && ngx_http_supportdesk_refused_method(r, ctx, &path) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the API has no 414: an externalId too long is a validation error */
    if (r->headers_out.status == NGX_HTTP_REQUEST_URI_TOO_LARGE) {
        r->headers_out.status = NGX_HTTP_BAD_REQUEST;
        r->headers_out.status_line.len = 0;
        message = "request URI is too long";
    }

    if (ngx_http_supportdesk_error_body(r, r->headers_out.status, NULL,
                                        message, NULL, &ctx->replacement)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->replacing = 1;

    r->headers_out.content_type = ngx_http_supportdesk_content_type;
    r->headers_out.content_type_len = ngx_http_supportdesk_content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ctx->replacement.len;

    if (r->headers_out.content_length != NULL) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_http_clear_etag(r);
    ngx_http_clear_last_modified(r);

    return ngx_http_next_header_filter(r);
}


/*
 * nginx refuses some requests before it looks for a location (a request
 * line with %00, a URI too long, a method it does not know or serve): if
 * the raw path is below a supportdesk prefix, the client still gets the
 * envelope.  Only then: a location that was found and is not ours (a
 * proxy_pass under the prefix) keeps its own errors.  path: the raw path
 * below the prefix, without the query.
 */

static ngx_uint_t
ngx_http_supportdesk_api_path(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char                            *p, *start, *end;
    ngx_str_t                         *prefix;
    ngx_uint_t                         i;
    ngx_http_core_srv_conf_t          *cscf;
    ngx_http_supportdesk_main_conf_t  *smcf;

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    if (cscf == NULL || r->loc_conf != cscf->ctx->loc_conf) {
        return 0;
    }

    if (r->uri_start != NULL && r->uri_end != NULL) {
        start = r->uri_start;
        end = r->uri_end;

    } else if (r->request_start != NULL && r->header_in != NULL
               && r->request_start >= r->header_in->start
               && r->request_start < r->header_in->last)
    {
        /*
         * The request line failed to parse at its method (a lowercase
         * one): the target is the next word, as far as it was read.
         */
        p = r->request_start;
        end = r->header_in->last;

        while (p < end && *p != ' ' && *p != CR && *p != LF) {
            p++;
        }

        while (p < end && *p == ' ') {
            p++;
        }

        start = p;

        while (p < end && *p != ' ' && *p != CR && *p != LF) {
            p++;
        }

        end = p;

    } else {
        return 0;
    }

    p = ngx_strlchr(start, end, '?');
    if (p != NULL) {
        end = p;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
    prefix = smcf->prefixes.elts;

    for (i = 0; i < smcf->prefixes.nelts; i++) {
        if ((size_t) (end - start) >= prefix[i].len
            && ngx_strncmp(start, prefix[i].data, prefix[i].len) == 0)
        {
            path->data = start + prefix[i].len;
            path->len = end - path->data;
            return 1;
        }
    }

    return 0;
}


/*
 * A 405 of nginx's own (TRACE, CONNECT): the route's Allow, as the
 * router gives it for any other method; no route: 404, as for any other.
 */

static ngx_int_t
ngx_http_supportdesk_refused_method(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path)
{
    if (ngx_http_supportdesk_route(r, ctx, path) != NGX_HTTP_NOT_ALLOWED
        || ctx->allow.len == 0)
    {
        ctx->action = NULL;
        r->headers_out.status = NGX_HTTP_NOT_FOUND;
        r->headers_out.status_line.len = 0;
        return NGX_OK;
    }

    return ngx_http_supportdesk_allow_header(r, &ctx->allow);
}


static ngx_int_t
ngx_http_supportdesk_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                   *b;
    ngx_uint_t                   last;
    ngx_chain_t                 *cl, out;
    ngx_http_supportdesk_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx == NULL || !ctx->replacing) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    /* nginx's page is consumed unsent; ours goes out in its place */
    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf || b->last_in_chain) {
            last = 1;
        }

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    if (!last || ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = ctx->replacement.data + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
