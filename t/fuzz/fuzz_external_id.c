
/*
 * libFuzzer: a raw path segment through
 * ngx_http_supportdesk_decode_external_id(), into a separate buffer and in
 * place (as the handlers do), checked against a reference decoder and the
 * documented rules: 1-255 bytes, UTF-8, no control character, no '/'.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_validate.h"
#include "fuzz_common.h"


static int
hexval(u_char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}


/* reference: -1 on a bad %-sequence, else the decoded length */
static ssize_t
ref_decode(const u_char *s, size_t len, u_char *d)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; n++) {
        if (s[i] != '%') {
            d[n] = s[i++];
            continue;
        }

        if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            return -1;
        }

        d[n] = (u_char) (hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
        i += 3;
    }

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                          i;
    ssize_t                         n;
    u_char                         *raw, *dst, *inplace, *ref;
    ngx_int_t                       rc, rc2;
    ngx_str_t                       in, out, out2;
    ngx_http_supportdesk_report_t   rep, rep2;

    raw = malloc(size ? size : 1);
    dst = malloc(size ? size : 1);
    inplace = malloc(size ? size : 1);
    ref = malloc(size ? size : 1);
    memcpy(raw, data, size);
    memcpy(inplace, data, size);

    in.data = raw;
    in.len = size;
    rep.n = 0;
    rc = ngx_http_supportdesk_decode_external_id(&in, dst, &out, &rep);

    in.data = inplace;
    rep2.n = 0;
    rc2 = ngx_http_supportdesk_decode_external_id(&in, inplace, &out2, &rep2);

    FUZZ_ASSERT(rc == rc2, "in place decodes like out of place");
    FUZZ_ASSERT(memcmp(raw, data, size) == 0, "the raw segment is not written");

    n = ref_decode(data, size, ref);

    if (rc == NGX_OK) {
        FUZZ_ASSERT(rep.n == 0, "no violation when accepted");
        FUZZ_ASSERT(out.data == dst, "decoded into dst");
        FUZZ_ASSERT(out.len >= 1 && out.len <= 255, "1-255 bytes");
        FUZZ_ASSERT(n == (ssize_t) out.len && memcmp(ref, out.data, n) == 0,
                    "decodes like the reference");
        FUZZ_ASSERT(out2.len == out.len
                    && memcmp(out2.data, out.data, out.len) == 0,
                    "in place gives the same id");
        FUZZ_ASSERT(fuzz_valid_utf8(out.data, out.len), "UTF-8");

        for (i = 0; i < out.len; i++) {
            FUZZ_ASSERT(out.data[i] >= 0x20 && out.data[i] != 0x7f,
                        "no C0 control or DEL");
            FUZZ_ASSERT(out.data[i] != '/', "no slash");
            FUZZ_ASSERT(!(out.data[i] == 0xc2 && i + 1 < out.len
                          && out.data[i + 1] >= 0x80 && out.data[i + 1] <= 0x9f),
                        "no C1 control");
        }

    } else {
        FUZZ_ASSERT(rc == NGX_DECLINED, "NGX_OK or NGX_DECLINED");
        FUZZ_ASSERT(rep.n == 1 && rep.v[0].field.len == 10
                    && memcmp(rep.v[0].field.data, "externalId", 10) == 0,
                    "one violation, on externalId");
        FUZZ_ASSERT(rep.v[0].message.len > 0, "with a message");

        if (n >= 1 && n <= 255 && fuzz_valid_utf8(ref, n)) {
            /* a well-formed id is refused only for a control char or '/' */
            int bad = 0;
            for (i = 0; i < (size_t) n; i++) {
                if (ref[i] < 0x20 || ref[i] == 0x7f || ref[i] == '/'
                    || (ref[i] == 0xc2 && i + 1 < (size_t) n
                        && ref[i + 1] >= 0x80 && ref[i + 1] <= 0x9f))
                {
                    bad = 1;
                }
            }
            FUZZ_ASSERT(bad, "a valid id is accepted");
        }
    }

    free(raw);
    free(dst);
    free(inplace);
    free(ref);

    return 0;
}
