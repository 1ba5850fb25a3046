
/*
 * The server-side scripts the actions run, by name: their sources are
 * redis/<name>.lua, embedded into the .so at build time (the generated
 * table of ngx_http_supportdesk_scripts.h).  The registry finds each one
 * and takes its SHA-1 once at startup, so a request only indexes a table.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_SCRIPT_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_SCRIPT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_SUPPORTDESK_NO_SCRIPT     (-1)
#define NGX_HTTP_SUPPORTDESK_SHA1_HEX_LEN  40


/* in the order of ngx_http_supportdesk_script_names[] */
typedef enum {
    NGX_HTTP_SUPPORTDESK_SCRIPT_UPSERT = 0,
    NGX_HTTP_SUPPORTDESK_SCRIPT_DELETE,
    NGX_HTTP_SUPPORTDESK_SCRIPT_LIST,
    NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_ADD,
    NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_LIST,
    NGX_HTTP_SUPPORTDESK_SCRIPT_NOTE_DELETE,
    NGX_HTTP_SUPPORTDESK_SCRIPT_NOTIFICATIONS,
    NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CREATE,
    NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CLAIM,
    NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_CHUNK,
    NGX_HTTP_SUPPORTDESK_SCRIPT_EVENTS_READ,
    NGX_HTTP_SUPPORTDESK_SCRIPT_EVENTS_LAST,
    NGX_HTTP_SUPPORTDESK_SCRIPT_BATCH_BEGIN,
    NGX_HTTP_SUPPORTDESK_SCRIPT_BATCH_END,
    NGX_HTTP_SUPPORTDESK_SCRIPT_JOB_APPS,
    NGX_HTTP_SUPPORTDESK_SCRIPT_NOTIF_READ,
    NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT
} ngx_http_supportdesk_script_e;


typedef struct {
    ngx_str_t    name;
    ngx_str_t    source;
    u_char       sha[NGX_HTTP_SUPPORTDESK_SHA1_HEX_LEN];
    /* not flagged no-writes: supportdesk_redis_wait waits for it */
    ngx_uint_t   writes;
} ngx_http_supportdesk_script_t;


/* indexed by ngx_http_supportdesk_script_e, filled by script_init() */
extern ngx_http_supportdesk_script_t
    ngx_http_supportdesk_script_table[NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT];


/*
 * Each script's source is redis/lib.lua (the helpers every script shares),
 * for the four that examine many records redis/lib_scan.lua (the cost
 * budget, the customer filters), then the script's own file; with
 * count_events (the metrics are kept), a line before the script's own
 * makes write scripts wrap their answer with the number of events they
 * appended.  A script missing from the build stops nginx here, not a
 * request.
 */
ngx_int_t ngx_http_supportdesk_script_init(ngx_cycle_t *cycle,
    ngx_uint_t count_events);


#endif /* _NGX_HTTP_SUPPORTDESK_SCRIPT_H_INCLUDED_ */
