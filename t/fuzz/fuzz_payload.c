
/*
 * libFuzzer: a request body through ngx_http_supportdesk_parse_object() and
 * ngx_http_supportdesk_validate_customer() (every flag combination), as
 * the PATCH handlers run them, and through the batch route's
 * ngx_http_supportdesk_parse_batch().  Checks beyond "no crash": what the
 * validator accepts obeys the rules the API documents; the metadata's
 * compact text parses back to the metadata; a body parsed an item at a
 * time is accepted exactly when it is accepted whole, with the same
 * items; every member's text (json_member()) parses to its value.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>

#include "ngx_http_supportdesk_validate.h"
#include "fuzz_common.h"


static void
check_report(ngx_http_supportdesk_report_t *rep)
{
    ngx_uint_t  i;

    FUZZ_ASSERT(rep->n <= NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS, "report bound");

    for (i = 0; i < rep->n; i++) {
        /* touch every byte: ASan flags a dangling field or message */
        FUZZ_ASSERT(rep->v[i].message.len > 0, "violation has a message");
        FUZZ_ASSERT(memchr(rep->v[i].message.data, 0, rep->v[i].message.len)
                    == NULL, "message without NUL");
        FUZZ_ASSERT(fuzz_valid_utf8(rep->v[i].field.data, rep->v[i].field.len),
                    "field name is UTF-8 (it is echoed in JSON)");
    }
}


static void
validate(json_t *root, ngx_str_t *text, ngx_uint_t flags)
{
    u_char                                 *c;
    size_t                                  len;
    json_t                                 *back;
    ngx_int_t                               rc;
    ngx_str_t                               s;
    json_error_t                            err;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rep.n = 0;

    rc = ngx_http_supportdesk_validate_customer(root, text, flags, &in, &rep);

    check_report(&rep);
    FUZZ_ASSERT((rc == NGX_OK) == (rep.n == 0), "NGX_OK iff no violation");

    if (rc != NGX_OK) {
        return;
    }

    FUZZ_ASSERT(!(flags & NGX_HTTP_SUPPORTDESK_FORBID_EMAIL) || !in.set_email,
                "email refused by bulk updates");

    if (in.set_email) {
        FUZZ_ASSERT(ngx_http_supportdesk_check_email(in.email.data,
                                                     in.email.len) == NULL,
                    "accepted email passes its rule");
        FUZZ_ASSERT(memchr(in.email.data, '@', in.email.len) != NULL, "@");
    }

    if (in.set_name) {
        FUZZ_ASSERT(in.name.len > 0 && in.name.len <= 255 * 4, "name length");
        FUZZ_ASSERT(in.name.data[0] != ' '
                    && in.name.data[in.name.len - 1] != ' ', "name trimmed");
        FUZZ_ASSERT(ngx_http_supportdesk_check_name(in.name.data, in.name.len,
                                                    &s) == NULL
                    && s.len == in.name.len, "trimmed name is stable");
    }

    if (in.set_phone) {
        FUZZ_ASSERT(ngx_http_supportdesk_check_phone(in.phone.data,
                                                     in.phone.len) == NULL,
                    "phone rule");
    }

    if (in.set_avatar_url) {
        FUZZ_ASSERT(in.avatar_url.len >= sizeof("http://x") - 1,
                    "avatarUrl length");
    }

    FUZZ_ASSERT(!(in.set_phone && in.clear_phone), "phone set xor cleared");
    FUZZ_ASSERT(!(in.set_metadata && in.clear_metadata),
                "metadata set xor cleared");

    if (in.set_metadata) {
        FUZZ_ASSERT(json_is_object(in.metadata), "metadata object");
        FUZZ_ASSERT(in.metadata_text.data >= text->data
                    && in.metadata_text.data + in.metadata_text.len
                       <= text->data + text->len,
                    "metadata text inside the payload's");

        c = malloc(in.metadata_len);
        len = ngx_http_supportdesk_json_compact(in.metadata_text.data,
                                                in.metadata_text.len, c);
        FUZZ_ASSERT(len == in.metadata_len, "metadata_len is the compact size");
        FUZZ_ASSERT(len <= NGX_HTTP_SUPPORTDESK_METADATA_MAX, "metadata size");
        FUZZ_ASSERT(len <= in.metadata_text.len, "compact is never longer");

        back = json_loadb((char *) c, len, JSON_REJECT_DUPLICATES, &err);
        FUZZ_ASSERT(back != NULL && json_equal(back, in.metadata),
                    "the compact text parses back to the metadata");
        FUZZ_ASSERT(ngx_http_supportdesk_json_compact(c, len, NULL) == len,
                    "the compact form is compact");
        json_decref(back);
        free(c);
    }
}


/* every member's text parses to the member's value */

static void
members(json_t *root, ngx_str_t *text)
{
    json_t        *value, *v;
    ngx_str_t      raw;
    const char    *key, *msg;

    json_object_foreach(root, key, value) {
        FUZZ_ASSERT(ngx_http_supportdesk_json_member(text, key, strlen(key),
                                                     &raw)
                    == NGX_OK, "json_member finds every member");
        v = ngx_http_supportdesk_parse_value(raw.data, raw.len, &msg, NULL);
        FUZZ_ASSERT(v != NULL && json_equal(v, value),
                    "a member's text is its value");
        json_decref(v);
    }
}


/* the batch route's parse agrees with a parse of the whole body */

static void
batch(u_char *buf, size_t size, json_t *whole)
{
    json_t                            *root, *list, *item;
    size_t                             i;
    ngx_int_t                          rc;
    ngx_str_t                          arr, text;
    ngx_uint_t                         ok;
    const char                        *msg;
    ngx_http_supportdesk_json_iter_t   it;

    msg = NULL;
    root = ngx_http_supportdesk_parse_batch(size ? buf : NULL, size,
                                            "customers", &arr, &msg, NULL);

    if (root == NULL) {
        FUZZ_ASSERT(whole == NULL, "valid whole, valid in pieces");
        FUZZ_ASSERT(msg != NULL && msg[0] != '\0', "refused with a message");
        return;
    }

    list = whole != NULL ? json_object_get(whole, "customers") : NULL;

    if (arr.data == NULL) {
        FUZZ_ASSERT(whole != NULL && json_equal(root, whole),
                    "without an array to leave out, the whole tree");
        FUZZ_ASSERT(!json_is_array(list), "an array is left out");
        json_decref(root);
        return;
    }

    FUZZ_ASSERT(json_array_size(json_object_get(root, "customers")) == 0,
                "[] where the array was");

    /* the body is valid exactly when each element is */
    ok = 1;
    i = 0;
    ngx_http_supportdesk_json_array(&it, &arr);

    while ((rc = ngx_http_supportdesk_json_next(&it, &text)) == NGX_OK) {
        item = ngx_http_supportdesk_parse_value(text.data, text.len, &msg,
                                                NULL);
        if (item == NULL) {
            ok = 0;

        } else if (whole != NULL) {
            FUZZ_ASSERT(json_equal(item, json_array_get(list, i)),
                        "the same items");
        }

        json_decref(item);
        i++;
    }

    FUZZ_ASSERT(rc == NGX_DONE, "the array splits again");
    FUZZ_ASSERT(ok == (whole != NULL), "valid in pieces, valid whole");
    FUZZ_ASSERT(whole == NULL || i == json_array_size(list),
                "as many items");

    json_decref(root);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char        *buf;
    json_t        *root;
    ngx_str_t      text;
    const char    *message;
    json_error_t   error;

    /* an exact copy: ASan sees any read past the body */
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    message = NULL;
    root = ngx_http_supportdesk_parse_object(size ? buf : NULL, size,
                                             &message, &error);

    text.data = buf;
    text.len = size;

    if (root == NULL) {
        FUZZ_ASSERT(message != NULL && message[0] != '\0',
                    "refused body has a message");

    } else {
        FUZZ_ASSERT(json_is_object(root), "parsed body is an object");

        validate(root, &text, 0);
        validate(root, &text, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID);
        validate(root, &text, NGX_HTTP_SUPPORTDESK_FORBID_EMAIL);
        validate(root, &text, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID
                              |NGX_HTTP_SUPPORTDESK_FORBID_EMAIL);
        members(root, &text);
    }

    batch(buf, size, root);

    if (root != NULL) {
        json_decref(root);
    }

    free(buf);

    return 0;
}
