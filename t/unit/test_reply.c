
/*
 * Unit tests of ngx_http_supportdesk_reply.c: replies that hiredis's
 * reader builds in a connection's arena, from RESP as Redis sends it
 * (whole, pipelined, cut across reads, larger than a block), the bounds
 * refused before anything is built, and a reply copied out of the arena
 * that outlives it.  Built with ASan and leak detection: a block not given
 * back, or a copy freed wrongly, fails the run.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_reply.h"
#include "tap.h"


/* ngx_alloc.c's, without nginx's log behind them */
#include "ngx_alloc_stub.h"


static redisReply *next_reply(redisReader *reader, const char *text,
    int *rc);
static void arena_init(ngx_http_supportdesk_reply_arena_t *arena,
    size_t max_bytes, ngx_uint_t max_elements);
static ngx_uint_t arena_blocks(ngx_http_supportdesk_reply_arena_t *arena);


int
main(void)
{
    int                                  rc;
    char                                 resp[64 * 1024], *p;
    size_t                               i;
    ngx_uint_t                           all;
    redisReply                          *r, *copy;
    redisReader                         *reader;
    ngx_http_supportdesk_reply_arena_t   arena;

    /* ---- a customer's HGETALL */
    arena_init(&arena, 1024 * 1024, 4096);
    reader = ngx_http_supportdesk_reply_reader(&arena);
    tap_ok(reader != NULL, "a reader");

    r = next_reply(reader, "*4\r\n$1\r\ne\r\n$11\r\na@b.example\r\n"
                           "$1\r\nn\r\n$0\r\n\r\n", &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->type == REDIS_REPLY_ARRAY
           && r->elements == 4, "HGETALL: an array of 4");
    tap_is(r->element[0]->str, "e", "... a field");
    tap_is(r->element[1]->str, "a@b.example", "... its value");
    tap_is_int(r->element[1]->len, 11, "... its length");
    tap_is(r->element[3]->str, "", "... an empty string, 0-terminated");
    tap_is_int(arena.bytes, 13, "the reply's string bytes counted");
    tap_is_int(arena.elements, 4, "... and its elements");
    tap_is_int(arena_blocks(&arena), 1, "a small reply: the kept block only");

    ngx_http_supportdesk_reply_done(&arena);
    tap_is_int(arena.bytes, 0, "done: the counts start again");

    /* ---- every type, nested, two replies in one read */
    r = next_reply(reader, "*5\r\n:42\r\n$-1\r\n+OK\r\n-ERR no\r\n"
                           "*2\r\n:-7\r\n*0\r\n" "$3\r\nabc\r\n", &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->elements == 5,
           "nested: an array of 5");
    tap_ok(r->element[0]->type == REDIS_REPLY_INTEGER
           && r->element[0]->integer == 42, "... an integer");
    tap_ok(r->element[1]->type == REDIS_REPLY_NIL, "... a nil");
    tap_ok(r->element[2]->type == REDIS_REPLY_STATUS, "... a status");
    tap_is(r->element[2]->str, "OK", "... its text");
    tap_ok(r->element[3]->type == REDIS_REPLY_ERROR, "... an error");
    tap_is(r->element[3]->str, "ERR no", "... its text");
    tap_ok(r->element[4]->type == REDIS_REPLY_ARRAY
           && r->element[4]->elements == 2
           && r->element[4]->element[0]->integer == -7
           && r->element[4]->element[1]->type == REDIS_REPLY_ARRAY
           && r->element[4]->element[1]->elements == 0
           && r->element[4]->element[1]->element == NULL,
           "... an array holding an integer and an empty array");

    /* a copy outlives the arena's next reply */
    copy = ngx_http_supportdesk_reply_copy(r, NULL);
    tap_ok(copy != NULL, "a copy out of the arena");

    ngx_http_supportdesk_reply_done(&arena);

    /* the second reply of the same read, in the memory the first had */
    r = next_reply(reader, NULL, &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->type == REDIS_REPLY_STRING,
           "pipelined: the second reply of one read");
    tap_is(r->str, "abc", "... whole");

    tap_ok(copy->elements == 5 && copy->element[0]->integer == 42
           && copy->element[1]->type == REDIS_REPLY_NIL
           && copy->element[4]->element[0]->integer == -7
           && copy->element[4]->element[1]->elements == 0,
           "the copy is intact after the arena was reused");
    tap_is(copy->element[3]->str, "ERR no", "... its strings too");
    tap_ok(copy->element[3]->str != NULL
           && (copy->element[3]->str < (char *) arena.base
               || copy->element[3]->str >= (char *) arena.base + 16384),
           "... its own memory, not the arena's");
    freeReplyObject(copy);

    ngx_http_supportdesk_reply_done(&arena);

    /* ---- a reply cut across reads */
    r = next_reply(reader, "*2\r\n$5\r\nhel", &rc);
    tap_ok(rc == REDIS_OK && r == NULL, "cut: not complete yet");
    r = next_reply(reader, "lo\r\n$5\r\nworld\r\n", &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->elements == 2,
           "... complete with the next read");
    tap_is(r->element[0]->str, "hello", "... its first string");
    tap_is(r->element[1]->str, "world", "... its second");

    ngx_http_supportdesk_reply_done(&arena);

    /* ---- larger than a block: 2000 strings of 16 bytes */
    p = resp;
    p += sprintf(p, "*2000\r\n");

    for (i = 0; i < 2000; i++) {
        p += sprintf(p, "$16\r\n%016zu\r\n", i);
    }

    r = next_reply(reader, resp, &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->elements == 2000,
           "large: an array of 2000");

    all = 1;
    for (i = 0; i < 2000; i++) {
        char  want[32];

        sprintf(want, "%016zu", i);
        if (strcmp(r->element[i]->str, want) != 0) {
            all = 0;
        }
    }

    tap_ok(all, "... every string as sent");
    tap_ok(arena_blocks(&arena) > 1, "... in more blocks than the kept one");

    ngx_http_supportdesk_reply_done(&arena);
    tap_is_int(arena_blocks(&arena), 1,
               "done: the added blocks given back, the kept one kept");

    redisReaderFree(reader);
    ngx_http_supportdesk_reply_free(&arena);
    tap_ok(arena.base == NULL && arena.extra == NULL, "the arena freed");

    /* ---- the bounds, before anything is built */
    arena_init(&arena, 10, 1024);
    reader = ngx_http_supportdesk_reply_reader(&arena);
    r = next_reply(reader, "*2\r\n$5\r\nabcde\r\n$6\r\nabcdef\r\n", &rc);
    tap_ok(rc == REDIS_ERR && arena.refused == NGX_HTTP_SUPPORTDESK_REPLY_SIZE,
           "a reply of 11 string bytes, 10 allowed: refused, by its size");
    redisReaderFree(reader);
    ngx_http_supportdesk_reply_free(&arena);

    arena_init(&arena, 1024, 3);
    reader = ngx_http_supportdesk_reply_reader(&arena);
    r = next_reply(reader, "*2\r\n:1\r\n*2\r\n:2\r\n:3\r\n", &rc);
    tap_ok(rc == REDIS_ERR
           && arena.refused == NGX_HTTP_SUPPORTDESK_REPLY_ELEMENTS,
           "4 elements in all, 3 allowed: refused, by its elements");
    redisReaderFree(reader);
    ngx_http_supportdesk_reply_free(&arena);

    arena_init(&arena, 1024, 3);
    reader = ngx_http_supportdesk_reply_reader(&arena);
    r = next_reply(reader, "*3\r\n:1\r\n:2\r\n:3\r\n", &rc);
    tap_ok(rc == REDIS_OK && r != NULL && r->elements == 3,
           "3 elements, 3 allowed: built");
    redisReaderFree(reader);
    ngx_http_supportdesk_reply_free(&arena);

    return tap_done();
}


static redisReply *
next_reply(redisReader *reader, const char *text, int *rc)
{
    void  *reply;

    if (text != NULL && redisReaderFeed(reader, text, strlen(text))
                        != REDIS_OK)
    {
        *rc = REDIS_ERR;
        return NULL;
    }

    reply = NULL;
    *rc = redisReaderGetReply(reader, &reply);

    return reply;
}


static void
arena_init(ngx_http_supportdesk_reply_arena_t *arena, size_t max_bytes,
    ngx_uint_t max_elements)
{
    ngx_memzero(arena, sizeof(ngx_http_supportdesk_reply_arena_t));

    arena->max_bytes = max_bytes;
    arena->max_elements = max_elements;
}


/* the arena's blocks: the kept one and the added ones */

static ngx_uint_t
arena_blocks(ngx_http_supportdesk_reply_arena_t *arena)
{
    ngx_uint_t   n;
    void       **b;

    n = (arena->base != NULL);

    /* a block starts with its next pointer */
    for (b = (void **) arena->extra; b != NULL; b = *b) {
        n++;
    }

    return n;
}
