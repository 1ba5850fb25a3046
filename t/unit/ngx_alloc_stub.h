
/*
 * nginx's ngx_alloc() and ngx_calloc() (src/os/unix/ngx_alloc.c) without
 * the log behind them, for the test binaries that link module sources
 * using them (the replies' arena): included by one file of each binary,
 * t/unit/test_reply.c and t/fuzz/ngx_shim.c.
 */

#ifndef _NGX_ALLOC_STUB_H_INCLUDED_
#define _NGX_ALLOC_STUB_H_INCLUDED_


#include <stdlib.h>


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    (void) log;
    return malloc(size);
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    (void) log;
    return calloc(1, size);
}


#endif /* _NGX_ALLOC_STUB_H_INCLUDED_ */
