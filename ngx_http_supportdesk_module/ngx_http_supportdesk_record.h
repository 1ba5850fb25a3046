
/*
 * The customer record as Redis keeps it (README: Redis key layout): the
 * arguments redis/upsert.lua takes for a validated payload, and a stored
 * hash rendered as the API's customer object.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_RECORD_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_RECORD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>

#include "ngx_http_supportdesk_validate.h"
#include "ngx_http_supportdesk_envelope.h"
#include "ngx_http_supportdesk_store.h"
#include "ngx_http_supportdesk_msgpack.h"


/*
 * numkeys, 3 + 5 keys (the writer's, the customer's, a batch's record),
 * 5 + 4 arguments (the writer's, externalId, the conditions, a batch's
 * token), 5 field/value pairs
 */
#define NGX_HTTP_SUPPORTDESK_UPSERT_ARGS  28


/* what redis/upsert.lua takes besides the payload */
typedef struct {
    ngx_str_t                           *external_id;
    ngx_str_t                           *if_match;
    ngx_str_t                           *if_none_match;
    /* a batch item: its index, the batch's token; item -1: not one */
    ngx_int_t                            item;
    ngx_str_t                           *token;
} ngx_http_supportdesk_upsert_t;


/* the EVALSHA arguments of redis/upsert.lua for one customer */
ngx_int_t ngx_http_supportdesk_record_upsert_args(
    ngx_http_supportdesk_args_t *args, ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, ngx_http_supportdesk_upsert_t *up,
    ngx_http_supportdesk_customer_input_t *in);

/* a payload's metadata as stored (compact, numbers as sent), in pool */
ngx_int_t ngx_http_supportdesk_record_metadata(ngx_pool_t *pool,
    ngx_http_supportdesk_customer_input_t *in, ngx_str_t *meta);

/* a customer hash's ETag, "<s>-<v>" (without its quotes), in pool */
ngx_int_t ngx_http_supportdesk_record_etag(ngx_pool_t *pool,
    redisReply *hash, ngx_str_t *etag);

/*
 * An HGETALL of a customer hash as {"id":...}; NGX_ERROR if malformed.
 * etag not NULL and still empty: its ETag too, from the same pass.
 */
ngx_int_t ngx_http_supportdesk_record_render(
    ngx_http_supportdesk_json_t *json, ngx_str_t *external_id,
    redisReply *hash, ngx_str_t *etag);

/*
 * The customer fields, in redis/lib.lua's sd.customer_fields order: the
 * order of a script's positional answer (an HMGET of them all).
 */
typedef enum {
    NGX_HTTP_SUPPORTDESK_FIELD_SEQ = 0,
    NGX_HTTP_SUPPORTDESK_FIELD_EMAIL,
    NGX_HTTP_SUPPORTDESK_FIELD_NAME,
    NGX_HTTP_SUPPORTDESK_FIELD_PHONE,
    NGX_HTTP_SUPPORTDESK_FIELD_AVATAR,
    NGX_HTTP_SUPPORTDESK_FIELD_META,
    NGX_HTTP_SUPPORTDESK_FIELD_CREATED,
    NGX_HTTP_SUPPORTDESK_FIELD_UPDATED,
    NGX_HTTP_SUPPORTDESK_FIELD_VERSION,
    NGX_HTTP_SUPPORTDESK_RECORD_FIELDS
} ngx_http_supportdesk_field_e;

/*
 * The same from the fields' values in that order, nil for an unset one
 * (half the elements of field/value pairs); NGX_ERROR if malformed.
 */
ngx_int_t ngx_http_supportdesk_record_render_values(
    ngx_http_supportdesk_json_t *json, ngx_str_t *external_id,
    redisReply *values);

/*
 * redis/upsert.lua's answer as it comes, one string: cmsgpack.pack() of
 * {wasCreated, the customer hash as field/value pairs}.  Read in place:
 * hash is an array of the pairs, its strings pointing into the text (not
 * 0-terminated), for record_render().
 */
#define NGX_HTTP_SUPPORTDESK_RECORD_PAIRS                                  \
    (2 * NGX_HTTP_SUPPORTDESK_RECORD_FIELDS)

typedef struct {
    int64_t      created;
    redisReply   hash;
    redisReply  *element[NGX_HTTP_SUPPORTDESK_RECORD_PAIRS];
    redisReply   value[NGX_HTTP_SUPPORTDESK_RECORD_PAIRS];
} ngx_http_supportdesk_record_packed_t;


/*
 * NGX_ERROR, logged with how far the text was read: not exactly that value
 * (a cut or longer text, more pairs than a customer has, a value not a
 * string).
 */
ngx_int_t ngx_http_supportdesk_record_unpack(const u_char *text, size_t len,
    ngx_http_supportdesk_record_packed_t *packed, ngx_log_t *log);


#define NGX_HTTP_SUPPORTDESK_SETTINGS  3

/* the notification settings, stored under the names clients use */
extern ngx_str_t  ngx_http_supportdesk_settings[];

/* a settings hash (HGETALL) as {"newTicket":true,...}: unset ones are on */
void ngx_http_supportdesk_record_settings(ngx_http_supportdesk_json_t *json,
    redisReply *hash);

/* a note as {"id":"note_<id>",...} */
void ngx_http_supportdesk_record_note(ngx_http_supportdesk_json_t *json,
    u_char *id, size_t id_len, time_t created, u_char *text, size_t len);


#endif /* _NGX_HTTP_SUPPORTDESK_RECORD_H_INCLUDED_ */
