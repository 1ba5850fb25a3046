
/*
 * Envelope: {"success":..., "data"|"error":..., "timestamp":"..."}.
 *
 * Responses are written by hand into one buffer of the request pool rather
 * than built as a jansson tree: stored values are already validated UTF-8
 * (and metadata already compact JSON), so only escaping is left to do.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_envelope.h"


typedef struct {
    ngx_uint_t    status;
    const char   *code;
    const char   *message;
} ngx_http_supportdesk_status_t;


static ngx_uint_t ngx_http_supportdesk_json_reserve(
    ngx_http_supportdesk_json_t *json, size_t len);
static void ngx_http_supportdesk_json_cstring(
    ngx_http_supportdesk_json_t *json, const char *s);
static u_char *ngx_http_supportdesk_json_escape(u_char *d, u_char *p,
    size_t len);
static u_char *ngx_http_supportdesk_digits(u_char *p, ngx_uint_t n,
    ngx_uint_t width);
static void ngx_http_supportdesk_envelope_close(
    ngx_http_supportdesk_json_t *json);
static ngx_int_t ngx_http_supportdesk_answer_headers(ngx_http_request_t *r);
static const char *ngx_http_supportdesk_status_code(ngx_uint_t status);


ngx_str_t  ngx_http_supportdesk_content_type =
    ngx_string("application/json; charset=utf-8");

const ngx_http_supportdesk_error_t  ngx_http_supportdesk_customer_not_found = {
    NGX_HTTP_NOT_FOUND, "CUSTOMER_NOT_FOUND",
    "no customer with that externalId in this app", NULL
};


static ngx_http_supportdesk_status_t  ngx_http_supportdesk_statuses[] = {
    { NGX_HTTP_BAD_REQUEST, "VALIDATION_ERROR", "the request is malformed" },
    { NGX_HTTP_UNAUTHORIZED, "UNAUTHORIZED", "missing or unknown API key" },
    { NGX_HTTP_NOT_FOUND, "NOT_FOUND", "no such route" },
    { NGX_HTTP_NOT_ALLOWED, "METHOD_NOT_ALLOWED",
      "method not allowed on this route" },
    { NGX_HTTP_REQUEST_TIME_OUT, "REQUEST_TIMEOUT",
      "the request body did not arrive in time" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE",
      "body is over the size limit" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "VALIDATION_ERROR",
      "request URI is too long" },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
      "Content-Type must be application/json" },
    { NGX_HTTP_SUPPORTDESK_GONE, "CURSOR_EXPIRED",
      "events after this cursor are no longer retained" },
    { NGX_HTTP_PRECONDITION_FAILED, "PRECONDITION_FAILED",
      "a condition of the request does not hold" },
    { NGX_HTTP_SUPPORTDESK_UNPROCESSABLE, "IDEMPOTENCY_KEY_REUSED",
      "this Idempotency-Key was used with another request" },
    { NGX_HTTP_TOO_MANY_REQUESTS, "RATE_LIMITED",
      "too many requests, retry later" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE",
      "storage is unavailable" },
    { NGX_HTTP_GATEWAY_TIME_OUT, "GATEWAY_TIMEOUT",
      "storage did not answer in time" },
    { 0, "INTERNAL_ERROR", "internal error" }
};


/* the bytes JSON strings escape: controls, '"' and '\\' */
static const u_char  ngx_http_supportdesk_json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
};

static const u_char  ngx_http_supportdesk_two_digits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* the date of the last day formatted: most times of answers share it */
static time_t  ngx_http_supportdesk_json_day = -1;
static u_char  ngx_http_supportdesk_json_date[sizeof("YYYY-MM-DD") - 1];


void
ngx_http_supportdesk_json_raw(ngx_http_supportdesk_json_t *json, u_char *p,
    size_t len)
{
    if (ngx_http_supportdesk_json_reserve(json, len)) {
        json->pos = ngx_cpymem(json->pos, p, len);
    }
}


void
ngx_http_supportdesk_json_string(ngx_http_supportdesk_json_t *json,
    u_char *p, size_t len)
{
    u_char  *d;

    /* the worst case, every byte as \u00XX: nginx's escaper in one pass */
    if (!ngx_http_supportdesk_json_reserve(json, len * 6 + 2)) {
        return;
    }

    d = json->pos;
    *d++ = '"';
    d = ngx_http_supportdesk_json_escape(d, p, len);
    *d++ = '"';
    json->pos = d;
}


/*
 * As ngx_escape_json(), eight bytes at a time where none of them needs
 * escaping (most strings: every byte of emails, names and identifiers).
 */

#define NGX_HTTP_SUPPORTDESK_ONES   0x0101010101010101ULL
#define NGX_HTTP_SUPPORTDESK_HIGHS  0x8080808080808080ULL

#define ngx_http_supportdesk_has_zero(w)                                     \
    (((w) - NGX_HTTP_SUPPORTDESK_ONES) & ~(w) & NGX_HTTP_SUPPORTDESK_HIGHS)

static u_char *
ngx_http_supportdesk_json_escape(u_char *d, u_char *p, size_t len)
{
    u_char    ch, *end;
    uint64_t  w;

    end = p + len;

    while (p < end) {

        if (end - p >= 8) {
            ngx_memcpy(&w, p, 8);

            /* a byte below 0x20, a '"' or a '\\' among the eight? */
            if (!(((w - 0x20 * NGX_HTTP_SUPPORTDESK_ONES) & ~w
                   & NGX_HTTP_SUPPORTDESK_HIGHS)
                  | ngx_http_supportdesk_has_zero(
                                        w ^ ('"' * NGX_HTTP_SUPPORTDESK_ONES))
                  | ngx_http_supportdesk_has_zero(
                                       w ^ ('\\' * NGX_HTTP_SUPPORTDESK_ONES))))
            {
                ngx_memcpy(d, &w, 8);
                d += 8;
                p += 8;
                continue;
            }
        }

        ch = *p++;

        if (!ngx_http_supportdesk_json_special[ch]) {
            *d++ = ch;
            continue;
        }

        *d++ = '\\';

        switch (ch) {
        case '"':
        case '\\':
            *d++ = ch;
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        case '\b':
            *d++ = 'b';
            break;
        case '\f':
            *d++ = 'f';
            break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = (u_char) ('0' + (ch >> 4));
            ch &= 0xf;
            *d++ = (u_char) ((ch < 10) ? ('0' + ch) : ('A' + ch - 10));
        }
    }

    return d;
}


void
ngx_http_supportdesk_json_time(ngx_http_supportdesk_json_t *json, time_t t)
{
    u_char      *p;
    time_t       day;
    ngx_uint_t   sec;
    ngx_tm_t     tm;

    if (!ngx_http_supportdesk_json_reserve(json,
                                    sizeof("\"YYYY-MM-DDTHH:MM:SSZ\"")))
    {
        return;
    }

    if (t < 0) {
        t = 0;
    }

    day = t / 86400;
    sec = t % 86400;

    if (day != ngx_http_supportdesk_json_day) {
        ngx_gmtime(t, &tm);

        p = ngx_http_supportdesk_digits(ngx_http_supportdesk_json_date,
                                        tm.ngx_tm_year, 4);
        *p++ = '-';
        p = ngx_http_supportdesk_digits(p, tm.ngx_tm_mon, 2);
        *p++ = '-';
        (void) ngx_http_supportdesk_digits(p, tm.ngx_tm_mday, 2);

        ngx_http_supportdesk_json_day = day;
    }

    /* by hand: several of these per answer, ngx_sprintf() was the cost */
    p = json->pos;
    *p++ = '"';
    p = ngx_cpymem(p, ngx_http_supportdesk_json_date,
                   sizeof(ngx_http_supportdesk_json_date));
    *p++ = 'T';
    p = ngx_cpymem(p, &ngx_http_supportdesk_two_digits[sec / 3600 * 2], 2);
    *p++ = ':';
    p = ngx_cpymem(p, &ngx_http_supportdesk_two_digits[sec / 60 % 60 * 2], 2);
    *p++ = ':';
    p = ngx_cpymem(p, &ngx_http_supportdesk_two_digits[sec % 60 * 2], 2);
    *p++ = 'Z';
    *p++ = '"';
    json->pos = p;
}


void
ngx_http_supportdesk_json_stored_time(ngx_http_supportdesk_json_t *json,
    u_char *p, size_t len)
{
    time_t   t;
    u_char  *end;

    /* seconds as the scripts store them (18 digits at most: no overflow);
       anything else is the epoch, as ngx_atotm()'s error was */
    t = 0;

    if (len > 0 && len <= NGX_TIME_T_LEN - 2) {
        for (end = p + len; p < end; p++) {
            if (*p < '0' || *p > '9') {
                t = 0;
                break;
            }

            t = t * 10 + (*p - '0');
        }
    }

    ngx_http_supportdesk_json_time(json, t);
}


static u_char *
ngx_http_supportdesk_digits(u_char *p, ngx_uint_t n, ngx_uint_t width)
{
    ngx_uint_t  i;

    for (i = width; i; i--) {
        p[i - 1] = (u_char) ('0' + n % 10);
        n /= 10;
    }

    return p + width;
}


void
ngx_http_supportdesk_json_int(ngx_http_supportdesk_json_t *json, int64_t n)
{
    if (ngx_http_supportdesk_json_reserve(json, NGX_INT64_LEN)) {
        json->pos = ngx_sprintf(json->pos, "%L", n);
    }
}


ngx_int_t
ngx_http_supportdesk_envelope_start(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, size_t size)
{
    json->pool = r->pool;
    json->failed = 0;

    json->start = ngx_pnalloc(r->pool, size);
    if (json->start == NULL) {
        return NGX_ERROR;
    }

    json->pos = json->start;
    json->end = json->start + size;

    ngx_http_supportdesk_json_literal(json, "{\"success\":true,\"data\":");

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_envelope_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_supportdesk_json_t *json)
{
    ngx_str_t  body;

    ngx_http_supportdesk_envelope_close(json);

    if (json->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = json->start;
    body.len = json->pos - json->start;

    return ngx_http_supportdesk_send_body(r, status, &body);
}


ngx_int_t
ngx_http_supportdesk_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message,
    ngx_http_supportdesk_report_t *report)
{
    ngx_str_t  body;

    if (ngx_http_supportdesk_error_body(r, status, code, message, report,
                                        &body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_supportdesk_send_body(r, status, &body);
}


ngx_int_t
ngx_http_supportdesk_send_api_error(ngx_http_request_t *r,
    const ngx_http_supportdesk_error_t *err)
{
    return ngx_http_supportdesk_send_error(r, err->status, err->code,
                                           err->message, err->report);
}


ngx_int_t
ngx_http_supportdesk_send_deleted(ngx_http_request_t *r)
{
    ngx_http_supportdesk_json_t  json;

    if (ngx_http_supportdesk_envelope_start(r, &json, 128) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"deleted\":true}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);
}


const char *
ngx_http_supportdesk_too_large_message(ngx_pool_t *pool, size_t limit)
{
    u_char  *message;

    message = ngx_pnalloc(pool, sizeof("body is over the limit of  bytes")
                                + NGX_SIZE_T_LEN);
    if (message == NULL) {
        return NULL;
    }

    (void) ngx_sprintf(message, "body is over the limit of %uz bytes%Z",
                       limit);

    return (const char *) message;
}


ngx_int_t
ngx_http_supportdesk_error_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message,
    ngx_http_supportdesk_report_t *report, ngx_str_t *body)
{
    ngx_http_supportdesk_ctx_t   *ctx;
    ngx_http_supportdesk_json_t   json;

    /* the request's error code, for the metrics */
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    if (ctx != NULL) {
        ctx->error_code = (code != NULL)
                          ? code : ngx_http_supportdesk_status_code(status);
    }

    json.pool = r->pool;
    json.failed = 0;
    json.start = ngx_pnalloc(r->pool, 512);
    if (json.start == NULL) {
        return NGX_ERROR;
    }

    json.pos = json.start;
    json.end = json.start + 512;

    ngx_http_supportdesk_json_literal(&json, "{\"success\":false,\"error\":");
    ngx_http_supportdesk_json_error(r, &json, status, code, message, report);

    ngx_http_supportdesk_envelope_close(&json);

    if (json.failed) {
        return NGX_ERROR;
    }

    body->data = json.start;
    body->len = json.pos - json.start;

    return NGX_OK;
}


static const char *
ngx_http_supportdesk_status_code(ngx_uint_t status)
{
    ngx_http_supportdesk_status_t  *st;

    for (st = ngx_http_supportdesk_statuses; st->status; st++) {
        if (st->status == status) {
            break;
        }
    }

    return st->code;
}


/* {"code":...,"message":...,"details":[...]} */

void
ngx_http_supportdesk_json_error(ngx_http_request_t *r,
    ngx_http_supportdesk_json_t *json, ngx_uint_t status, const char *code,
    const char *message, ngx_http_supportdesk_report_t *report)
{
    u_char                             *p;
    size_t                              len;
    u_char                              text[512];
    ngx_uint_t                          i;
    ngx_http_variable_value_t          *id;
    ngx_http_supportdesk_status_t      *st;
    ngx_http_supportdesk_main_conf_t   *smcf;
    ngx_http_supportdesk_violation_t   *v;

    for (st = ngx_http_supportdesk_statuses; st->status; st++) {
        if (st->status == status) {
            break;
        }
    }

    if (code == NULL) {
        code = st->code;
    }

    ngx_http_supportdesk_json_literal(json, "{\"code\":");
    ngx_http_supportdesk_json_cstring(json, code);
    ngx_http_supportdesk_json_literal(json, ",\"message\":");

    if (message != NULL) {
        ngx_http_supportdesk_json_cstring(json, message);

    } else if (report != NULL && report->n) {
        /* the first violation says it best: "email is required on create" */
        v = &report->v[0];
        len = ngx_min(v->field.len, sizeof(text) - v->message.len - 1);

        /* a long field name is cut on a UTF-8 character boundary */
        while (len && len < v->field.len
               && (v->field.data[len] & 0xc0) == 0x80)
        {
            len--;
        }

        p = ngx_cpymem(text, v->field.data, len);
        *p++ = ' ';
        p = ngx_cpymem(p, v->message.data, v->message.len);
        ngx_http_supportdesk_json_string(json, text, p - text);

    } else if (status == NGX_HTTP_INTERNAL_SERVER_ERROR
               || st->status == 0)
    {
        /* a bug: give the client the id to quote, log it with the same */
        smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
        id = ngx_http_get_indexed_variable(r, smcf->request_id_index);

        if (id != NULL && !id->not_found) {
            p = ngx_snprintf(text, sizeof(text), "internal error, request id "
                             "%*s", (size_t) id->len, id->data);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "supportdesk: answering %ui INTERNAL_ERROR, "
                          "request id %*s",
                          status, (size_t) id->len, id->data);

        } else {
            p = ngx_cpymem(text, "internal error", 14);
        }

        ngx_http_supportdesk_json_string(json, text, p - text);

    } else {
        ngx_http_supportdesk_json_cstring(json, st->message);
    }

    if (report != NULL && report->n) {
        ngx_http_supportdesk_json_literal(json, ",\"details\":[");

        for (i = 0; i < report->n; i++) {
            v = &report->v[i];

            if (i) {
                ngx_http_supportdesk_json_literal(json, ",");
            }

            ngx_http_supportdesk_json_literal(json, "{\"field\":");
            ngx_http_supportdesk_json_string(json, v->field.data,
                                             v->field.len);
            ngx_http_supportdesk_json_literal(json, ",\"message\":");
            ngx_http_supportdesk_json_string(json, v->message.data,
                                             v->message.len);
            ngx_http_supportdesk_json_literal(json, "}");
        }

        ngx_http_supportdesk_json_literal(json, "]");
    }

    ngx_http_supportdesk_json_literal(json, "}");
}


ngx_int_t
ngx_http_supportdesk_send_not_modified(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_supportdesk_answer_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NOT_MODIFIED;
    r->headers_out.content_length_n = -1;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    return (rc == NGX_ERROR || rc > NGX_OK) ? rc : NGX_OK;
}


/*
 * What every answer of the API carries besides its body: the ETag an
 * action set, Idempotent-Replayed on a replay.  The conditions the
 * request sent were evaluated by the API itself (in the write scripts):
 * nginx's not-modified filter must not judge them again against the new
 * ETag.
 */

static ngx_int_t
ngx_http_supportdesk_answer_headers(ngx_http_request_t *r)
{
    u_char                      *p;
    ngx_table_elt_t             *h;
    ngx_http_supportdesk_ctx_t  *ctx;

    r->disable_not_modified = 1;

    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    if (ctx == NULL) {
        return NGX_OK;
    }

    ctx->responded = 1;

    if (ctx->etag.len) {
        h = ngx_list_push(&r->headers_out.headers);
        p = ngx_pnalloc(r->pool, ctx->etag.len + 2);

        if (h == NULL || p == NULL) {
            return NGX_ERROR;
        }

        /* a strong validator */
        *p = '"';
        ngx_memcpy(p + 1, ctx->etag.data, ctx->etag.len);
        p[ctx->etag.len + 1] = '"';

        h->hash = 1;
        ngx_str_set(&h->key, "ETag");
        h->value.data = p;
        h->value.len = ctx->etag.len + 2;
        r->headers_out.etag = h;
    }

    if (ctx->replayed) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Idempotent-Replayed");
        ngx_str_set(&h->value, "true");
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_allow_header(ngx_http_request_t *r, ngx_str_t *methods)
{
    ngx_table_elt_t  *allow;

    allow = ngx_list_push(&r->headers_out.headers);
    if (allow == NULL) {
        return NGX_ERROR;
    }

    allow->hash = 1;
    ngx_str_set(&allow->key, "Allow");
    allow->value = *methods;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_buf_t  *b;

    if (ngx_http_supportdesk_answer_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    /* nginx knows no reason phrase for it */
    if (status == NGX_HTTP_SUPPORTDESK_UNPROCESSABLE) {
        ngx_str_set(&r->headers_out.status_line,
                    "422 Unprocessable Entity");
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;

    return ngx_http_supportdesk_send_buffer(r, status,
                                            &ngx_http_supportdesk_content_type,
                                            b);
}


ngx_int_t
ngx_http_supportdesk_send_buffer(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = b->last - b->pos;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_supportdesk_envelope_close(ngx_http_supportdesk_json_t *json)
{
    ngx_http_supportdesk_json_literal(json, ",\"timestamp\":");
    ngx_http_supportdesk_json_time(json, ngx_time());
    ngx_http_supportdesk_json_literal(json, "}");
}


static void
ngx_http_supportdesk_json_cstring(ngx_http_supportdesk_json_t *json,
    const char *s)
{
    ngx_http_supportdesk_json_string(json, (u_char *) s, ngx_strlen(s));
}


static ngx_uint_t
ngx_http_supportdesk_json_reserve(ngx_http_supportdesk_json_t *json,
    size_t len)
{
    u_char  *p;
    size_t   size, used;

    if (json->failed) {
        return 0;
    }

    if ((size_t) (json->end - json->pos) >= len) {
        return 1;
    }

    used = json->pos - json->start;
    size = ngx_max((size_t) (json->end - json->start) * 2, used + len);

    p = ngx_pnalloc(json->pool, size);
    if (p == NULL) {
        json->failed = 1;
        return 0;
    }

    ngx_memcpy(p, json->start, used);

    json->start = p;
    json->pos = p + used;
    json->end = p + size;

    return 1;
}
