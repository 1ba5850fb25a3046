
/*
 * SipHash-2-4 with its 128-bit output (Aumasson and Bernstein): a keyed
 * pseudorandom function, cheap on short inputs.  The key cache names an
 * API key by it, under a secret of its own (ngx_http_supportdesk_auth.c).
 */

#ifndef _NGX_HTTP_SUPPORTDESK_SIPHASH_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_SIPHASH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_SUPPORTDESK_SIPHASH_KEY_LEN  16
#define NGX_HTTP_SUPPORTDESK_SIPHASH_LEN      16


/* out: 16 bytes, in the byte order of the reference implementation */
void ngx_http_supportdesk_siphash128(const u_char *key, const u_char *in,
    size_t len, u_char *out);


#endif /* _NGX_HTTP_SUPPORTDESK_SIPHASH_H_INCLUDED_ */
