
/*
 * Helpers for the directives of both modules of the .so (the API's and
 * the Redis settings').
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_conf.h"


char *
ngx_http_supportdesk_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t                     *np = data;
    ngx_http_supportdesk_bounds_t  *bounds = post;

    /* a negative ngx_int_t reads as a huge ngx_uint_t: out of bounds */
    if (*np < bounds->low || *np > bounds->high) {
        return (char *) bounds->refusal;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_supportdesk_conf_text(ngx_conf_t *cf, ngx_uint_t n, ngx_str_t *text)
{
    text->data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    text->len = ngx_sprintf(text->data, "%ui", n) - text->data;

    return NGX_OK;
}
