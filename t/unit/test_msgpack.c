
/*
 * Unit tests of ngx_http_supportdesk_msgpack.c: idempotency records'
 * answers, as Redis 7.0's cmsgpack.pack() wrote them (every input below
 * was taken from redis-server: EVAL "return cmsgpack.pack(...)"), read
 * back as the reply Redis sends for cmsgpack.unpack() of them; what the
 * decoder declines (the script then answers); a cut or hostile record;
 * memory running out.  Built with ASan: a read past the record fails.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_msgpack.h"
#include "tap.h"


#define TEST_ALLOCS  4096


static void test_next(void);
static void test_check(void);


/* ngx_palloc.c's allocators, each allocation kept to be freed at the end */
static void       *allocs[TEST_ALLOCS];
static ngx_uint_t  nallocs;
/* the allocation that fails, counted from 1; 0: none */
static ngx_uint_t  fail_at;


static void *
test_alloc(size_t size, int zero)
{
    void  *p;

    if (nallocs == TEST_ALLOCS || (fail_at && nallocs + 1 == fail_at)) {
        return NULL;
    }

    p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
    if (p != NULL) {
        allocs[nallocs++] = p;
    }

    return p;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    (void) pool;
    return test_alloc(size, 0);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    (void) pool;
    return test_alloc(size, 0);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    (void) pool;
    return test_alloc(size, 1);
}


static void
free_all(void)
{
    while (nallocs) {
        free(allocs[--nallocs]);
    }
}


/* decodes len bytes, copied to a buffer of exactly that size (ASan) */
static ngx_int_t
decode(const char *bytes, size_t len, redisReply **reply)
{
    u_char     *copy;
    ngx_int_t   rc;

    copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);

    *reply = NULL;
    rc = ngx_http_supportdesk_msgpack_reply(NULL, copy, len, reply);

    free(copy);

    return rc;
}


#define decode_literal(text, reply)  decode(text, sizeof(text) - 1, reply)


/* checks len bytes, copied to a buffer of exactly that size (ASan) */
static ngx_int_t
check(const char *bytes, size_t len)
{
    u_char     *copy;
    ngx_int_t   rc;

    copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);

    rc = ngx_http_supportdesk_msgpack_check(copy, len);

    free(copy);

    return rc;
}


int
main(void)
{
    char         buf[512];
    size_t       i;
    ngx_int_t    rc;
    redisReply  *r, *e;

    /* ---- upsert.lua's answer: {1, {'s', '12', 'e', 'a@b.example'}} */
    rc = decode_literal("\x92\x01\x94\xa1s\xa2" "12" "\xa1" "e"
                        "\xab" "a@b.example", &r);
    tap_is_int(rc, NGX_OK, "an upsert's answer");
    tap_ok(r->type == REDIS_REPLY_ARRAY && r->elements == 2,
           "... an array of 2");
    tap_ok(r->element[0]->type == REDIS_REPLY_INTEGER
           && r->element[0]->integer == 1, "... wasCreated 1");
    e = r->element[1];
    tap_ok(e->type == REDIS_REPLY_ARRAY && e->elements == 4,
           "... the customer's pairs");
    tap_is(e->element[0]->str, "s", "... a field");
    tap_is(e->element[1]->str, "12", "... its value");
    tap_is(e->element[3]->str, "a@b.example", "... a fixstr of 11");
    tap_is_int(e->element[3]->len, 11, "... its length");
    tap_ok(e->element[3]->type == REDIS_REPLY_STRING, "... a bulk string");
    free_all();

    /* ---- delete.lua's: 1; an empty array */
    tap_is_int(decode_literal("\x01", &r), NGX_OK, "a delete's answer");
    tap_ok(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "... 1");
    tap_is_int(decode_literal("\x90", &r), NGX_OK, "{}");
    tap_ok(r->type == REDIS_REPLY_ARRAY && r->elements == 0,
           "... an empty array");
    free_all();

    /* ---- {-1, -33, 200, 70000, 5000000000, -5000000000, true, false} */
    rc = decode_literal("\x98\xff\xd0\xdf\xcc\xc8\xce\x00\x01\x11\x70"
                        "\xcf\x00\x00\x00\x01\x2a\x05\xf2\x00"
                        "\xd3\xff\xff\xff\xfe\xd5\xfa\x0e\x00\xc3\xc2", &r);
    tap_is_int(rc, NGX_OK, "integers of every width, booleans");
    tap_ok(r->type == REDIS_REPLY_ARRAY && r->elements == 8, "... 8 of them");
    tap_is_int(r->element[0]->integer, -1, "... negative fixint");
    tap_is_int(r->element[1]->integer, -33, "... int 8");
    tap_is_int(r->element[2]->integer, 200, "... uint 8");
    tap_is_int(r->element[3]->integer, 70000, "... uint 32");
    tap_is_int(r->element[4]->integer, 5000000000LL, "... uint 64");
    tap_is_int(r->element[5]->integer, -5000000000LL, "... int 64");
    tap_ok(r->element[6]->type == REDIS_REPLY_INTEGER
           && r->element[6]->integer == 1, "... true: 1, as Redis sends it");
    tap_ok(r->element[7]->type == REDIS_REPLY_NIL,
           "... false: a nil, as Redis sends it");
    free_all();

    tap_is_int(decode_literal("\xd1\xff\x38", &r), NGX_OK, "-200");
    tap_is_int(r->integer, -200, "... int 16, sign-extended");
    tap_is_int(decode_literal("\xd2\xff\xff\x63\xc0", &r), NGX_OK, "-40000");
    tap_is_int(r->integer, -40000, "... int 32, sign-extended");
    tap_is_int(decode_literal("\xcd\xff\xff", &r), NGX_OK, "65535");
    tap_is_int(r->integer, 65535, "... uint 16");
    free_all();

    /* {1, false, 2}: false does not end the array Redis sends */
    tap_is_int(decode_literal("\x93\x01\xc2\x02", &r), NGX_OK,
               "false inside an array");
    tap_ok(r->elements == 3 && r->element[1]->type == REDIS_REPLY_NIL
           && r->element[2]->integer == 2, "... a nil, then the rest");
    free_all();

    /* 2^53 is the largest integer a Lua number holds exactly */
    tap_is_int(decode_literal("\xcf\x00\x20\x00\x00\x00\x00\x00\x00", &r),
               NGX_OK, "2^53");
    tap_is_int(r->integer, 9007199254740992LL, "... read");
    tap_is_int(decode_literal("\xcf\x00\x20\x00\x00\x00\x00\x00\x01", &r),
               NGX_DECLINED, "2^53 + 1: declined (Lua would round it)");
    tap_is_int(decode_literal("\xd3\xff\xdf\xff\xff\xff\xff\xff\xff", &r),
               NGX_DECLINED, "-(2^53 + 1): declined");
    free_all();

    /* ---- strings of str 8 and str 16 (cmsgpack's "raw 16") */
    buf[0] = (char) 0xd9;
    buf[1] = 40;
    memset(buf + 2, 'x', 40);
    tap_is_int(decode(buf, 42, &r), NGX_OK, "str 8");
    tap_is_int(r->len, 40, "... 40 bytes");
    tap_ok(r->str[0] == 'x' && r->str[39] == 'x' && r->str[40] == '\0',
           "... copied, 0-terminated");

    buf[0] = (char) 0xda;
    buf[1] = 0x01;
    buf[2] = 0x2c;
    memset(buf + 3, 'y', 300);
    tap_is_int(decode(buf, 303, &r), NGX_OK, "str 16");
    tap_is_int(r->len, 300, "... 300 bytes");
    tap_is_int(decode(buf, 302, &r), NGX_DECLINED,
               "str 16 one byte short: declined");
    free_all();

    tap_is_int(decode_literal("\xa0", &r), NGX_OK, "an empty string");
    tap_ok(r->type == REDIS_REPLY_STRING && r->len == 0 && r->str[0] == '\0',
           "... empty, 0-terminated");
    free_all();

    /* ---- what the script is left to answer */
    tap_is_int(decode_literal("\xca\x3f\xc0\x00\x00", &r), NGX_DECLINED,
               "a float (1.5): declined");
    tap_is_int(decode_literal("\xcb\x00\x00\x00\x00\x00\x00\x00\x00", &r),
               NGX_DECLINED, "a double: declined");
    tap_is_int(decode_literal("\x81\xa1" "a" "\x01", &r), NGX_DECLINED,
               "a map ({a = 1}): declined");
    tap_is_int(decode_literal("\xc0", &r), NGX_DECLINED, "nil: declined");
    tap_is_int(decode_literal("\x93\x01\xc0\x02", &r), NGX_DECLINED,
               "nil inside an array: declined");
    tap_is_int(decode_literal("\xc4\x01" "a", &r), NGX_DECLINED,
               "bin 8: declined");
    tap_is_int(decode_literal("\x01\x02", &r), NGX_DECLINED,
               "two values (unpack's two results): declined");
    tap_is_int(decode("", 0, &r), NGX_DECLINED, "nothing: declined");
    free_all();

    /* ---- cut or hostile */
    tap_is_int(decode_literal("\x92\x01", &r), NGX_DECLINED,
               "an array missing an element");
    tap_is_int(decode_literal("\xa5" "ab", &r), NGX_DECLINED,
               "a string cut short");
    tap_is_int(decode_literal("\xdc\x00", &r), NGX_DECLINED,
               "an array 16 whose length is cut");
    tap_is_int(decode_literal("\xdd\xff\xff\xff\xff\x01", &r), NGX_DECLINED,
               "an array of 4 billion in 6 bytes: declined before any "
               "allocation of its elements");
    tap_ok(nallocs == 0, "... nothing allocated for it");
    tap_is_int(decode_literal("\xdb\xff\xff\xff\xff" "a", &r), NGX_DECLINED,
               "a string of 4 GB in 6 bytes");
    free_all();

    for (i = 0; i < 8; i++) {
        buf[i] = (char) 0x91;
    }
    buf[8] = 0x07;
    tap_is_int(decode(buf, 9, &r), NGX_OK, "8 nested arrays");
    for (i = 0; i < 7; i++) {
        r = r->element[0];
    }
    tap_ok(r->elements == 1 && r->element[0]->integer == 7,
           "... read to the bottom");
    buf[8] = (char) 0x91;
    buf[9] = 0x07;
    tap_is_int(decode(buf, 10, &r), NGX_DECLINED,
               "9 nested arrays: declined (the depth bound)");
    free_all();

    /* ---- memory running out at each allocation of the upsert's answer */
    for (fail_at = 1; fail_at <= 14; fail_at++) {
        rc = decode_literal("\x92\x01\x94\xa1s\xa2" "12" "\xa1" "e"
                            "\xab" "a@b.example", &r);
        if (rc != NGX_ERROR) {
            break;
        }
        free_all();
    }
    tap_is_int(fail_at, 14, "every one of the answer's 13 allocations "
               "failing gives NGX_ERROR");
    tap_is_int(rc, NGX_OK, "... and the 14th run, with memory, reads it");
    fail_at = 0;
    free_all();

    test_next();
    test_check();

    return tap_done();
}


/*
 * msgpack_next(), as the list walks a page: redis-server's
 * cmsgpack.pack({12, '', 'x1', {'7', 'a@b.example', false}, 3})
 */

static void
test_next(void)
{
    static const u_char  page[] = "\x95\x0c\xa0\xa2x1\x93\xa1" "7"
                                  "\xab" "a@b.example\xc2\x03";
    static const u_char  str8[] = "\xd9\x28" "yyyyyyyyyyyyyyyyyyyy"
                                  "yyyyyyyyyyyyyyyyyyyy";

    ngx_uint_t                           i;
    ngx_http_supportdesk_msgpack_t       mp;
    ngx_http_supportdesk_msgpack_item_t  it;

    mp.p = page;
    mp.last = page + sizeof(page) - 1;

    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_ARRAY && it.len == 5,
           "next: a page's array of 5, its elements not read");
    tap_ok(mp.p == page + 1, "... only its head consumed");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_INTEGER && it.integer == 12,
           "... the total");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_STRING && it.len == 0,
           "... an empty cursor");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_STRING && it.len == 2
           && it.str == page + 4 && ngx_memcmp(it.str, "x1", 2) == 0,
           "... the externalId, pointing into the text (not copied)");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_ARRAY && it.len == 3,
           "... the values' array");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_STRING && it.len == 1
           && it.str[0] == '7', "... a value");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_STRING && it.len == 11,
           "... a fixstr of 11");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_NIL, "... false: an unset value");
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_INTEGER && it.integer == 3,
           "... a note count");
    tap_ok(mp.p == mp.last, "... the whole text read");
    tap_is_int(ngx_http_supportdesk_msgpack_next(&mp, &it), NGX_DECLINED,
               "... and nothing after it: declined");

    mp.p = str8;
    mp.last = str8 + sizeof(str8) - 1;
    tap_ok(ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK
           && it.type == REDIS_REPLY_STRING && it.len == 40
           && it.str == str8 + 2 && mp.p == mp.last,
           "next: a str 8 of 40, in place");

    /* every cut of the page: each value read before the cut is whole */
    for (i = 0; i < sizeof(page) - 1; i++) {
        mp.p = page;
        mp.last = page + i;

        while (ngx_http_supportdesk_msgpack_next(&mp, &it) == NGX_OK) {
            if (mp.p > mp.last) {
                break;
            }
        }

        if (mp.p > mp.last) {
            break;
        }
    }
    tap_is_int(i, sizeof(page) - 1,
               "next: a page cut at any byte never reads past the cut");

    mp.p = (u_char *) "\xa5" "abc";
    mp.last = mp.p + 4;
    tap_is_int(ngx_http_supportdesk_msgpack_next(&mp, &it), NGX_DECLINED,
               "next: a string longer than the text: declined");

    mp.p = (u_char *) "\xdd\xff\xff\xff\xff\x01";
    mp.last = mp.p + 6;
    tap_is_int(ngx_http_supportdesk_msgpack_next(&mp, &it), NGX_DECLINED,
               "next: an array counting more elements than bytes left: "
               "declined");

    mp.p = (u_char *) "\xc0";
    mp.last = mp.p + 1;
    tap_is_int(ngx_http_supportdesk_msgpack_next(&mp, &it), NGX_DECLINED,
               "next: nil (a hole in a Lua array): declined");

    mp.p = (u_char *) "\x81\xa1k\x01";
    mp.last = mp.p + 4;
    tap_is_int(ngx_http_supportdesk_msgpack_next(&mp, &it), NGX_DECLINED,
               "next: a map: declined");
}


/*
 * msgpack_check(), as a replay hands upsert's record to its handler: it
 * takes what msgpack_reply() takes, without building it
 */

static void
test_check(void)
{
    static const u_char  answer[] = "\x92\x01\x94\xa1s\xa2" "12" "\xa1" "e"
                                    "\xab" "a@b.example";

    size_t       i, len;
    ngx_uint_t   agree;
    redisReply  *r;

    len = sizeof(answer) - 1;

    tap_is_int(ngx_http_supportdesk_msgpack_check(answer, len), NGX_OK,
               "check: an upsert's answer");
    tap_is_int(ngx_http_supportdesk_msgpack_check(answer, len + 1),
               NGX_DECLINED, "check: a byte after it: declined");

    agree = 1;

    for (i = 0; i < len; i++) {
        if (check((char *) answer, i) != NGX_DECLINED) {
            agree = 0;
        }
    }

    tap_ok(agree, "check: the answer cut at any byte: declined");

    tap_is_int(ngx_http_supportdesk_msgpack_check(
                   (u_char *) "\x92\xcb\x3f\xf0\0\0\0\0\0\0\x90", 11),
               NGX_DECLINED, "check: a double inside: declined");
    tap_is_int(ngx_http_supportdesk_msgpack_check((u_char *) "\x01\x01", 2),
               NGX_DECLINED, "check: two values: declined");
    tap_is_int(ngx_http_supportdesk_msgpack_check(
                   (u_char *) "\x92\x91\x90\x90", 4),
               NGX_OK, "check: {{{}}, {}}: the elements of nested arrays "
               "counted");
    tap_is_int(ngx_http_supportdesk_msgpack_check(
                   (u_char *) "\x92\x92\x90\x90", 4),
               NGX_DECLINED, "check: {{{}, {}}, ?}: one element missing");

    /* the same verdict as msgpack_reply() on every prefix of the answer */
    agree = 1;

    for (i = 0; i <= len; i++) {
        if ((ngx_http_supportdesk_msgpack_check(answer, i) == NGX_OK)
            != (decode((char *) answer, i, &r) == NGX_OK))
        {
            agree = 0;
        }

        free_all();
    }

    tap_ok(agree, "check: agrees with msgpack_reply() on every prefix");
}
