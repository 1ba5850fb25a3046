
/*
 * Routing: the raw request path below the location prefix is split into
 * segments and matched against the table; "*" captures one raw (still
 * percent-encoded) segment, so "%2F" never splits a parameter.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_router.h"
#include "ngx_http_supportdesk_actions.h"


#define NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS  4


/* a route has at most three methods; the list ends with method 0 */
#define NGX_HTTP_SUPPORTDESK_MAX_METHODS   4


typedef struct {
    const char                     *segments[NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS];
    ngx_uint_t                       nsegments;
    ngx_str_t                        allow;
    /* the route's template, for the logs */
    ngx_str_t                        name;
    ngx_http_supportdesk_action_t    actions[NGX_HTTP_SUPPORTDESK_MAX_METHODS];
} ngx_http_supportdesk_route_t;


/* the top-level fields of the bodies whose validate step does not check
   every field itself */
static ngx_str_t  ngx_http_supportdesk_batch_fields[] = {
    ngx_string("customers"), ngx_null_string
};

static ngx_str_t  ngx_http_supportdesk_bulk_fields[] = {
    ngx_string("filter"), ngx_string("set"), ngx_null_string
};

static ngx_str_t  ngx_http_supportdesk_note_fields[] = {
    ngx_string("note"), ngx_null_string
};


/*
 * Literal routes first: "bulk-update" is not a customer's externalId.
 * Per method: has a body, takes the batch body limit, params[0] is an
 * externalId (decoded and checked before validate), a write (takes an
 * Idempotency-Key), conditional (takes If-Match / If-None-Match), the
 * body's fields, validate, run.
 */
static ngx_http_supportdesk_route_t  ngx_http_supportdesk_routes[] = {

    { { "customers" }, 1, ngx_string("GET, HEAD, PATCH"),
      ngx_string("/customers"),
      { { NGX_HTTP_GET, 0, 0, 0, 0, 0, NULL,
          ngx_http_supportdesk_list_validate,
          ngx_http_supportdesk_list },
        { NGX_HTTP_PATCH, 1, 1, 0, 1, 0, ngx_http_supportdesk_batch_fields,
          ngx_http_supportdesk_batch_validate,
          ngx_http_supportdesk_batch } } },

    { { "customers", "bulk-update" }, 2, ngx_string("POST"),
      ngx_string("/customers/bulk-update"),
      { { NGX_HTTP_POST, 1, 0, 0, 1, 0, ngx_http_supportdesk_bulk_fields,
          ngx_http_supportdesk_bulk_validate,
          ngx_http_supportdesk_bulk } } },

    { { "customers", "*" }, 2, ngx_string("GET, HEAD, PATCH, DELETE"),
      ngx_string("/customers/{externalId}"),
      { { NGX_HTTP_GET, 0, 0, 1, 0, 1, NULL, NULL,
          ngx_http_supportdesk_customer_get },
        { NGX_HTTP_PATCH, 1, 0, 1, 1, 1, NULL,
          ngx_http_supportdesk_customer_validate_upsert,
          ngx_http_supportdesk_customer_upsert },
        { NGX_HTTP_DELETE, 0, 0, 1, 1, 1, NULL, NULL,
          ngx_http_supportdesk_customer_delete } } },

    { { "customers", "*", "notes" }, 3, ngx_string("GET, HEAD, POST"),
      ngx_string("/customers/{externalId}/notes"),
      { { NGX_HTTP_GET, 0, 0, 1, 0, 0, NULL,
          ngx_http_supportdesk_note_validate_list,
          ngx_http_supportdesk_note_list },
        { NGX_HTTP_POST, 1, 0, 1, 1, 0, ngx_http_supportdesk_note_fields,
          ngx_http_supportdesk_note_validate_add,
          ngx_http_supportdesk_note_add } } },

    { { "customers", "*", "notes", "*" }, 4, ngx_string("DELETE"),
      ngx_string("/customers/{externalId}/notes/{noteId}"),
      { { NGX_HTTP_DELETE, 0, 0, 1, 1, 0, NULL,
          ngx_http_supportdesk_note_validate_delete,
          ngx_http_supportdesk_note_delete } } },

    { { "customers", "*", "notifications" }, 3, ngx_string("GET, HEAD, PATCH"),
      ngx_string("/customers/{externalId}/notifications"),
      { { NGX_HTTP_GET, 0, 0, 1, 0, 0, NULL, NULL,
          ngx_http_supportdesk_notif },
        { NGX_HTTP_PATCH, 1, 0, 1, 1, 0, NULL,
          ngx_http_supportdesk_notif_validate_patch,
          ngx_http_supportdesk_notif } } },

    { { "jobs", "*" }, 2, ngx_string("GET, HEAD"),
      ngx_string("/jobs/{jobId}"),
      { { NGX_HTTP_GET, 0, 0, 0, 0, 0, NULL,
          ngx_http_supportdesk_job_validate,
          ngx_http_supportdesk_job_get } } },

    { { "events" }, 1, ngx_string("GET, HEAD"),
      ngx_string("/events"),
      { { NGX_HTTP_GET, 0, 0, 0, 0, 0, NULL,
          ngx_http_supportdesk_events_validate,
          ngx_http_supportdesk_events } } },

    { { NULL }, 0, ngx_null_string, ngx_null_string, { { 0 } } }
};


ngx_int_t
ngx_http_supportdesk_route_request(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_loc_conf_t *slcf)
{
    u_char     *q;
    ngx_int_t   rc;
    ngx_str_t   path;

    /* routes match the raw path: %2F stays inside its segment */
    path = r->unparsed_uri;
    q = ngx_strlchr(path.data, path.data + path.len, '?');
    if (q != NULL) {
        path.len = q - path.data;
    }

    if (path.len < slcf->prefix.len
        || ngx_strncmp(path.data, slcf->prefix.data, slcf->prefix.len) != 0)
    {
        return NGX_HTTP_NOT_FOUND;
    }

    path.data += slcf->prefix.len;
    path.len -= slcf->prefix.len;

    rc = ngx_http_supportdesk_route(r, ctx, &path);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the batch route takes bigger bodies; nginx enforces the larger */
    ctx->body_limit = ctx->action->batch_body ? slcf->batch_max_body_size
                                              : slcf->max_body_size;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_route(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path)
{
    u_char                         *p, *end, *start;
    ngx_str_t                       seg[NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS];
    ngx_uint_t                      n, i, nparams, method;
    ngx_http_supportdesk_route_t   *route;
    ngx_http_supportdesk_action_t  *action;

    p = path->data;
    end = path->data + path->len;

    /* "location /api/v1" leaves "/customers/..." */
    if (p < end && *p == '/') {
        p++;
    }

    for (n = 0; ; n++) {
        if (n == NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS) {
            return NGX_HTTP_NOT_FOUND;
        }

        start = p;

        while (p < end && *p != '/') {
            p++;
        }

        seg[n].data = start;
        seg[n].len = p - start;

        if (p == end) {
            n++;
            break;
        }

        p++;
    }

    for (route = ngx_http_supportdesk_routes; route->nsegments; route++) {
        if (route->nsegments != n) {
            continue;
        }

        nparams = 0;

        for (i = 0; i < n; i++) {
            if (route->segments[i][0] == '*') {
                ctx->params[nparams++] = seg[i];
                continue;
            }

            if (seg[i].len != ngx_strlen(route->segments[i])
                || ngx_strncmp(seg[i].data, route->segments[i], seg[i].len)
                   != 0)
            {
                break;
            }
        }

        if (i == n) {
            break;
        }
    }

    if (route->nsegments == 0) {
        return NGX_HTTP_NOT_FOUND;
    }

    /* for the metrics and $supportdesk_route, also when the method is not */
    ctx->route = route - ngx_http_supportdesk_routes + 1;
    ctx->route_name = &route->name;

    /* HEAD is GET without the body: nginx's header filter drops it */
    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    for (action = route->actions; action->method; action++) {
        if (action->method == method) {
            ctx->action = action;

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "supportdesk: route \"%V\"", &route->name);

            return NGX_OK;
        }
    }

    ctx->allow = route->allow;

    return NGX_HTTP_NOT_ALLOWED;
}


ngx_str_t *
ngx_http_supportdesk_route_name(ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_supportdesk_routes[i].nsegments; i++) {
        if (i + 1 == n) {
            return &ngx_http_supportdesk_routes[i].name;
        }
    }

    return NULL;
}
