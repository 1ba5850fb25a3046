
/*
 * Routing: the raw request path below the location prefix is split into
 * segments and matched against the table; "*" captures one raw (still
 * percent-encoded) segment, so "%2F" never splits a parameter.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_module.h"


#define NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS  4


typedef struct {
    const char                     *segments[NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS];
    ngx_uint_t                       nsegments;
    ngx_http_supportdesk_action_t   *actions;
    ngx_str_t                        allow;
} ngx_http_supportdesk_route_t;


static ngx_http_supportdesk_action_t
    ngx_http_supportdesk_customers_actions[] = {
    { NGX_HTTP_GET, 0, 0, ngx_http_supportdesk_list_validate,
      ngx_http_supportdesk_list },
    { NGX_HTTP_PATCH, 1, 1, ngx_http_supportdesk_batch_validate,
      ngx_http_supportdesk_batch },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t  ngx_http_supportdesk_bulk_actions[] = {
    { NGX_HTTP_POST, 1, 0, ngx_http_supportdesk_bulk_validate,
      ngx_http_supportdesk_bulk },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t
    ngx_http_supportdesk_customer_actions[] = {
    { NGX_HTTP_GET, 0, 0, ngx_http_supportdesk_customer_validate_id,
      ngx_http_supportdesk_customer_get },
    { NGX_HTTP_PATCH, 1, 0, ngx_http_supportdesk_customer_validate_upsert,
      ngx_http_supportdesk_customer_upsert },
    { NGX_HTTP_DELETE, 0, 0, ngx_http_supportdesk_customer_validate_id,
      ngx_http_supportdesk_customer_delete },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t  ngx_http_supportdesk_notes_actions[] = {
    { NGX_HTTP_GET, 0, 0, ngx_http_supportdesk_note_validate_list,
      ngx_http_supportdesk_note_list },
    { NGX_HTTP_POST, 1, 0, ngx_http_supportdesk_note_validate_add,
      ngx_http_supportdesk_note_add },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t  ngx_http_supportdesk_note_actions[] = {
    { NGX_HTTP_DELETE, 0, 0, ngx_http_supportdesk_note_validate_delete,
      ngx_http_supportdesk_note_delete },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t  ngx_http_supportdesk_notif_actions[] = {
    { NGX_HTTP_GET, 0, 0, ngx_http_supportdesk_customer_validate_id,
      ngx_http_supportdesk_notif },
    { NGX_HTTP_PATCH, 1, 0, ngx_http_supportdesk_notif_validate_patch,
      ngx_http_supportdesk_notif },
    { 0, 0, 0, NULL, NULL }
};


static ngx_http_supportdesk_action_t  ngx_http_supportdesk_job_actions[] = {
    { NGX_HTTP_GET, 0, 0, ngx_http_supportdesk_job_validate,
      ngx_http_supportdesk_job_get },
    { 0, 0, 0, NULL, NULL }
};


/* literal routes first: "bulk-update" is not a customer's externalId */
static ngx_http_supportdesk_route_t  ngx_http_supportdesk_routes[] = {
    { { "customers" }, 1, ngx_http_supportdesk_customers_actions,
      ngx_string("GET, PATCH") },
    { { "customers", "bulk-update" }, 2, ngx_http_supportdesk_bulk_actions,
      ngx_string("POST") },
    { { "customers", "*" }, 2, ngx_http_supportdesk_customer_actions,
      ngx_string("GET, PATCH, DELETE") },
    { { "customers", "*", "notes" }, 3, ngx_http_supportdesk_notes_actions,
      ngx_string("GET, POST") },
    { { "customers", "*", "notes", "*" }, 4,
      ngx_http_supportdesk_note_actions, ngx_string("DELETE") },
    { { "customers", "*", "notifications" }, 3,
      ngx_http_supportdesk_notif_actions, ngx_string("GET, PATCH") },
    { { "jobs", "*" }, 2, ngx_http_supportdesk_job_actions,
      ngx_string("GET") },
    { { NULL }, 0, NULL, ngx_null_string }
};


ngx_int_t
ngx_http_supportdesk_route(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *path)
{
    u_char                         *p, *end, *start;
    ngx_uint_t                      n, i, nparams;
    ngx_str_t                       seg[NGX_HTTP_SUPPORTDESK_MAX_SEGMENTS];
    ngx_table_elt_t                *allow;
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

    for (route = ngx_http_supportdesk_routes; route->actions; route++) {
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

    if (route->actions == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    for (action = route->actions; action->method; action++) {
        if (action->method == r->method) {
            ctx->action = action;
            return NGX_OK;
        }
    }

    allow = ngx_list_push(&r->headers_out.headers);
    if (allow == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow->hash = 1;
    ngx_str_set(&allow->key, "Allow");
    allow->value = route->allow;

    return NGX_HTTP_NOT_ALLOWED;
}
