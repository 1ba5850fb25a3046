
/*
 * libFuzzer: the error envelope, ngx_http_supportdesk_error_body(), with a
 * report whose field names come from the input (through the API they are
 * the JSON keys of the body: any UTF-8 text, any length) and every status
 * of the envelope table but 500 (with no message, a 500 or an unknown
 * status quotes the request id, an nginx variable: the integration tests
 * cover those).
 * The body must be one valid JSON object whenever the inputs are UTF-8.
 *
 * Input: status selector byte, then pieces separated by 0xff: code,
 * message, then field names (each gets the next message from a fixed set).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_envelope.h"
#include "fuzz_common.h"


static ngx_uint_t  statuses[] = {
    400, 401, 404, 405, 408, 413, 414, 415, 429, 503, 504
};

static const char  *messages[] = {
    "is not a known field", "is read-only", "must be a string",
    "must be at most 254 characters", "is required on create"
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *buf, *p, *end, *piece[40];
    size_t                          plen[40];
    json_t                         *out;
    ngx_int_t                       rc;
    ngx_str_t                       body;
    ngx_uint_t                      n, i, status, utf8;
    ngx_pool_t                      pool;
    json_error_t                    err;
    ngx_http_request_t              r;
    ngx_http_supportdesk_report_t   rep;
    char                           *code, *message;
    void                           *ctx[64];

    if (size < 1) {
        return 0;
    }

    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];

    /* NUL-terminated copies: code and message are C strings */
    buf = malloc(size + 40);
    end = buf;
    n = 0;
    p = (u_char *) data + 1;

    while (n < 40) {
        u_char *q = memchr(p, 0xff, (u_char *) data + size - p);
        size_t  l = (q ? q : (u_char *) data + size) - p;

        piece[n] = end;
        plen[n] = l;
        memcpy(end, p, l);
        end += l;
        *end++ = '\0';
        n++;

        if (q == NULL) {
            break;
        }

        p = q + 1;
    }

    code = n > 0 && plen[0] ? (char *) piece[0] : NULL;
    message = n > 1 && plen[1] ? (char *) piece[1] : NULL;

    rep.n = 0;
    utf8 = 1;

    for (i = 0; i < n; i++) {
        /* C strings end at the first NUL */
        utf8 &= fuzz_valid_utf8(piece[i], strlen((char *) piece[i]));
    }

    for (i = 2; i < n; i++) {
        ngx_http_supportdesk_report_add(&rep, (char *) piece[i], plen[i],
                                        messages[i % 5]);
        /* JSON keys never hold NUL: such a field is not a real case */
        utf8 &= memchr(piece[i], 0, plen[i]) == NULL;
    }

    memset(&r, 0, sizeof(r));
    memset(&pool, 0, sizeof(pool));
    r.pool = &pool;
    /* nginx gives every request its modules' contexts: none set here (the
       error body notes its code in the module's, when there is one) */
    memset(ctx, 0, sizeof(ctx));
    r.ctx = ctx;

    rc = ngx_http_supportdesk_error_body(&r, status, code, message,
                                         rep.n ? &rep : NULL, &body);
    FUZZ_ASSERT(rc == NGX_OK, "error body built");

    if (utf8) {
        out = json_loadb((char *) body.data, body.len, JSON_REJECT_DUPLICATES,
                         &err);
        if (out == NULL) {
            fprintf(stderr, "fuzz: %s at %d: %.*s\n", err.text, err.position,
                    (int) ngx_min(body.len, 2000), body.data);
        }
        FUZZ_ASSERT(out != NULL, "the error envelope is valid JSON");
        FUZZ_ASSERT(json_is_false(json_object_get(out, "success")),
                    "success false");
        FUZZ_ASSERT(json_is_object(json_object_get(out, "error")), "error");
        json_decref(out);
    }

    free(buf);
    fuzz_pool_reset();

    return 0;
}
