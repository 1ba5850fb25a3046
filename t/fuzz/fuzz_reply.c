
/*
 * libFuzzer: the Redis reply mapping.  The input is raw RESP, parsed by
 * hiredis's redisReader into the replies' arena with the default bounds,
 * exactly as the connection pool parses what Redis sends (a copy out of
 * the arena must equal the reply); an array reply goes through ngx_http_supportdesk_record_render()
 * (the HGETALL / upsert-script reply -> customer JSON of GET, PATCH and the
 * listing), into a writer that starts tiny so every growth path runs.
 * When the record holds what the gateway itself writes (s digits, strings
 * UTF-8, m a JSON object), the output must be one valid JSON object with
 * ISO timestamps.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_reply.h"
#include "fuzz_common.h"


static int
digits(redisReply *v)
{
    size_t  i;

    if (v->len == 0 || v->len > 18) {
        return 0;
    }

    for (i = 0; i < v->len; i++) {
        if (v->str[i] < '0' || v->str[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* two replies alike, element by element */
static int
same(redisReply *a, redisReply *b)
{
    size_t  i;

    if (a->type != b->type || a->integer != b->integer || a->len != b->len
        || a->elements != b->elements)
    {
        return 0;
    }

    if (a->str != NULL || b->str != NULL) {
        if (a->str == NULL || b->str == NULL
            || memcmp(a->str, b->str, a->len + 1) != 0)
        {
            return 0;
        }
    }

    for (i = 0; i < a->elements; i++) {
        if (!same(a->element[i], b->element[i])) {
            return 0;
        }
    }

    return 1;
}


/* the record is one the gateway could have written */
static int
sane(redisReply *hash)
{
    size_t       i;
    json_t      *m;
    redisReply  *k, *v;
    int          have = 0;

    for (i = 0; i + 1 < hash->elements; i += 2) {
        k = hash->element[i];
        v = hash->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || k->len != 1)
        {
            continue;
        }

        switch (k->str[0]) {
        case 's': case 'c': case 'u':
            if (!digits(v)) return 0;
            break;
        case 'e': case 'n': case 'p': case 'a':
            if (!fuzz_valid_utf8((u_char *) v->str, v->len)) return 0;
            break;
        case 'm':
            m = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, NULL);
            if (m == NULL || !json_is_object(m)) { json_decref(m); return 0; }
            json_decref(m);
            /* compact JSON as stored: no leading/trailing white space */
            if (v->len == 0 || v->str[0] != '{' || v->str[v->len - 1] != '}') {
                return 0;
            }
            break;
        default:
            continue;
        }

        have = 1;
    }

    return have;
}


static int
iso(json_t *v)
{
    const char  *s;
    int          i;

    if (!json_is_string(v) || json_string_length(v) != 20) {
        return 0;
    }

    s = json_string_value(v);

    for (i = 0; i < 20; i++) {
        if (i == 4 || i == 7) { if (s[i] != '-') return 0; }
        else if (i == 10) { if (s[i] != 'T') return 0; }
        else if (i == 13 || i == 16) { if (s[i] != ':') return 0; }
        else if (i == 19) { if (s[i] != 'Z') return 0; }
        else if (s[i] < '0' || s[i] > '9') return 0;
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                         *reply;
    json_t                       *out;
    ngx_int_t                     rc;
    ngx_str_t                     ext, etag;
    ngx_pool_t                    pool;
    redisReader                  *reader;
    redisReply                   *hash, *copy;
    ngx_http_supportdesk_reply_arena_t  arena;
    json_error_t                  err;
    ngx_http_supportdesk_json_t   json;
    static ngx_str_t              ids[] = {
        ngx_string("u1"), ngx_string("q\"uote\\back\x01slash"),
        ngx_string("\xe2\x82\xac}{x}:*")
    };

    /*
     * The module's defaults (supportdesk_redis_max_reply_size 16m,
     * _elements 65536): "*700000000" is refused before hiredis would
     * allocate its 5.6 GB of element pointers.
     */
    memset(&arena, 0, sizeof(arena));
    arena.max_bytes = 16 * 1024 * 1024;
    arena.max_elements = 65536;

    reader = ngx_http_supportdesk_reply_reader(&arena);
    FUZZ_ASSERT(reader != NULL, "reader");

    if (redisReaderFeed(reader, (const char *) data, size) != REDIS_OK
        || redisReaderGetReply(reader, &reply) != REDIS_OK
        || reply == NULL)
    {
        redisReaderFree(reader);
        ngx_http_supportdesk_reply_free(&arena);
        return 0;
    }

    hash = reply;

    FUZZ_ASSERT(arena.elements <= arena.max_elements
                && arena.bytes <= arena.max_bytes, "within the bounds");

    copy = ngx_http_supportdesk_reply_copy(hash, NULL);
    FUZZ_ASSERT(copy != NULL && same(copy, hash), "a copy equals the reply");
    freeReplyObject(copy);

    if (hash->type == REDIS_REPLY_ARRAY) {
        memset(&pool, 0, sizeof(pool));
        json.pool = &pool;
        json.failed = 0;
        json.start = ngx_pnalloc(&pool, 1);
        json.pos = json.start;
        json.end = json.start + 1;

        ext = ids[size % 3];

        etag.len = 0;
        etag.data = NULL;

        rc = ngx_http_supportdesk_record_render(&json, &ext, hash, &etag);

        FUZZ_ASSERT(rc != NGX_OK || etag.len >= 3, "an ETag <s>-<v>");

        FUZZ_ASSERT(json.pos >= json.start && json.pos <= json.end,
                    "writer inside its buffer");

        if (rc == NGX_OK && sane(hash)) {
            FUZZ_ASSERT(!json.failed, "no failure");
            out = json_loadb((char *) json.start, json.pos - json.start,
                             JSON_REJECT_DUPLICATES|JSON_ALLOW_NUL, &err);
            if (out == NULL) {
                fprintf(stderr, "fuzz: %s: %.*s\n", err.text,
                        (int) (json.pos - json.start), json.start);
            }
            FUZZ_ASSERT(out != NULL && json_is_object(out),
                        "a sane record renders as one JSON object");
            FUZZ_ASSERT(iso(json_object_get(out, "createdAt"))
                        && iso(json_object_get(out, "updatedAt")),
                        "ISO timestamps");
            FUZZ_ASSERT(json_is_string(json_object_get(out, "externalId"))
                        && json_string_length(json_object_get(out,
                                                            "externalId"))
                           == ext.len, "externalId echoed whole");
            json_decref(out);
        }

        fuzz_pool_reset();
    }

    ngx_http_supportdesk_reply_done(&arena);
    redisReaderFree(reader);
    ngx_http_supportdesk_reply_free(&arena);

    return 0;
}
