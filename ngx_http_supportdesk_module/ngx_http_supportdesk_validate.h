
/*
 * Payload and path validation: the customer rules of the API (README: the
 * validation table), body parsing, path parameters.
 *
 * Pure C on top of jansson: nothing here allocates (besides jansson's own
 * parser), so the unit tests link only validate.o and libjansson.
 */


#ifndef _NGX_HTTP_SUPPORTDESK_VALIDATE_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_VALIDATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


#define NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS  32


typedef struct {
    /* JSON field name; an unknown key's name points into jansson memory
     * and is valid while the json_t root lives */
    ngx_str_t   field;
    ngx_str_t   message;   /* static text, e.g. "must be a string" */
} ngx_http_supportdesk_violation_t;


typedef struct {
    ngx_uint_t                        n;   /* violations stored (<= MAX) */
    ngx_http_supportdesk_violation_t  v[NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS];
} ngx_http_supportdesk_report_t;


/*
 * What one customer payload asks to change; strings point into the json_t,
 * metadata_text into the payload's own text (the caller's buffer).
 */
typedef struct {
    ngx_str_t   email;        /* valid when set_email */
    ngx_str_t   name;         /* trimmed; valid when set_name */
    ngx_str_t   phone;
    ngx_str_t   avatar_url;
    json_t     *metadata;     /* borrowed object; valid when set_metadata */
    /* the metadata object as sent, and the length of its compact form
       (ngx_http_supportdesk_json_compact(): numbers as sent) */
    ngx_str_t   metadata_text;
    size_t      metadata_len;
    unsigned    set_email:1;
    unsigned    set_name:1;
    unsigned    set_phone:1;
    unsigned    set_avatar_url:1;
    unsigned    set_metadata:1;
    unsigned    clear_phone:1;     /* sent as null */
    unsigned    clear_avatar_url:1;
    unsigned    clear_metadata:1;
} ngx_http_supportdesk_customer_input_t;


/* flags for ngx_http_supportdesk_validate_customer() */

/* batch items: "externalId" is required and checked like the path one */
#define NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID  0x01
/* bulk-update "set": "email" is refused */
#define NGX_HTTP_SUPPORTDESK_FORBID_EMAIL       0x02


#define NGX_HTTP_SUPPORTDESK_EMAIL_MAX          254
#define NGX_HTTP_SUPPORTDESK_NAME_MAX           255
#define NGX_HTTP_SUPPORTDESK_PHONE_MAX          32
#define NGX_HTTP_SUPPORTDESK_AVATAR_URL_MAX     2048
#define NGX_HTTP_SUPPORTDESK_METADATA_MAX       16384
#define NGX_HTTP_SUPPORTDESK_METADATA_DEPTH     8
#define NGX_HTTP_SUPPORTDESK_EXTERNAL_ID_MAX    255
#define NGX_HTTP_SUPPORTDESK_APP_ID_MAX         64


/* ignores adds past NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS */
void ngx_http_supportdesk_report_add(ngx_http_supportdesk_report_t *rep,
    const char *field, size_t field_len, const char *message);

/*
 * Parses a request body.  Returns the root object (the caller json_decref's
 * it) or NULL; on NULL, *message is a static, user-facing reason for
 * INVALID_JSON and *error (if not NULL) holds jansson's details for the log.
 * json_error_code(error) == json_error_out_of_memory means a server fault.
 */
json_t *ngx_http_supportdesk_parse_object(const u_char *buf, size_t len,
    const char **message, json_error_t *error);

/* one JSON value of any kind (a batch item): NULL with *message as above */
json_t *ngx_http_supportdesk_parse_value(const u_char *p, size_t len,
    const char **message, json_error_t *error);

/*
 * Like parse_object(), for a body whose member name is a long array (a
 * batch's "customers"): the array is not part of the tree, which holds []
 * in its place; *array is its text, each element to be parsed on its own
 * (ngx_http_supportdesk_json_next()).  array->data is NULL when the member
 * is missing or not an array: the tree then holds it as it came.  Elements
 * are not checked here: the caller parses each (JSON_DECODE_ANY), and the
 * body is valid JSON when every one of them is.
 */
json_t *ngx_http_supportdesk_parse_batch(const u_char *buf, size_t len,
    const char *name, ngx_str_t *array, const char **message,
    json_error_t *error);

/*
 * Validates every field of a customer payload object; all violations are
 * appended to rep.  text is obj as it was sent (what the metadata is stored
 * from).  Returns NGX_OK when rep gained nothing, NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_supportdesk_validate_customer(json_t *obj, ngx_str_t *text,
    ngx_uint_t flags, ngx_http_supportdesk_customer_input_t *in,
    ngx_http_supportdesk_report_t *rep);


/*
 * Raw JSON text.  jansson keeps no trace of how a number was written, so
 * what must come back as sent (metadata numbers, a filter's number) is
 * taken from the body's own bytes; and a batch is parsed an item at a
 * time, not as one tree.  Text these read may be any bytes: they never
 * read past its end, and they check only its layout (jansson checks the
 * rest: the text given to json_member() and json_compact() has been).
 */

typedef struct {
    const u_char  *pos;
    const u_char  *last;
    ngx_uint_t     n;          /* elements returned so far */
} ngx_http_supportdesk_json_iter_t;

/* the elements of the array whose text, '[' first, is array */
void ngx_http_supportdesk_json_array(ngx_http_supportdesk_json_iter_t *it,
    ngx_str_t *array);

/*
 * The next element's text into value (NGX_OK); NGX_DONE after the last;
 * NGX_ERROR when the text is not laid out as an array of values nested at
 * most JSON_PARSER_MAX_DEPTH - 2 deep (inside an object and the array).
 */
ngx_int_t ngx_http_supportdesk_json_next(ngx_http_supportdesk_json_iter_t *it,
    ngx_str_t *value);

/*
 * The text of the value of the member called name (escapes in the key
 * decoded) of the object whose text is object: NGX_OK, NGX_DECLINED when
 * there is none, NGX_ERROR when object is not an object's text.
 */
ngx_int_t ngx_http_supportdesk_json_member(ngx_str_t *object,
    const char *name, size_t len, ngx_str_t *value);

/*
 * The compact form of a JSON text, into dst (at most len bytes: never
 * longer than the text), or only its length when dst is NULL: no white
 * space, strings escaped as jansson's JSON_COMPACT writes them, numbers
 * exactly as sent (0.1 stays 0.1, 12345678901234561 all its digits).
 * 0 when a string escape is broken.
 */
size_t ngx_http_supportdesk_json_compact(const u_char *p, size_t len,
    u_char *dst);

/*
 * Percent-decodes raw into dst (capacity >= raw->len; dst may be raw->data
 * itself); with plus_is_space, '+' is a space (query strings).  NGX_ERROR
 * on a broken %-escape.
 */
ngx_int_t ngx_http_supportdesk_percent_decode(ngx_str_t *raw, u_char *dst,
    ngx_str_t *out, ngx_uint_t plus_is_space);

/*
 * Percent-decodes a raw path segment into dst (capacity >= raw->len; dst may
 * be raw->data itself) and checks the externalId rules; on success out
 * points at dst with the decoded length.  Violations go to rep with field
 * "externalId".  Returns NGX_OK or NGX_DECLINED.
 */
ngx_int_t ngx_http_supportdesk_decode_external_id(ngx_str_t *raw, u_char *dst,
    ngx_str_t *out, ngx_http_supportdesk_report_t *rep);

/* names every member of obj that known (ending with a null string) lacks */
void ngx_http_supportdesk_report_unknown(json_t *obj, ngx_str_t *known,
    const char *message, ngx_http_supportdesk_report_t *rep);

#define NGX_HTTP_SUPPORTDESK_IDEMPOTENCY_KEY_MAX  255

/* an Idempotency-Key: NULL when valid, else a static message */
const char *ngx_http_supportdesk_check_idempotency_key(const u_char *p,
    size_t len);

/*
 * An If-Match or If-None-Match value: "*", or entity tags separated by
 * commas, each "..." or (weak) W/"...".  Into dst (capacity >= value->len)
 * as "*" or the tags' contents separated by spaces: for If-Match (weak 0)
 * without the weak ones, which never match strongly; for If-None-Match
 * (weak 1) with them; "!" when no tag is left that could match.
 * NGX_ERROR: not such a list.
 */
ngx_int_t ngx_http_supportdesk_parse_etags(ngx_str_t *value, u_char *dst,
    ngx_str_t *out, ngx_uint_t weak);

/* n in decimal at p, returns the end: cheaper than ngx_sprintf() on the
   hot path (a RESP header per argument) */
u_char *ngx_http_supportdesk_decimal(u_char *p, uint64_t n);

/* whether p is valid UTF-8 (strict, as every check here takes it) */
ngx_uint_t ngx_http_supportdesk_utf8_valid(const u_char *p, size_t len);

/*
 * p fit to be quoted in an answer: each byte that starts no valid UTF-8
 * sequence as U+FFFD.  dst holds at least 3 * len bytes; returns its end.
 */
u_char *ngx_http_supportdesk_utf8_quote(u_char *dst, const u_char *p,
    size_t len);

/* an app id as API key records name it: [A-Za-z0-9_-]{1,64} */
ngx_uint_t ngx_http_supportdesk_valid_app(u_char *p, size_t len);

/* single rules: each returns NULL when valid or a static message */
const char *ngx_http_supportdesk_check_email(const u_char *p, size_t len);
const char *ngx_http_supportdesk_check_name(const u_char *p, size_t len,
    ngx_str_t *trimmed);
const char *ngx_http_supportdesk_check_phone(const u_char *p, size_t len);
const char *ngx_http_supportdesk_check_avatar_url(const u_char *p, size_t len);
/* text: m as it was sent; its compact length goes to compact_len */
const char *ngx_http_supportdesk_check_metadata(json_t *m, ngx_str_t *text,
    size_t *compact_len);


#endif /* _NGX_HTTP_SUPPORTDESK_VALIDATE_H_INCLUDED_ */
