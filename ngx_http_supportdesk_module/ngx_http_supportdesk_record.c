
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


ngx_int_t
ngx_http_supportdesk_record_upsert_args(ngx_http_supportdesk_args_t *args,
    ngx_pool_t *pool, ngx_str_t *app, ngx_str_t *external_id,
    ngx_http_supportdesk_customer_input_t *in)
{
    u_char  *meta;

    ngx_http_supportdesk_args_init(args, pool,
                                   NGX_HTTP_SUPPORTDESK_UPSERT_ARGS);
    ngx_http_supportdesk_args_literal(args, "4");
    ngx_http_supportdesk_args_key_literal(args, app, "c", external_id);
    ngx_http_supportdesk_args_key_literal(args, app, "emails", NULL);
    ngx_http_supportdesk_args_key_literal(args, app, "order", NULL);
    ngx_http_supportdesk_args_key_literal(args, app, "seq", NULL);
    ngx_http_supportdesk_args_time(args);
    ngx_http_supportdesk_args_str(args, external_id);

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
        meta = ngx_pnalloc(pool, in->metadata_len);
        if (meta == NULL) {
            return NGX_ERROR;
        }

        if (json_dumpb(in->metadata, (char *) meta, in->metadata_len,
                       NGX_HTTP_SUPPORTDESK_METADATA_FLAGS)
            != in->metadata_len)
        {
            return NGX_ERROR;
        }

        ngx_http_supportdesk_args_literal(args, "m");
        ngx_http_supportdesk_args_add(args, meta, in->metadata_len);

    } else if (in->clear_metadata) {
        ngx_http_supportdesk_args_literal(args, "m");
        ngx_http_supportdesk_args_literal(args, "");
    }

    return args->failed ? NGX_ERROR : NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_record_render(ngx_http_supportdesk_json_t *json,
    ngx_str_t *external_id, redisReply *hash)
{
    size_t       i;
    time_t       t;
    redisReply  *name, *value, *seq, *email, *cname, *phone, *avatar, *meta,
                *created, *updated;

    seq = NULL;
    email = NULL;
    cname = NULL;
    phone = NULL;
    avatar = NULL;
    meta = NULL;
    created = NULL;
    updated = NULL;

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
            seq = value;
            break;
        case 'e':
            email = value;
            break;
        case 'n':
            cname = value;
            break;
        case 'p':
            phone = value;
            break;
        case 'a':
            avatar = value;
            break;
        case 'm':
            meta = value;
            break;
        case 'c':
            created = value;
            break;
        case 'u':
            updated = value;
            break;
        }
    }

    if (seq == NULL || email == NULL || cname == NULL || created == NULL
        || updated == NULL)
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

    if (phone != NULL) {
        ngx_http_supportdesk_json_literal(json, ",\"phone\":");
        ngx_http_supportdesk_json_string(json, (u_char *) phone->str,
                                         phone->len);
    }

    if (avatar != NULL) {
        ngx_http_supportdesk_json_literal(json, ",\"avatarUrl\":");
        ngx_http_supportdesk_json_string(json, (u_char *) avatar->str,
                                         avatar->len);
    }

    if (meta != NULL) {
        /* stored as the compact JSON the validator accepted */
        ngx_http_supportdesk_json_literal(json, ",\"metadata\":");
        ngx_http_supportdesk_json_raw(json, (u_char *) meta->str, meta->len);
    }

    ngx_http_supportdesk_json_literal(json, ",\"createdAt\":");
    t = ngx_atotm((u_char *) created->str, created->len);
    ngx_http_supportdesk_json_time(json, t == NGX_ERROR ? 0 : t);

    ngx_http_supportdesk_json_literal(json, ",\"updatedAt\":");
    t = ngx_atotm((u_char *) updated->str, updated->len);
    ngx_http_supportdesk_json_time(json, t == NGX_ERROR ? 0 : t);

    ngx_http_supportdesk_json_literal(json, "}");

    return NGX_OK;
}
