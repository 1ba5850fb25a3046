
/*
 * libFuzzer: the single-field rules on raw bytes (the first byte picks the
 * rule).  Through the API the strings come from jansson (UTF-8 already);
 * here they may be anything, so the rules' own UTF-8 walking is exercised
 * on every malformed sequence.  Accepted values are checked against the
 * documented rules.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>

#include "ngx_http_supportdesk_validate.h"
#include "fuzz_common.h"


static size_t
chars(const u_char *p, size_t len)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        n += (p[i] & 0xc0) != 0x80;
    }

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i, len;
    u_char      *p;
    ngx_str_t    trimmed;
    const char  *msg;

    if (size == 0) {
        return 0;
    }

    len = size - 1;
    p = malloc(len ? len : 1);
    memcpy(p, data + 1, len);

    switch (data[0] % 4) {

    case 0:
        msg = ngx_http_supportdesk_check_email(p, len);
        if (msg == NULL) {
            u_char *at = memrchr(p, '@', len);
            FUZZ_ASSERT(at && at > p && at < p + len - 1, "local@domain");
            FUZZ_ASSERT(memchr(at, '.', p + len - at) != NULL, "dot in domain");
            FUZZ_ASSERT(fuzz_valid_utf8(p, len) && chars(p, len) <= 254,
                        "email: UTF-8, 254 characters");
            for (i = 0; i < len; i++) {
                FUZZ_ASSERT(p[i] > 0x20 && p[i] != 0x7f, "no space/control");
            }
        }
        break;

    case 1:
        msg = ngx_http_supportdesk_check_name(p, len, &trimmed);
        FUZZ_ASSERT(trimmed.data >= p && trimmed.data + trimmed.len <= p + len,
                    "trimmed inside the input");
        if (msg == NULL) {
            FUZZ_ASSERT(trimmed.len > 0 && fuzz_valid_utf8(trimmed.data,
                                                           trimmed.len)
                        && chars(trimmed.data, trimmed.len) <= 255,
                        "name: 1-255 UTF-8 characters");
        }
        break;

    case 2:
        msg = ngx_http_supportdesk_check_phone(p, len);
        if (msg == NULL) {
            int digit = 0;
            FUZZ_ASSERT(len <= 32, "phone: 32 characters");
            for (i = 0; i < len; i++) {
                FUZZ_ASSERT(strchr("0123456789 +-().", p[i]) != NULL
                            && p[i] != '\0', "phone characters");
                digit |= p[i] >= '0' && p[i] <= '9';
            }
            FUZZ_ASSERT(digit, "phone: a digit");
        }
        break;

    default:
        msg = ngx_http_supportdesk_check_avatar_url(p, len);
        if (msg == NULL) {
            FUZZ_ASSERT((len > 7 && strncasecmp((char *) p, "http://", 7) == 0)
                        || (len > 8 && strncasecmp((char *) p, "https://", 8)
                            == 0), "http(s) URL with a host");
            FUZZ_ASSERT(fuzz_valid_utf8(p, len) && chars(p, len) <= 2048,
                        "avatarUrl: UTF-8, 2048 characters");
            for (i = 0; i < len; i++) {
                FUZZ_ASSERT(p[i] > 0x20 && p[i] != 0x7f, "no space/control");
            }
        }
        break;
    }

    if (msg) {
        FUZZ_ASSERT(msg[0] != '\0', "a message");
    }

    free(p);

    return 0;
}
