
/*
 * libFuzzer: a request body through ngx_http_supportdesk_parse_object() and
 * ngx_http_supportdesk_validate_customer() (every flag combination), as
 * the PATCH handlers run them.  Checks beyond "no crash": what the
 * validator accepts obeys the rules the API documents.
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
validate(json_t *root, ngx_uint_t flags)
{
    size_t                                  len;
    ngx_int_t                               rc;
    ngx_str_t                               s;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rep.n = 0;

    rc = ngx_http_supportdesk_validate_customer(root, flags, &in, &rep);

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
        len = json_dumpb(in.metadata, NULL, 0, JSON_COMPACT);
        FUZZ_ASSERT(len == in.metadata_len, "metadata_len is the compact size");
        FUZZ_ASSERT(len <= NGX_HTTP_SUPPORTDESK_METADATA_MAX, "metadata size");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char        *buf;
    json_t        *root;
    const char    *message;
    json_error_t   error;

    /* an exact copy: ASan sees any read past the body */
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    message = NULL;
    root = ngx_http_supportdesk_parse_object(size ? buf : NULL, size,
                                             &message, &error);

    if (root == NULL) {
        FUZZ_ASSERT(message != NULL && message[0] != '\0',
                    "refused body has a message");

    } else {
        FUZZ_ASSERT(json_is_object(root), "parsed body is an object");

        validate(root, 0);
        validate(root, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID);
        validate(root, NGX_HTTP_SUPPORTDESK_FORBID_EMAIL);
        validate(root, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID
                       |NGX_HTTP_SUPPORTDESK_FORBID_EMAIL);

        json_decref(root);
    }

    free(buf);

    return 0;
}
