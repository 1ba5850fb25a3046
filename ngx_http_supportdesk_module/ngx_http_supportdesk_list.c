
/*
 * GET /customers: one page in creation order.
 *
 * A page with a filter is redis/list.lua: the filters run on the server,
 * under its scan limit and cost budget, so a huge app costs one bounded
 * script per page.  A page without one is read with plain commands,
 * pipelined on the app's connection: its sequence counter, its count and
 * the order bucket's entries for the next sequence numbers, then one
 * HGETALL per customer (and a ZCARD of its notes).  A script costs Redis
 * about 1,900 instructions more per reply element than a client's command
 * (each reply is parsed back into Lua): 20 customers read by list.lua cost
 * it 1,110,000 instructions, the same read by plain commands about a
 * quarter of that.  The two round trips are not one atomic step, which a
 * page never was across its cursor: a customer deleted in between is left
 * out, one created later comes on a later page.  Gaps the first chunk
 * cannot fill the page past (deleted customers) send the page to the
 * script, whose walk skips them within one call.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_actions.h"
#include "ngx_http_supportdesk_msgpack.h"
#include "ngx_http_supportdesk_query.h"
#include "ngx_http_supportdesk_record.h"
#include "ngx_http_supportdesk_store.h"


/* numkeys, order key, prefix, after, limit, budget, notes, email, name */
#define NGX_HTTP_SUPPORTDESK_LIST_ARGS  9

/* sequence numbers per order bucket (redis/upsert.lua) */
#define NGX_HTTP_SUPPORTDESK_LIST_BUCKET   128
/*
 * sequence numbers the first chunk asks for beyond the page's limit, so a
 * few deleted customers do not send the page to the script; with the
 * largest limit (100) a chunk spans two buckets at most
 */
#define NGX_HTTP_SUPPORTDESK_LIST_SLACK    12
/*
 * An HMGET looks each field up in the bucket's listpack, one walk a field:
 * past this many fields, the whole bucket's HGETALL costs Redis less (32
 * fields: 188,000 calls a second, 112: 26,700, the HGETALL of 128 entries:
 * 106,000; redis-benchmark -P 16)
 */
#define NGX_HTTP_SUPPORTDESK_LIST_HMGET_MAX  48
/* redis/lib_scan.lua's units: sd.budget, sd.call, sd.element */
#define NGX_HTTP_SUPPORTDESK_LIST_BUDGET   524288
#define NGX_HTTP_SUPPORTDESK_LIST_CALL     2048
#define NGX_HTTP_SUPPORTDESK_LIST_ELEMENT  128


/* a customer of a page as render_values() takes it, pointing into the page */
typedef struct {
    redisReply   array;
    redisReply  *element[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];
    redisReply   value[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];
} ngx_http_supportdesk_list_values_t;


typedef struct ngx_http_supportdesk_list_page_s
    ngx_http_supportdesk_list_page_t;

typedef enum {
    NGX_HTTP_SUPPORTDESK_LIST_SEQ = 0,
    NGX_HTTP_SUPPORTDESK_LIST_TOTAL,
    NGX_HTTP_SUPPORTDESK_LIST_IDS,
    NGX_HTTP_SUPPORTDESK_LIST_BUCKET_IDS,
    NGX_HTTP_SUPPORTDESK_LIST_CUSTOMER,
    NGX_HTTP_SUPPORTDESK_LIST_NOTES
} ngx_http_supportdesk_list_kind_e;

/* one command of a page read with plain commands, and what it is for */
typedef struct {
    ngx_http_supportdesk_list_page_t   *page;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_http_supportdesk_list_kind_e    kind;
    /* ids, bucket ids: its first sequence number's place in the chunk,
       how many; customer, notes: its place in the page */
    ngx_uint_t                          index;
    ngx_uint_t                          count;
} ngx_http_supportdesk_list_step_t;

struct ngx_http_supportdesk_list_page_s {
    ngx_http_request_t                 *request;
    ngx_http_supportdesk_list_step_t   *steps;
    ngx_uint_t                          nsteps;
    ngx_uint_t                          pending;
    ngx_uint_t                          round;
    /* the page's answer instead of customers; status 0: none */
    ngx_http_supportdesk_error_t        error;

    /* the cursor's sequence number, the app's counter and count */
    uint64_t                            after;
    uint64_t                            max;
    int64_t                             total;

    /* the chunk: externalIds by sequence number after->after + chunk */
    ngx_str_t                          *xid;
    ngx_uint_t                          chunk;
    /* the page's customers: their places in the chunk */
    ngx_uint_t                         *found;
    ngx_uint_t                          nfound;
    /* the last sequence number examined */
    uint64_t                            last;

    ngx_http_supportdesk_json_t         json;
    size_t                              spent;
    ngx_uint_t                          rendered;
    /* the customer the last HGETALL rendered, its place + 1; 0: none */
    ngx_uint_t                          shown;
    /*
     * the budget left the customers from this place on to the next page;
     * 0: none (the first customer is always on it)
     */
    ngx_uint_t                          cut;
};


static ngx_int_t ngx_http_supportdesk_list_script(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_list_plain(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_list_queue(
    ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_redis_op_t **prev,
    ngx_http_supportdesk_args_t *args, ngx_http_supportdesk_list_kind_e kind,
    ngx_uint_t index, ngx_uint_t count);
static void ngx_http_supportdesk_list_abandon(void *data);
static void ngx_http_supportdesk_list_reply(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_take(
    ngx_http_supportdesk_list_step_t *step, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_number(redisReply *reply,
    uint64_t *n);
static ngx_int_t ngx_http_supportdesk_list_ids(
    ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_list_step_t *step, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_hash(
    ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_list_step_t *step, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_chunk(
    ngx_http_supportdesk_list_page_t *page);
static ngx_int_t ngx_http_supportdesk_list_customers(
    ngx_http_supportdesk_list_page_t *page);
static ngx_int_t ngx_http_supportdesk_list_end(
    ngx_http_supportdesk_list_page_t *page);
static void ngx_http_supportdesk_list_notes(ngx_http_supportdesk_json_t *json,
    int64_t n);
static ngx_int_t ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_list_customer(
    ngx_http_supportdesk_json_t *json, ngx_http_supportdesk_msgpack_t *mp,
    ngx_uint_t notes_count);


ngx_int_t
ngx_http_supportdesk_list_validate(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    return ngx_http_supportdesk_query_step(r, ctx,
                                       NGX_HTTP_SUPPORTDESK_QUERY_CUSTOMERS);
}


ngx_int_t
ngx_http_supportdesk_list(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;

    if (q->email.len || q->name.len || q->metadata.nelts) {
        return ngx_http_supportdesk_list_script(r, ctx);
    }

    return ngx_http_supportdesk_list_plain(r, ctx);
}


static ngx_int_t
ngx_http_supportdesk_list_script(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_str_t                     *meta;
    ngx_uint_t                     i;
    ngx_http_supportdesk_args_t    args;
    ngx_http_supportdesk_query_t  *q;

    q = ctx->data;
    meta = q->metadata.elts;

    ngx_http_supportdesk_args_init(&args, r->pool,
                                       NGX_HTTP_SUPPORTDESK_LIST_ARGS
                                       + q->metadata.nelts);

    ngx_http_supportdesk_args_literal(&args, "1");
    ngx_http_supportdesk_args_app_key(&args, ctx, "order", NULL);
    ngx_http_supportdesk_args_app_key(&args, ctx, "", NULL);

    ngx_http_supportdesk_args_str_or(&args, &q->cursor, "0");

    ngx_http_supportdesk_args_uint(&args, q->limit);
    ngx_http_supportdesk_args_uint(&args, ctx->conf->list_scan_limit);

    if (q->notes_count) {
        ngx_http_supportdesk_args_literal(&args, "1");

    } else {
        ngx_http_supportdesk_args_literal(&args, "0");
    }

    ngx_http_supportdesk_args_str(&args, &q->email);
    ngx_http_supportdesk_args_str(&args, &q->name);

    for (i = 0; i < q->metadata.nelts; i++) {
        ngx_http_supportdesk_args_str(&args, &meta[i]);
    }

    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_SCRIPT_LIST,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_STRING,
                                           ngx_http_supportdesk_list_send);
}


/*
 * A page without a filter: round one pipelines GET seq, GET order:n and
 * an HMGET of the chunk's sequence numbers in their order bucket(s).
 */

static ngx_int_t
ngx_http_supportdesk_list_plain(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    off_t                              after;
    u_char                             number[NGX_INT64_LEN];
    uint64_t                           seq, end, bucket, last;
    ngx_int_t                          rc;
    ngx_str_t                          suffix;
    ngx_uint_t                         index, count, n;
    ngx_pool_cleanup_t                *cln;
    ngx_http_supportdesk_args_t        args;
    ngx_http_supportdesk_query_t      *q;
    ngx_http_supportdesk_redis_op_t   *prev;
    ngx_http_supportdesk_list_page_t  *page;
    ngx_http_supportdesk_list_kind_e   kind;

    q = ctx->data;

    after = 0;

    if (q->cursor.len) {
        after = ngx_atoof(q->cursor.data, q->cursor.len);

        if (after == NGX_ERROR) {
            /* digits past 2^63: the script's walk answers those */
            return ngx_http_supportdesk_list_script(r, ctx);
        }
    }

    page = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_list_page_t));
    if (page == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    page->request = r;
    page->after = after;
    page->chunk = ngx_min(q->limit + NGX_HTTP_SUPPORTDESK_LIST_SLACK,
                          ctx->conf->list_scan_limit);

    page->xid = ngx_pcalloc(r->pool, page->chunk * sizeof(ngx_str_t));
    /* the two GETs and a command for each bucket the chunk touches */
    n = 2 + page->chunk / NGX_HTTP_SUPPORTDESK_LIST_BUCKET + 2;
    page->steps = ngx_pcalloc(r->pool,
                              n * sizeof(ngx_http_supportdesk_list_step_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (page->xid == NULL || page->steps == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request may go before its replies: they then go nowhere */
    cln->handler = ngx_http_supportdesk_list_abandon;
    cln->data = page;

    prev = NULL;

    ngx_http_supportdesk_args_init(&args, r->pool, 2);
    ngx_http_supportdesk_args_literal(&args, "GET");
    ngx_http_supportdesk_args_app_key(&args, ctx, "seq", NULL);

    rc = ngx_http_supportdesk_list_queue(page, &prev, &args,
                                         NGX_HTTP_SUPPORTDESK_LIST_SEQ, 0, 0);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_set(&suffix, "n");

    ngx_http_supportdesk_args_init(&args, r->pool, 2);
    ngx_http_supportdesk_args_literal(&args, "GET");
    ngx_http_supportdesk_args_app_key(&args, ctx, "order", &suffix);

    (void) ngx_http_supportdesk_list_queue(page, &prev, &args,
                                           NGX_HTTP_SUPPORTDESK_LIST_TOTAL,
                                           0, 0);

    /* the chunk's sequence numbers, bucket by bucket (two at most) */
    seq = page->after + 1;
    end = page->after + page->chunk;
    index = 0;

    while (seq <= end && page->error.status == 0) {
        bucket = seq / NGX_HTTP_SUPPORTDESK_LIST_BUCKET;
        last = ngx_min(end, bucket * NGX_HTTP_SUPPORTDESK_LIST_BUCKET
                            + NGX_HTTP_SUPPORTDESK_LIST_BUCKET - 1);
        count = last - seq + 1;

        suffix.data = number;
        suffix.len = ngx_sprintf(number, "%uL", bucket) - number;

        if (count > NGX_HTTP_SUPPORTDESK_LIST_HMGET_MAX) {
            ngx_http_supportdesk_args_init(&args, r->pool, 2);
            ngx_http_supportdesk_args_literal(&args, "HGETALL");
            ngx_http_supportdesk_args_app_key(&args, ctx, "order", &suffix);
            kind = NGX_HTTP_SUPPORTDESK_LIST_BUCKET_IDS;
            seq = last + 1;

        } else {
            ngx_http_supportdesk_args_init(&args, r->pool, 2 + count);
            ngx_http_supportdesk_args_literal(&args, "HMGET");
            ngx_http_supportdesk_args_app_key(&args, ctx, "order", &suffix);
            kind = NGX_HTTP_SUPPORTDESK_LIST_IDS;

            for ( /* void */ ; seq <= last; seq++) {
                ngx_http_supportdesk_args_uint(&args, seq);
            }
        }

        (void) ngx_http_supportdesk_list_queue(page, &prev, &args, kind,
                                               index, count);
        index += count;
    }

    ngx_http_supportdesk_watch_client(r);

    return NGX_DONE;
}


/*
 * One command behind prev, its reply due to list_reply(); once one could
 * not be sent, the rest is not (the page fails with 503 when its replies
 * are in).  NGX_OK, or a status when even the first could not go.
 */

static ngx_int_t
ngx_http_supportdesk_list_queue(ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_redis_op_t **prev, ngx_http_supportdesk_args_t *args,
    ngx_http_supportdesk_list_kind_e kind, ngx_uint_t index, ngx_uint_t count)
{
    ngx_http_request_t                *r;
    ngx_http_supportdesk_ctx_t        *ctx;
    ngx_http_supportdesk_list_step_t  *step;

    if (page->error.status) {
        return NGX_OK;
    }

    r = page->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);

    step = &page->steps[page->nsteps];
    step->page = page;
    step->kind = kind;
    step->index = index;
    step->count = count;

    step->op = ngx_http_supportdesk_store_queue(r, ctx, *prev,
                                        NGX_HTTP_SUPPORTDESK_NO_SCRIPT, args,
                                        ngx_http_supportdesk_list_reply, step);
    if (step->op == NULL) {
        if (*prev == NULL) {
            return args->failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                : NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        page->error.status = args->failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                          : NGX_HTTP_SERVICE_UNAVAILABLE;
        return NGX_OK;
    }

    *prev = step->op;
    page->nsteps++;
    page->pending++;

    return NGX_OK;
}


static void
ngx_http_supportdesk_list_abandon(void *data)
{
    ngx_http_supportdesk_list_page_t  *page = data;

    ngx_uint_t  i;

    for (i = 0; i < page->nsteps; i++) {
        if (page->steps[i].op != NULL) {
            ngx_http_supportdesk_redis_abandon(page->steps[i].op);
            page->steps[i].op = NULL;
        }
    }
}


/*
 * Every reply is taken in as it comes (it goes with the callback); the
 * first failure is the page's answer, given once every reply is in.
 */

static void
ngx_http_supportdesk_list_reply(void *data, ngx_int_t rc, redisReply *reply)
{
    ngx_http_supportdesk_list_step_t  *step = data;

    ngx_http_request_t                *r;
    ngx_http_supportdesk_list_page_t  *page;

    page = step->page;
    r = page->request;
    step->op = NULL;

    if (page->error.status == 0) {
        if (rc != NGX_OK) {
            page->error.status = rc;

        } else if (reply->type == REDIS_REPLY_ERROR) {
            if (ngx_http_supportdesk_store_error(r, reply, &page->error)
                != NGX_OK)
            {
                page->error.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

        } else if (ngx_http_supportdesk_list_take(step, reply) != NGX_OK) {
            page->error.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (--page->pending) {
        return;
    }

    if (page->error.status) {
        rc = ngx_http_supportdesk_send_api_error(r, &page->error);

    } else if (page->round++ == 0) {
        rc = ngx_http_supportdesk_list_chunk(page);

        if (rc == NGX_DONE) {
            return;
        }

    } else {
        rc = ngx_http_supportdesk_list_end(page);
    }

    ngx_http_supportdesk_finish(r, rc);
}


static ngx_int_t
ngx_http_supportdesk_list_take(ngx_http_supportdesk_list_step_t *step,
    redisReply *reply)
{
    uint64_t                           n;
    ngx_http_request_t                *r;
    ngx_http_supportdesk_list_page_t  *page;

    page = step->page;
    r = page->request;

    switch (step->kind) {

    case NGX_HTTP_SUPPORTDESK_LIST_SEQ:
        if (ngx_http_supportdesk_list_number(reply, &page->max) == NGX_OK) {
            return NGX_OK;
        }

        break;

    case NGX_HTTP_SUPPORTDESK_LIST_TOTAL:
        if (ngx_http_supportdesk_list_number(reply, &n) == NGX_OK) {
            page->total = (int64_t) n;
            return NGX_OK;
        }

        break;

    case NGX_HTTP_SUPPORTDESK_LIST_IDS:
    case NGX_HTTP_SUPPORTDESK_LIST_BUCKET_IDS:
        return ngx_http_supportdesk_list_ids(page, step, reply);

    case NGX_HTTP_SUPPORTDESK_LIST_CUSTOMER:
        return ngx_http_supportdesk_list_hash(page, step, reply);

    case NGX_HTTP_SUPPORTDESK_LIST_NOTES:
        if (reply->type != REDIS_REPLY_INTEGER) {
            break;
        }

        /* the HGETALL just before it rendered this customer */
        if (page->shown == step->index + 1 && !page->json.failed) {
            ngx_http_supportdesk_list_notes(&page->json, reply->integer);
        }

        return NGX_OK;
    }

    (void) ngx_http_supportdesk_store_unexpected(r, reply);

    return NGX_ERROR;
}


/* a counter as GET answers it: digits, or nil for none yet */

static ngx_int_t
ngx_http_supportdesk_list_number(redisReply *reply, uint64_t *n)
{
    off_t  v;

    if (reply->type == REDIS_REPLY_NIL) {
        *n = 0;
        return NGX_OK;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        return NGX_ERROR;
    }

    v = ngx_atoof((u_char *) reply->str, reply->len);
    if (v == NGX_ERROR) {
        return NGX_ERROR;
    }

    *n = (uint64_t) v;

    return NGX_OK;
}


/*
 * An order bucket's entries for the chunk: an externalId or nil per
 * sequence number asked (HMGET), or the bucket's sequence number and
 * externalId pairs (HGETALL), of which those of the chunk are kept.
 */

static ngx_int_t
ngx_http_supportdesk_list_ids(ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_list_step_t *step, redisReply *reply)
{
    off_t        seq, first;
    u_char      *p;
    ngx_str_t   *xid;
    ngx_uint_t   i, pairs;
    redisReply  *e, *name;

    pairs = (step->kind == NGX_HTTP_SUPPORTDESK_LIST_BUCKET_IDS);

    if (reply->type != REDIS_REPLY_ARRAY
        || (pairs ? reply->elements % 2 : reply->elements != step->count))
    {
        (void) ngx_http_supportdesk_store_unexpected(page->request, reply);
        return NGX_ERROR;
    }

    first = page->after + 1 + step->index;

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];
        seq = first + i;

        if (pairs) {
            name = e;
            e = reply->element[++i];

            if (name->type != REDIS_REPLY_STRING) {
                goto unexpected;
            }

            seq = ngx_atoof((u_char *) name->str, name->len);

            if (seq == NGX_ERROR) {
                goto unexpected;
            }

            if (seq < first || seq >= first + (off_t) step->count) {
                continue;
            }
        }

        if (e->type == REDIS_REPLY_NIL) {
            continue;
        }

        if (e->type != REDIS_REPLY_STRING || e->len == 0) {
            goto unexpected;
        }

        p = ngx_pnalloc(page->request->pool, e->len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        xid = &page->xid[seq - page->after - 1];
        xid->data = p;
        xid->len = e->len;
        ngx_memcpy(p, e->str, e->len);
    }

    page->spent += NGX_HTTP_SUPPORTDESK_LIST_CALL
                   + NGX_HTTP_SUPPORTDESK_LIST_ELEMENT * reply->elements;

    return NGX_OK;

unexpected:

    (void) ngx_http_supportdesk_store_unexpected(page->request, e);

    return NGX_ERROR;
}


/*
 * Round one is in: the page's customers are the first limit entries of
 * the chunk, up to the scan limit and the app's last sequence number.
 * NGX_DONE once round two (or the script) is on its way.
 */

static ngx_int_t
ngx_http_supportdesk_list_chunk(ngx_http_supportdesk_list_page_t *page)
{
    size_t                         size;
    uint64_t                       stop, end, seq;
    ngx_http_request_t            *r;
    ngx_http_supportdesk_ctx_t    *ctx;
    ngx_http_supportdesk_query_t  *q;

    r = page->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    q = ctx->data;

    stop = ngx_min(page->max, page->after + ctx->conf->list_scan_limit);
    end = ngx_min(page->after + page->chunk, stop);

    page->found = ngx_palloc(r->pool, q->limit * sizeof(ngx_uint_t));
    if (page->found == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    page->last = page->after;

    for (seq = page->after + 1; seq <= end && page->nfound < q->limit; seq++)
    {
        page->last = seq;
        page->spent += 16;

        if (page->xid[seq - page->after - 1].len) {
            page->found[page->nfound++] = seq - page->after - 1;
        }
    }

    if (page->nfound < q->limit && page->last < stop) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "supportdesk: list: %ui customers in %ui sequence "
                       "numbers, the script walks the gaps",
                       page->nfound, page->chunk);

        return ngx_http_supportdesk_list_script(r, ctx);
    }

    /* what a customer usually takes; the buffer grows for a larger one */
    size = 512 * page->nfound + 128;

    if (ngx_http_supportdesk_envelope_start(r, &page->json, size) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&page->json, "{\"customers\":[");

    if (page->nfound == 0) {
        return ngx_http_supportdesk_list_end(page);
    }

    return ngx_http_supportdesk_list_customers(page);
}


/* round two: each customer's hash (and note count), in the page's order */

static ngx_int_t
ngx_http_supportdesk_list_customers(ngx_http_supportdesk_list_page_t *page)
{
    ngx_int_t                          rc;
    ngx_str_t                         *xid;
    ngx_uint_t                         i, per;
    ngx_http_request_t                *r;
    ngx_http_supportdesk_ctx_t        *ctx;
    ngx_http_supportdesk_args_t        args;
    ngx_http_supportdesk_query_t      *q;
    ngx_http_supportdesk_redis_op_t   *prev;

    r = page->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_supportdesk_module);
    q = ctx->data;

    per = q->notes_count ? 2 : 1;

    /* round one's steps are all answered: none is abandoned any more */
    page->nsteps = 0;
    page->steps = ngx_pcalloc(r->pool,
                              per * page->nfound
                              * sizeof(ngx_http_supportdesk_list_step_t));
    if (page->steps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    prev = NULL;

    for (i = 0; i < page->nfound; i++) {
        xid = &page->xid[page->found[i]];

        ngx_http_supportdesk_args_init(&args, r->pool, 2);
        ngx_http_supportdesk_args_literal(&args, "HGETALL");
        ngx_http_supportdesk_args_app_key(&args, ctx, "c", xid);

        rc = ngx_http_supportdesk_list_queue(page, &prev, &args,
                                           NGX_HTTP_SUPPORTDESK_LIST_CUSTOMER,
                                           i, 0);
        if (rc != NGX_OK) {
            return rc;
        }

        if (per == 2) {
            ngx_http_supportdesk_args_init(&args, r->pool, 2);
            ngx_http_supportdesk_args_literal(&args, "ZCARD");
            ngx_http_supportdesk_args_app_key(&args, ctx, "notez", xid);

            (void) ngx_http_supportdesk_list_queue(page, &prev, &args,
                                              NGX_HTTP_SUPPORTDESK_LIST_NOTES,
                                              i, 0);
        }
    }

    return NGX_DONE;
}


/*
 * A customer's hash, rendered when it is still the one the bucket named
 * (deleted since, or deleted and created again under a later sequence
 * number: not on this page) and the budget has room.
 */

static ngx_int_t
ngx_http_supportdesk_list_hash(ngx_http_supportdesk_list_page_t *page,
    ngx_http_supportdesk_list_step_t *step, redisReply *reply)
{
    u_char       number[NGX_INT64_LEN];
    size_t       i, len, bytes;
    ngx_str_t   *xid;
    ngx_uint_t   place;
    redisReply  *name, *value, *seq;

    page->shown = 0;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        (void) ngx_http_supportdesk_store_unexpected(page->request, reply);
        return NGX_ERROR;
    }

    if (page->cut) {
        return NGX_OK;
    }

    seq = NULL;
    bytes = 0;

    for (i = 0; i < reply->elements; i += 2) {
        name = reply->element[i];
        value = reply->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            (void) ngx_http_supportdesk_store_unexpected(page->request,
                                                         reply);
            return NGX_ERROR;
        }

        bytes += name->len + value->len;

        if (name->len == 1 && name->str[0] == 's') {
            seq = value;
        }
    }

    place = page->found[step->index];
    len = ngx_sprintf(number, "%uL", page->after + 1 + place) - number;

    if (seq == NULL || seq->len != len
        || ngx_strncmp(seq->str, number, len) != 0)
    {
        return NGX_OK;
    }

    /* as list.lua: at least one customer, then until the budget is spent */
    if (step->index > 0 && page->spent >= NGX_HTTP_SUPPORTDESK_LIST_BUDGET) {
        page->cut = step->index;
        return NGX_OK;
    }

    /* read, and written to the answer */
    page->spent += NGX_HTTP_SUPPORTDESK_LIST_CALL
                   + 2 * (bytes + NGX_HTTP_SUPPORTDESK_LIST_ELEMENT
                                  * reply->elements / 2);

    if (page->rendered++) {
        ngx_http_supportdesk_json_literal(&page->json, ",");
    }

    xid = &page->xid[place];

    if (ngx_http_supportdesk_record_render(&page->json, xid, reply, NULL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, page->request->connection->log, 0,
                      "supportdesk: unexpected customer hash from redis "
                      "(%uz elements) in a list page", reply->elements);
        return NGX_ERROR;
    }

    page->shown = step->index + 1;

    return NGX_OK;
}


/* the page closed: the cursor after its last sequence number examined */

static ngx_int_t
ngx_http_supportdesk_list_end(ngx_http_supportdesk_list_page_t *page)
{
    u_char                        number[NGX_INT64_LEN];
    uint64_t                      last;
    ngx_str_t                     cursor;
    ngx_http_request_t           *r;
    ngx_http_supportdesk_json_t  *json;

    r = page->request;
    json = &page->json;

    last = page->last;

    if (page->cut) {
        /* the customer before the first one left out */
        last = page->after + 1 + page->found[page->cut - 1];
    }

    ngx_http_supportdesk_json_literal(json, "],\"nextCursor\":");

    if (last >= page->max) {
        ngx_http_supportdesk_json_literal(json, "null");

    } else {
        if (ngx_http_supportdesk_cursor_encode(r->pool, number,
                                     ngx_sprintf(number, "%uL", last) - number,
                                     &cursor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_supportdesk_json_string(json, cursor.data, cursor.len);
    }

    ngx_http_supportdesk_json_literal(json, ",\"total\":");
    ngx_http_supportdesk_json_int(json, page->total);
    ngx_http_supportdesk_json_literal(json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, json);
}


/* reopens the customer object just written to add its note count */

static void
ngx_http_supportdesk_list_notes(ngx_http_supportdesk_json_t *json, int64_t n)
{
    json->pos--;
    ngx_http_supportdesk_json_literal(json, ",\"notesCount\":");
    ngx_http_supportdesk_json_int(json, n);
    ngx_http_supportdesk_json_literal(json, "}");
}


/*
 * One string: cmsgpack.pack() of {total, next sequence or "", externalId,
 * {the customer's field values in sd.customer_fields order, false for an
 * unset one}[, notesCount], ...}, walked in place: no reply object per
 * value (a page of 20 is about 240 values).
 */

static ngx_int_t
ngx_http_supportdesk_list_send(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    size_t                                i, n, step, size;
    int64_t                               total;
    ngx_int_t                             rc;
    ngx_str_t                             cursor;
    ngx_http_supportdesk_json_t           json;
    ngx_http_supportdesk_query_t         *q;
    ngx_http_supportdesk_msgpack_t        mp;
    ngx_http_supportdesk_msgpack_item_t   item, next;

    q = ctx->data;
    step = q->notes_count ? 3 : 2;

    mp.p = (u_char *) reply->str;
    mp.last = mp.p + reply->len;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY
        || item.len < 2
        || (item.len - 2) % step)
    {
        goto unexpected;
    }

    n = item.len;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_INTEGER
        || ngx_http_supportdesk_msgpack_next(&mp, &next) != NGX_OK
        || next.type != REDIS_REPLY_STRING)
    {
        goto unexpected;
    }

    total = item.integer;

    /*
     * the page's bytes plus the names and quotes of each customer it can
     * hold (the buffer grows if a page needs more): never a size a forged
     * element count could inflate
     */
    size = reply->len + 160 * ngx_min((n - 2) / step, q->limit) + 128;

    if (ngx_http_supportdesk_envelope_start(r, &json, size) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_json_literal(&json, "{\"customers\":[");

    for (i = 2; i < n; i += step) {
        if (i > 2) {
            ngx_http_supportdesk_json_literal(&json, ",");
        }

        rc = ngx_http_supportdesk_list_customer(&json, &mp, step == 3);
        if (rc != NGX_OK) {
            goto unexpected;
        }
    }

    if (mp.p != mp.last) {
        goto unexpected;
    }

    ngx_http_supportdesk_json_literal(&json, "],\"nextCursor\":");

    if (next.len == 0) {
        ngx_http_supportdesk_json_literal(&json, "null");

    } else {
        if (ngx_http_supportdesk_cursor_encode(r->pool, (u_char *) next.str,
                                               next.len, &cursor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_supportdesk_json_string(&json, cursor.data, cursor.len);
    }

    ngx_http_supportdesk_json_literal(&json, ",\"total\":");
    ngx_http_supportdesk_json_int(&json, total);
    ngx_http_supportdesk_json_literal(&json, "}");

    return ngx_http_supportdesk_envelope_send(r, NGX_HTTP_OK, &json);

unexpected:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "supportdesk: unexpected list page from redis at byte %uz "
                  "of %uz", (size_t) (mp.p - (u_char *) reply->str),
                  reply->len);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* externalId, {values}[, notesCount]: rendered from the text in place */

static ngx_int_t
ngx_http_supportdesk_list_customer(ngx_http_supportdesk_json_t *json,
    ngx_http_supportdesk_msgpack_t *mp, ngx_uint_t notes_count)
{
    size_t                                k;
    ngx_str_t                             xid;
    ngx_http_supportdesk_list_values_t    v;
    ngx_http_supportdesk_msgpack_item_t   item;

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_STRING)
    {
        return NGX_ERROR;
    }

    xid.data = (u_char *) item.str;
    xid.len = item.len;

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY
        || item.len != NGX_HTTP_SUPPORTDESK_RECORD_FIELDS)
    {
        return NGX_ERROR;
    }

    /* strings and nils only: render_values() refuses anything else */
    for (k = 0; k < NGX_HTTP_SUPPORTDESK_RECORD_FIELDS; k++) {
        if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
            || item.type == REDIS_REPLY_ARRAY)
        {
            return NGX_ERROR;
        }

        v.value[k].type = item.type;
        v.value[k].str = (char *) item.str;
        v.value[k].len = item.len;
        v.element[k] = &v.value[k];
    }

    v.array.type = REDIS_REPLY_ARRAY;
    v.array.elements = NGX_HTTP_SUPPORTDESK_RECORD_FIELDS;
    v.array.element = v.element;

    if (ngx_http_supportdesk_record_render_values(json, &xid, &v.array)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!notes_count) {
        return NGX_OK;
    }

    if (ngx_http_supportdesk_msgpack_next(mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_INTEGER)
    {
        return NGX_ERROR;
    }

    if (!json->failed) {
        ngx_http_supportdesk_list_notes(json, item.integer);
    }

    return NGX_OK;
}
