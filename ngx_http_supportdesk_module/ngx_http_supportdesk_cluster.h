
/*
 * Redis Cluster, the part that needs no connection: key slots (CRC16 of
 * the key or of its {hash tag}), the redirections and transient refusals a
 * node answers, and the slot map of a CLUSTER SLOTS reply.  The pool
 * (ngx_http_supportdesk_redis.c) does the I/O and keeps the map.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>


#define NGX_HTTP_SUPPORTDESK_CLUSTER_SLOTS  16384


typedef enum {
    NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER = 0,
    /* the slot lives elsewhere now: go there, and refresh the map */
    NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED,
    /* this one command goes elsewhere (a slot being migrated) */
    NGX_HTTP_SUPPORTDESK_CLUSTER_ASK,
    /* a slot being migrated holds some of the keys: try again shortly */
    NGX_HTTP_SUPPORTDESK_CLUSTER_TRYAGAIN,
    /* try again shortly, the map may have changed: CLUSTERDOWN, LOADING,
       MASTERDOWN */
    NGX_HTTP_SUPPORTDESK_CLUSTER_RETRY,
    /* the node is a replica now (a failover): refresh, then try again */
    NGX_HTTP_SUPPORTDESK_CLUSTER_READONLY
} ngx_http_supportdesk_cluster_verdict_e;


/* a slot's range and its master, as CLUSTER SLOTS gives them */
typedef struct {
    ngx_uint_t                           first;
    ngx_uint_t                           last;
    /* pointing into the reply; empty: the node that answered */
    ngx_str_t                            host;
    ngx_uint_t                           port;
} ngx_http_supportdesk_cluster_range_t;


void ngx_http_supportdesk_cluster_init(void);

ngx_uint_t ngx_http_supportdesk_cluster_key_slot(const u_char *key,
    size_t len);

/*
 * The slot of a command as the pool takes it: with script >= 0, argv is
 * "numkeys key ...", else "COMMAND key ...".  NGX_DECLINED: it names no
 * key (any node will do).
 */
ngx_int_t ngx_http_supportdesk_cluster_command_slot(ngx_int_t script,
    int argc, const char **argv, const size_t *argvlen);

/*
 * What an answer means for routing; for MOVED and ASK, *slot and *addr
 * ("host:port", pointing into the reply) say where to go.
 */
ngx_http_supportdesk_cluster_verdict_e ngx_http_supportdesk_cluster_verdict(
    redisReply *reply, ngx_uint_t *slot, ngx_str_t *addr);

/*
 * The ranges of a CLUSTER SLOTS reply into ranges (capacity max): how
 * many, or NGX_ERROR for a reply that is not a slot map.
 */
ngx_int_t ngx_http_supportdesk_cluster_parse_slots(redisReply *reply,
    ngx_http_supportdesk_cluster_range_t *ranges, ngx_uint_t max);


#endif /* _NGX_HTTP_SUPPORTDESK_CLUSTER_H_INCLUDED_ */
