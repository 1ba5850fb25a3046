
/*
 * SipHash-2-4, 128-bit output: two compression rounds per 8-byte word,
 * four finalization rounds per half of the output.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_siphash.h"


#define ngx_http_supportdesk_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define ngx_http_supportdesk_sipround(v0, v1, v2, v3)                         \
    v0 += v1; v1 = ngx_http_supportdesk_rotl(v1, 13); v1 ^= v0;               \
    v0 = ngx_http_supportdesk_rotl(v0, 32);                                   \
    v2 += v3; v3 = ngx_http_supportdesk_rotl(v3, 16); v3 ^= v2;               \
    v0 += v3; v3 = ngx_http_supportdesk_rotl(v3, 21); v3 ^= v0;               \
    v2 += v1; v1 = ngx_http_supportdesk_rotl(v1, 17); v1 ^= v2;               \
    v2 = ngx_http_supportdesk_rotl(v2, 32)


/* little-endian, whatever the host's order */

static uint64_t
ngx_http_supportdesk_sip_load(const u_char *p, size_t n)
{
    size_t    i;
    uint64_t  w;

#if (NGX_HAVE_LITTLE_ENDIAN)
    if (n == 8) {
        /* one load, not eight shifts: most of the cost on short keys */
        ngx_memcpy(&w, p, sizeof(uint64_t));
        return w;
    }
#endif

    w = 0;

    for (i = 0; i < n; i++) {
        w |= (uint64_t) p[i] << (8 * i);
    }

    return w;
}


static void
ngx_http_supportdesk_sip_store(u_char *p, uint64_t w)
{
    size_t  i;

    for (i = 0; i < 8; i++) {
        p[i] = (u_char) (w >> (8 * i));
    }
}


void
ngx_http_supportdesk_siphash128(const u_char *key, const u_char *in,
    size_t len, u_char *out)
{
    size_t          left;
    uint64_t        k0, k1, m, b;
    uint64_t        v0, v1, v2, v3;
    const u_char   *end;

    k0 = ngx_http_supportdesk_sip_load(key, 8);
    k1 = ngx_http_supportdesk_sip_load(key + 8, 8);

    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;

    /* the 128-bit variant */
    v1 ^= 0xee;

    end = in + (len & ~(size_t) 7);

    for ( /* void */ ; in != end; in += 8) {
        m = ngx_http_supportdesk_sip_load(in, 8);
        v3 ^= m;
        ngx_http_supportdesk_sipround(v0, v1, v2, v3);
        ngx_http_supportdesk_sipround(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* the last 0-7 bytes, and the length's low byte on top */
    left = len & 7;
    b = ((uint64_t) len << 56) | ngx_http_supportdesk_sip_load(in, left);

    v3 ^= b;
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    v0 ^= b;

    v2 ^= 0xee;
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sip_store(out, v0 ^ v1 ^ v2 ^ v3);

    v1 ^= 0xdd;
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sipround(v0, v1, v2, v3);
    ngx_http_supportdesk_sip_store(out + 8, v0 ^ v1 ^ v2 ^ v3);
}
