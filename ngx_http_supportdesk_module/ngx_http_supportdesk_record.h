
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


/* 4 keys + now + externalId + 5 field/value pairs, numkeys first */
#define NGX_HTTP_SUPPORTDESK_UPSERT_ARGS  17


/* the EVALSHA arguments of redis/upsert.lua for one customer of app */
ngx_int_t ngx_http_supportdesk_record_upsert_args(
    ngx_http_supportdesk_args_t *args, ngx_pool_t *pool, ngx_str_t *app,
    ngx_str_t *external_id, ngx_http_supportdesk_customer_input_t *in);

/* an HGETALL of a customer hash as {"id":...}; NGX_ERROR if malformed */
ngx_int_t ngx_http_supportdesk_record_render(
    ngx_http_supportdesk_json_t *json, ngx_str_t *external_id,
    redisReply *hash);


#endif /* _NGX_HTTP_SUPPORTDESK_RECORD_H_INCLUDED_ */
