
/*
 * Redis replies in an arena.  hiredis's own reply functions allocate every
 * element of a reply with malloc() (a customer's HGETALL: 17 objects, each
 * freed again with free()); these take them from the connection's arena,
 * a block kept for the connection, and more blocks for a reply too large
 * for it, given back once the reply is handled.  A reply is checked
 * against its bounds before hiredis is let to build any of it.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_reply.h"


/* a few customers' worth of elements; a larger reply adds blocks */
#define NGX_HTTP_SUPPORTDESK_REPLY_BLOCK  8192


struct ngx_http_supportdesk_reply_block_s {
    ngx_http_supportdesk_reply_block_t  *next;
    u_char                              *pos;
    u_char                              *end;
};


static void *ngx_http_supportdesk_reply_alloc(
    ngx_http_supportdesk_reply_arena_t *arena, size_t size);
static redisReply *ngx_http_supportdesk_reply_object(
    const redisReadTask *task, int type, size_t extra);
static void *ngx_http_supportdesk_reply_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_supportdesk_reply_array(const redisReadTask *task,
    int elements);
static void *ngx_http_supportdesk_reply_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_supportdesk_reply_nil(const redisReadTask *task);
static void ngx_http_supportdesk_reply_free_object(void *reply);


static redisReplyObjectFunctions  ngx_http_supportdesk_reply_functions = {
    ngx_http_supportdesk_reply_string,
    ngx_http_supportdesk_reply_array,
    ngx_http_supportdesk_reply_integer,
    ngx_http_supportdesk_reply_nil,
    ngx_http_supportdesk_reply_free_object
};


redisReader *
ngx_http_supportdesk_reply_reader(ngx_http_supportdesk_reply_arena_t *arena)
{
    redisReader  *reader;

    reader = redisReaderCreateWithFunctions(
                                        &ngx_http_supportdesk_reply_functions);
    if (reader == NULL) {
        return NULL;
    }

    /* every task of every reply carries it */
    reader->privdata = arena;

    arena->bytes = 0;
    arena->elements = 0;
    arena->refused = 0;

    return reader;
}


void
ngx_http_supportdesk_reply_done(ngx_http_supportdesk_reply_arena_t *arena)
{
    ngx_http_supportdesk_reply_block_t  *b, *next;

    for (b = arena->extra; b != NULL; b = next) {
        next = b->next;
        ngx_free(b);
    }

    arena->extra = NULL;

    if (arena->base != NULL) {
        arena->base->pos = (u_char *) arena->base
                           + sizeof(ngx_http_supportdesk_reply_block_t);
    }

    arena->bytes = 0;
    arena->elements = 0;
}


void
ngx_http_supportdesk_reply_free(ngx_http_supportdesk_reply_arena_t *arena)
{
    ngx_http_supportdesk_reply_done(arena);

    if (arena->base != NULL) {
        ngx_free(arena->base);
        arena->base = NULL;
    }
}


redisReply *
ngx_http_supportdesk_reply_copy(redisReply *reply, ngx_log_t *log)
{
    size_t       i;
    redisReply  *copy;

    copy = ngx_alloc(sizeof(redisReply), log);
    if (copy == NULL) {
        return NULL;
    }

    *copy = *reply;
    copy->str = NULL;
    copy->element = NULL;

    switch (reply->type) {

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        copy->str = ngx_alloc(reply->len + 1, log);
        if (copy->str == NULL) {
            freeReplyObject(copy);
            return NULL;
        }

        ngx_memcpy(copy->str, reply->str, reply->len + 1);
        break;

    case REDIS_REPLY_ARRAY:
        if (reply->elements == 0) {
            break;
        }

        copy->element = ngx_calloc(reply->elements * sizeof(redisReply *),
                                   log);
        if (copy->element == NULL) {
            /* freeReplyObject() would walk the elements */
            copy->elements = 0;
            freeReplyObject(copy);
            return NULL;
        }

        for (i = 0; i < reply->elements; i++) {
            copy->element[i] = ngx_http_supportdesk_reply_copy(
                                                    reply->element[i], log);
            if (copy->element[i] == NULL) {
                freeReplyObject(copy);
                return NULL;
            }
        }

        break;

    default:
        break;
    }

    return copy;
}


static void *
ngx_http_supportdesk_reply_alloc(ngx_http_supportdesk_reply_arena_t *arena,
    size_t size)
{
    u_char                              *p;
    size_t                               n;
    ngx_http_supportdesk_reply_block_t  *b;

    size = ngx_align(size, sizeof(void *));

    b = (arena->extra != NULL) ? arena->extra : arena->base;

    if (b != NULL && (size_t) (b->end - b->pos) >= size) {
        p = b->pos;
        b->pos += size;
        return p;
    }

    n = ngx_max(size, NGX_HTTP_SUPPORTDESK_REPLY_BLOCK);

    b = ngx_alloc(sizeof(ngx_http_supportdesk_reply_block_t) + n, arena->log);
    if (b == NULL) {
        return NULL;
    }

    b->pos = (u_char *) b + sizeof(ngx_http_supportdesk_reply_block_t);
    b->end = b->pos + n;

    if (arena->base == NULL) {
        b->next = NULL;
        arena->base = b;

    } else {
        b->next = arena->extra;
        arena->extra = b;
    }

    p = b->pos;
    b->pos += size;

    return p;
}


/*
 * hiredis's layout, linked into its parent array as hiredis does; extra
 * bytes right behind it, for a string's copy (one allocation, not two)
 */

static redisReply *
ngx_http_supportdesk_reply_object(const redisReadTask *task, int type,
    size_t extra)
{
    redisReply  *r, *parent;

    r = ngx_http_supportdesk_reply_alloc(task->privdata,
                                         sizeof(redisReply) + extra);
    if (r == NULL) {
        return NULL;
    }

    ngx_memzero(r, sizeof(redisReply));
    r->type = type;

    if (task->parent != NULL) {
        parent = task->parent->obj;
        parent->element[task->idx] = r;
    }

    return r;
}


/* returning NULL makes hiredis fail the reply */

static void *
ngx_http_supportdesk_reply_string(const redisReadTask *task, char *str,
    size_t len)
{
    ngx_http_supportdesk_reply_arena_t  *arena = task->privdata;

    char        *buf;
    redisReply  *r;

    if (len > arena->max_bytes - arena->bytes) {
        arena->refused = NGX_HTTP_SUPPORTDESK_REPLY_SIZE;
        return NULL;
    }

    arena->bytes += len;

    r = ngx_http_supportdesk_reply_object(task, task->type, len + 1);
    if (r == NULL) {
        return NULL;
    }

    /* the reader's buffer moves on: the string is copied, 0-terminated */
    buf = (char *) (r + 1);
    ngx_memcpy(buf, str, len);
    buf[len] = '\0';

    r->str = buf;
    r->len = len;

    return r;
}


static void *
ngx_http_supportdesk_reply_array(const redisReadTask *task, int elements)
{
    ngx_http_supportdesk_reply_arena_t  *arena = task->privdata;

    redisReply   *r;
    redisReply  **element;

    /* before a pointer is allocated for each announced element */
    if ((ngx_uint_t) elements > arena->max_elements - arena->elements) {
        arena->refused = NGX_HTTP_SUPPORTDESK_REPLY_ELEMENTS;
        return NULL;
    }

    arena->elements += elements;

    element = NULL;

    if (elements > 0) {
        element = ngx_http_supportdesk_reply_alloc(arena,
                                            elements * sizeof(redisReply *));
        if (element == NULL) {
            return NULL;
        }

        ngx_memzero(element, elements * sizeof(redisReply *));
    }

    r = ngx_http_supportdesk_reply_object(task, REDIS_REPLY_ARRAY, 0);
    if (r == NULL) {
        return NULL;
    }

    r->element = element;
    r->elements = elements;

    return r;
}


static void *
ngx_http_supportdesk_reply_integer(const redisReadTask *task,
    long long value)
{
    redisReply  *r;

    r = ngx_http_supportdesk_reply_object(task, REDIS_REPLY_INTEGER, 0);
    if (r == NULL) {
        return NULL;
    }

    r->integer = value;

    return r;
}


static void *
ngx_http_supportdesk_reply_nil(const redisReadTask *task)
{
    return ngx_http_supportdesk_reply_object(task, REDIS_REPLY_NIL, 0);
}


static void
ngx_http_supportdesk_reply_free_object(void *reply)
{
    /* the arena's: given back with the next reply, or with the arena */
    (void) reply;
}
