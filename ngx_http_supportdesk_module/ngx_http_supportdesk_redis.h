
/*
 * The Redis connection pool: the one interface the handlers call.
 *
 * Each worker keeps a few persistent connections per configured Redis
 * server.  nginx owns the sockets (ngx_event_connect_peer, its own read and
 * write handlers); hiredis is used only as the protocol reader.  Commands
 * from many requests are pipelined on one connection and answered in order.
 *
 * Ownership: an op belongs to the pool, never to a request.  A request that
 * goes away calls ngx_http_supportdesk_redis_abandon(); the op then stays
 * queued until its reply (or the connection's end) and is recycled without
 * calling anyone.  The reply passed to a handler belongs to the pool and is
 * freed when the handler returns.
 */

#ifndef _NGX_HTTP_SUPPORTDESK_REDIS_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <hiredis/hiredis.h>

#include "ngx_http_supportdesk_script.h"
#include "ngx_http_supportdesk_tls.h"


typedef struct ngx_http_supportdesk_redis_pool_s
    ngx_http_supportdesk_redis_pool_t;
typedef struct ngx_http_supportdesk_redis_op_s
    ngx_http_supportdesk_redis_op_t;
typedef struct ngx_http_supportdesk_redis_cluster_s
    ngx_http_supportdesk_redis_cluster_t;
typedef struct ngx_http_supportdesk_redis_sentinel_s
    ngx_http_supportdesk_redis_sentinel_t;


/*
 * One Redis server, or a Redis Cluster (seeds), as configured; shared by
 * every location that names it.
 */
typedef struct {
    /* the server; of a cluster, its first seed */
    ngx_addr_t                          *addr;
    /*
     * supportdesk_redis <name>:<port> where the location has a resolver:
     * the name is resolved by the workers, again after a connection is
     * lost, on READONLY and every few seconds (addr is then a placeholder
     * without sockaddr, naming the server in the logs); empty: addr is
     * final.
     */
    ngx_str_t                            host;
    in_port_t                            port;
    ngx_resolver_t                      *resolver;
    ngx_msec_t                           resolver_timeout;
    /* Redis Cluster: the seed nodes (ngx_addr_t); NULL: one server */
    ngx_array_t                         *seeds;
    /* Redis Sentinel: the master's name and the sentinels (ngx_addr_t) */
    ngx_str_t                            sentinel_master;
    ngx_array_t                         *sentinels;
    ngx_str_t                            user;
    ngx_str_t                            password;
    ngx_int_t                            db;
    ngx_msec_t                           connect_timeout;
    ngx_msec_t                           timeout;
    ngx_uint_t                           connections;
    /* admission, per connection: commands whose replies are due, bytes
       not sent yet */
    ngx_uint_t                           max_pending;
    size_t                               max_output;
    /* one reply: its bytes (strings and what is not parsed yet) and the
       elements of all its arrays */
    size_t                               max_reply_size;
    ngx_uint_t                           max_reply_elements;
    /* supportdesk_redis_ssl*: TLS to the server, or to every master */
    ngx_http_supportdesk_tls_conf_t      tls;
    /* supportdesk_redis_wait: replicas a write waits for (0: none), ms */
    ngx_uint_t                           wait_replicas;
    ngx_msec_t                           wait_timeout;

    /* per worker, created in init_process: the server's pool, or the
       cluster's slot map and a pool per master */
    ngx_http_supportdesk_redis_pool_t   *pool;
    ngx_http_supportdesk_redis_cluster_t  *cluster;
    ngx_http_supportdesk_redis_sentinel_t  *sentinel;
} ngx_http_supportdesk_redis_conf_t;


/*
 * rc is NGX_OK with a reply, NGX_HTTP_SERVICE_UNAVAILABLE when the
 * connection failed, NGX_HTTP_GATEWAY_TIME_OUT when Redis did not answer in
 * time (reply is NULL then).
 */
typedef void (*ngx_http_supportdesk_redis_handler_pt)(void *data,
    ngx_int_t rc, redisReply *reply);


/*
 * The pool that serves these settings: an equal one already in confs, or a
 * copy of want added to it (locations with the same settings share one).
 */
ngx_http_supportdesk_redis_conf_t *ngx_http_supportdesk_redis_conf_add(
    ngx_conf_t *cf, ngx_array_t *confs,
    ngx_http_supportdesk_redis_conf_t *want);

ngx_int_t ngx_http_supportdesk_redis_init_process(ngx_cycle_t *cycle,
    ngx_array_t *confs);
void ngx_http_supportdesk_redis_exit_process(ngx_cycle_t *cycle,
    ngx_array_t *confs);

/*
 * Queues one command.  With script >= 0 it runs that script
 * (ngx_http_supportdesk_script_e) by EVALSHA and argv holds "numkeys
 * key... arg..."; otherwise argv is a plain command, argv[1] its key.  On
 * a cluster the first key's slot picks the master; MOVED, ASK and the
 * transient refusals are followed here, unseen by the handler.  argv must
 * stay valid until the handler runs or the op is abandoned.  log is the
 * request's: a timeout is logged there while the request lives.  Returns
 * NULL when no connection can take it now (none is up, or the least
 * loaded one is at max_pending or max_output), logged at most once a
 * second: answer 503 at once.
 */
ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_redis_send(
    ngx_http_supportdesk_redis_conf_t *conf, ngx_int_t script, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log);

/*
 * Queues on the background connection of the pool that serves the command
 * (on a cluster, of its slot's master), the job runner's own: what it
 * sends never waits behind requests, nor requests behind it (a write that
 * Redis holds back while it pauses writes).  The connection is opened on
 * first use.  A redirected command (MOVED, ASK) goes on as a request's
 * would.  NULL when it cannot take the command now (down, in its
 * reconnect backoff, or past the bounds); nothing is logged.
 */
ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_redis_send_background(
    ngx_http_supportdesk_redis_conf_t *conf, ngx_int_t script, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log);

/*
 * Queues on prev's connection, right behind it: replies keep this order.
 * The request was admitted with its first command: the bounds do not
 * refuse the rest of it.  NULL when that connection is gone.
 */
ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_redis_send_after(
    ngx_http_supportdesk_redis_op_t *prev, ngx_int_t script, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log);

void ngx_http_supportdesk_redis_abandon(ngx_http_supportdesk_redis_op_t *op);


#endif /* _NGX_HTTP_SUPPORTDESK_REDIS_H_INCLUDED_ */
