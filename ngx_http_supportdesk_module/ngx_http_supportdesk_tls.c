
/*
 * TLS to Redis with nginx's ngx_ssl (see the header).  The pattern is
 * nginx's upstream one: ngx_ssl_create_connection() on the connected
 * socket, ngx_ssl_handshake(), then SSL_get_verify_result() and
 * ngx_ssl_check_host() when verification is on; afterwards c->recv and
 * c->send are ngx_ssl's, so the pool reads and writes as before.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_supportdesk_tls.h"


#if (NGX_SSL)

static void ngx_http_supportdesk_tls_host(ngx_http_supportdesk_tls_conf_t *tls,
    ngx_str_t *host, ngx_str_t *name);
static ngx_uint_t ngx_http_supportdesk_tls_str_eq(ngx_str_t *a,
    ngx_str_t *b);


ngx_int_t
ngx_http_supportdesk_tls_create(ngx_conf_t *cf,
    ngx_http_supportdesk_tls_conf_t *tls)
{
    ngx_pool_cleanup_t  *cln;

    if (!tls->enable) {
        return NGX_OK;
    }

    if (tls->verify && tls->trusted_certificate.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no \"supportdesk_redis_ssl_trusted_certificate\" "
                           "for \"supportdesk_redis_ssl_verify\"");
        return NGX_ERROR;
    }

    if ((tls->certificate.len == 0) != (tls->certificate_key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"supportdesk_redis_ssl_certificate\" and "
                           "\"supportdesk_redis_ssl_certificate_key\" go "
                           "together");
        return NGX_ERROR;
    }

    tls->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (tls->ssl == NULL) {
        return NGX_ERROR;
    }

    tls->ssl->log = cf->log;

    if (ngx_ssl_create(tls->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(tls->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = tls->ssl;

    if (tls->certificate.len
        && ngx_ssl_certificate(cf, tls->ssl, &tls->certificate,
                               &tls->certificate_key, NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (tls->trusted_certificate.len
        && ngx_ssl_trusted_certificate(cf, tls->ssl,
                                       &tls->trusted_certificate,
                                       tls->verify_depth)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_supportdesk_tls_equal(ngx_http_supportdesk_tls_conf_t *a,
    ngx_http_supportdesk_tls_conf_t *b)
{
    return a->enable == b->enable
           && (!a->enable
               || (a->verify == b->verify
                   && a->verify_depth == b->verify_depth
                   && ngx_http_supportdesk_tls_str_eq(&a->name, &b->name)
                   && ngx_http_supportdesk_tls_str_eq(&a->trusted_certificate,
                                                 &b->trusted_certificate)
                   && ngx_http_supportdesk_tls_str_eq(&a->certificate,
                                                      &b->certificate)
                   && ngx_http_supportdesk_tls_str_eq(&a->certificate_key,
                                                      &b->certificate_key)));
}


static ngx_uint_t
ngx_http_supportdesk_tls_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_strncmp(a->data, b->data, a->len) == 0);
}


ngx_int_t
ngx_http_supportdesk_tls_start(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session,
    ngx_connection_handler_pt done)
{
    u_char     *sni;
    ngx_int_t   rc;
    ngx_str_t   name;

    if (ngx_ssl_create_connection(tls->ssl, c, NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_supportdesk_tls_host(tls, host, &name);

    /* no SNI for an address, as nginx's proxy_ssl_server_name does not */
    if (name.len
        && ngx_inet_addr(name.data, name.len) == INADDR_NONE
#if (NGX_HAVE_INET6)
        && ngx_inet6_addr(name.data, name.len, NULL) != NGX_OK
#endif
       )
    {
        sni = ngx_pnalloc(c->pool, name.len + 1);
        if (sni == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_cpystrn(sni, name.data, name.len + 1);

        if (SSL_set_tlsext_host_name(c->ssl->connection, (char *) sni) == 0)
        {
            ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                          "SSL_set_tlsext_host_name(\"%s\") failed", sni);
            return NGX_ERROR;
        }
    }

    if (*session != NULL
        && ngx_ssl_set_session(c, *session) != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = done;
        return NGX_AGAIN;
    }

    return rc;
}


ngx_int_t
ngx_http_supportdesk_tls_finish(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session)
{
    long        rc;
    ngx_str_t   name;

    if (!c->ssl->handshaked) {
        /* ngx_ssl_handshake() logged why */
        return NGX_ERROR;
    }

    if (tls->verify) {
        rc = SSL_get_verify_result(c->ssl->connection);

        if (rc != X509_V_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "supportdesk: redis %V: certificate verify error: "
                          "(%l:%s)", host, rc,
                          X509_verify_cert_error_string(rc));
            return NGX_ERROR;
        }

        ngx_http_supportdesk_tls_host(tls, host, &name);

        if (ngx_ssl_check_host(c, &name) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "supportdesk: redis %V: certificate does not match "
                          "\"%V\"", host, &name);
            return NGX_ERROR;
        }
    }

    /* the next connect resumes it: one handshake round trip less */
    ngx_http_supportdesk_tls_free_session(session);
    *session = ngx_ssl_get_session(c);

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_tls_send(ngx_connection_t *c, u_char *data,
    size_t size, size_t *taken)
{
    ngx_buf_t     b;
    ngx_chain_t   cl, *rest;

    *taken = 0;

    if (size == 0) {
        /* what ngx_ssl's buffer still holds */
        rest = c->send_chain(c, NULL, 0);

    } else {
        ngx_memzero(&b, sizeof(ngx_buf_t));

        b.start = data;
        b.pos = data;
        b.last = data + size;
        b.end = b.last;
        b.memory = 1;
        /* ngx_ssl_send_chain() waits for a full buffer without it */
        b.flush = 1;

        cl.buf = &b;
        cl.next = NULL;

        rest = c->send_chain(c, &cl, 0);

        *taken = b.pos - data;
    }

    if (rest == NGX_CHAIN_ERROR) {
        return NGX_ERROR;
    }

    if (rest != NULL || (c->buffered & NGX_SSL_BUFFERED)) {
        return NGX_AGAIN;
    }

    return NGX_OK;
}


void
ngx_http_supportdesk_tls_close(ngx_connection_t *c)
{
    if (c->ssl == NULL) {
        return;
    }

    /* the pool never waits for the peer's close_notify */
    c->ssl->no_wait_shutdown = 1;
    (void) ngx_ssl_shutdown(c);
}


void
ngx_http_supportdesk_tls_free_session(void **session)
{
    if (*session != NULL) {
        ngx_ssl_free_session(*session);
        *session = NULL;
    }
}


/* supportdesk_redis_ssl_name, or the host of "host:port" / "[v6]:port" */

static void
ngx_http_supportdesk_tls_host(ngx_http_supportdesk_tls_conf_t *tls,
    ngx_str_t *host, ngx_str_t *name)
{
    u_char  *p, *last;

    if (tls->name.len) {
        *name = tls->name;
        return;
    }

    p = host->data;
    last = host->data + host->len;

    if (p < last && *p == '[') {
        name->data = p + 1;
        p = ngx_strlchr(p, last, ']');
        name->len = (p != NULL) ? (size_t) (p - name->data) : 0;
        return;
    }

    name->data = p;
    p = ngx_strlchr(p, last, ':');
    name->len = (p != NULL) ? (size_t) (p - name->data) : host->len;
}


#else /* !NGX_SSL */


ngx_int_t
ngx_http_supportdesk_tls_create(ngx_conf_t *cf,
    ngx_http_supportdesk_tls_conf_t *tls)
{
    if (tls->enable) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"supportdesk_redis_ssl\" needs nginx built with "
                           "OpenSSL");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_supportdesk_tls_equal(ngx_http_supportdesk_tls_conf_t *a,
    ngx_http_supportdesk_tls_conf_t *b)
{
    return a->enable == b->enable;
}


ngx_int_t
ngx_http_supportdesk_tls_start(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session,
    ngx_connection_handler_pt done)
{
    return NGX_ERROR;
}


ngx_int_t
ngx_http_supportdesk_tls_finish(ngx_connection_t *c,
    ngx_http_supportdesk_tls_conf_t *tls, ngx_str_t *host, void **session)
{
    return NGX_ERROR;
}


ngx_int_t
ngx_http_supportdesk_tls_send(ngx_connection_t *c, u_char *data,
    size_t size, size_t *taken)
{
    *taken = 0;

    return NGX_ERROR;
}


void
ngx_http_supportdesk_tls_close(ngx_connection_t *c)
{
}


void
ngx_http_supportdesk_tls_free_session(void **session)
{
}

#endif
