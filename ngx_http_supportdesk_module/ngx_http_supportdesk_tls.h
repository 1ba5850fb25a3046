
/*
 * TLS to Redis through nginx's own ngx_ssl, on the pool's nginx-owned
 * connections (supportdesk_redis_ssl*, with proxy_ssl_* semantics): the
 * context made at configuration time, the handshake, the verification of
 * the certificate and the host name, session reuse per connection.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_TLS_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_TLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


typedef struct {
    ngx_flag_t                           enable;
    ngx_flag_t                           verify;
    ngx_uint_t                           verify_depth;
    /* the name sent (SNI) and checked; empty: the address's host */
    ngx_str_t                            name;
    ngx_str_t                            trusted_certificate;
    ngx_str_t                            certificate;
    ngx_str_t                            certificate_key;
#if (NGX_SSL)
    ngx_ssl_t                           *ssl;
#endif
} ngx_http_supportdesk_tls_conf_t;


/* the context of these settings (at configuration time); NGX_OK if off */
ngx_int_t ngx_http_supportdesk_tls_create(ngx_conf_t *cf,
    ngx_http_supportdesk_tls_conf_t *tls);

ngx_uint_t ngx_http_supportdesk_tls_equal(
    ngx_http_supportdesk_tls_conf_t *a, ngx_http_supportdesk_tls_conf_t *b);

/*
 * Starts the handshake on c, connected to host (the address's name, a port
 * after ':' is ignored), resuming *session if any.  NGX_OK: done;
 * NGX_AGAIN: done() runs on c when it ends (c->read/write handlers are
 * nginx's meanwhile); NGX_ERROR: failed, logged.
 */
ngx_int_t ngx_http_supportdesk_tls_start(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session,
    ngx_connection_handler_pt done);

/*
 * After the handshake: NGX_OK when it succeeded and (verify on) the
 * certificate and the name check out; the session is kept in *session for
 * the next connect.  NGX_ERROR otherwise, logged.
 */
ngx_int_t ngx_http_supportdesk_tls_finish(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session);

/*
 * Writes [data, data + size) on c once the handshake is done.  ngx_ssl
 * copies what it takes into the connection's own buffer (NGX_SSL_BUFFER)
 * and encrypts from there, so the caller may move or cut what is left:
 * OpenSSL retries a record it could not send from the bytes and the place
 * it was given (SSL_R_BAD_WRITE_RETRY otherwise), and a record begun is
 * sent whole.  *taken: the bytes ngx_ssl took (the caller's "sent");
 * NGX_OK: all of them on the socket; NGX_AGAIN: some wait for the socket
 * (in ngx_ssl's buffer or not taken yet), call again when it is writable,
 * with what is left (size 0: only the buffer); NGX_ERROR.
 */
ngx_int_t ngx_http_supportdesk_tls_send(ngx_connection_t *c, u_char *data,
    size_t size, size_t *taken);

/* before ngx_close_connection(): TLS goes without waiting for the peer */
void ngx_http_supportdesk_tls_close(ngx_connection_t *c);

void ngx_http_supportdesk_tls_free_session(void **session);


#endif /* _NGX_HTTP_SUPPORTDESK_TLS_H_INCLUDED_ */
