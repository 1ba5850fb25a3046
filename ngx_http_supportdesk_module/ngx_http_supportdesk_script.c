
/*
 * The script registry: each script the actions name, found among the
 * embedded sources of redis/, with the SHA-1 that EVALSHA sends.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/evp.h>

#include "ngx_http_supportdesk_script.h"
#include "ngx_http_supportdesk_scripts.h"


ngx_http_supportdesk_script_t
    ngx_http_supportdesk_script_table[NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT];

/*
 * What goes in front of a script, in this order: redis/lib.lua (the change
 * feed, idempotency records), redis/lib_customer.lua (ETags, conditions,
 * the customer fields) and redis/lib_scan.lua (the cost budget and the
 * customer filters of the scripts that examine many records).  Each script
 * gets only the parts it uses: Redis runs everything in front of a script
 * again on every call (redis-server instructions a call: lib.lua about
 * 11,800, lib_customer.lua 7,500 more).  Both others add to lib.lua's
 * table.
 */
#define NGX_HTTP_SUPPORTDESK_WITH_NOTHING   0
#define NGX_HTTP_SUPPORTDESK_WITH_LIB       1
#define NGX_HTTP_SUPPORTDESK_WITH_CUSTOMER  (2 | NGX_HTTP_SUPPORTDESK_WITH_LIB)
#define NGX_HTTP_SUPPORTDESK_WITH_SCAN      (4 | NGX_HTTP_SUPPORTDESK_WITH_LIB)
#define NGX_HTTP_SUPPORTDESK_WITH_PARTS     3

typedef struct {
    ngx_str_t                            name;
    ngx_uint_t                           with;
} ngx_http_supportdesk_script_name_t;


/* the file names of redis/, in the order of ngx_http_supportdesk_script_e */
static ngx_http_supportdesk_script_name_t  ngx_http_supportdesk_script_names[]
    = {
    { ngx_string("upsert"), NGX_HTTP_SUPPORTDESK_WITH_CUSTOMER },
    { ngx_string("delete"), NGX_HTTP_SUPPORTDESK_WITH_CUSTOMER },
    { ngx_string("list"), NGX_HTTP_SUPPORTDESK_WITH_CUSTOMER
                          | NGX_HTTP_SUPPORTDESK_WITH_SCAN },
    { ngx_string("note_add"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("note_list"), NGX_HTTP_SUPPORTDESK_WITH_SCAN },
    { ngx_string("note_delete"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("notifications"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("job_create"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("job_claim"), NGX_HTTP_SUPPORTDESK_WITH_NOTHING },
    { ngx_string("job_chunk"), NGX_HTTP_SUPPORTDESK_WITH_CUSTOMER
                               | NGX_HTTP_SUPPORTDESK_WITH_SCAN },
    { ngx_string("events_read"), NGX_HTTP_SUPPORTDESK_WITH_SCAN },
    { ngx_string("events_last"), NGX_HTTP_SUPPORTDESK_WITH_NOTHING },
    { ngx_string("batch_begin"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("batch_end"), NGX_HTTP_SUPPORTDESK_WITH_LIB },
    { ngx_string("job_apps"), NGX_HTTP_SUPPORTDESK_WITH_NOTHING },
    { ngx_string("notif_read"), NGX_HTTP_SUPPORTDESK_WITH_NOTHING }
};

/* the parts, in their order in front of a script, with their flag bits */
static ngx_str_t  ngx_http_supportdesk_script_part_names[] = {
    ngx_string("lib"), ngx_string("lib_customer"), ngx_string("lib_scan")
};


static ngx_http_supportdesk_script_source_t *
    ngx_http_supportdesk_script_find(ngx_str_t *name, ngx_log_t *log);


ngx_int_t
ngx_http_supportdesk_script_init(ngx_cycle_t *cycle, ngx_uint_t count_events)
{
    u_char                                 md[EVP_MAX_MD_SIZE], *p, *nl;
    size_t                                 shebang, len;
    ngx_str_t                              count;
    unsigned int                           mdlen;
    ngx_uint_t                             i, k, with;
    ngx_http_supportdesk_script_t         *script;
    ngx_http_supportdesk_script_source_t  *s;
    ngx_http_supportdesk_script_source_t  *part[
                                        NGX_HTTP_SUPPORTDESK_WITH_PARTS];

    for (k = 0; k < NGX_HTTP_SUPPORTDESK_WITH_PARTS; k++) {
        part[k] = ngx_http_supportdesk_script_find(
                                    &ngx_http_supportdesk_script_part_names[k],
                                    cycle->log);
        if (part[k] == NULL) {
            return NGX_ERROR;
        }
    }

    if (count_events) {
        ngx_str_set(&count, "sd.count_events = true\n");

    } else {
        ngx_str_null(&count);
    }

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT; i++) {
        script = &ngx_http_supportdesk_script_table[i];

        s = ngx_http_supportdesk_script_find(
                                    &ngx_http_supportdesk_script_names[i].name,
                                    cycle->log);
        if (s == NULL) {
            return NGX_ERROR;
        }

        with = ngx_http_supportdesk_script_names[i].with;

        /* the count is a field of lib.lua's table */
        len = s->source.len
              + ((with & NGX_HTTP_SUPPORTDESK_WITH_LIB) ? count.len : 0);

        for (k = 0; k < NGX_HTTP_SUPPORTDESK_WITH_PARTS; k++) {
            if (with & (1 << k)) {
                len += part[k]->source.len;
            }
        }

        /* lives as long as the cycle: reloads build the table again */
        p = ngx_pnalloc(cycle->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        script->name = s->name;
        script->source.data = p;
        script->source.len = len;

        /* a "#!lua flags=..." line must stay the script's first */
        shebang = 0;

        if (s->source.len > 2 && s->source.data[0] == '#'
            && s->source.data[1] == '!')
        {
            nl = ngx_strlchr(s->source.data,
                             s->source.data + s->source.len, '\n');
            shebang = (nl != NULL) ? (size_t) (nl + 1 - s->source.data)
                                   : s->source.len;
        }

        script->writes = !(shebang
                           && ngx_strlcasestrn(s->source.data,
                                               s->source.data + shebang,
                                               (u_char *) "no-writes", 9 - 1)
                              != NULL);

        p = ngx_cpymem(p, s->source.data, shebang);

        for (k = 0; k < NGX_HTTP_SUPPORTDESK_WITH_PARTS; k++) {
            if (with & (1 << k)) {
                p = ngx_cpymem(p, part[k]->source.data, part[k]->source.len);
            }
        }

        /* memcpy() from NULL is undefined even for 0 bytes */
        if ((with & NGX_HTTP_SUPPORTDESK_WITH_LIB) && count.len) {
            p = ngx_cpymem(p, count.data, count.len);
        }
        ngx_memcpy(p, s->source.data + shebang, s->source.len - shebang);

        if (EVP_Digest(script->source.data, script->source.len, md, &mdlen,
                       EVP_sha1(), NULL)
            != 1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "supportdesk: SHA-1 of script \"%V\" failed",
                          &s->name);
            return NGX_ERROR;
        }

        ngx_hex_dump(script->sha, md, mdlen);
    }

    return NGX_OK;
}


static ngx_http_supportdesk_script_source_t *
ngx_http_supportdesk_script_find(ngx_str_t *name, ngx_log_t *log)
{
    ngx_uint_t                             j;
    ngx_http_supportdesk_script_source_t  *s;

    for (j = 0; j < ngx_http_supportdesk_nscripts; j++) {
        s = &ngx_http_supportdesk_scripts[j];

        if (s->name.len == name->len
            && ngx_strncmp(s->name.data, name->data, name->len) == 0)
        {
            return s;
        }
    }

    ngx_log_error(NGX_LOG_EMERG, log, 0,
                  "supportdesk: script \"redis/%V.lua\" was not embedded at "
                  "build time", name);

    return NULL;
}
