
/*
 * libFuzzer: ngx_http_supportdesk_route() on a raw path (below the
 * location prefix) and a method (the first byte), with a minimal request:
 * the method and a connection's (silent) log, all the router touches.
 * Checks: a match names an action of that method, parameters are whole
 * segments inside the path (no '/'), a 405 names the route's methods for
 * its Allow header.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_router.h"
#include "fuzz_common.h"


static ngx_uint_t  methods[] = {
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_POST, NGX_HTTP_PUT,
    NGX_HTTP_DELETE, NGX_HTTP_MKCOL, NGX_HTTP_COPY, NGX_HTTP_MOVE,
    NGX_HTTP_OPTIONS, NGX_HTTP_PROPFIND, NGX_HTTP_PROPPATCH, NGX_HTTP_LOCK,
    NGX_HTTP_UNLOCK, NGX_HTTP_PATCH, NGX_HTTP_TRACE, NGX_HTTP_UNKNOWN
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                      *buf;
    size_t                       i, len;
    ngx_int_t                    rc;
    ngx_str_t                    path;
    ngx_log_t                    log;
    ngx_pool_t                   pool;
    ngx_connection_t             c;
    ngx_http_request_t           r;
    ngx_http_supportdesk_ctx_t   ctx;

    if (size == 0) {
        return 0;
    }

    memset(&r, 0, sizeof(r));
    memset(&ctx, 0, sizeof(ctx));
    memset(&pool, 0, sizeof(pool));
    memset(&c, 0, sizeof(c));
    memset(&log, 0, sizeof(log));

    /* the router traces the route it chose: a log with every level off */
    c.log = &log;
    r.connection = &c;
    r.pool = &pool;
    r.method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];


    len = size - 1;
    buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    path.data = buf;
    path.len = len;

    rc = ngx_http_supportdesk_route(&r, &ctx, &path);

    FUZZ_ASSERT(memcmp(buf, data + 1, len) == 0, "the path is not written");

    if (rc == NGX_OK) {
        FUZZ_ASSERT(ctx.action != NULL && ctx.action->method == r.method,
                    "the action has the request's method");
        FUZZ_ASSERT(ctx.action->run != NULL, "a run step");
        FUZZ_ASSERT(!ctx.action->external_id || ctx.params[0].data != NULL,
                    "an externalId route captures it");

        for (i = 0; i < NGX_HTTP_SUPPORTDESK_MAX_PARAMS; i++) {
            if (ctx.params[i].data == NULL) {
                continue;
            }

            FUZZ_ASSERT(ctx.params[i].data >= buf
                        && ctx.params[i].data + ctx.params[i].len <= buf + len,
                        "parameter inside the path");
            FUZZ_ASSERT(memchr(ctx.params[i].data, '/', ctx.params[i].len)
                        == NULL, "a parameter is one segment");
        }

    } else if (rc == NGX_HTTP_NOT_ALLOWED) {
        FUZZ_ASSERT(ctx.allow.len > 0, "405 with the route's methods");

    } else {
        FUZZ_ASSERT(rc == NGX_HTTP_NOT_FOUND, "NGX_OK, 404 or 405");
    }

    free(buf);
    fuzz_pool_reset();

    return 0;
}
