
/*
 * The customer record: one Redis hash of one-letter fields (s e n p a m c
 * u), so a customer stays small and in the listpack encoding.  Upsert and
 * batch build its arguments here; get, upsert and list render it here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_record.h"


static ngx_int_t ngx_http_supportdesk_record_tag(ngx_pool_t *pool,
    redisReply *seq, redisReply *version, ngx_str_t *etag);
static ngx_int_t ngx_http_supportdesk_record_render_fields(
    ngx_http_supportdesk_json_t *json, ngx_str_t *external_id,
    redisReply **f, ngx_str_t *etag);


ngx_str_t  ngx_http_supportdesk_settings[] = {
    ngx_string("newTicket"),
    ngx_string("newComment"),
    ngx_string("ticketReassigned"),
    ngx_null_string
};


ngx_int_t
ngx_http_supportdesk_record_upsert_args(ngx_http_supportdesk_args_t *args,
    ngx_http_request_t *r, ngx_http_supportdesk_ctx_t *ctx,
    ngx_http_supportdesk_upsert_t *up,
    ngx_http_supportdesk_customer_input_t *in)
{
    ngx_str_t    meta;
    ngx_pool_t  *pool;

    pool = r->pool;

    ngx_http_supportdesk_args_init(args, pool,
                                   NGX_HTTP_SUPPORTDESK_UPSERT_ARGS);

    if (up->item < 0) {
        ngx_http_supportdesk_args_literal(args, "7");

    } else {
        ngx_http_supportdesk_args_literal(args, "8");
    }

    ngx_http_supportdesk_args_write_keys(args, ctx, up->item);
    ngx_http_supportdesk_args_app_key(args, ctx, "c", up->external_id);
    ngx_http_supportdesk_args_app_key(args, ctx, "emails", NULL);
    ngx_http_supportdesk_args_app_key(args, ctx, "order", NULL);
    ngx_http_supportdesk_args_app_key(args, ctx, "seq", NULL);

    if (up->item >= 0) {
        ngx_http_supportdesk_args_app_key(args, ctx, "idem",
                                          &ctx->idempotency_key);
    }

    ngx_http_supportdesk_args_write_argv(args, r, ctx);
    ngx_http_supportdesk_args_str(args, up->external_id);
    ngx_http_supportdesk_args_str(args, up->if_match);
    ngx_http_supportdesk_args_str(args, up->if_none_match);
    ngx_http_supportdesk_args_str(args, up->token);

    if (in->set_email) {
        ngx_http_supportdesk_args_literal(args, "e");
        ngx_http_supportdesk_args_str(args, &in->email);
    }

    if (in->set_name) {
        ngx_http_supportdesk_args_literal(args, "n");
        ngx_http_supportdesk_args_str(args, &in->name);
    }

    /* a cleared field travels as an empty value */
    if (in->set_phone || in->clear_phone) {
        ngx_http_supportdesk_args_literal(args, "p");
        ngx_http_supportdesk_args_str(args, &in->phone);
    }

    if (in->set_avatar_url || in->clear_avatar_url) {
        ngx_http_supportdesk_args_literal(args, "a");
        ngx_http_supportdesk_args_str(args, &in->avatar_url);
    }

    if (in->set_metadata) {
        if (ngx_http_supportdesk_record_metadata(pool, in, &meta) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_supportdesk_args_literal(args, "m");
        ngx_http_supportdesk_args_str(args, &meta);

    } else if (in->clear_metadata) {
        ngx_http_supportdesk_args_literal(args, "m");
        ngx_http_supportdesk_args_literal(args, "");
    }

    return args->failed ? NGX_ERROR : NGX_OK;
}


/*
 * Metadata is stored as the compact form of the text it was sent as: its
 * numbers come back exactly as sent (jansson would write 0.1 back as
 * 0.10000000000000001).
 */

ngx_int_t
ngx_http_supportdesk_record_metadata(ngx_pool_t *pool,
    ngx_http_supportdesk_customer_input_t *in, ngx_str_t *meta)
{
    ngx_str_t  *text;

    text = &in->metadata_text;

    /*
     * Sent compact already, as JSON encoders write it: nothing was left
     * out, and without escapes nothing was rewritten.  The text is the
     * caller's, which outlives the arguments (the request's body).
     */
    if (in->metadata_len == text->len
        && ngx_strlchr(text->data, text->data + text->len, '\\') == NULL)
    {
        *meta = *text;
        return NGX_OK;
    }

    meta->data = ngx_pnalloc(pool, in->metadata_len);
    if (meta->data == NULL) {
        return NGX_ERROR;
    }

    meta->len = ngx_http_supportdesk_json_compact(in->metadata_text.data,
                                                  in->metadata_text.len,
                                                  meta->data);

    return meta->len == in->metadata_len ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_supportdesk_record_etag(ngx_pool_t *pool, redisReply *hash,
    ngx_str_t *etag)
{
    redisReply        *v[3];
    static ngx_str_t   names[] = { ngx_string("s"), ngx_string("v"),
                                   ngx_null_string };

    ngx_http_supportdesk_store_fields(hash, names, v);

    if (v[0] == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_supportdesk_record_tag(pool, v[0], v[1], etag);
}


/* "<s>-<v>"; a customer from before versions: version 0 */

static ngx_int_t
ngx_http_supportdesk_record_tag(ngx_pool_t *pool, redisReply *seq,
    redisReply *version, ngx_str_t *etag)
{
    u_char  *p;

    p = ngx_pnalloc(pool, seq->len + 1 + (version != NULL ? version->len : 1));
    if (p == NULL) {
        return NGX_ERROR;
    }

    etag->data = p;
    p = ngx_cpymem(p, seq->str, seq->len);
    *p++ = '-';

    if (version != NULL) {
        p = ngx_cpymem(p, version->str, version->len);

    } else {
        *p++ = '0';
    }

    etag->len = p - etag->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_record_render(ngx_http_supportdesk_json_t *json,
    ngx_str_t *external_id, redisReply *hash, ngx_str_t *etag)
{
    size_t       i;
    redisReply  *name, *value, *f[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];

    ngx_memzero(f, sizeof(f));

    for (i = 0; i + 1 < hash->elements; i += 2) {
        name = hash->element[i];
        value = hash->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING
            || name->len != 1)
        {
            continue;
        }

        switch (name->str[0]) {
        case 's':
            f[NGX_HTTP_SUPPORTDESK_FIELD_SEQ] = value;
            break;
        case 'e':
            f[NGX_HTTP_SUPPORTDESK_FIELD_EMAIL] = value;
            break;
        case 'n':
            f[NGX_HTTP_SUPPORTDESK_FIELD_NAME] = value;
            break;
        case 'p':
            f[NGX_HTTP_SUPPORTDESK_FIELD_PHONE] = value;
            break;
        case 'a':
            f[NGX_HTTP_SUPPORTDESK_FIELD_AVATAR] = value;
            break;
        case 'm':
            f[NGX_HTTP_SUPPORTDESK_FIELD_META] = value;
            break;
        case 'c':
            f[NGX_HTTP_SUPPORTDESK_FIELD_CREATED] = value;
            break;
        case 'u':
            f[NGX_HTTP_SUPPORTDESK_FIELD_UPDATED] = value;
            break;
        case 'v':
            f[NGX_HTTP_SUPPORTDESK_FIELD_VERSION] = value;
            break;
        }
    }

    return ngx_http_supportdesk_record_render_fields(json, external_id, f,
                                                     etag);
}


ngx_int_t
ngx_http_supportdesk_record_unpack(const u_char *text, size_t len,
    ngx_http_supportdesk_record_packed_t *packed, ngx_log_t *log)
{
    size_t                                i, n;
    ngx_int_t                             rc;
    ngx_http_supportdesk_msgpack_t        mp;
    ngx_http_supportdesk_msgpack_item_t   item;

    mp.p = text;
    mp.last = text + len;

    rc = NGX_ERROR;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY || item.len != 2
        || ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_INTEGER
        || (item.integer != 0 && item.integer != 1))
    {
        goto done;
    }

    packed->created = item.integer;

    if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
        || item.type != REDIS_REPLY_ARRAY
        || item.len > NGX_HTTP_SUPPORTDESK_RECORD_PAIRS
        || item.len % 2)
    {
        goto done;
    }

    n = item.len;

    for (i = 0; i < n; i++) {
        if (ngx_http_supportdesk_msgpack_next(&mp, &item) != NGX_OK
            || item.type != REDIS_REPLY_STRING)
        {
            goto done;
        }

        packed->value[i].type = REDIS_REPLY_STRING;
        packed->value[i].str = (char *) item.str;
        packed->value[i].len = item.len;
        packed->element[i] = &packed->value[i];
    }

    if (mp.p == mp.last) {
        packed->hash.type = REDIS_REPLY_ARRAY;
        packed->hash.elements = n;
        packed->hash.element = packed->element;
        rc = NGX_OK;
    }

done:

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "supportdesk: unexpected upsert answer from redis at "
                      "byte %uz of %uz", (size_t) (mp.p - text), len);
    }

    return rc;
}


ngx_int_t
ngx_http_supportdesk_record_render_values(ngx_http_supportdesk_json_t *json,
    ngx_str_t *external_id, redisReply *values)
{
    size_t       i;
    redisReply  *f[NGX_HTTP_SUPPORTDESK_RECORD_FIELDS];

    if (values->type != REDIS_REPLY_ARRAY
        || values->elements != NGX_HTTP_SUPPORTDESK_RECORD_FIELDS)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_RECORD_FIELDS; i++) {
        switch (values->element[i]->type) {

        case REDIS_REPLY_STRING:
            f[i] = values->element[i];
            break;

        case REDIS_REPLY_NIL:
            f[i] = NULL;
            break;

        default:
            return NGX_ERROR;
        }
    }

    return ngx_http_supportdesk_record_render_fields(json, external_id, f,
                                                     NULL);
}


static ngx_int_t
ngx_http_supportdesk_record_render_fields(ngx_http_supportdesk_json_t *json,
    ngx_str_t *external_id, redisReply **f, ngx_str_t *etag)
{
    redisReply  *seq, *email, *cname, *created, *updated, *v;

    seq = f[NGX_HTTP_SUPPORTDESK_FIELD_SEQ];
    email = f[NGX_HTTP_SUPPORTDESK_FIELD_EMAIL];
    cname = f[NGX_HTTP_SUPPORTDESK_FIELD_NAME];
    created = f[NGX_HTTP_SUPPORTDESK_FIELD_CREATED];
    updated = f[NGX_HTTP_SUPPORTDESK_FIELD_UPDATED];

    if (seq == NULL || email == NULL || cname == NULL || created == NULL) {
        return NGX_ERROR;
    }

    if (updated == NULL) {
        /* a customer never updated stores no u */
        updated = created;
    }

    if (etag != NULL && etag->len == 0
        && ngx_http_supportdesk_record_tag(json->pool, seq,
                                       f[NGX_HTTP_SUPPORTDESK_FIELD_VERSION],
                                       etag)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_supportdesk_json_literal(json, "{\"id\":\"cus_");
    ngx_http_supportdesk_json_raw(json, (u_char *) seq->str, seq->len);
    ngx_http_supportdesk_json_literal(json, "\",\"externalId\":");
    ngx_http_supportdesk_json_string(json, external_id->data,
                                     external_id->len);
    ngx_http_supportdesk_json_literal(json, ",\"email\":");
    ngx_http_supportdesk_json_string(json, (u_char *) email->str, email->len);
    ngx_http_supportdesk_json_literal(json, ",\"name\":");
    ngx_http_supportdesk_json_string(json, (u_char *) cname->str, cname->len);

    v = f[NGX_HTTP_SUPPORTDESK_FIELD_PHONE];

    if (v != NULL) {
        ngx_http_supportdesk_json_literal(json, ",\"phone\":");
        ngx_http_supportdesk_json_string(json, (u_char *) v->str, v->len);
    }

    v = f[NGX_HTTP_SUPPORTDESK_FIELD_AVATAR];

    if (v != NULL) {
        ngx_http_supportdesk_json_literal(json, ",\"avatarUrl\":");
        ngx_http_supportdesk_json_string(json, (u_char *) v->str, v->len);
    }

    v = f[NGX_HTTP_SUPPORTDESK_FIELD_META];

    if (v != NULL) {
        /* stored as the compact JSON the validator accepted */
        ngx_http_supportdesk_json_literal(json, ",\"metadata\":");
        ngx_http_supportdesk_json_raw(json, (u_char *) v->str, v->len);
    }

    ngx_http_supportdesk_json_literal(json, ",\"createdAt\":");
    ngx_http_supportdesk_json_stored_time(json, (u_char *) created->str,
                                          created->len);

    ngx_http_supportdesk_json_literal(json, ",\"updatedAt\":");
    ngx_http_supportdesk_json_stored_time(json, (u_char *) updated->str,
                                          updated->len);

    ngx_http_supportdesk_json_literal(json, "}");

    return NGX_OK;
}


void
ngx_http_supportdesk_record_note(ngx_http_supportdesk_json_t *json,
    u_char *id, size_t id_len, time_t created, u_char *text, size_t len)
{
    /* notes are never edited: updatedAt is createdAt */
    ngx_http_supportdesk_json_literal(json,
                               "{\"id\":\"" NGX_HTTP_SUPPORTDESK_NOTE_PREFIX);
    ngx_http_supportdesk_json_raw(json, id, id_len);
    ngx_http_supportdesk_json_literal(json, "\",\"text\":");
    ngx_http_supportdesk_json_string(json, text, len);
    ngx_http_supportdesk_json_literal(json, ",\"createdAt\":");
    ngx_http_supportdesk_json_time(json, created);
    ngx_http_supportdesk_json_literal(json, ",\"updatedAt\":");
    ngx_http_supportdesk_json_time(json, created);
    ngx_http_supportdesk_json_literal(json, "}");
}


void
ngx_http_supportdesk_record_settings(ngx_http_supportdesk_json_t *json,
    redisReply *hash)
{
    ngx_uint_t   i;
    redisReply  *v[NGX_HTTP_SUPPORTDESK_SETTINGS];

    ngx_http_supportdesk_store_fields(hash, ngx_http_supportdesk_settings, v);

    ngx_http_supportdesk_json_literal(json, "{");

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SETTINGS; i++) {
        if (i) {
            ngx_http_supportdesk_json_literal(json, ",");
        }

        ngx_http_supportdesk_json_string(json,
                                         ngx_http_supportdesk_settings[i].data,
                                         ngx_http_supportdesk_settings[i].len);

        if (v[i] == NULL || (v[i]->len == 1 && v[i]->str[0] == '1')) {
            ngx_http_supportdesk_json_literal(json, ":true");

        } else {
            ngx_http_supportdesk_json_literal(json, ":false");
        }
    }

    ngx_http_supportdesk_json_literal(json, "}");
}
