
/*
 * Query strings of the listing routes, and the cursors they hand out.
 *
 * A cursor is the creation sequence (or note number) of the last record a
 * page examined, base64url-encoded: opaque to clients, and a decoder that
 * accepts nothing but digits, so a forged cursor can only move a page.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_validate.h"


#define NGX_HTTP_SUPPORTDESK_LIMIT_DEFAULT  20
#define NGX_HTTP_SUPPORTDESK_LIMIT_MAX      100
#define NGX_HTTP_SUPPORTDESK_CURSOR_MAX     20
#define NGX_HTTP_SUPPORTDESK_EVENTS_DEFAULT 100
#define NGX_HTTP_SUPPORTDESK_EVENTS_MAX     1000
#define NGX_HTTP_SUPPORTDESK_WAIT_MAX       30
/* each one costs the list script a comparison per customer it reads */
#define NGX_HTTP_SUPPORTDESK_METADATA_FILTERS  16


static ngx_int_t ngx_http_supportdesk_query_parse(ngx_http_request_t *r,
    ngx_uint_t route, ngx_http_supportdesk_query_t *q,
    ngx_http_supportdesk_report_t *rep);
static ngx_int_t ngx_http_supportdesk_query_string(ngx_http_request_t *r,
    ngx_str_t *raw, ngx_str_t *out);
static ngx_int_t ngx_http_supportdesk_event_id(ngx_str_t *id);
static ngx_uint_t ngx_http_supportdesk_query_repeated(
    ngx_http_supportdesk_query_t *q, ngx_str_t *name, ngx_uint_t *seen);


/* the parameters with one value; a bit each in "seen" */
static ngx_str_t  ngx_http_supportdesk_query_names[] = {
    ngx_string("limit"), ngx_string("cursor"), ngx_string("after"),
    ngx_string("wait"), ngx_string("text"), ngx_string("email"),
    ngx_string("name"), ngx_string("include"), ngx_null_string
};


ngx_uint_t
ngx_http_supportdesk_query_next(u_char **pos, u_char *end, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p, *start, *eq;

    p = *pos;

    /* empty pieces ("a=1&&b=2") are skipped */
    while (p < end && *p == '&') {
        p++;
    }

    if (p == end) {
        *pos = p;
        return 0;
    }

    start = p;
    eq = NULL;

    while (p < end && *p != '&') {
        if (*p == '=' && eq == NULL) {
            eq = p;
        }

        p++;
    }

    name->data = start;
    name->len = (eq != NULL ? eq : p) - start;

    if (eq != NULL) {
        value->data = eq + 1;
        value->len = p - eq - 1;

    } else {
        value->data = p;
        value->len = 0;
    }

    *pos = p;

    return 1;
}


ngx_int_t
ngx_http_supportdesk_query_step(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_uint_t route)
{
    ngx_http_supportdesk_query_t  *q;

    q = ngx_palloc(r->pool, sizeof(ngx_http_supportdesk_query_t));

    if (q == NULL
        || ngx_http_supportdesk_query_parse(r, route, q, ctx->report)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = q;

    return NGX_OK;
}


static ngx_int_t
ngx_http_supportdesk_query_parse(ngx_http_request_t *r, ngx_uint_t route,
    ngx_http_supportdesk_query_t *q, ngx_http_supportdesk_report_t *rep)
{
    u_char      *p, *end, *dst;
    ngx_str_t    rname, rvalue, name, value, *pair;
    ngx_int_t    n;
    ngx_uint_t   notes, events, max, seen;

    notes = (route == NGX_HTTP_SUPPORTDESK_QUERY_NOTES);
    events = (route == NGX_HTTP_SUPPORTDESK_QUERY_EVENTS);

    ngx_memzero(q, sizeof(ngx_http_supportdesk_query_t));
    q->limit = events ? NGX_HTTP_SUPPORTDESK_EVENTS_DEFAULT
                      : NGX_HTTP_SUPPORTDESK_LIMIT_DEFAULT;
    max = events ? NGX_HTTP_SUPPORTDESK_EVENTS_MAX
                 : NGX_HTTP_SUPPORTDESK_LIMIT_MAX;

    if (ngx_array_init(&q->metadata, r->pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = r->args.data;
    end = r->args.data + r->args.len;
    seen = 0;

    /* a full report says all it can: the rest is not read */
    while (rep->n < NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS
           && ngx_http_supportdesk_query_next(&p, end, &rname, &rvalue))
    {
        if (ngx_http_supportdesk_query_string(r, &rname, &name)
            != NGX_OK)
        {
            ngx_http_supportdesk_report_add(rep, "query", 5,
                                     "has an invalid percent-encoding");
            continue;
        }

        /* the name is quoted in the answer, which is UTF-8 */
        if (!ngx_http_supportdesk_utf8_valid(name.data, name.len)) {
            dst = ngx_pnalloc(r->pool, 3 * name.len);
            if (dst == NULL) {
                return NGX_ERROR;
            }

            name.len = ngx_http_supportdesk_utf8_quote(dst, name.data,
                                                       name.len)
                       - dst;
            name.data = dst;

            ngx_http_supportdesk_report_add(rep, (char *) name.data,
                                            name.len,
                                            "is not valid UTF-8");
            continue;
        }

        if (ngx_http_supportdesk_query_repeated(q, &name, &seen)) {
            ngx_http_supportdesk_report_add(rep, (char *) name.data,
                                            name.len, "must be sent once");
            continue;
        }

        if (ngx_http_supportdesk_query_string(r, &rvalue, &value)
            != NGX_OK)
        {
            ngx_http_supportdesk_report_add(rep, (char *) name.data,
                                     name.len,
                                     "has an invalid percent-encoding");
            continue;
        }

        if (name.len == 5 && ngx_strncmp(name.data, "limit", 5) == 0) {
            n = ngx_atoi(value.data, value.len);

            if (n < 1 || (ngx_uint_t) n > max) {
                ngx_http_supportdesk_report_add(rep, "limit", 5,
                                     events
                                     ? "must be an integer from 1 to 1000"
                                     : "must be an integer from 1 to 100");
            } else {
                q->limit = n;
            }

        } else if (events) {
            if (name.len == 5 && ngx_strncmp(name.data, "after", 5) == 0) {
                if (ngx_http_supportdesk_event_id(&value) != NGX_OK) {
                    ngx_http_supportdesk_report_add(rep, "after", 5,
                                     "is not an event id");
                } else {
                    q->after = value;
                }

            } else if (name.len == 4
                       && ngx_strncmp(name.data, "wait", 4) == 0)
            {
                n = ngx_atoi(value.data, value.len);

                if (n == NGX_ERROR || n > NGX_HTTP_SUPPORTDESK_WAIT_MAX) {
                    ngx_http_supportdesk_report_add(rep, "wait", 4,
                                     "must be an integer from 0 to 30");
                } else {
                    q->wait = n;
                }

            } else {
                ngx_http_supportdesk_report_add(rep, (char *) name.data,
                                                name.len,
                                                "is not a known parameter");
            }

        } else if (name.len == 6 && ngx_strncmp(name.data, "cursor", 6) == 0)
        {
            dst = ngx_pnalloc(r->pool, value.len + 1);
            if (dst == NULL) {
                return NGX_ERROR;
            }

            if (ngx_http_supportdesk_cursor_decode(&value, dst, &q->cursor)
                != NGX_OK)
            {
                ngx_http_supportdesk_report_add(rep, "cursor", 6,
                                     "is not a cursor this API issued");
            }

        } else if (notes && name.len == 4
                   && ngx_strncmp(name.data, "text", 4) == 0)
        {
            ngx_strlow(value.data, value.data, value.len);
            q->text = value;

        } else if (!notes && name.len == 5
                   && ngx_strncmp(name.data, "email", 5) == 0)
        {
            ngx_strlow(value.data, value.data, value.len);
            q->email = value;

        } else if (!notes && name.len == 4
                   && ngx_strncmp(name.data, "name", 4) == 0)
        {
            ngx_strlow(value.data, value.data, value.len);
            q->name = value;

        } else if (!notes && name.len == 7
                   && ngx_strncmp(name.data, "include", 7) == 0)
        {
            if (value.len == 10
                && ngx_strncmp(value.data, "notesCount", 10) == 0)
            {
                q->notes_count = 1;

            } else {
                ngx_http_supportdesk_report_add(rep, "include", 7,
                                     "only notesCount can be included");
            }

        } else if (!notes && name.len > 9
                   && ngx_strncmp(name.data, "metadata.", 9) == 0)
        {
            if (q->metadata.nelts
                == 2 * NGX_HTTP_SUPPORTDESK_METADATA_FILTERS)
            {
                ngx_http_supportdesk_report_add(rep, "metadata", 8,
                                     "filters: at most 16");
                continue;
            }

            pair = ngx_array_push_n(&q->metadata, 2);
            if (pair == NULL) {
                return NGX_ERROR;
            }

            pair[0].data = name.data + 9;
            pair[0].len = name.len - 9;
            pair[1] = value;

        } else {
            ngx_http_supportdesk_report_add(rep, (char *) name.data,
                                            name.len,
                                            "is not a known parameter");
        }
    }

    return NGX_OK;
}


/*
 * Whether a parameter that takes one value came before; metadata.<key> per
 * key (the metadata filters are few: a scan of those so far).
 */

static ngx_uint_t
ngx_http_supportdesk_query_repeated(ngx_http_supportdesk_query_t *q,
    ngx_str_t *name, ngx_uint_t *seen)
{
    ngx_str_t   *k, *pair;
    ngx_uint_t   i;

    if (name->len > 9 && ngx_strncmp(name->data, "metadata.", 9) == 0) {
        pair = q->metadata.elts;

        for (i = 0; i < q->metadata.nelts; i += 2) {
            if (pair[i].len == name->len - 9
                && ngx_strncmp(pair[i].data, name->data + 9, pair[i].len)
                   == 0)
            {
                return 1;
            }
        }

        return 0;
    }

    for (k = ngx_http_supportdesk_query_names, i = 0; k->len; k++, i++) {
        if (k->len == name->len
            && ngx_strncmp(k->data, name->data, k->len) == 0)
        {
            if (*seen & ((ngx_uint_t) 1 << i)) {
                return 1;
            }

            *seen |= (ngx_uint_t) 1 << i;
            return 0;
        }
    }

    return 0;
}


/* "<ms>-<n>", each a number Redis can take (uint64) */

static ngx_int_t
ngx_http_supportdesk_event_id(ngx_str_t *id)
{
    u_char  *p, *end, *start;
    size_t   i;

    p = id->data;
    end = p + id->len;

    for (i = 0; i < 2; i++) {
        start = p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start || p - start > NGX_HTTP_SUPPORTDESK_CURSOR_MAX - 1) {
            return NGX_ERROR;
        }

        if (i == 0) {
            if (p == end || *p != '-') {
                return NGX_ERROR;
            }

            p++;
        }
    }

    return (p == end) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_supportdesk_query_string(ngx_http_request_t *r, ngx_str_t *raw,
    ngx_str_t *out)
{
    u_char  *dst;

    dst = ngx_pnalloc(r->pool, raw->len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_supportdesk_percent_decode(raw, dst, out, 1) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_cursor_encode(ngx_pool_t *pool, u_char *seq, size_t len,
    ngx_str_t *cursor)
{
    ngx_str_t  src;

    src.data = seq;
    src.len = len;

    cursor->data = ngx_pnalloc(pool, ngx_base64_encoded_length(len));
    if (cursor->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(cursor, &src);

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_cursor_decode(ngx_str_t *cursor, u_char *dst,
    ngx_str_t *seq)
{
    size_t  i;

    /* dst holds cursor->len bytes: base64 never decodes longer */
    if (cursor->len == 0
        || ngx_base64_decoded_length(cursor->len)
           > NGX_HTTP_SUPPORTDESK_CURSOR_MAX)
    {
        return NGX_ERROR;
    }

    seq->data = dst;

    if (ngx_decode_base64url(seq, cursor) != NGX_OK || seq->len == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < seq->len; i++) {
        if (seq->data[i] < '0' || seq->data[i] > '9') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_id_step(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_str_t *id, const char *prefix)
{
    size_t       len;
    ngx_int_t    n;
    ngx_uint_t  *number;

    number = ngx_palloc(r->pool, sizeof(ngx_uint_t));
    if (number == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *number = 0;
    ctx->data = number;

    len = ngx_strlen(prefix);

    if (id->len > len && ngx_strncmp(id->data, prefix, len) == 0) {
        n = ngx_atoi(id->data + len, id->len - len);
        *number = n > 0 ? (ngx_uint_t) n : 0;
    }

    return NGX_OK;
}
