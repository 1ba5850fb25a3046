
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

/* the file names of redis/, in the order of ngx_http_supportdesk_script_e */
static ngx_str_t  ngx_http_supportdesk_script_names[] = {
    ngx_string("upsert"),
    ngx_string("delete"),
    ngx_string("list"),
    ngx_string("note_add"),
    ngx_string("note_list"),
    ngx_string("note_delete"),
    ngx_string("notifications"),
    ngx_string("job_create"),
    ngx_string("job_claim"),
    ngx_string("job_chunk")
};


ngx_int_t
ngx_http_supportdesk_script_init(ngx_log_t *log)
{
    u_char                                 md[EVP_MAX_MD_SIZE];
    unsigned int                           mdlen;
    ngx_str_t                             *name;
    ngx_uint_t                             i, j;
    ngx_http_supportdesk_script_t         *script;
    ngx_http_supportdesk_script_source_t  *s;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT; i++) {
        name = &ngx_http_supportdesk_script_names[i];
        script = &ngx_http_supportdesk_script_table[i];

        for (j = 0; j < ngx_http_supportdesk_nscripts; j++) {
            s = &ngx_http_supportdesk_scripts[j];

            if (s->name.len == name->len
                && ngx_strncmp(s->name.data, name->data, name->len) == 0)
            {
                break;
            }
        }

        if (j == ngx_http_supportdesk_nscripts) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "supportdesk: script \"redis/%V.lua\" was not "
                          "embedded at build time", name);
            return NGX_ERROR;
        }

        if (EVP_Digest(s->source.data, s->source.len, md, &mdlen,
                       EVP_sha1(), NULL)
            != 1)
        {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "supportdesk: SHA-1 of script \"%V\" failed", name);
            return NGX_ERROR;
        }

        script->name = *name;
        script->source = s->source;
        ngx_hex_dump(script->sha, md, mdlen);
    }

    return NGX_OK;
}
