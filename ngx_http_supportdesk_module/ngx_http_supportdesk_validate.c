
/*
 * Payload and path validation: the customer rules, body parsing, path
 * parameters.
 *
 * Only libc-backed ngx macros are used here and nothing is allocated, so
 * the unit tests can link this file with libjansson alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_supportdesk_validate.h"


#define NGX_HTTP_SUPPORTDESK_FIELD_UNKNOWN      0
#define NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY    1
#define NGX_HTTP_SUPPORTDESK_FIELD_EXTERNAL_ID  2
#define NGX_HTTP_SUPPORTDESK_FIELD_EMAIL        3
#define NGX_HTTP_SUPPORTDESK_FIELD_NAME         4
#define NGX_HTTP_SUPPORTDESK_FIELD_PHONE        5
#define NGX_HTTP_SUPPORTDESK_FIELD_AVATAR_URL   6
#define NGX_HTTP_SUPPORTDESK_FIELD_METADATA     7


typedef struct {
    ngx_str_t   name;
    ngx_uint_t  id;
} ngx_http_supportdesk_field_t;


/* a string field's own rule: NULL, or what is wrong with it */
typedef const char *(*ngx_http_supportdesk_check_pt)(const u_char *p,
    size_t len);


/* a text given to jansson in pieces (json_load_callback()) */
typedef struct {
    ngx_str_t   text[3];
    ngx_uint_t  i;
    size_t      off;
} ngx_http_supportdesk_pieces_t;


static ngx_int_t ngx_http_supportdesk_utf8_next(const u_char **pp,
    const u_char *last, uint32_t *cp);
static ngx_uint_t ngx_http_supportdesk_is_ascii_space(u_char c);
static ngx_uint_t ngx_http_supportdesk_is_space(uint32_t cp);
static ngx_uint_t ngx_http_supportdesk_is_control(uint32_t cp);
static ngx_uint_t ngx_http_supportdesk_is_host_char(u_char c);
static ngx_int_t ngx_http_supportdesk_hex(u_char c);
static ngx_uint_t ngx_http_supportdesk_prefix(const u_char *p, size_t len,
    const char *prefix);
static const char *ngx_http_supportdesk_check_url_chars(const u_char *p,
    size_t len);
static const char *ngx_http_supportdesk_check_port(const u_char *p,
    const u_char *end);
static ngx_int_t ngx_http_supportdesk_metadata_depth(json_t *v,
    ngx_uint_t depth);
static const char *ngx_http_supportdesk_check_external_id(const u_char *p,
    size_t len);
static ngx_uint_t ngx_http_supportdesk_field_id(const char *key, size_t len,
    ngx_uint_t flags);
static const char *ngx_http_supportdesk_string_field(json_t *value,
    ngx_http_supportdesk_check_pt check, ngx_str_t *s);
static const char *ngx_http_supportdesk_check_field(ngx_uint_t id,
    json_t *value, ngx_str_t *text, ngx_uint_t flags,
    ngx_http_supportdesk_customer_input_t *in);
static void ngx_http_supportdesk_set_error(json_error_t *error,
    const char *text, size_t len, enum json_error_code code);
static json_t *ngx_http_supportdesk_parsed(json_t *root, json_error_t *err,
    const char **message, json_error_t *error);
static const char *ngx_http_supportdesk_parse_message(json_error_t *err);
static size_t ngx_http_supportdesk_pieces_read(void *buffer, size_t buflen,
    void *data);
static ngx_int_t ngx_http_supportdesk_json_find_array(const u_char *p,
    const u_char *last, const char *name, ngx_str_t *array);
static ngx_int_t ngx_http_supportdesk_json_member_next(
    ngx_http_supportdesk_json_iter_t *it, ngx_uint_t depth, ngx_str_t *key,
    ngx_str_t *value);
static ngx_uint_t ngx_http_supportdesk_json_space(u_char c);
static const u_char *ngx_http_supportdesk_json_ws(const u_char *p,
    const u_char *last);
static const u_char *ngx_http_supportdesk_json_string_end(const u_char *p,
    const u_char *last);
static const u_char *ngx_http_supportdesk_json_value_end(const u_char *p,
    const u_char *last, ngx_uint_t depth);
static ngx_uint_t ngx_http_supportdesk_json_key_is(const u_char *p,
    const u_char *last, const u_char *name, size_t len);
static size_t ngx_http_supportdesk_json_unescape(const u_char **pp,
    const u_char *last, u_char *buf);
static ngx_int_t ngx_http_supportdesk_json_hex4(const u_char *p,
    const u_char *last, uint32_t *cp);


static ngx_http_supportdesk_field_t  ngx_http_supportdesk_fields[] = {
    { ngx_string("email"), NGX_HTTP_SUPPORTDESK_FIELD_EMAIL },
    { ngx_string("name"), NGX_HTTP_SUPPORTDESK_FIELD_NAME },
    { ngx_string("phone"), NGX_HTTP_SUPPORTDESK_FIELD_PHONE },
    { ngx_string("avatarUrl"), NGX_HTTP_SUPPORTDESK_FIELD_AVATAR_URL },
    { ngx_string("metadata"), NGX_HTTP_SUPPORTDESK_FIELD_METADATA },
    { ngx_string("externalId"), NGX_HTTP_SUPPORTDESK_FIELD_EXTERNAL_ID },

    /* the server-generated members of a customer object */
    { ngx_string("id"), NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY },
    { ngx_string("createdAt"), NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY },
    { ngx_string("updatedAt"), NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY },
    { ngx_string("wasCreated"), NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY },
    { ngx_string("notesCount"), NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY },
    { ngx_null_string, NGX_HTTP_SUPPORTDESK_FIELD_UNKNOWN }
};


void
ngx_http_supportdesk_report_add(ngx_http_supportdesk_report_t *rep,
    const char *field, size_t field_len, const char *message)
{
    ngx_http_supportdesk_violation_t  *v;

    if (rep->n >= NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS) {
        return;
    }

    v = &rep->v[rep->n++];

    v->field.data = (u_char *) field;
    v->field.len = field_len;
    v->message.data = (u_char *) message;
    v->message.len = ngx_strlen(message);
}


void
ngx_http_supportdesk_report_unknown(json_t *obj, ngx_str_t *known,
    const char *message, ngx_http_supportdesk_report_t *rep)
{
    const char  *key;
    size_t       len;
    json_t      *value;
    ngx_str_t   *k;

    json_object_foreach(obj, key, value) {
        len = ngx_strlen(key);

        for (k = known; k->len; k++) {
            if (k->len == len && ngx_strncmp(k->data, key, len) == 0) {
                break;
            }
        }

        if (k->len == 0) {
            ngx_http_supportdesk_report_add(rep, key, len, message);
        }
    }
}


json_t *
ngx_http_supportdesk_parse_object(const u_char *buf, size_t len,
    const char **message, json_error_t *error)
{
    json_t        *root;
    json_error_t   err;

    if (buf == NULL) {
        /* an empty request body may come without a buffer */
        buf = (const u_char *) "";
        len = 0;
    }

    if (ngx_http_supportdesk_json_ws(buf, buf + len) == buf + len) {
        return ngx_http_supportdesk_parsed(NULL, NULL, message, error);
    }

    /* JSON_DECODE_ANY: a valid non-object body gets its own message */
    root = json_loadb((const char *) buf, len,
                      JSON_REJECT_DUPLICATES|JSON_DECODE_ANY, &err);

    return ngx_http_supportdesk_parsed(root, &err, message, error);
}


json_t *
ngx_http_supportdesk_parse_value(const u_char *p, size_t len,
    const char **message, json_error_t *error)
{
    json_t        *value;
    json_error_t   err;

    value = json_loadb((const char *) p, len,
                       JSON_REJECT_DUPLICATES|JSON_DECODE_ANY, &err);

    if (value == NULL) {
        *message = ngx_http_supportdesk_parse_message(&err);

        if (error != NULL) {
            *error = err;
        }
    }

    return value;
}


json_t *
ngx_http_supportdesk_parse_batch(const u_char *buf, size_t len,
    const char *name, ngx_str_t *array, const char **message,
    json_error_t *error)
{
    json_t                         *root;
    json_error_t                    err;
    ngx_http_supportdesk_pieces_t   pieces;

    array->data = NULL;
    array->len = 0;

    if (buf == NULL
        || ngx_http_supportdesk_json_find_array(buf, buf + len, name, array)
           != NGX_OK
        || array->data == NULL)
    {
        /* no array to leave out, or text jansson will tell what is wrong
           with: all of it parsed, as any body */
        array->data = NULL;
        array->len = 0;
        return ngx_http_supportdesk_parse_object(buf, len, message, error);
    }

    /* the body with [] for the array, fed to jansson piece by piece */
    pieces.text[0].data = (u_char *) buf;
    pieces.text[0].len = array->data - buf;
    ngx_str_set(&pieces.text[1], "[]");
    pieces.text[2].data = array->data + array->len;
    pieces.text[2].len = buf + len - pieces.text[2].data;
    pieces.i = 0;
    pieces.off = 0;

    root = json_load_callback(ngx_http_supportdesk_pieces_read, &pieces,
                              JSON_REJECT_DUPLICATES|JSON_DECODE_ANY, &err);

    root = ngx_http_supportdesk_parsed(root, &err, message, error);

    if (root == NULL) {
        array->data = NULL;
        array->len = 0;
    }

    return root;
}


/* a parse's outcome: the root object, or NULL with the reason why not */

static json_t *
ngx_http_supportdesk_parsed(json_t *root, json_error_t *err,
    const char **message, json_error_t *error)
{
    if (err == NULL) {
        *message = "body is empty";

        if (error != NULL) {
            ngx_http_supportdesk_set_error(error, "empty body",
                                           sizeof("empty body") - 1,
                                           json_error_premature_end_of_input);
        }

        return NULL;
    }

    if (root != NULL) {
        if (json_is_object(root)) {
            if (error != NULL) {
                *error = *err;
            }

            return root;
        }

        json_decref(root);

        *message = "body must be a JSON object";

        if (error != NULL) {
            ngx_http_supportdesk_set_error(error, "root is not an object",
                                           sizeof("root is not an object") - 1,
                                           json_error_wrong_type);
        }

        return NULL;
    }

    if (error != NULL) {
        *error = *err;
    }

    *message = ngx_http_supportdesk_parse_message(err);

    return NULL;
}


static const char *
ngx_http_supportdesk_parse_message(json_error_t *err)
{
    switch (json_error_code(err)) {

    case json_error_invalid_utf8:
        return "body is not valid UTF-8";

    case json_error_duplicate_key:
        return "body has a duplicate key";

    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "body must not contain \\u0000";

    case json_error_stack_overflow:
        return "body is nested too deeply";

    case json_error_numeric_overflow:
        return "body has a number out of range";

    case json_error_out_of_memory:
        return "body could not be parsed (out of memory)";

    default:
        return "body is not valid JSON";
    }
}


/* json_load_callback()'s reader: the pieces one after the other */

static size_t
ngx_http_supportdesk_pieces_read(void *buffer, size_t buflen, void *data)
{
    ngx_http_supportdesk_pieces_t  *pieces = data;

    size_t      n;
    ngx_str_t  *t;

    while (pieces->i < 3) {
        t = &pieces->text[pieces->i];

        if (pieces->off < t->len) {
            n = ngx_min(buflen, t->len - pieces->off);
            ngx_memcpy(buffer, t->data + pieces->off, n);
            pieces->off += n;
            return n;
        }

        pieces->i++;
        pieces->off = 0;
    }

    return 0;
}


ngx_int_t
ngx_http_supportdesk_validate_customer(json_t *obj, ngx_str_t *text,
    ngx_uint_t flags, ngx_http_supportdesk_customer_input_t *in,
    ngx_http_supportdesk_report_t *rep)
{
    const char  *key, *msg;
    size_t       len;
    json_t      *value;
    ngx_uint_t   id, bad;

    ngx_memzero(in, sizeof(ngx_http_supportdesk_customer_input_t));

    if (!json_is_object(obj)) {
        ngx_http_supportdesk_report_add(rep, "", 0, "must be a JSON object");
        return NGX_DECLINED;
    }

    /* counted here, not from rep->n: rep may already be full */
    bad = 0;

    json_object_foreach(obj, key, value) {
        len = ngx_strlen(key);
        id = ngx_http_supportdesk_field_id(key, len, flags);

        msg = ngx_http_supportdesk_check_field(id, value, text, flags, in);

        if (msg != NULL) {
            ngx_http_supportdesk_report_add(rep, key, len, msg);
            bad++;
        }
    }

    if ((flags & NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID)
        && json_object_get(obj, "externalId") == NULL)
    {
        ngx_http_supportdesk_report_add(rep, "externalId",
                                        sizeof("externalId") - 1,
                                        "is required");
        bad++;
    }

    return bad ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_percent_decode(ngx_str_t *raw, u_char *dst,
    ngx_str_t *out, ngx_uint_t plus_is_space)
{
    u_char     *s, *last, *d;
    ngx_int_t   hi, lo;

    s = raw->data;
    last = s + raw->len;

    /* d never passes s, so decoding in place (dst == raw->data) works */
    d = dst;

    while (s < last) {

        if (*s == '+' && plus_is_space) {
            *d++ = ' ';
            s++;
            continue;
        }

        if (*s != '%') {
            *d++ = *s++;
            continue;
        }

        if (last - s < 3) {
            return NGX_ERROR;
        }

        hi = ngx_http_supportdesk_hex(s[1]);
        lo = ngx_http_supportdesk_hex(s[2]);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        *d++ = (u_char) ((hi << 4) | lo);
        s += 3;
    }

    out->data = dst;
    out->len = d - dst;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_decode_external_id(ngx_str_t *raw, u_char *dst,
    ngx_str_t *out, ngx_http_supportdesk_report_t *rep)
{
    const char  *msg;

    out->data = dst;
    out->len = 0;

    if (raw->len == 0) {
        msg = "must be 1-255 bytes";

    } else if (ngx_http_supportdesk_percent_decode(raw, dst, out, 0)
               != NGX_OK)
    {
        out->len = 0;
        msg = "has an invalid percent-encoding";

    } else {
        msg = ngx_http_supportdesk_check_external_id(dst, out->len);
    }

    if (msg != NULL) {
        ngx_http_supportdesk_report_add(rep, "externalId",
                                        sizeof("externalId") - 1, msg);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


const char *
ngx_http_supportdesk_check_idempotency_key(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_SUPPORTDESK_IDEMPOTENCY_KEY_MAX) {
        return "must be 1-255 characters";
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            return "must be visible ASCII characters only";
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_supportdesk_parse_etags(ngx_str_t *value, u_char *dst,
    ngx_str_t *out, ngx_uint_t weak)
{
    u_char      *p, *end, *d, *tag;
    ngx_uint_t   is_weak, n;

    p = value->data;
    end = p + value->len;
    d = dst;
    n = 0;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (end - p >= 1 && *p == '*') {
        p++;

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p != end) {
            return NGX_ERROR;
        }

        *d++ = '*';
        out->data = dst;
        out->len = 1;

        return NGX_OK;
    }

    for ( ;; ) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        is_weak = 0;

        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = 1;
            p += 2;
        }

        if (p == end || *p != '"') {
            return NGX_ERROR;
        }

        tag = ++p;

        /* etagc: visible characters but the double quote, or obs-text */
        while (p < end && *p != '"') {
            if (*p < 0x21 || *p == 0x7f) {
                return NGX_ERROR;
            }

            p++;
        }

        if (p == end) {
            return NGX_ERROR;
        }

        if (!is_weak || weak) {
            if (n++) {
                *d++ = ' ';
            }

            d = ngx_cpymem(d, tag, p - tag);
        }

        p++;

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == end) {
            break;
        }

        if (*p != ',') {
            return NGX_ERROR;
        }

        p++;
    }

    /* tags that can never match (weak ones only, or ""): still a list */
    if (d == dst) {
        *d++ = '!';
    }

    out->data = dst;
    out->len = d - dst;

    return NGX_OK;
}


ngx_uint_t
ngx_http_supportdesk_utf8_valid(const u_char *p, size_t len)
{
    uint32_t       cp;
    const u_char  *last;

    last = p + len;

    while (p < last) {
        if (ngx_http_supportdesk_utf8_next(&p, last, &cp) != NGX_OK) {
            return 0;
        }
    }

    return 1;
}


u_char *
ngx_http_supportdesk_utf8_quote(u_char *dst, const u_char *p, size_t len)
{
    uint32_t       cp;
    const u_char  *last, *start;

    last = p + len;

    while (p < last) {
        start = p;

        if (ngx_http_supportdesk_utf8_next(&p, last, &cp) == NGX_OK) {
            dst = ngx_cpymem(dst, start, p - start);
            continue;
        }

        *dst++ = 0xef;
        *dst++ = 0xbf;
        *dst++ = 0xbd;
        p = start + 1;
    }

    return dst;
}


u_char *
ngx_http_supportdesk_decimal(u_char *p, uint64_t n)
{
    u_char  buf[NGX_INT64_LEN], *d;

    /* the lengths of most arguments */
    if (n < 10) {
        *p++ = (u_char) ('0' + n);
        return p;
    }

    if (n < 100) {
        *p++ = (u_char) ('0' + n / 10);
        *p++ = (u_char) ('0' + n % 10);
        return p;
    }

    d = buf + sizeof(buf);

    do {
        *--d = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, d, buf + sizeof(buf) - d);
}


ngx_uint_t
ngx_http_supportdesk_valid_app(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_SUPPORTDESK_APP_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')
              || (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


const char *
ngx_http_supportdesk_check_email(const u_char *p, size_t len)
{
    const u_char  *s, *last, *at, *domain;
    uint32_t       cp;
    ngx_uint_t     n, space;

    last = p + len;
    at = NULL;
    n = 0;
    space = 0;

    for (s = p; s < last; /* void */) {

        /* a 0x40 byte is always '@' in UTF-8; the last one splits */
        if (*s == '@') {
            at = s;
        }

        if (ngx_http_supportdesk_utf8_next(&s, last, &cp) != NGX_OK) {
            return "must be valid UTF-8";
        }

        if (ngx_http_supportdesk_is_space(cp)
            || ngx_http_supportdesk_is_control(cp))
        {
            space = 1;
        }

        n++;
    }

    if (n > NGX_HTTP_SUPPORTDESK_EMAIL_MAX) {
        return "must be at most 254 characters";
    }

    if (space) {
        return "must not contain white space or control characters";
    }

    if (at == NULL || at == p || at + 1 == last) {
        return "must be a valid email address";
    }

    domain = at + 1;

    if (*domain == '.' || last[-1] == '.') {
        return "must be a valid email address";
    }

    n = 0;

    for (s = domain; s < last; s++) {
        if (*s != '.') {
            continue;
        }

        /* the domain does not end with '.', so s[1] exists */
        if (s[1] == '.') {
            return "must be a valid email address";
        }

        n++;
    }

    if (n == 0) {
        return "must be a valid email address";
    }

    return NULL;
}


const char *
ngx_http_supportdesk_check_name(const u_char *p, size_t len,
    ngx_str_t *trimmed)
{
    const u_char  *s, *last;
    uint32_t       cp;
    ngx_uint_t     n, control;

    last = p + len;

    while (p < last && ngx_http_supportdesk_is_ascii_space(*p)) {
        p++;
    }

    while (last > p && ngx_http_supportdesk_is_ascii_space(last[-1])) {
        last--;
    }

    if (trimmed != NULL) {
        trimmed->data = (u_char *) p;
        trimmed->len = last - p;
    }

    if (p == last) {
        return "must not be empty";
    }

    n = 0;
    control = 0;

    for (s = p; s < last; n++) {
        if (ngx_http_supportdesk_utf8_next(&s, last, &cp) != NGX_OK) {
            return "must be valid UTF-8";
        }

        if (ngx_http_supportdesk_is_control(cp)) {
            control = 1;
        }
    }

    if (n > NGX_HTTP_SUPPORTDESK_NAME_MAX) {
        return "must be at most 255 characters";
    }

    if (control) {
        return "must not contain control characters";
    }

    return NULL;
}


const char *
ngx_http_supportdesk_check_phone(const u_char *p, size_t len)
{
    const u_char  *s, *last;
    uint32_t       cp;
    ngx_uint_t     n, digit, other;

    last = p + len;
    n = 0;
    digit = 0;
    other = 0;

    for (s = p; s < last; n++) {
        if (ngx_http_supportdesk_utf8_next(&s, last, &cp) != NGX_OK) {
            return "must be valid UTF-8";
        }

        if (cp >= '0' && cp <= '9') {
            digit = 1;

        } else if (cp != ' ' && cp != '+' && cp != '-' && cp != '('
                   && cp != ')' && cp != '.')
        {
            other = 1;
        }
    }

    if (n > NGX_HTTP_SUPPORTDESK_PHONE_MAX) {
        return "must be at most 32 characters";
    }

    if (other) {
        return "must contain only digits, spaces and + - ( ) .";
    }

    if (!digit) {
        return "must contain at least one digit";
    }

    return NULL;
}


const char *
ngx_http_supportdesk_check_avatar_url(const u_char *p, size_t len)
{
    const char    *msg;
    const u_char  *h, *end, *last, *s, *port;

    msg = ngx_http_supportdesk_check_url_chars(p, len);

    if (msg != NULL) {
        return msg;
    }

    last = p + len;

    if (ngx_http_supportdesk_prefix(p, len, "http://")) {
        h = p + sizeof("http://") - 1;

    } else if (ngx_http_supportdesk_prefix(p, len, "https://")) {
        h = p + sizeof("https://") - 1;

    } else {
        return "must be an absolute http or https URL";
    }

    /* browsers also end the authority of http(s) URLs at '\\' */
    for (end = h; end < last; end++) {
        if (*end == '/' || *end == '?' || *end == '#' || *end == '\\') {
            break;
        }
    }

    /* userinfo ends at the last '@' of the authority */
    for (s = end; s > h; s--) {
        if (s[-1] == '@') {
            h = s;
            break;
        }
    }

    if (h == end) {
        return "must have a host";
    }

    port = NULL;

    if (*h == '[') {
        /* IP literal: "[" host "]" [ ":" port ] */
        for (s = h + 1; s < end && *s != ']'; s++) {
            if (!(ngx_http_supportdesk_hex(*s) != NGX_ERROR
                  || *s == ':' || *s == '.'))
            {
                return "must have a valid host";
            }
        }

        if (s == end || s == h + 1) {
            return "must have a valid host";
        }

        s++;

        if (s < end) {
            if (*s != ':') {
                return "must have a valid host";
            }

            port = s + 1;
        }

    } else {
        for (s = h; s < end && *s != ':'; s++) {
            if (!ngx_http_supportdesk_is_host_char(*s)) {
                return "must have a valid host";
            }
        }

        if (s == h) {
            return "must have a host";
        }

        if (s < end) {
            port = s + 1;
        }
    }

    if (port != NULL) {
        return ngx_http_supportdesk_check_port(port, end);
    }

    return NULL;
}


const char *
ngx_http_supportdesk_check_metadata(json_t *m, ngx_str_t *text,
    size_t *compact_len)
{
    size_t  len;

    if (compact_len) {
        *compact_len = 0;
    }

    if (!json_is_object(m)) {
        return "must be an object";
    }

    /* before the size: the depth walk stops early, the dump does not */
    if (ngx_http_supportdesk_metadata_depth(m, 1) != NGX_OK) {
        return "must not nest deeper than 8 levels";
    }

    len = ngx_http_supportdesk_json_compact(text->data, text->len, NULL);

    if (len == 0) {
        /* an object dumps as at least "{}": jansson failed */
        return "cannot be serialized";
    }

    if (compact_len) {
        *compact_len = len;
    }

    if (len > NGX_HTTP_SUPPORTDESK_METADATA_MAX) {
        return "must be at most 16384 bytes as compact JSON";
    }

    return NULL;
}


void
ngx_http_supportdesk_json_array(ngx_http_supportdesk_json_iter_t *it,
    ngx_str_t *array)
{
    it->pos = array->data;
    it->last = array->data + array->len;
    it->n = 0;

    if (it->pos < it->last && *it->pos == '[') {
        it->pos++;

    } else {
        /* not an array: the first next() says so */
        it->pos = NULL;
    }
}


ngx_int_t
ngx_http_supportdesk_json_next(ngx_http_supportdesk_json_iter_t *it,
    ngx_str_t *value)
{
    const u_char  *p, *end;

    if (it->pos == NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_supportdesk_json_ws(it->pos, it->last);

    if (p == it->last) {
        it->pos = NULL;
        return NGX_ERROR;
    }

    if (*p == ']') {
        /* "[]", or after an element: a "," before it would have been
           taken with the element that must follow it */
        it->pos = p + 1;
        return NGX_DONE;
    }

    if (it->n) {
        if (*p != ',') {
            it->pos = NULL;
            return NGX_ERROR;
        }

        p = ngx_http_supportdesk_json_ws(p + 1, it->last);
    }

    /* the array is level 2 of the body, its elements' brackets count on */
    end = ngx_http_supportdesk_json_value_end(p, it->last,
                                              JSON_PARSER_MAX_DEPTH - 2);
    if (end == NULL) {
        it->pos = NULL;
        return NGX_ERROR;
    }

    value->data = (u_char *) p;
    value->len = end - p;

    it->pos = end;
    it->n++;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_json_member(ngx_str_t *object, const char *name,
    size_t len, ngx_str_t *value)
{
    ngx_int_t                         rc;
    ngx_str_t                         key;
    ngx_http_supportdesk_json_iter_t  it;

    it.pos = object->data;
    it.last = object->data + object->len;
    it.n = 0;

    for ( ;; ) {
        rc = ngx_http_supportdesk_json_member_next(&it, NGX_MAX_UINT32_VALUE,
                                                   &key, value);
        if (rc == NGX_DONE) {
            return NGX_DECLINED;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_supportdesk_json_key_is(key.data, key.data + key.len,
                                             (u_char *) name, len))
        {
            return NGX_OK;
        }
    }
}


size_t
ngx_http_supportdesk_json_compact(const u_char *p, size_t len, u_char *dst)
{
    u_char         c, buf[4];
    size_t         n, k;
    const u_char  *last;

    static u_char  hex[] = "0123456789ABCDEF";

#define ngx_http_supportdesk_emit(ch)                                         \
    do {                                                                      \
        if (dst != NULL) {                                                    \
            dst[n] = (ch);                                                    \
        }                                                                     \
        n++;                                                                  \
    } while (0)

    last = p + len;
    n = 0;

    while (p < last) {
        c = *p;

        if (ngx_http_supportdesk_json_space(c)) {
            p++;
            continue;
        }

        if (c != '"') {
            /* brackets, separators, literals, numbers: as sent */
            ngx_http_supportdesk_emit(c);
            p++;
            continue;
        }

        ngx_http_supportdesk_emit('"');
        p++;

        while (p < last && *p != '"') {

            if (*p != '\\') {
                c = *p++;
                k = 1;

            } else {
                k = ngx_http_supportdesk_json_unescape(&p, last, buf);

                if (k == 0) {
                    return 0;
                }

                if (k > 1) {
                    /* a character past ASCII: its UTF-8 bytes */
                    ngx_http_supportdesk_emit(buf[0]);
                    ngx_http_supportdesk_emit(buf[1]);

                    if (k > 2) {
                        ngx_http_supportdesk_emit(buf[2]);
                    }

                    if (k > 3) {
                        ngx_http_supportdesk_emit(buf[3]);
                    }

                    continue;
                }

                c = buf[0];
            }

            /* what jansson escapes, the way it does */
            switch (c) {

            case '"':
            case '\\':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit(c);
                break;

            case '\b':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('b');
                break;

            case '\f':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('f');
                break;

            case '\n':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('n');
                break;

            case '\r':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('r');
                break;

            case '\t':
                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('t');
                break;

            default:
                if (c >= 0x20) {
                    ngx_http_supportdesk_emit(c);
                    break;
                }

                ngx_http_supportdesk_emit('\\');
                ngx_http_supportdesk_emit('u');
                ngx_http_supportdesk_emit('0');
                ngx_http_supportdesk_emit('0');
                ngx_http_supportdesk_emit(hex[c >> 4]);
                ngx_http_supportdesk_emit(hex[c & 0x0f]);
            }
        }

        if (p < last) {
            ngx_http_supportdesk_emit('"');
            p++;
        }
    }

#undef ngx_http_supportdesk_emit

    return n;
}


/*
 * Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past
 * U+10FFFF; on success *pp moves past the sequence.
 */

static ngx_int_t
ngx_http_supportdesk_utf8_next(const u_char **pp, const u_char *last,
    uint32_t *cp)
{
    u_char         c;
    const u_char  *p;
    uint32_t       u, min;
    ngx_uint_t     n, i;

    p = *pp;
    c = *p;

    if (c < 0x80) {
        *cp = c;
        *pp = p + 1;
        return NGX_OK;
    }

    if (c < 0xc2) {
        /* a continuation byte, or an overlong 2-byte lead */
        return NGX_ERROR;
    }

    if (c < 0xe0) {
        n = 1;
        min = 0x80;
        u = c & 0x1f;

    } else if (c < 0xf0) {
        n = 2;
        min = 0x800;
        u = c & 0x0f;

    } else if (c < 0xf5) {
        n = 3;
        min = 0x10000;
        u = c & 0x07;

    } else {
        return NGX_ERROR;
    }

    if ((size_t) (last - p) <= n) {
        return NGX_ERROR;
    }

    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return NGX_ERROR;
        }

        u = (u << 6) | (p[i] & 0x3f);
    }

    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
        return NGX_ERROR;
    }

    *cp = u;
    *pp = p + n + 1;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_supportdesk_is_ascii_space(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f'
           || c == '\r';
}


/*
 * Unicode White_Space plus the invisible separators that make two emails or
 * URLs look alike (U+180E, U+200B, U+FEFF).
 */

static ngx_uint_t
ngx_http_supportdesk_is_space(uint32_t cp)
{
    if (cp < 0x80) {
        return ngx_http_supportdesk_is_ascii_space((u_char) cp);
    }

    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || cp == 0x180e
           || (cp >= 0x2000 && cp <= 0x200b)
           || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f
           || cp == 0x3000 || cp == 0xfeff;
}


/* C0, DEL and C1 (U+0080-U+009F): the Unicode "Cc" category */

static ngx_uint_t
ngx_http_supportdesk_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}


/*
 * RFC 3986 reg-name (unreserved, sub-delims, pct-encoded) plus non-ASCII
 * bytes for IDNs.
 */

static ngx_uint_t
ngx_http_supportdesk_is_host_char(u_char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c >= 0x80)
    {
        return 1;
    }

    switch (c) {
    case '-': case '.': case '_': case '~': case '%':
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_supportdesk_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return NGX_ERROR;
}


/* case-insensitive; ngx_strncasecmp() would tie the tests to ngx_string.o */

static ngx_uint_t
ngx_http_supportdesk_prefix(const u_char *p, size_t len, const char *prefix)
{
    size_t  i;

    for (i = 0; prefix[i] != '\0'; i++) {
        if (i == len || ngx_tolower(p[i]) != (u_char) prefix[i]) {
            return 0;
        }
    }

    return 1;
}


static const char *
ngx_http_supportdesk_check_url_chars(const u_char *p, size_t len)
{
    const u_char  *s, *last;
    uint32_t       cp;
    ngx_uint_t     n, space;

    last = p + len;
    n = 0;
    space = 0;

    for (s = p; s < last; n++) {
        if (ngx_http_supportdesk_utf8_next(&s, last, &cp) != NGX_OK) {
            return "must be valid UTF-8";
        }

        if (ngx_http_supportdesk_is_space(cp)
            || ngx_http_supportdesk_is_control(cp))
        {
            space = 1;
        }
    }

    if (n > NGX_HTTP_SUPPORTDESK_AVATAR_URL_MAX) {
        return "must be at most 2048 characters";
    }

    if (space) {
        return "must not contain white space or control characters";
    }

    return NULL;
}


static const char *
ngx_http_supportdesk_check_port(const u_char *p, const u_char *end)
{
    ngx_uint_t  port;

    if (p == end) {
        return "must have a valid port";
    }

    port = 0;

    for ( /* void */ ; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return "must have a valid port";
        }

        port = port * 10 + (*p - '0');

        if (port > 65535) {
            return "must have a valid port";
        }
    }

    if (port == 0) {
        return "must have a valid port";
    }

    return NULL;
}


/* v is an object or array at nesting level depth */

static ngx_int_t
ngx_http_supportdesk_metadata_depth(json_t *v, ngx_uint_t depth)
{
    const char  *key;
    size_t       i;
    json_t      *child;

    if (depth > NGX_HTTP_SUPPORTDESK_METADATA_DEPTH) {
        return NGX_DECLINED;
    }

    if (json_is_object(v)) {
        json_object_foreach(v, key, child) {
            if ((json_is_object(child) || json_is_array(child))
                && ngx_http_supportdesk_metadata_depth(child, depth + 1)
                   != NGX_OK)
            {
                return NGX_DECLINED;
            }
        }

        return NGX_OK;
    }

    json_array_foreach(v, i, child) {
        if ((json_is_object(child) || json_is_array(child))
            && ngx_http_supportdesk_metadata_depth(child, depth + 1)
               != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static const char *
ngx_http_supportdesk_check_external_id(const u_char *p, size_t len)
{
    const u_char  *s, *last;
    uint32_t       cp;
    ngx_uint_t     control, slash, utf8;

    if (len == 0 || len > NGX_HTTP_SUPPORTDESK_EXTERNAL_ID_MAX) {
        return "must be 1-255 bytes";
    }

    /* /customers/bulk-update is a route: such a customer could not be read */
    if (len == sizeof("bulk-update") - 1
        && ngx_strncmp(p, "bulk-update", len) == 0)
    {
        return "is reserved: /customers/bulk-update is a route";
    }

    last = p + len;
    control = 0;
    slash = 0;
    utf8 = 1;

    for (s = p; s < last; /* void */) {

        if (ngx_http_supportdesk_utf8_next(&s, last, &cp) != NGX_OK) {
            /* keep scanning: a control byte later still wins */
            utf8 = 0;
            s++;
            continue;
        }

        if (ngx_http_supportdesk_is_control(cp)) {
            control = 1;

        } else if (cp == '/') {
            slash = 1;
        }
    }

    if (control) {
        return "must not contain control characters";
    }

    if (slash) {
        return "must not contain '/'";
    }

    if (!utf8) {
        /* it is echoed in JSON responses */
        return "must be valid UTF-8";
    }

    return NULL;
}


static ngx_uint_t
ngx_http_supportdesk_field_id(const char *key, size_t len, ngx_uint_t flags)
{
    ngx_http_supportdesk_field_t  *f;

    for (f = ngx_http_supportdesk_fields; f->name.len; f++) {
        if (f->name.len == len
            && ngx_strncmp(f->name.data, key, len) == 0)
        {
            break;
        }
    }

    if (f->id == NGX_HTTP_SUPPORTDESK_FIELD_EXTERNAL_ID
        && !(flags & NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID))
    {
        /* a single upsert takes its externalId from the path only */
        return NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY;
    }

    return f->id;
}


/* a field that must be a string: its text into s, checked by check */

static const char *
ngx_http_supportdesk_string_field(json_t *value,
    ngx_http_supportdesk_check_pt check, ngx_str_t *s)
{
    if (json_is_null(value)) {
        return "cannot be null";
    }

    if (!json_is_string(value)) {
        return "must be a string";
    }

    s->data = (u_char *) json_string_value(value);
    s->len = json_string_length(value);

    return check ? check(s->data, s->len) : NULL;
}


static const char *
ngx_http_supportdesk_check_field(ngx_uint_t id, json_t *value,
    ngx_str_t *text, ngx_uint_t flags,
    ngx_http_supportdesk_customer_input_t *in)
{
    const char  *msg;
    size_t       len;
    ngx_str_t    s, raw;

    switch (id) {

    case NGX_HTTP_SUPPORTDESK_FIELD_EMAIL:

        if (flags & NGX_HTTP_SUPPORTDESK_FORBID_EMAIL) {
            return "cannot be changed by a bulk update";
        }

        msg = ngx_http_supportdesk_string_field(value,
                                  ngx_http_supportdesk_check_email, &s);

        if (msg == NULL) {
            in->email = s;
            in->set_email = 1;
        }

        return msg;

    case NGX_HTTP_SUPPORTDESK_FIELD_NAME:

        /* check_name() also trims it */
        msg = ngx_http_supportdesk_string_field(value, NULL, &s);

        if (msg == NULL) {
            msg = ngx_http_supportdesk_check_name(s.data, s.len, &in->name);
        }

        if (msg == NULL) {
            in->set_name = 1;
        }

        return msg;

    case NGX_HTTP_SUPPORTDESK_FIELD_PHONE:

        if (json_is_null(value)) {
            in->clear_phone = 1;
            return NULL;
        }

        msg = ngx_http_supportdesk_string_field(value,
                                  ngx_http_supportdesk_check_phone, &s);

        if (msg == NULL) {
            in->phone = s;
            in->set_phone = 1;
        }

        return msg;

    case NGX_HTTP_SUPPORTDESK_FIELD_AVATAR_URL:

        if (json_is_null(value)) {
            in->clear_avatar_url = 1;
            return NULL;
        }

        msg = ngx_http_supportdesk_string_field(value,
                                  ngx_http_supportdesk_check_avatar_url, &s);

        if (msg == NULL) {
            in->avatar_url = s;
            in->set_avatar_url = 1;
        }

        return msg;

    case NGX_HTTP_SUPPORTDESK_FIELD_METADATA:

        if (json_is_null(value)) {
            in->clear_metadata = 1;
            return NULL;
        }

        /* stored as it was sent: the numbers are its own */
        if (ngx_http_supportdesk_json_member(text, "metadata",
                                             sizeof("metadata") - 1, &raw)
            != NGX_OK)
        {
            return "cannot be serialized";
        }

        msg = ngx_http_supportdesk_check_metadata(value, &raw, &len);

        if (msg == NULL) {
            in->metadata = value;
            in->metadata_text = raw;
            in->metadata_len = len;
            in->set_metadata = 1;
        }

        return msg;

    case NGX_HTTP_SUPPORTDESK_FIELD_EXTERNAL_ID:

        return ngx_http_supportdesk_string_field(value,
                                  ngx_http_supportdesk_check_external_id, &s);

    case NGX_HTTP_SUPPORTDESK_FIELD_READ_ONLY:
        return "is read-only";

    default:
        return "is not a known field";
    }
}


static void
ngx_http_supportdesk_set_error(json_error_t *error, const char *text,
    size_t len, enum json_error_code code)
{
    ngx_memzero(error, sizeof(json_error_t));

    error->line = -1;
    error->column = -1;

    len = ngx_min(len, JSON_ERROR_TEXT_LENGTH - 2);
    ngx_memcpy(error->text, text, len);

    /* where json_error_code() looks */
    error->text[JSON_ERROR_TEXT_LENGTH - 1] = (char) code;
}


/*
 * The text of the array value of the top-level member name into array
 * (array->data NULL: no such member, or not an array), NGX_OK when the
 * body is laid out as an object whose members, and the array's elements,
 * can be told apart: NGX_ERROR for text jansson is to judge whole.
 */

static ngx_int_t
ngx_http_supportdesk_json_find_array(const u_char *p, const u_char *last,
    const char *name, ngx_str_t *array)
{
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         key, value, element;
    ngx_http_supportdesk_json_iter_t  it, members;

    len = ngx_strlen(name);

    members.pos = p;
    members.last = last;
    members.n = 0;

    for ( ;; ) {
        rc = ngx_http_supportdesk_json_member_next(&members,
                                                   JSON_PARSER_MAX_DEPTH - 1,
                                                   &key, &value);
        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        /* the first one: jansson refuses a second as a duplicate */
        if (array->data == NULL && value.data[0] == '['
            && ngx_http_supportdesk_json_key_is(key.data, key.data + key.len,
                                                (u_char *) name, len))
        {
            ngx_http_supportdesk_json_array(&it, &value);

            do {
                rc = ngx_http_supportdesk_json_next(&it, &element);
            } while (rc == NGX_OK);

            /* its "]" is the one that closes the value */
            if (rc != NGX_DONE || it.pos != value.data + value.len) {
                return NGX_ERROR;
            }

            *array = value;
        }
    }

    return ngx_http_supportdesk_json_ws(members.pos, last) == last
           ? NGX_OK : NGX_ERROR;
}


/*
 * The next member of the object whose text starts at it->pos (it->n 0),
 * its key's text between the quotes into key, its value's into value
 * (nested at most depth deep): NGX_OK; NGX_DONE with it->pos past the
 * closing '}'; NGX_ERROR when the text is not laid out as an object.
 * json_member() and json_find_array() both walk an object with it.
 */

static ngx_int_t
ngx_http_supportdesk_json_member_next(ngx_http_supportdesk_json_iter_t *it,
    ngx_uint_t depth, ngx_str_t *key, ngx_str_t *value)
{
    const u_char  *p, *last, *end;

    last = it->last;

    p = ngx_http_supportdesk_json_ws(it->pos, last);

    if (it->n == 0) {
        if (p == last || *p != '{') {
            return NGX_ERROR;
        }

        p = ngx_http_supportdesk_json_ws(p + 1, last);
    }

    if (p < last && *p == '}') {
        it->pos = p + 1;
        return NGX_DONE;
    }

    if (it->n) {
        if (p == last || *p != ',') {
            return NGX_ERROR;
        }

        p = ngx_http_supportdesk_json_ws(p + 1, last);
    }

    if (p == last || *p != '"') {
        return NGX_ERROR;
    }

    end = ngx_http_supportdesk_json_string_end(p, last);
    if (end == NULL) {
        return NGX_ERROR;
    }

    key->data = (u_char *) p + 1;
    key->len = end - 1 - key->data;

    p = ngx_http_supportdesk_json_ws(end, last);

    if (p == last || *p != ':') {
        return NGX_ERROR;
    }

    p = ngx_http_supportdesk_json_ws(p + 1, last);

    end = ngx_http_supportdesk_json_value_end(p, last, depth);
    if (end == NULL) {
        return NGX_ERROR;
    }

    value->data = (u_char *) p;
    value->len = end - p;

    it->pos = end;
    it->n++;

    return NGX_OK;
}


/* JSON's white space (RFC 8259), which jansson takes too */

static ngx_uint_t
ngx_http_supportdesk_json_space(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static const u_char *
ngx_http_supportdesk_json_ws(const u_char *p, const u_char *last)
{
    while (p < last && ngx_http_supportdesk_json_space(*p)) {
        p++;
    }

    return p;
}


/* p at a '"': past the string's closing quote, NULL if it has none */

static const u_char *
ngx_http_supportdesk_json_string_end(const u_char *p, const u_char *last)
{
    for (p++; p < last; p++) {

        if (*p == '"') {
            return p + 1;
        }

        /* the escaped character (a \u's digits need no care) */
        if (*p == '\\' && ++p == last) {
            return NULL;
        }
    }

    return NULL;
}


/*
 * The end of the value at p: a string, an object or array whose brackets
 * balance (nested at most depth deep, their kinds not matched: jansson
 * checks), or a scalar up to the next delimiter.  NULL when there is none.
 */

static const u_char *
ngx_http_supportdesk_json_value_end(const u_char *p, const u_char *last,
    ngx_uint_t depth)
{
    ngx_uint_t     level;
    const u_char  *start;

    if (p == last) {
        return NULL;
    }

    if (*p == '"') {
        return ngx_http_supportdesk_json_string_end(p, last);
    }

    if (*p != '{' && *p != '[') {
        start = p;

        while (p < last && !ngx_http_supportdesk_json_space(*p)
               && *p != ',' && *p != ']' && *p != '}' && *p != ':'
               && *p != '"')
        {
            p++;
        }

        return p == start ? NULL : p;
    }

    level = 0;

    while (p < last) {

        switch (*p) {

        case '"':
            p = ngx_http_supportdesk_json_string_end(p, last);
            if (p == NULL) {
                return NULL;
            }

            continue;

        case '{':
        case '[':
            if (++level > depth) {
                return NULL;
            }

            break;

        case '}':
        case ']':
            if (--level == 0) {
                return p + 1;
            }

            break;
        }

        p++;
    }

    return NULL;
}


/* whether a key's text between its quotes, p to last, says name */

static ngx_uint_t
ngx_http_supportdesk_json_key_is(const u_char *p, const u_char *last,
    const u_char *name, size_t len)
{
    u_char  buf[4];
    size_t  i, n;

    i = 0;

    while (p < last) {

        if (*p != '\\') {
            if (i == len || name[i] != *p) {
                return 0;
            }

            i++;
            p++;
            continue;
        }

        n = ngx_http_supportdesk_json_unescape(&p, last, buf);

        if (n == 0 || len - i < n || ngx_memcmp(name + i, buf, n) != 0) {
            return 0;
        }

        i += n;
    }

    return i == len;
}


/*
 * The escape at *pp (a '\\') decoded into buf as UTF-8, a surrogate pair
 * as one character; returns its length and moves *pp past it, or 0 when
 * it is not a valid escape.
 */

static size_t
ngx_http_supportdesk_json_unescape(const u_char **pp, const u_char *last,
    u_char *buf)
{
    uint32_t       cp, lo;
    const u_char  *p;

    p = *pp;

    if (last - p < 2) {
        return 0;
    }

    switch (p[1]) {

    case '"':
    case '\\':
    case '/':
        buf[0] = p[1];
        break;

    case 'b':
        buf[0] = '\b';
        break;

    case 'f':
        buf[0] = '\f';
        break;

    case 'n':
        buf[0] = '\n';
        break;

    case 'r':
        buf[0] = '\r';
        break;

    case 't':
        buf[0] = '\t';
        break;

    case 'u':
        if (ngx_http_supportdesk_json_hex4(p + 2, last, &cp) != NGX_OK
            || (cp >= 0xdc00 && cp <= 0xdfff))
        {
            return 0;
        }

        p += 6;

        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* the high half of a surrogate pair: the low one follows */
            if (last - p < 2 || p[0] != '\\' || p[1] != 'u'
                || ngx_http_supportdesk_json_hex4(p + 2, last, &lo) != NGX_OK
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return 0;
            }

            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }

        *pp = p;

        if (cp < 0x80) {
            buf[0] = (u_char) cp;
            return 1;
        }

        if (cp < 0x800) {
            buf[0] = (u_char) (0xc0 | (cp >> 6));
            buf[1] = (u_char) (0x80 | (cp & 0x3f));
            return 2;
        }

        if (cp < 0x10000) {
            buf[0] = (u_char) (0xe0 | (cp >> 12));
            buf[1] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            buf[2] = (u_char) (0x80 | (cp & 0x3f));
            return 3;
        }

        buf[0] = (u_char) (0xf0 | (cp >> 18));
        buf[1] = (u_char) (0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (u_char) (0x80 | (cp & 0x3f));
        return 4;

    default:
        return 0;
    }

    *pp = p + 2;

    return 1;
}


/* the four hex digits of a \u escape at p */

static ngx_int_t
ngx_http_supportdesk_json_hex4(const u_char *p, const u_char *last,
    uint32_t *cp)
{
    ngx_int_t   d;
    ngx_uint_t  i;

    if (last - p < 4) {
        return NGX_ERROR;
    }

    *cp = 0;

    for (i = 0; i < 4; i++) {
        d = ngx_http_supportdesk_hex(p[i]);
        if (d == NGX_ERROR) {
            return NGX_ERROR;
        }

        *cp = (*cp << 4) | d;
    }

    return NGX_OK;
}
