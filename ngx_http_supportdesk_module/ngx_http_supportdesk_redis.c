
/*
 * The Redis adapter and connection pool.
 *
 * Why nginx owns the sockets instead of hiredis's async.c: with 0.14.1 the
 * async API resolves names with a blocking getaddrinfo, has no timer hooks,
 * reads 16 KiB per event, closes the fd behind nginx's back and cannot cancel
 * a pending callback.  Owning the connection removes all five problems: nginx
 * connects, times out, reads until the socket is drained and closes; hiredis
 * parses replies (redisReader) and we encode RESP ourselves straight into the
 * connection's output buffer, which costs no allocation per command.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_supportdesk_redis.h"
#include "ngx_http_supportdesk_cluster.h"
#include "ngx_http_supportdesk_validate.h"
#include "ngx_http_supportdesk_metrics.h"
#include "ngx_http_supportdesk_reply.h"


#define NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MIN   50
#define NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MAX   500
#define NGX_HTTP_SUPPORTDESK_REDIS_OUT_SIZE      16384
/* a buffer grown past this by a huge batch is given back once drained */
#define NGX_HTTP_SUPPORTDESK_REDIS_OUT_KEEP      262144
/* free ops kept for reuse (216 bytes each); more are given back */
#define NGX_HTTP_SUPPORTDESK_REDIS_FREE_KEEP     1024
/*
 * The requests of a failed connection answered in one turn of the event
 * loop: the next slice waits for the next turn, so that failing thousands
 * never stalls the worker.
 */
#define NGX_HTTP_SUPPORTDESK_REDIS_FAIL_SLICE    100
/* refusals are logged at most this often */
#define NGX_HTTP_SUPPORTDESK_REDIS_REFUSAL_LOG   1000

/*
 * The longest line a reply may hold (a status, an error, an integer, a
 * length): hiredis looks for its end from its start on every read, so a
 * line without an end would cost the square of its length.
 */
#define NGX_HTTP_SUPPORTDESK_REDIS_LINE_MAX       65536

/*
 * Cluster: redirections one command may follow; the most masters a map
 * may name; a refresh at most this often (ms), and one this often anyway,
 * to find nodes added and replicas promoted; the first wait before a
 * command refused for now (TRYAGAIN, CLUSTERDOWN...) is sent again, which
 * doubles up to the last.
 */
#define NGX_HTTP_SUPPORTDESK_REDIS_REDIRECTS_MAX  16
#define NGX_HTTP_SUPPORTDESK_REDIS_NODES_MAX      1024
#define NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN    100
#define NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_EVERY  5000
/* MOVEDs met while a CLUSTER SLOTS is in flight, kept over its answer */
#define NGX_HTTP_SUPPORTDESK_REDIS_MOVED_KEEP     16
#define NGX_HTTP_SUPPORTDESK_REDIS_RETRY_MIN      10
#define NGX_HTTP_SUPPORTDESK_REDIS_RETRY_MAX      200

/* supportdesk_redis <name>: resolved again every RESOLVE_EVERY, on a
   reconnect once RESOLVE_AGAIN has passed, after a failure or READONLY once
   RESOLVE_SOON has */
#define NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_EVERY  5000
#define NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_AGAIN  1000
#define NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_SOON   100

/* how many more commands than the least loaded connection one whose send
   is already due in this turn may have and still take the next command */
#define NGX_HTTP_SUPPORTDESK_REDIS_COALESCE       32



typedef enum {
    NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED = 0,
    NGX_HTTP_SUPPORTDESK_REDIS_CONNECTING,
    NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED
} ngx_http_supportdesk_redis_state_e;


typedef struct {
    ngx_http_supportdesk_redis_pool_t   *pool;
    ngx_peer_connection_t                peer;
    redisReader                         *reader;

    /* ops whose replies are due, in the order Redis will answer them */
    ngx_queue_t                          inflight;
    ngx_uint_t                           ninflight;

    /*
     * After a NOSCRIPT, until every reply due has come in: the ops that got
     * NOSCRIPT, to resend in their order, and the ops queued meanwhile,
     * not written yet, to send after them.
     */
    ngx_queue_t                          noscript;
    ngx_queue_t                          held;
    unsigned                             recovering:1;

    /* every op the connection owns: in flight, to resend, held */
    ngx_uint_t                           npending;

    u_char                              *out;
    size_t                               out_size;
    size_t                               out_len;
    size_t                               out_sent;
    /* the stream since connect: bytes encoded, bytes handed to send() */
    off_t                                stream_len;
    off_t                                stream_sent;

    /*
     * The connection's own copy of the scripts: their sources end with
     * this comment, which gives them SHA-1s of their own.  Only this
     * connection loads them, so after a SCRIPT FLUSH every EVALSHA it had
     * sent fails until it loads them again, in the order of its stream:
     * no other client's load can let a later command run before an
     * earlier one is resent.
     */
    u_char                               tag[NGX_MAXHOSTNAMELEN + 64];
    size_t                               tag_len;
    u_char                               sha[NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT]
                                            [NGX_HTTP_SUPPORTDESK_SHA1_HEX_LEN];

    ngx_http_supportdesk_redis_state_e   state;
    ngx_event_t                          retry;
    ngx_msec_t                           backoff;

    /* a name to resolve: connecting once it is; connected to an address
       the name no longer has, closed once its replies are in */
    unsigned                             awaiting_address:1;
    unsigned                             stale:1;
    /* pool->address when it was opened */
    ngx_uint_t                           address;

    /* bumped on every close, to notice a close from inside a callback */
    ngx_uint_t                           generation;
    /* handshake replies still due on this connection */
    ngx_uint_t                           nhandshake;

    /* TLS: the session of the last connection, resumed by the next */
    void                                *tls_session;

    /* the replies' memory; the reply being parsed, against its bounds */
    ngx_http_supportdesk_reply_arena_t   arena;
} ngx_http_supportdesk_redis_conn_t;


struct ngx_http_supportdesk_redis_pool_s {
    ngx_http_supportdesk_redis_conf_t   *conf;
    /* the cluster this pool is a master of; NULL: one server */
    ngx_http_supportdesk_redis_cluster_t  *cluster;
    /* a node the map no longer names: its connections do not come back */
    unsigned                             retired:1;
    /* a sentinel's: no scripts, no SELECT; subscriber: SUBSCRIBEd to
       +switch-master, its messages come unasked */
    unsigned                             plain:1;
    unsigned                             subscriber:1;
    /* its connections, commands and failures are in the metrics (not a
       sentinel's: they are not the Redis that serves) */
    unsigned                             metered:1;
    /* the sentinel this pool is the master of, or asks */
    ngx_http_supportdesk_redis_sentinel_t  *sentinel;
    /*
     * The requests' connections, then one more, conns[nconns]: the
     * background connection, the job runner's, opened when it first has
     * work.  A write it sends that Redis holds back (CLIENT PAUSE WRITE)
     * holds back no request, and a request never waits behind a job's
     * chunk.
     */
    ngx_http_supportdesk_redis_conn_t   *conns;
    ngx_uint_t                           nconns;
    ngx_uint_t                           next;
    ngx_queue_t                          free_ops;
    ngx_uint_t                           nfree;
    /* ops allocated (in use and free), their most since the last idle */
    ngx_uint_t                           nops;
    ngx_uint_t                           peak_ops;
    ngx_log_t                           *log;
    /* the ACL refused a script command at connect: logged once */
    ngx_uint_t                           noperm;

    /* "WAIT <replicas> <ms>", when supportdesk_redis_wait is on */
    const char                          *wait_argv[3];
    size_t                               wait_argvlen[3];
    u_char                               wait_text[2][NGX_INT_T_LEN];

    /* ops of closed connections, answered a slice per turn (op->rc) */
    ngx_queue_t                          failing;
    ngx_event_t                          fail_event;

    /* supportdesk_redis <name>: the address it resolved to last (no
       sockaddr before the first answer), the resolution in flight */
    ngx_addr_t                           resolved;
    ngx_sockaddr_t                       resolved_sockaddr;
    u_char                               resolved_text[NGX_SOCKADDR_STRLEN];
    ngx_resolver_ctx_t                  *resolving;
    ngx_msec_t                           resolved_at;
    /* bumped when the name moves to another address */
    ngx_uint_t                           address;
    ngx_event_t                          resolve_timer;

    /* requests refused since the last message about it, and its time */
    ngx_uint_t                           refused;
    ngx_msec_t                           refusal_time;
    unsigned                             refusal_logged:1;
};


typedef enum {
    NGX_HTTP_SUPPORTDESK_REDIS_OP_REQUEST = 0,
    /* AUTH, SELECT, SCRIPT LOAD: an error reply fails the connection */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_HANDSHAKE,
    /* a command sent only to learn whether the ACL allows it */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_PROBE,
    /* ASKING in front of a command an ASK sent here: its +OK is dropped */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_ASKING,
    /* WAIT behind a write (supportdesk_redis_wait); data is the write */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_WAIT,
    /* Sentinel: ROLE at connect, the master must say "master" */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_ROLE,
    /* Sentinel: SUBSCRIBE +switch-master at connect */
    NGX_HTTP_SUPPORTDESK_REDIS_OP_SUBSCRIBE
} ngx_http_supportdesk_redis_op_kind_e;


/*
 * Redis Sentinel: the sentinels are asked for the master's address (in
 * turn, at start, when a connection to the master is lost, and every
 * REFRESH_EVERY), and +switch-master is followed at once; the master's
 * pool connects to the address last given, and ROLE at connect makes
 * sure it is a master.
 */
struct ngx_http_supportdesk_redis_sentinel_s {
    ngx_http_supportdesk_redis_conf_t   *conf;
    ngx_uint_t                           index;
    ngx_log_t                           *log;

    /* a pool per sentinel to ask, and one per sentinel to listen */
    ngx_http_supportdesk_redis_pool_t  **ask;
    ngx_http_supportdesk_redis_pool_t  **listen;
    ngx_http_supportdesk_redis_conf_t   *sentinel_confs;
    ngx_uint_t                           nsentinels;
    ngx_uint_t                           next;

    /* the master: its address as last given, its settings and pool */
    ngx_sockaddr_t                       master_sockaddr;
    u_char                               master_text[NGX_SOCKADDR_STRLEN];
    ngx_addr_t                           master;
    ngx_http_supportdesk_redis_conf_t    master_conf;
    ngx_http_supportdesk_redis_pool_t   *master_pool;

    ngx_event_t                          query_timer;
    ngx_msec_t                           queried;
    unsigned                             querying:1;

    const char                          *query_argv[3];
    size_t                               query_argvlen[3];
};


/* a master of a cluster: its address, settings and pool */
typedef struct {
    /* "host:port" as the cluster names it */
    ngx_str_t                            key;
    ngx_addr_t                           addr;
    ngx_http_supportdesk_redis_conf_t    conf;
    ngx_http_supportdesk_redis_pool_t   *pool;
    /* its place in cluster->nodes; the slot map holds index + 1 */
    ngx_uint_t                           index;
    unsigned                             in_map:1;
} ngx_http_supportdesk_redis_node_t;


struct ngx_http_supportdesk_redis_cluster_s {
    ngx_http_supportdesk_redis_conf_t   *conf;
    ngx_uint_t                           index;
    ngx_log_t                           *log;
    /* node addresses and keys live here, as long as the cluster */
    ngx_pool_t                          *mem;

    ngx_http_supportdesk_redis_node_t  **nodes;
    ngx_uint_t                           nnodes;
    /* a node's index + 1 per slot; 0: not known (any node, then MOVED) */
    uint16_t                   slots[NGX_HTTP_SUPPORTDESK_CLUSTER_SLOTS];

    /* CLUSTER SLOTS: one in flight at most, sent to refresh_node */
    ngx_event_t                          refresh_timer;
    ngx_msec_t                           refreshed;
    ngx_http_supportdesk_redis_node_t   *refresh_node;
    unsigned                             refreshing:1;
    /* no master was up to ask: the first connection up asks at once */
    unsigned                             refresh_waits:1;

    /*
     * A map is a node's view when it answered; a MOVED that came after the
     * CLUSTER SLOTS went is as new or newer, and stays over the map.
     */
    uint16_t                moved_slot[NGX_HTTP_SUPPORTDESK_REDIS_MOVED_KEEP];
    uint16_t                moved_to[NGX_HTTP_SUPPORTDESK_REDIS_MOVED_KEEP];
    ngx_uint_t                           nmoved;

    /*
     * Commands redirected or refused for now, sent again in the order
     * their answers came, so the commands of a request keep their order.
     */
    ngx_queue_t                          retry;
    ngx_event_t                          retry_timer;

    /* CLUSTER SLOTS sent: the next goes to the next master */
    ngx_uint_t                           refreshes;
};


struct ngx_http_supportdesk_redis_op_s {
    ngx_queue_t                              queue;
    ngx_http_supportdesk_redis_conn_t       *conn;
    /* the pool it came from and goes back to (a redirect moves it) */
    ngx_http_supportdesk_redis_pool_t       *pool;

    /* NULL once the request abandoned the op */
    ngx_http_supportdesk_redis_handler_pt    handler;
    void                                    *data;
    /* the request's log while it lives, then the pool's */
    ngx_log_t                               *log;
    /* how the op fails once its connection closed; 0 before */
    ngx_int_t                                rc;

    ngx_event_t                              timer;

    ngx_http_supportdesk_redis_op_kind_e     kind;
    const char                              *what;

    /* kept to send again after NOSCRIPT */
    ngx_int_t                                script;
    int                                      argc;
    const char                             **argv;
    const size_t                            *argvlen;

    /* where its command starts in the connection's stream */
    off_t                                    start;

    /* cluster: the slot of its key (-1: none), redirections followed and
       refusals met, the node an ASK or a MOVED named, and whether it
       waits in the cluster's retry */
    ngx_int_t                                slot;
    ngx_uint_t                               redirects;
    ngx_uint_t                               refusals;
    ngx_http_supportdesk_redis_node_t       *ask;
    ngx_http_supportdesk_redis_node_t       *moved;
    unsigned                                 retrying:1;

    /* the commands of its request queued right in front of it and right
       behind it, while they are not answered: one sent again goes behind
       the one in front, so a request's commands keep their order */
    ngx_http_supportdesk_redis_op_t         *ahead;
    ngx_http_supportdesk_redis_op_t         *behind;

    /* supportdesk_redis_wait: the WAIT behind this write, and the write's
       reply, held until WAIT says enough replicas have it */
    ngx_http_supportdesk_redis_op_t         *waiter;
    redisReply                              *held;

    /* when it was queued, for the metrics (0: not timed) */
    uint64_t                                 started;
};


static ngx_uint_t ngx_http_supportdesk_redis_addr_eq(
    ngx_http_supportdesk_redis_conf_t *a,
    ngx_http_supportdesk_redis_conf_t *b);
static ngx_uint_t ngx_http_supportdesk_redis_seeds_eq(ngx_array_t *a,
    ngx_array_t *b);
static ngx_uint_t ngx_http_supportdesk_redis_str_eq(ngx_str_t *a,
    ngx_str_t *b);
static void ngx_http_supportdesk_redis_connect(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_open(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_schedule(ngx_event_t *timer,
    ngx_msec_t last, ngx_msec_t within);
static void ngx_http_supportdesk_redis_resolve(
    ngx_http_supportdesk_redis_pool_t *pool, ngx_msec_t age);
static void ngx_http_supportdesk_redis_resolve_timer(ngx_event_t *ev);
static void ngx_http_supportdesk_redis_resolved(ngx_resolver_ctx_t *ctx);
static void ngx_http_supportdesk_redis_readdress(
    ngx_http_supportdesk_redis_pool_t *pool);
static void ngx_http_supportdesk_redis_connected(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_state(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_state_e state);
static void ngx_http_supportdesk_redis_close(
    ngx_http_supportdesk_redis_conn_t *conn, ngx_int_t rc,
    ngx_uint_t backoff);
static void ngx_http_supportdesk_redis_release(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_supportdesk_redis_tls_done(ngx_connection_t *c);
static void ngx_http_supportdesk_redis_ready(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_connect_handler(ngx_event_t *wev);
static void ngx_http_supportdesk_redis_write_handler(ngx_event_t *wev);
static void ngx_http_supportdesk_redis_read_handler(ngx_event_t *rev);
static ngx_int_t ngx_http_supportdesk_redis_test_connect(
    ngx_connection_t *c);
static ngx_int_t ngx_http_supportdesk_redis_flush(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_schedule_flush(
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_int_t ngx_http_supportdesk_redis_unparsed(
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_int_t ngx_http_supportdesk_redis_process(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_deliver(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_redis_wait_add(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_wait_done(void *data, ngx_int_t rc,
    redisReply *reply);
static void ngx_http_supportdesk_redis_wait_detach(
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_answer(
    ngx_http_supportdesk_redis_op_t *op, ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_redis_handshake(
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_int_t ngx_http_supportdesk_redis_handshake_add(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_kind_e kind, const char *what,
    ngx_int_t script, int argc, const char **argv, const size_t *argvlen);
static ngx_int_t ngx_http_supportdesk_redis_load_scripts(
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_int_t ngx_http_supportdesk_redis_own_scripts(
    ngx_http_supportdesk_redis_conn_t *conn, ngx_cycle_t *cycle,
    ngx_uint_t pool_index, ngx_uint_t conn_index);
static void ngx_http_supportdesk_redis_handshake_reply(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply);
static ngx_int_t ngx_http_supportdesk_redis_encode(
    ngx_http_supportdesk_redis_conn_t *conn, ngx_int_t script,
    ngx_uint_t load, int argc, const char **argv, const size_t *argvlen);
static u_char *ngx_http_supportdesk_redis_bulk(u_char *p, const u_char *data,
    size_t len, const u_char *tail, size_t tail_len);
static ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_redis_op_alloc(
    ngx_http_supportdesk_redis_pool_t *pool);
static void ngx_http_supportdesk_redis_op_free(
    ngx_http_supportdesk_redis_pool_t *pool,
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_op_timeout(ngx_event_t *ev);
static ngx_http_supportdesk_redis_conn_t *ngx_http_supportdesk_redis_pick(
    ngx_http_supportdesk_redis_pool_t *pool);
static redisReader *ngx_http_supportdesk_redis_reader(
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_int_t ngx_http_supportdesk_redis_write_op(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_noscript(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_resume(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_free_queue(ngx_queue_t *queue);
static void ngx_http_supportdesk_redis_wait_release(
    ngx_http_supportdesk_redis_op_t *op);
static ngx_http_supportdesk_redis_pool_t *
    ngx_http_supportdesk_redis_pool_create(
    ngx_http_supportdesk_redis_conf_t *rcf, ngx_uint_t index, ngx_log_t *log,
    ngx_http_supportdesk_redis_cluster_t *cluster,
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_uint_t flags);

/* pool_create() flags */
#define NGX_HTTP_SUPPORTDESK_REDIS_PLAIN       1
#define NGX_HTTP_SUPPORTDESK_REDIS_SUBSCRIBER  2
static void ngx_http_supportdesk_redis_pool_destroy(
    ngx_http_supportdesk_redis_pool_t *pool);
static ngx_http_supportdesk_redis_cluster_t *
    ngx_http_supportdesk_redis_cluster_create(
    ngx_http_supportdesk_redis_conf_t *rcf, ngx_uint_t index, ngx_log_t *log);
static void ngx_http_supportdesk_redis_cluster_destroy(
    ngx_http_supportdesk_redis_cluster_t *cluster);
static ngx_http_supportdesk_redis_node_t *ngx_http_supportdesk_redis_node(
    ngx_http_supportdesk_redis_cluster_t *cluster, ngx_str_t *key,
    ngx_addr_t *addr);
static ngx_http_supportdesk_redis_pool_t *
    ngx_http_supportdesk_redis_cluster_pool(
    ngx_http_supportdesk_redis_cluster_t *cluster, ngx_int_t slot);
static void ngx_http_supportdesk_redis_count_error(
    ngx_http_supportdesk_redis_conn_t *conn, redisReply *reply);
static ngx_uint_t ngx_http_supportdesk_redis_cluster_reply(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply);
static void ngx_http_supportdesk_redis_cluster_resend(
    ngx_http_supportdesk_redis_cluster_t *cluster,
    ngx_http_supportdesk_redis_op_t *op);
static void ngx_http_supportdesk_redis_cluster_retry_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_supportdesk_redis_asking_add(
    ngx_http_supportdesk_redis_conn_t *conn);
static void ngx_http_supportdesk_redis_cluster_refresh(
    ngx_http_supportdesk_redis_cluster_t *cluster, ngx_msec_t within);
static void ngx_http_supportdesk_redis_cluster_refresh_handler(
    ngx_event_t *ev);
static void ngx_http_supportdesk_redis_cluster_slots(void *data, ngx_int_t rc,
    redisReply *reply);
static ngx_http_supportdesk_redis_sentinel_t *
    ngx_http_supportdesk_redis_sentinel_create(
    ngx_http_supportdesk_redis_conf_t *rcf, ngx_uint_t index, ngx_log_t *log);
static void ngx_http_supportdesk_redis_sentinel_destroy(
    ngx_http_supportdesk_redis_sentinel_t *sentinel);
static void ngx_http_supportdesk_redis_sentinel_query(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_msec_t within);
static void ngx_http_supportdesk_redis_sentinel_timer(ngx_event_t *ev);
static void ngx_http_supportdesk_redis_sentinel_answer(void *data,
    ngx_int_t rc, redisReply *reply);
static void ngx_http_supportdesk_redis_sentinel_message(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, redisReply *reply);
static void ngx_http_supportdesk_redis_sentinel_master(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_str_t *ip,
    ngx_str_t *port, const char *why);
static void ngx_http_supportdesk_redis_fail_handler(ngx_event_t *ev);
static void ngx_http_supportdesk_redis_refused(
    ngx_http_supportdesk_redis_pool_t *pool,
    ngx_http_supportdesk_redis_conn_t *conn, ngx_log_t *log);
static ngx_uint_t ngx_http_supportdesk_redis_full(
    ngx_http_supportdesk_redis_conf_t *conf,
    ngx_http_supportdesk_redis_conn_t *conn);
static ngx_http_supportdesk_redis_op_t *ngx_http_supportdesk_redis_queue(
    ngx_http_supportdesk_redis_conn_t *conn, ngx_int_t slot, ngx_int_t script,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log);


/* one worker is one thread: a single read buffer serves every connection */
static u_char  ngx_http_supportdesk_redis_buf[65536];

static const char   *ngx_http_supportdesk_redis_asking[] = { "ASKING" };
static const size_t  ngx_http_supportdesk_redis_asking_len[] = { 6 };



ngx_http_supportdesk_redis_conf_t *
ngx_http_supportdesk_redis_conf_add(ngx_conf_t *cf, ngx_array_t *confs,
    ngx_http_supportdesk_redis_conf_t *want)
{
    ngx_uint_t                            i;
    ngx_http_supportdesk_redis_conf_t   **rcfp, *rcf;

    rcfp = confs->elts;

    for (i = 0; i < confs->nelts; i++) {
        rcf = rcfp[i];

        if (ngx_http_supportdesk_redis_addr_eq(rcf, want)
            && ngx_http_supportdesk_redis_seeds_eq(rcf->seeds, want->seeds)
            && ngx_http_supportdesk_redis_seeds_eq(rcf->sentinels,
                                                   want->sentinels)
            && ngx_http_supportdesk_redis_str_eq(&rcf->sentinel_master,
                                                 &want->sentinel_master)
            && rcf->db == want->db
            && rcf->connect_timeout == want->connect_timeout
            && rcf->timeout == want->timeout
            && rcf->connections == want->connections
            && rcf->max_pending == want->max_pending
            && rcf->max_output == want->max_output
            && rcf->max_reply_size == want->max_reply_size
            && rcf->max_reply_elements == want->max_reply_elements
            && ngx_http_supportdesk_tls_equal(&rcf->tls, &want->tls)
            && rcf->wait_replicas == want->wait_replicas
            && rcf->wait_timeout == want->wait_timeout
            && ngx_http_supportdesk_redis_str_eq(&rcf->user, &want->user)
            && ngx_http_supportdesk_redis_str_eq(&rcf->password,
                                                 &want->password))
        {
            return rcf;
        }
    }

    rcf = ngx_palloc(cf->pool, sizeof(ngx_http_supportdesk_redis_conf_t));
    if (rcf == NULL) {
        return NULL;
    }

    *rcf = *want;
    rcf->pool = NULL;
    rcf->cluster = NULL;
    rcf->sentinel = NULL;

    /* one TLS context per distinct set of settings */
    if (ngx_http_supportdesk_tls_create(cf, &rcf->tls) != NGX_OK) {
        return NULL;
    }

    rcfp = ngx_array_push(confs);
    if (rcfp == NULL) {
        return NULL;
    }

    *rcfp = rcf;

    return rcf;
}


/* the same server: the same address, or the same name to resolve */

static ngx_uint_t
ngx_http_supportdesk_redis_addr_eq(ngx_http_supportdesk_redis_conf_t *a,
    ngx_http_supportdesk_redis_conf_t *b)
{
    if (a->host.len || b->host.len) {
        return ngx_http_supportdesk_redis_str_eq(&a->host, &b->host)
               && a->port == b->port
               && a->resolver == b->resolver
               && a->resolver_timeout == b->resolver_timeout;
    }

    return ngx_cmp_sockaddr(a->addr->sockaddr, a->addr->socklen,
                            b->addr->sockaddr, b->addr->socklen, 1)
           == NGX_OK;
}


/* the same seeds in the same order (or both one server) */

static ngx_uint_t
ngx_http_supportdesk_redis_seeds_eq(ngx_array_t *a, ngx_array_t *b)
{
    ngx_uint_t   i;
    ngx_addr_t  *x, *y;

    if (a == NULL || b == NULL) {
        return a == b;
    }

    if (a->nelts != b->nelts) {
        return 0;
    }

    x = a->elts;
    y = b->elts;

    for (i = 0; i < a->nelts; i++) {
        if (ngx_cmp_sockaddr(x[i].sockaddr, x[i].socklen, y[i].sockaddr,
                             y[i].socklen, 1)
            != NGX_OK)
        {
            return 0;
        }
    }

    return 1;
}


/* unset strings have no data: never hand NULL to strncmp */

static ngx_uint_t
ngx_http_supportdesk_redis_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_strncmp(a->data, b->data, a->len) == 0);
}


ngx_int_t
ngx_http_supportdesk_redis_init_process(ngx_cycle_t *cycle,
    ngx_array_t *confs)
{
    ngx_uint_t                            i;
    ngx_http_supportdesk_redis_conf_t   **rcfp, *rcf;

    ngx_http_supportdesk_cluster_init();

    rcfp = confs->elts;

    for (i = 0; i < confs->nelts; i++) {
        rcf = rcfp[i];

        if (rcf->seeds != NULL) {
            rcf->cluster = ngx_http_supportdesk_redis_cluster_create(rcf, i,
                                                                 cycle->log);
            if (rcf->cluster == NULL) {
                return NGX_ERROR;
            }

            continue;
        }

        if (rcf->sentinels != NULL) {
            rcf->sentinel = ngx_http_supportdesk_redis_sentinel_create(rcf, i,
                                                                 cycle->log);
            if (rcf->sentinel == NULL) {
                return NGX_ERROR;
            }

            continue;
        }

        rcf->pool = ngx_http_supportdesk_redis_pool_create(rcf, i,
                                                           cycle->log, NULL,
                                                           NULL, 0);
        if (rcf->pool == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A pool of connections to the one server of rcf; index names it in tags.
 * Of a cluster's master, or of a sentinel (the master's or one to ask or
 * listen to: flags), known before the first connect.
 */

static ngx_http_supportdesk_redis_pool_t *
ngx_http_supportdesk_redis_pool_create(ngx_http_supportdesk_redis_conf_t *rcf,
    ngx_uint_t index, ngx_log_t *log,
    ngx_http_supportdesk_redis_cluster_t *cluster,
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_uint_t flags)
{
    ngx_uint_t                          j;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    pool = ngx_calloc(sizeof(ngx_http_supportdesk_redis_pool_t), log);
    if (pool == NULL) {
        return NULL;
    }

    pool->conns = ngx_calloc((rcf->connections + 1)
                             * sizeof(ngx_http_supportdesk_redis_conn_t),
                             log);
    if (pool->conns == NULL) {
        ngx_free(pool);
        return NULL;
    }

    pool->conf = rcf;
    pool->nconns = rcf->connections;
    pool->log = log;
    pool->cluster = cluster;
    pool->sentinel = sentinel;
    pool->plain = (flags & NGX_HTTP_SUPPORTDESK_REDIS_PLAIN) ? 1 : 0;
    pool->subscriber = (flags & NGX_HTTP_SUPPORTDESK_REDIS_SUBSCRIBER) ? 1 : 0;
    pool->metered = !pool->plain;

    if (rcf->wait_replicas) {
        pool->wait_argv[0] = "WAIT";
        pool->wait_argvlen[0] = 4;
        pool->wait_argv[1] = (const char *) pool->wait_text[0];
        pool->wait_argvlen[1] = ngx_sprintf(pool->wait_text[0], "%ui",
                                            rcf->wait_replicas)
                                - pool->wait_text[0];
        pool->wait_argv[2] = (const char *) pool->wait_text[1];
        pool->wait_argvlen[2] = ngx_sprintf(pool->wait_text[1], "%M",
                                            rcf->wait_timeout)
                                - pool->wait_text[1];
    }
    ngx_queue_init(&pool->free_ops);
    ngx_queue_init(&pool->failing);
    pool->fail_event.handler = ngx_http_supportdesk_redis_fail_handler;
    pool->fail_event.data = pool;
    pool->fail_event.log = log;

    if (rcf->host.len) {
        pool->resolve_timer.handler = ngx_http_supportdesk_redis_resolve_timer;
        pool->resolve_timer.data = pool;
        pool->resolve_timer.log = log;
        pool->resolve_timer.cancelable = 1;
        ngx_add_timer(&pool->resolve_timer,
                      NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_EVERY);
    }

    for (j = 0; j <= pool->nconns; j++) {
        conn = &pool->conns[j];
        conn->pool = pool;
        conn->backoff = NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MIN;
        ngx_queue_init(&conn->inflight);
        ngx_queue_init(&conn->noscript);
        ngx_queue_init(&conn->held);

        conn->retry.handler = ngx_http_supportdesk_redis_retry_handler;
        conn->retry.data = conn;
        conn->retry.log = log;
        /* a reconnect must not hold up a graceful worker exit */
        conn->retry.cancelable = 1;

        if (ngx_http_supportdesk_redis_own_scripts(conn, (ngx_cycle_t *)
                                                   ngx_cycle, index, j)
            != NGX_OK)
        {
            ngx_free(pool->conns);
            ngx_free(pool);
            return NULL;
        }
    }

    /* the metrics count the requests' connections to Redis (not those to
       sentinels, nor the background one) */
    for (j = 0; pool->metered && j < pool->nconns; j++) {
        ngx_http_supportdesk_metrics_redis_conn(
                                      NGX_HTTP_SUPPORTDESK_METRICS_CONN_NONE,
                                      NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED);
    }

    /* connect early so the first request finds a warm connection */
    for (j = 0; j < pool->nconns; j++) {
        ngx_http_supportdesk_redis_connect(&pool->conns[j]);
    }

    return pool;
}


void
ngx_http_supportdesk_redis_exit_process(ngx_cycle_t *cycle,
    ngx_array_t *confs)
{
    ngx_uint_t                            i;
    ngx_http_supportdesk_redis_conf_t   **rcfp;

    rcfp = confs->elts;

    for (i = 0; i < confs->nelts; i++) {
        if (rcfp[i]->cluster != NULL) {
            ngx_http_supportdesk_redis_cluster_destroy(rcfp[i]->cluster);
            rcfp[i]->cluster = NULL;
        }

        if (rcfp[i]->sentinel != NULL) {
            ngx_http_supportdesk_redis_sentinel_destroy(rcfp[i]->sentinel);
            rcfp[i]->sentinel = NULL;
        }

        if (rcfp[i]->pool != NULL) {
            ngx_http_supportdesk_redis_pool_destroy(rcfp[i]->pool);
            rcfp[i]->pool = NULL;
        }
    }
}


static void
ngx_http_supportdesk_redis_pool_destroy(ngx_http_supportdesk_redis_pool_t *pool)
{
    ngx_uint_t                          j;
    ngx_http_supportdesk_redis_conn_t  *conn;

    for (j = 0; j <= pool->nconns; j++) {
        conn = &pool->conns[j];

        if (conn->retry.timer_set) {
            ngx_del_timer(&conn->retry);
        }

        /* the requests behind these ops are gone with the worker */
        ngx_http_supportdesk_redis_free_queue(&conn->inflight);
        ngx_http_supportdesk_redis_free_queue(&conn->noscript);
        ngx_http_supportdesk_redis_free_queue(&conn->held);

        ngx_http_supportdesk_redis_release(conn);
        ngx_http_supportdesk_tls_free_session(&conn->tls_session);

        if (pool->metered && j < pool->nconns) {
            ngx_http_supportdesk_metrics_redis_conn(conn->state,
                                      NGX_HTTP_SUPPORTDESK_METRICS_CONN_NONE);
        }

        if (conn->out != NULL) {
            ngx_free(conn->out);
            conn->out = NULL;
        }

        ngx_http_supportdesk_reply_free(&conn->arena);
    }

    if (pool->fail_event.posted) {
        ngx_delete_posted_event(&pool->fail_event);
    }

    if (pool->resolve_timer.timer_set) {
        ngx_del_timer(&pool->resolve_timer);
    }

    if (pool->resolving != NULL) {
        ngx_resolve_name_done(pool->resolving);
        pool->resolving = NULL;
    }

    ngx_http_supportdesk_redis_free_queue(&pool->failing);
    ngx_http_supportdesk_redis_free_queue(&pool->free_ops);

    ngx_free(pool->conns);
    ngx_free(pool);
}


/* the pool a command goes to: on a cluster, its first key's slot's */

static ngx_http_supportdesk_redis_pool_t *
ngx_http_supportdesk_redis_target(ngx_http_supportdesk_redis_conf_t *conf,
    ngx_int_t script, int argc, const char **argv, const size_t *argvlen,
    ngx_int_t *slot)
{
    *slot = -1;

    if (conf->cluster != NULL) {
        *slot = ngx_http_supportdesk_cluster_command_slot(script, argc, argv,
                                                          argvlen);
        return ngx_http_supportdesk_redis_cluster_pool(conf->cluster, *slot);
    }

    if (conf->sentinel != NULL) {
        /* NULL until a sentinel has named the master */
        return conf->sentinel->master_pool;
    }

    return conf->pool;
}


ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_redis_send(ngx_http_supportdesk_redis_conf_t *conf,
    ngx_int_t script, int argc, const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    ngx_int_t                           slot;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    pool = ngx_http_supportdesk_redis_target(conf, script, argc, argv,
                                             argvlen, &slot);
    if (pool == NULL) {
        return NULL;
    }

    conn = ngx_http_supportdesk_redis_pick(pool);

    /*
     * Admission: beyond its bounds a connection takes nothing more, and a
     * request is better answered 503 now than after the timeout, having
     * grown the queue and the memory meanwhile.
     */
    if (conn == NULL || ngx_http_supportdesk_redis_full(conf, conn)) {
        ngx_http_supportdesk_redis_refused(pool, conn, log);
        return NULL;
    }

    return ngx_http_supportdesk_redis_queue(conn, slot, script, argc, argv,
                                            argvlen, handler, data, log);
}


ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_redis_send_background(
    ngx_http_supportdesk_redis_conf_t *conf, ngx_int_t script, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    ngx_int_t                           slot;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    pool = ngx_http_supportdesk_redis_target(conf, script, argc, argv,
                                             argvlen, &slot);
    if (pool == NULL) {
        return NULL;
    }

    conn = &pool->conns[pool->nconns];

    if (conn->state == NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED) {
        /* in its backoff, it is not tried before its time */
        if (conn->retry.timer_set) {
            return NULL;
        }

        ngx_http_supportdesk_redis_connect(conn);

        if (conn->state == NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED) {
            return NULL;
        }
    }

    /* stale: to an address its name no longer has, draining */
    if (conn->stale || ngx_http_supportdesk_redis_full(conf, conn)) {
        return NULL;
    }

    return ngx_http_supportdesk_redis_queue(conn, slot, script, argc, argv,
                                            argvlen, handler, data, log);
}


ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_redis_send_after(ngx_http_supportdesk_redis_op_t *prev,
    ngx_int_t script, int argc, const char **argv, const size_t *argvlen,
    ngx_http_supportdesk_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    ngx_http_supportdesk_redis_op_t  *op;

    /* prev failed with its connection, or waits to be sent again: the rest
       of the request fails too */
    if (prev->rc || prev->retrying || prev->conn == NULL
        || prev->conn->state == NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED)
    {
        return NULL;
    }

    /* the commands of a request share their slot (their app's) */
    op = ngx_http_supportdesk_redis_queue(prev->conn, prev->slot, script,
                                          argc, argv, argvlen, handler, data,
                                          log);
    if (op == NULL) {
        return NULL;
    }

    op->ahead = prev;
    prev->behind = op;

    return op;
}


/* whether conn takes no more: its replies due or its output at the bounds */

static ngx_uint_t
ngx_http_supportdesk_redis_full(ngx_http_supportdesk_redis_conf_t *conf,
    ngx_http_supportdesk_redis_conn_t *conn)
{
    return conn->npending >= conf->max_pending
           || conn->out_len - conn->out_sent >= conf->max_output;
}


/* slot: the cluster slot the command is for (-1: none, or not a cluster) */

static ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_redis_queue(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_int_t slot, ngx_int_t script, int argc, const char **argv,
    const size_t *argvlen, ngx_http_supportdesk_redis_handler_pt handler,
    void *data, ngx_log_t *log)
{
    ngx_http_supportdesk_redis_op_t  *op;

    op = ngx_http_supportdesk_redis_op_alloc(conn->pool);
    if (op == NULL) {
        return NULL;
    }

    op->conn = conn;
    op->slot = slot;
    op->handler = handler;
    op->data = data;
    op->log = log;
    op->kind = NGX_HTTP_SUPPORTDESK_REDIS_OP_REQUEST;
    op->script = script;
    op->argc = argc;
    op->argv = argv;
    op->argvlen = argvlen;
    op->started = ngx_http_supportdesk_metrics_now();

    if (conn->recovering) {
        /* written once everything before it is answered or resent */
        ngx_queue_insert_tail(&conn->held, &op->queue);

    } else if (ngx_http_supportdesk_redis_write_op(conn, op) != NGX_OK) {
        ngx_http_supportdesk_redis_op_free(conn->pool, op);
        return NULL;
    }

    conn->npending++;

    ngx_add_timer(&op->timer, conn->pool->conf->timeout);

    ngx_http_supportdesk_redis_schedule_flush(conn);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, log, 0,
                   "supportdesk: redis %*s queued as op %p on %V conn %p, "
                   "%ui pending",
                   script == NGX_HTTP_SUPPORTDESK_NO_SCRIPT
                   ? argvlen[0]
                   : ngx_http_supportdesk_script_table[script].name.len,
                   script == NGX_HTTP_SUPPORTDESK_NO_SCRIPT
                   ? (u_char *) argv[0]
                   : ngx_http_supportdesk_script_table[script].name.data,
                   op, conn->peer.name, conn, conn->npending);

    return op;
}


/* encodes the op's command behind the others, its reply due after theirs */

static ngx_int_t
ngx_http_supportdesk_redis_write_op(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op)
{
    op->start = conn->stream_len;

    if (ngx_http_supportdesk_redis_encode(conn, op->script, 0,
                                          op->argc, op->argv, op->argvlen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&conn->inflight, &op->queue);
    conn->ninflight++;

    /* a write is acknowledged once replicas have it: WAIT right behind */
    if (conn->pool->conf->wait_replicas
        && op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_REQUEST
        && op->script != NGX_HTTP_SUPPORTDESK_NO_SCRIPT
        && ngx_http_supportdesk_script_table[op->script].writes)
    {
        return ngx_http_supportdesk_redis_wait_add(conn, op);
    }

    return NGX_OK;
}


void
ngx_http_supportdesk_redis_abandon(ngx_http_supportdesk_redis_op_t *op)
{
    if (op->retrying) {
        /* waiting in the cluster's retry, on no connection: not sent again */
        ngx_queue_remove(&op->queue);
        op->retrying = 0;
        ngx_http_supportdesk_redis_op_free(op->pool, op);
        return;
    }

    /*
     * The reply is still due on this connection and keeps its place in the
     * pipeline; the timer stays too, so a Redis that never answers is still
     * noticed.  Only the way back to the request is cut.
     */
    op->handler = NULL;
    op->data = NULL;
    op->log = op->pool->log;
    op->argv = NULL;
    op->argvlen = NULL;
}


static ngx_http_supportdesk_redis_conn_t *
ngx_http_supportdesk_redis_pick(ngx_http_supportdesk_redis_pool_t *pool)
{
    ngx_uint_t                          i;
    ngx_http_supportdesk_redis_conn_t  *conn, *best, *idle, *posted;

    best = NULL;
    idle = NULL;
    posted = NULL;

    for (i = 0; i < pool->nconns; i++) {
        conn = &pool->conns[(pool->next + i) % pool->nconns];

        switch (conn->state) {

        case NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED:
            if (conn->stale) {
                /* to an address its name no longer has: draining */
                break;
            }

            if (posted == NULL && conn->peer.connection->write->posted) {
                posted = conn;
            }

            if (best == NULL
                || best->state != NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED
                || conn->npending < best->npending)
            {
                best = conn;
            }
            break;

        case NGX_HTTP_SUPPORTDESK_REDIS_CONNECTING:
            if (best == NULL) {
                best = conn;
            }
            break;

        default:
            /* a connection in backoff is not tried before its time */
            if (idle == NULL && !conn->retry.timer_set) {
                idle = conn;
            }
        }
    }

    pool->next++;

    /*
     * A connection whose send is already due in this turn of the event
     * loop takes the command too, unless it is well ahead of the least
     * loaded or at its bounds: one send() and one reply read for the
     * turn's commands, not one per connection (on a cluster, per master).
     */
    if (posted != NULL
        && posted->npending
           <= best->npending + NGX_HTTP_SUPPORTDESK_REDIS_COALESCE
        && !ngx_http_supportdesk_redis_full(pool->conf, posted))
    {
        return posted;
    }

    if (best && best->state == NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED) {
        return best;
    }

    if (idle != NULL) {
        ngx_http_supportdesk_redis_connect(idle);

        if (idle->state != NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED) {
            return idle;
        }
    }

    return best;
}


static void
ngx_http_supportdesk_redis_connect(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    pool = conn->pool;
    rcf = pool->conf;

    if (ngx_exiting || ngx_terminate || ngx_quit || pool->retired) {
        return;
    }

    ngx_memzero(&conn->peer, sizeof(ngx_peer_connection_t));
    conn->peer.name = &rcf->addr->name;
    conn->peer.get = ngx_event_get_peer;
    conn->peer.log = pool->log;
    conn->peer.log_error = NGX_ERROR_ERR;

    conn->out_len = 0;
    conn->out_sent = 0;
    conn->stream_len = 0;
    conn->stream_sent = 0;

    conn->reader = ngx_http_supportdesk_redis_reader(conn);
    if (conn->reader == NULL) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    /* requests may queue from here: their commands go behind these */
    ngx_http_supportdesk_redis_state(conn,
                                     NGX_HTTP_SUPPORTDESK_REDIS_CONNECTING);

    /* pipelined ahead of every request: no extra round trip */
    if (ngx_http_supportdesk_redis_handshake(conn) != NGX_OK) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    if (rcf->host.len) {
        if (pool->resolved.sockaddr == NULL) {
            /* opened by ngx_http_supportdesk_redis_resolved() */
            conn->awaiting_address = 1;
            ngx_http_supportdesk_redis_resolve(pool, 0);
            return;
        }

        ngx_http_supportdesk_redis_resolve(pool,
                                   NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_AGAIN);
    }

    ngx_http_supportdesk_redis_open(conn);
}


/* the socket of a connection whose handshake is encoded */

static void
ngx_http_supportdesk_redis_open(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_int_t                           rc;
    ngx_addr_t                         *addr;
    ngx_connection_t                   *c;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    rcf = conn->pool->conf;
    addr = rcf->host.len ? &conn->pool->resolved : rcf->addr;

    conn->peer.sockaddr = addr->sockaddr;
    conn->peer.socklen = addr->socklen;
    conn->peer.name = &addr->name;
    conn->address = conn->pool->address;

    rc = ngx_event_connect_peer(&conn->peer);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, conn->pool->log, 0,
                   "supportdesk: redis connect to %V: %i", &addr->name, rc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        conn->peer.connection = NULL;
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    c = conn->peer.connection;
    c->data = conn;

    /* ngx_ssl allocates a connection's TLS state from its pool */
    if (rcf->tls.enable) {
        c->pool = ngx_create_pool(512, conn->pool->log);
        if (c->pool == NULL) {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return;
        }
    }

    c->read->handler = ngx_http_supportdesk_redis_read_handler;
    c->write->handler = ngx_http_supportdesk_redis_connect_handler;
    c->read->cancelable = 1;
    c->write->cancelable = 1;

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, rcf->connect_timeout);
        return;
    }

    ngx_http_supportdesk_redis_connected(conn);
}


/*
 * supportdesk_redis <name> with a resolver: the name is asked of nginx's
 * resolver (its cache answers most of the time) unless it was less than
 * age ago; one question in flight per pool.
 */

static void
ngx_http_supportdesk_redis_resolve(ngx_http_supportdesk_redis_pool_t *pool,
    ngx_msec_t age)
{
    ngx_resolver_ctx_t                 *ctx;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    rcf = pool->conf;

    if (pool->resolving != NULL || ngx_exiting
        || (pool->resolved_at != 0
            && ngx_current_msec - pool->resolved_at < age))
    {
        return;
    }

    ctx = ngx_resolve_start(rcf->resolver, NULL);

    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "supportdesk: redis %V: could not start resolving "
                      "\"%V\"", &rcf->addr->name, &rcf->host);
        pool->resolved_at = ngx_current_msec;
        ngx_http_supportdesk_redis_readdress(pool);
        return;
    }

    ctx->name = rcf->host;
    ctx->handler = ngx_http_supportdesk_redis_resolved;
    ctx->data = pool;
    ctx->timeout = rcf->resolver_timeout;
    /* a question in flight does not hold up a graceful exit */
    ctx->cancelable = 1;

    /* the answer may come at once, from the cache, inside the call */
    pool->resolving = ctx;

    if (ngx_resolve_name(ctx) != NGX_OK) {
        /* ngx_resolve_name() freed ctx */
        pool->resolving = NULL;
        pool->resolved_at = ngx_current_msec;

        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "supportdesk: redis %V: could not resolve \"%V\"",
                      &rcf->addr->name, &rcf->host);

        ngx_http_supportdesk_redis_readdress(pool);
    }
}


static void
ngx_http_supportdesk_redis_resolve_timer(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_pool_t  *pool;

    pool = ev->data;

    ngx_http_supportdesk_redis_resolve(pool,
                                   NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_EVERY);

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_EVERY);
    }
}


static void
ngx_http_supportdesk_redis_resolved(ngx_resolver_ctx_t *ctx)
{
    ngx_uint_t                          i, keep, moved, level;
    ngx_resolver_addr_t                *a;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    pool = ctx->data;
    rcf = pool->conf;

    pool->resolving = NULL;
    pool->resolved_at = ngx_current_msec;

    if (ctx->state != NGX_OK || ctx->naddrs == 0) {
        /* the last address stays, if there is one */
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "supportdesk: redis %V: \"%V\" could not be resolved "
                      "(%i: %s)%s", &rcf->addr->name, &ctx->name,
                      ctx->state, ngx_resolver_strerror(ctx->state),
                      pool->resolved.sockaddr != NULL
                      ? ", keeping the last address" : "");
        ngx_resolve_name_done(ctx);
        ngx_http_supportdesk_redis_readdress(pool);
        return;
    }

    /* of several addresses, the one in use stays while the name has it */
    keep = ctx->naddrs;

    for (i = 0; pool->resolved.sockaddr != NULL && i < ctx->naddrs; i++) {
        a = &ctx->addrs[i];
        ngx_inet_set_port(a->sockaddr, rcf->port);

        if (ngx_cmp_sockaddr(a->sockaddr, a->socklen,
                             pool->resolved.sockaddr, pool->resolved.socklen,
                             1)
            == NGX_OK)
        {
            keep = i;
            break;
        }
    }

    if (keep == ctx->naddrs) {
        a = &ctx->addrs[0];

        if (a->socklen > sizeof(ngx_sockaddr_t)) {
            ngx_resolve_name_done(ctx);
            ngx_http_supportdesk_redis_readdress(pool);
            return;
        }

        moved = (pool->resolved.sockaddr != NULL);

        if (moved) {
            ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                          "supportdesk: redis %V: \"%V\" no longer resolves "
                          "to %V, moving the connections",
                          &rcf->addr->name, &ctx->name,
                          &pool->resolved.name);
        }

        ngx_memcpy(&pool->resolved_sockaddr, a->sockaddr, a->socklen);
        ngx_inet_set_port(&pool->resolved_sockaddr.sockaddr, rcf->port);

        pool->resolved.sockaddr = &pool->resolved_sockaddr.sockaddr;
        pool->resolved.socklen = a->socklen;
        pool->resolved.name.data = pool->resolved_text;
        pool->resolved.name.len = ngx_sock_ntop(pool->resolved.sockaddr,
                                                pool->resolved.socklen,
                                                pool->resolved_text,
                                                NGX_SOCKADDR_STRLEN, 1);
        /* connections opened before are to the old address */
        pool->address++;

        level = moved ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, pool->log, 0,
                      "supportdesk: redis %V: \"%V\" resolves to %V",
                      &rcf->addr->name, &ctx->name, &pool->resolved.name);

        ngx_resolve_name_done(ctx);
        ngx_http_supportdesk_redis_readdress(pool);
        return;
    }

    ngx_resolve_name_done(ctx);
    ngx_http_supportdesk_redis_readdress(pool);
}


/*
 * After an answer (or none): connections waiting for an address open, or
 * fail if there is none; those open to an address the name no longer has
 * close, at once when idle, else once their replies are in.
 */

static void
ngx_http_supportdesk_redis_readdress(ngx_http_supportdesk_redis_pool_t *pool)
{
    ngx_uint_t                          j;
    ngx_http_supportdesk_redis_conn_t  *conn;

    /* the background connection too */
    for (j = 0; j <= pool->nconns; j++) {
        conn = &pool->conns[j];

        if (conn->awaiting_address) {
            conn->awaiting_address = 0;

            if (pool->resolved.sockaddr == NULL) {
                ngx_http_supportdesk_redis_close(conn,
                                         NGX_HTTP_SERVICE_UNAVAILABLE, 1);

            } else {
                ngx_http_supportdesk_redis_open(conn);
            }

            continue;
        }

        if (conn->peer.connection == NULL || conn->stale
            || conn->address == pool->address)
        {
            continue;
        }

        if (conn->npending == 0) {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 0);

        } else {
            conn->stale = 1;
        }
    }
}


/*
 * The scripts' permissions are probed here rather than met per request: the
 * ACL check comes before anything else a command does, so an EVALSHA of no
 * script answers NOPERM when the ACL denies it, and NOSCRIPT otherwise (no
 * effect).  SCRIPT LOAD, the other command scripts need, is in the
 * handshake anyway.
 */

static const char  *ngx_http_supportdesk_redis_probes[][3] = {
    { "EVALSHA", "0000000000000000000000000000000000000000", "0" }
};


static ngx_int_t
ngx_http_supportdesk_redis_handshake(ngx_http_supportdesk_redis_conn_t *conn)
{
    int                                 argc;
    const char                         *argv[3];
    u_char                             *p;
    size_t                              argvlen[3];
    u_char                              db[NGX_INT_T_LEN];
    ngx_uint_t                          i, j;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    rcf = conn->pool->conf;
    conn->nhandshake = 0;

    if (conn->pool->plain) {
        /* a sentinel: nothing to set up, or the subscription only */
        if (!conn->pool->subscriber) {
            return NGX_OK;
        }

        argv[0] = "SUBSCRIBE";
        argvlen[0] = 9;
        argv[1] = "+switch-master";
        argvlen[1] = 14;

        return ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_SUBSCRIBE,
                                   "SUBSCRIBE", NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                   2, argv, argvlen);
    }

    if (rcf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (rcf->user.len) {
            argv[argc] = (const char *) rcf->user.data;
            argvlen[argc++] = rcf->user.len;
        }

        argv[argc] = (const char *) rcf->password.data;
        argvlen[argc++] = rcf->password.len;

        if (ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_HANDSHAKE,
                                   "AUTH", NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                   argc, argv, argvlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (rcf->db) {
        p = ngx_sprintf(db, "%i", rcf->db);
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) db;
        argvlen[1] = p - db;

        if (ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_HANDSHAKE,
                                   "SELECT", NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                   2, argv, argvlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_supportdesk_redis_load_scripts(conn) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < sizeof(ngx_http_supportdesk_redis_probes)
                    / sizeof(ngx_http_supportdesk_redis_probes[0]); i++)
    {
        for (j = 0; j < 3; j++) {
            argv[j] = ngx_http_supportdesk_redis_probes[i][j];
            argvlen[j] = ngx_strlen(argv[j]);
        }

        if (ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_PROBE,
                                   ngx_http_supportdesk_redis_probes[i][0],
                                   NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                   3, argv, argvlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* the address a sentinel gave may be a demoted master by now */
    if (conn->pool->sentinel != NULL) {
        argv[0] = "ROLE";
        argvlen[0] = 4;

        if (ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_ROLE,
                                   "ROLE", NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                   1, argv, argvlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* SCRIPT LOAD of the connection's own copy of every script */

static ngx_int_t
ngx_http_supportdesk_redis_load_scripts(
    ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_int_t  i;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT; i++) {
        if (ngx_http_supportdesk_redis_handshake_add(conn,
                                   NGX_HTTP_SUPPORTDESK_REDIS_OP_HANDSHAKE,
                                   "SCRIPT LOAD", i, 0, NULL, NULL)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* with script >= 0, SCRIPT LOAD of it, else the command in argv */

static ngx_int_t
ngx_http_supportdesk_redis_handshake_add(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_kind_e kind, const char *what,
    ngx_int_t script, int argc, const char **argv, const size_t *argvlen)
{
    ngx_http_supportdesk_redis_op_t  *op;

    op = ngx_http_supportdesk_redis_op_alloc(conn->pool);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_supportdesk_redis_encode(conn, script, 1, argc, argv,
                                          argvlen)
        != NGX_OK)
    {
        ngx_http_supportdesk_redis_op_free(conn->pool, op);
        return NGX_ERROR;
    }

    op->conn = conn;
    op->kind = kind;
    op->what = what;
    op->script = NGX_HTTP_SUPPORTDESK_NO_SCRIPT;

    ngx_queue_insert_tail(&conn->inflight, &op->queue);
    conn->ninflight++;
    conn->nhandshake++;

    return NGX_OK;
}


static void
ngx_http_supportdesk_redis_connect_handler(ngx_event_t *wev)
{
    ngx_connection_t                   *c;
    ngx_http_supportdesk_redis_conn_t  *conn;

    c = wev->data;
    conn = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, NGX_ETIMEDOUT,
                      "supportdesk: redis %V connect timed out",
                      conn->peer.name);
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    if (ngx_http_supportdesk_redis_test_connect(c) != NGX_OK) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    ngx_http_supportdesk_redis_connected(conn);
}


static ngx_int_t
ngx_http_supportdesk_redis_test_connect(ngx_connection_t *c)
{
    int                                 err;
    socklen_t                           len;
    ngx_http_supportdesk_redis_conn_t  *conn;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        conn = c->data;
        ngx_log_error(NGX_LOG_ERR, c->log, err,
                      "supportdesk: redis %V connect() failed",
                      conn->peer.name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_supportdesk_redis_connected(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_int_t                           rc;
    ngx_connection_t                   *c;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    c = conn->peer.connection;
    rcf = conn->pool->conf;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (rcf->tls.enable && c->ssl == NULL) {
        rc = ngx_http_supportdesk_tls_start(c, &rcf->tls, conn->peer.name,
                                         &conn->tls_session,
                                         ngx_http_supportdesk_redis_tls_done);

        if (rc == NGX_AGAIN) {
            /* the handshake is bound by the connect timeout too */
            ngx_add_timer(c->write, rcf->connect_timeout);
            return;
        }

        if (rc != NGX_OK
            || ngx_http_supportdesk_tls_finish(c, &rcf->tls, conn->peer.name,
                                               &conn->tls_session)
               != NGX_OK)
        {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return;
        }
    }

    ngx_http_supportdesk_redis_ready(conn);
}


static void
ngx_http_supportdesk_redis_tls_done(ngx_connection_t *c)
{
    ngx_http_supportdesk_redis_conn_t  *conn;

    conn = c->data;

    if (c->read->timedout || c->write->timedout) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, NGX_ETIMEDOUT,
                      "supportdesk: redis %V TLS handshake timed out",
                      conn->peer.name);
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (ngx_http_supportdesk_tls_finish(c, &conn->pool->conf->tls,
                                        conn->peer.name, &conn->tls_session)
        != NGX_OK)
    {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    /* the handshake had the events: they are the pool's again */
    c->read->handler = ngx_http_supportdesk_redis_read_handler;

    ngx_http_supportdesk_redis_ready(conn);
}


/* connected (and TLS set up): the handshake commands and the rest go */

static void
ngx_http_supportdesk_redis_ready(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_connection_t                      *c;
    ngx_http_supportdesk_redis_cluster_t  *cluster;

    c = conn->peer.connection;

    ngx_http_supportdesk_redis_state(conn,
                                     NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED);
    c->write->handler = ngx_http_supportdesk_redis_write_handler;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, conn->pool->log, 0,
                   "supportdesk: redis %V connected", conn->peer.name);

    /*
     * A slot map that waited for a connection is asked for on this one
     * now, not at the next tick: until it comes, commands go to a seed
     * and may be MOVED.
     */
    cluster = conn->pool->cluster;

    if (cluster != NULL && cluster->refresh_waits && !cluster->refreshing) {
        ngx_http_supportdesk_redis_cluster_refresh_handler(
                                                      &cluster->refresh_timer);
    }

    if (ngx_http_supportdesk_redis_flush(conn) == NGX_ERROR) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    /* replies that came with the handshake's last bytes are read now */
    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);
    }
}


static void
ngx_http_supportdesk_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_connect(ev->data);
}


/* the metrics count the connections in each state */

static void
ngx_http_supportdesk_redis_state(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_state_e state)
{
    /* the requests' connections: the background one opens when it has work */
    if (conn->pool->metered && conn != &conn->pool->conns[conn->pool->nconns])
    {
        ngx_http_supportdesk_metrics_redis_conn(conn->state, state);
    }

    conn->state = state;
}


static void
ngx_http_supportdesk_redis_close(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_int_t rc, ngx_uint_t backoff)
{
    ngx_queue_t                        *q;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_http_supportdesk_redis_pool_t  *pool;

    pool = conn->pool;
    conn->generation++;

    ngx_http_supportdesk_redis_release(conn);

    if (pool->metered) {
        ngx_http_supportdesk_metrics_redis_error(
            conn->state != NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED
            ? NGX_HTTP_SUPPORTDESK_METRICS_ERR_CONNECT
            : rc == NGX_HTTP_GATEWAY_TIME_OUT
              ? NGX_HTTP_SUPPORTDESK_METRICS_ERR_TIMEOUT
              : NGX_HTTP_SUPPORTDESK_METRICS_ERR_CLOSED);
    }

    conn->out_len = 0;
    conn->out_sent = 0;
    ngx_http_supportdesk_redis_state(conn,
                                     NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED);
    conn->recovering = 0;
    conn->awaiting_address = 0;
    conn->stale = 0;

    /* until it fires, requests are answered 503 at once */
    if (backoff && !ngx_exiting && !pool->retired) {
        ngx_add_timer(&conn->retry, conn->backoff);
        conn->backoff = ngx_min(conn->backoff * 2,
                                NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MAX);
    }

    /*
     * Every op goes to the pool's failing queue, in the order it was sent
     * (the resends came first), and is answered from there in slices.
     * Its timer goes: it has its answer, and the connection is another.
     */
    q = ngx_queue_last(&pool->failing);

    ngx_queue_add(&pool->failing, &conn->noscript);
    ngx_queue_add(&pool->failing, &conn->inflight);
    ngx_queue_add(&pool->failing, &conn->held);
    ngx_queue_init(&conn->noscript);
    ngx_queue_init(&conn->inflight);
    ngx_queue_init(&conn->held);

    for (q = ngx_queue_next(q);
         q != ngx_queue_sentinel(&pool->failing);
         q = ngx_queue_next(q))
    {
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);
        op->rc = rc;

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "supportdesk: redis %V closed, %ui requests to answer "
                   "%i", conn->peer.name, conn->npending, rc);

    conn->ninflight = 0;
    conn->npending = 0;

    if (!ngx_queue_empty(&pool->failing) && !pool->fail_event.posted) {
        /* the first slice in this turn, once the caller is done */
        ngx_post_event(&pool->fail_event, &ngx_posted_events);
    }

    /* a server lost may have moved: its name may say where to */
    if (pool->conf->host.len && backoff && !ngx_exiting) {
        ngx_http_supportdesk_redis_resolve(pool,
                                   NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_SOON);
    }

    /* a master lost may be failing over: the sentinels know where to */
    if (pool->sentinel != NULL && !pool->plain && !ngx_exiting) {
        ngx_http_supportdesk_redis_sentinel_query(pool->sentinel,
                                       NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
    }

    /* a master lost may be failing over: its replica is found in the map */
    if (pool->cluster != NULL && !ngx_exiting) {
        ngx_http_supportdesk_redis_cluster_refresh(pool->cluster,
                                       NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
    }
}


static void
ngx_http_supportdesk_redis_fail_handler(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_pool_t  *pool = ev->data;

    ngx_uint_t                        n, slice;
    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *op;

    /*
     * A worker that is leaving does not wait for posted events: it answers
     * them all now rather than leave some unanswered.
     */
    slice = ngx_exiting ? NGX_MAX_UINT32_VALUE
                        : NGX_HTTP_SUPPORTDESK_REDIS_FAIL_SLICE;

    for (n = 0; n < slice && !ngx_queue_empty(&pool->failing); n++) {
        q = ngx_queue_head(&pool->failing);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

        ngx_http_supportdesk_redis_answer(op, op->rc, NULL);
    }

    if (ngx_queue_empty(&pool->failing)) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "supportdesk: redis %V: more failed requests next turn",
                   &pool->conf->addr->name);

    /* a close meanwhile may have posted it for this turn: the next one */
    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    ngx_post_event(ev, &ngx_posted_next_events);
}


/* logged at most once a second, with the count of the others */

static void
ngx_http_supportdesk_redis_refused(ngx_http_supportdesk_redis_pool_t *pool,
    ngx_http_supportdesk_redis_conn_t *conn, ngx_log_t *log)
{
    ngx_http_supportdesk_redis_conf_t  *rcf;

    ngx_http_supportdesk_metrics_redis_error(
                                 NGX_HTTP_SUPPORTDESK_METRICS_ERR_ADMISSION);
    pool->refused++;

    if (pool->refusal_logged
        && ngx_current_msec - pool->refusal_time
           < NGX_HTTP_SUPPORTDESK_REDIS_REFUSAL_LOG)
    {
        return;
    }

    rcf = pool->conf;

    if (conn == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "supportdesk: redis %V unavailable: no connection is "
                      "up, answering 503 (%ui refusals since the last such "
                      "message, this one included)",
                      &rcf->addr->name, pool->refused);

    } else if (conn->npending >= rcf->max_pending) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "supportdesk: redis %V busy: %ui commands due on the "
                      "least loaded connection, supportdesk_redis_max_pending "
                      "is %ui; answering 503 (%ui refusals since the last "
                      "such message, this one included)",
                      &rcf->addr->name, conn->npending, rcf->max_pending,
                      pool->refused);

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "supportdesk: redis %V busy: %uz bytes not sent yet on "
                      "the least loaded connection, "
                      "supportdesk_redis_max_output is %uz; answering 503 "
                      "(%ui refusals since the last such message, this one "
                      "included)",
                      &rcf->addr->name, conn->out_len - conn->out_sent,
                      rcf->max_output, pool->refused);
    }

    pool->refused = 0;
    pool->refusal_time = ngx_current_msec;
    pool->refusal_logged = 1;
}


/* the socket and the reader; the output buffer is kept for the next */

static void
ngx_http_supportdesk_redis_release(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_pool_t  *pool;

    if (conn->peer.connection != NULL) {
        pool = conn->peer.connection->pool;

        ngx_http_supportdesk_tls_close(conn->peer.connection);
        ngx_close_connection(conn->peer.connection);
        conn->peer.connection = NULL;

        if (pool != NULL) {
            ngx_destroy_pool(pool);
        }
    }

    if (conn->reader != NULL) {
        redisReaderFree(conn->reader);
        conn->reader = NULL;
    }
}


static void
ngx_http_supportdesk_redis_schedule_flush(
    ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_connection_t  *c;

    if (conn->state != NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED) {
        return;
    }

    /*
     * Posting the write event batches every command queued in this turn of
     * the event loop into one send().
     */
    c = conn->peer.connection;

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static void
ngx_http_supportdesk_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t                   *c;
    ngx_http_supportdesk_redis_conn_t  *conn;

    c = wev->data;
    conn = c->data;

    if (ngx_http_supportdesk_redis_flush(conn) == NGX_ERROR) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
    }
}


static ngx_int_t
ngx_http_supportdesk_redis_flush(ngx_http_supportdesk_redis_conn_t *conn)
{
    size_t             taken;
    ssize_t            n;
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = conn->peer.connection;

    /*
     * Over TLS what ngx_ssl took is "sent": it encrypts from its own copy,
     * so the buffer may move (grown, compacted) and NOSCRIPT may cut what
     * is left without breaking a record OpenSSL has to retry as it was.
     */
    if (conn->pool->conf->tls.enable) {
        rc = ngx_http_supportdesk_tls_send(c,
                                           conn->out_sent < conn->out_len
                                           ? conn->out + conn->out_sent
                                           : NULL,
                                           conn->out_len - conn->out_sent,
                                           &taken);

        conn->out_sent += taken;
        conn->stream_sent += taken;

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                          "supportdesk: redis %V send failed",
                          conn->peer.name);
            return NGX_ERROR;
        }

        if (rc == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            /* stopped with the socket writable: no edge will come */
            if (c->write->ready && !c->write->posted) {
                ngx_post_event(c->write, &ngx_posted_events);
            }

            return NGX_AGAIN;
        }
    }

    while (conn->out_sent < conn->out_len) {
        n = c->send(c, conn->out + conn->out_sent,
                    conn->out_len - conn->out_sent);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        if (n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                          "supportdesk: redis %V send failed",
                          conn->peer.name);
            return NGX_ERROR;
        }

        conn->out_sent += n;
        conn->stream_sent += n;
    }

    conn->out_len = 0;
    conn->out_sent = 0;

    if (conn->out_size > NGX_HTTP_SUPPORTDESK_REDIS_OUT_KEEP) {
        ngx_free(conn->out);
        conn->out = NULL;
        conn->out_size = 0;
    }

    return NGX_OK;
}


static void
ngx_http_supportdesk_redis_read_handler(ngx_event_t *rev)
{
    ssize_t                             n;
    ngx_connection_t                   *c;
    ngx_http_supportdesk_redis_conn_t  *conn;

    c = rev->data;
    conn = c->data;

    if (conn->state == NGX_HTTP_SUPPORTDESK_REDIS_CONNECTING) {
        /* an error or hang-up while connecting shows as readable */
        if (ngx_http_supportdesk_redis_test_connect(c) != NGX_OK) {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
        }
        return;
    }

    /* edge-triggered: read until the socket is drained */
    do {
        n = c->recv(c, ngx_http_supportdesk_redis_buf,
                    sizeof(ngx_http_supportdesk_redis_buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                          "supportdesk: redis %V closed the connection "
                          "with %ui replies due",
                          conn->peer.name, conn->ninflight);
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return;
        }

        if (redisReaderFeed(conn->reader,
                            (const char *) ngx_http_supportdesk_redis_buf, n)
            != REDIS_OK)
        {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return;
        }

        if (ngx_http_supportdesk_redis_process(conn) != NGX_OK) {
            return;
        }

        if (ngx_http_supportdesk_redis_unparsed(conn) != NGX_OK) {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return;
        }

    } while (rev->ready);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
    }
}


/*
 * What the reader holds unparsed is the reply still coming in: hiredis
 * would buffer all of it, however long a bulk string it announces or a line
 * it never ends.
 */

static ngx_int_t
ngx_http_supportdesk_redis_unparsed(ngx_http_supportdesk_redis_conn_t *conn)
{
    u_char                             *p, *cr, *end;
    size_t                              unparsed;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    rcf = conn->pool->conf;
    unparsed = conn->reader->len - conn->reader->pos;

    if (unparsed > rcf->max_reply_size - conn->arena.bytes) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "supportdesk: redis %V sent a reply of more than %uz "
                      "bytes (supportdesk_redis_max_reply_size), dropping "
                      "the connection with %ui replies due",
                      conn->peer.name, rcf->max_reply_size, conn->ninflight);
        return NGX_ERROR;
    }

    if (unparsed <= NGX_HTTP_SUPPORTDESK_REDIS_LINE_MAX) {
        return NGX_OK;
    }

    /* a bulk string's body may be long, not the line in front of it */
    p = (u_char *) conn->reader->buf + conn->reader->pos;
    end = p + NGX_HTTP_SUPPORTDESK_REDIS_LINE_MAX;

    for ( ;; ) {
        cr = ngx_strlchr(p, end, CR);

        if (cr == NULL || cr + 1 == end) {
            break;
        }

        if (cr[1] == LF) {
            return NGX_OK;
        }

        p = cr + 1;
    }

    ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                  "supportdesk: redis %V sent a reply line of more than %d "
                  "bytes, dropping the connection with %ui replies due",
                  conn->peer.name, NGX_HTTP_SUPPORTDESK_REDIS_LINE_MAX,
                  conn->ninflight);

    return NGX_ERROR;
}


/* NGX_OK while the connection lives on, NGX_DONE once it was closed */
static ngx_int_t
ngx_http_supportdesk_redis_process(ngx_http_supportdesk_redis_conn_t *conn)
{
    void                             *reply;
    ngx_uint_t                        generation;
    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *op;

    generation = conn->generation;

    for ( ;; ) {
        if (redisReaderGetReply(conn->reader, &reply) != REDIS_OK) {
            if (conn->arena.refused == NGX_HTTP_SUPPORTDESK_REPLY_ELEMENTS) {
                ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                              "supportdesk: redis %V sent a reply of more "
                              "than %ui elements "
                              "(supportdesk_redis_max_reply_elements), "
                              "dropping the connection with %ui replies due",
                              conn->peer.name,
                              conn->pool->conf->max_reply_elements,
                              conn->ninflight);

            } else if (conn->arena.refused) {
                ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                              "supportdesk: redis %V sent a reply of more "
                              "than %uz bytes "
                              "(supportdesk_redis_max_reply_size), "
                              "dropping the connection with %ui replies due",
                              conn->peer.name,
                              conn->pool->conf->max_reply_size,
                              conn->ninflight);

            } else {
                ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                              "supportdesk: redis %V protocol error: %s",
                              conn->peer.name, conn->reader->errstr);
            }

            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return NGX_DONE;
        }

        if (reply == NULL) {
            return NGX_OK;
        }

        if (ngx_queue_empty(&conn->inflight) && conn->pool->subscriber) {
            ngx_http_supportdesk_redis_sentinel_message(conn->pool->sentinel,
                                                        reply);
            ngx_http_supportdesk_reply_done(&conn->arena);
            continue;
        }

        if (ngx_queue_empty(&conn->inflight)) {
            ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                          "supportdesk: redis %V sent a reply nobody "
                          "asked for", conn->peer.name);
            ngx_http_supportdesk_reply_done(&conn->arena);
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 1);
            return NGX_DONE;
        }

        q = ngx_queue_head(&conn->inflight);
        ngx_queue_remove(q);
        conn->ninflight--;
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

        /* a replica now: the name may point at the new master already */
        if (conn->pool->conf->host.len
            && ((redisReply *) reply)->type == REDIS_REPLY_ERROR
            && ((redisReply *) reply)->len >= 8
            && ngx_strncmp(((redisReply *) reply)->str, "READONLY", 8) == 0)
        {
            ngx_http_supportdesk_redis_resolve(conn->pool,
                                   NGX_HTTP_SUPPORTDESK_REDIS_RESOLVE_SOON);
        }

        ngx_http_supportdesk_redis_deliver(conn, op, reply);
        ngx_http_supportdesk_reply_done(&conn->arena);

        if (conn->generation != generation) {
            return NGX_DONE;
        }

        if (conn->stale && conn->npending == 0) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, conn->pool->log, 0,
                           "supportdesk: redis %V drained, closing",
                           conn->peer.name);
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 0);
            return NGX_DONE;
        }

        if (conn->recovering && conn->ninflight == 0) {
            ngx_http_supportdesk_redis_resume(conn);

            if (conn->generation != generation) {
                return NGX_DONE;
            }
        }
    }
}


/* the reply is the arena's: gone once this returns */

static void
ngx_http_supportdesk_redis_deliver(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply)
{
    if (op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_ASKING) {
        /* an error here comes again, as the answer to the command itself */
        ngx_http_supportdesk_redis_op_free(conn->pool, op);
        return;
    }

    if (op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_WAIT) {
        conn->npending--;
        ngx_http_supportdesk_redis_answer(op, NGX_OK, reply);
        return;
    }

    if (op->kind != NGX_HTTP_SUPPORTDESK_REDIS_OP_REQUEST) {
        ngx_http_supportdesk_redis_handshake_reply(conn, op, reply);
        return;
    }

    /*
     * Redis serves requests here: the next failure starts a fresh backoff.
     * Not on the handshake's replies: a connection that is accepted but
     * then refused (an ACL) or stalled (a timeout) keeps backing off.
     */
    conn->backoff = NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MIN;

    if (reply->type == REDIS_REPLY_ERROR && conn->pool->metered) {
        ngx_http_supportdesk_redis_count_error(conn, reply);
    }

    if (op->script != NGX_HTTP_SUPPORTDESK_NO_SCRIPT
        && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        ngx_http_supportdesk_redis_wait_detach(op);
        ngx_http_supportdesk_redis_noscript(conn, op);
        return;
    }

    conn->npending--;

    if (conn->pool->cluster != NULL
        && ngx_http_supportdesk_redis_cluster_reply(conn, op, reply))
    {
        return;
    }

    if (op->waiter != NULL) {
        if (reply->type == REDIS_REPLY_ERROR) {
            /* refused: nothing was written, nothing to wait for */
            ngx_http_supportdesk_redis_wait_detach(op);

        } else {
            /* its WAIT, right behind, has its own timer */
            if (op->timer.timer_set) {
                ngx_del_timer(&op->timer);
            }

            /* kept until the WAIT is answered: out of the arena */
            op->held = ngx_http_supportdesk_reply_copy(reply, op->log);

            if (op->held != NULL) {
                return;
            }

            /* applied, or not: unknown, as after a lost connection */
            ngx_http_supportdesk_redis_answer(op,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              NULL);
            return;
        }
    }

    ngx_http_supportdesk_redis_answer(op, NGX_OK, reply);
}


/*
 * An error reply, counted by its code; a redirection the cluster follows
 * is counted as one (ngx_http_supportdesk_redis_cluster_reply()), one it
 * cannot follow (malformed, or from a node given as supportdesk_redis) is
 * an error.
 */

static void
ngx_http_supportdesk_redis_count_error(ngx_http_supportdesk_redis_conn_t *conn,
    redisReply *reply)
{
    ngx_str_t                               addr;
    ngx_uint_t                              slot;
    ngx_http_supportdesk_cluster_verdict_e  verdict;

    if (conn->pool->cluster != NULL) {
        verdict = ngx_http_supportdesk_cluster_verdict(reply, &slot, &addr);

        if (verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED
            || verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_ASK)
        {
            return;
        }
    }

    ngx_http_supportdesk_metrics_redis_reply_error(reply->str, reply->len);
}


/* WAIT, pipelined behind the write op, on the same connection */

static ngx_int_t
ngx_http_supportdesk_redis_wait_add(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op)
{
    ngx_http_supportdesk_redis_op_t    *wait;
    ngx_http_supportdesk_redis_pool_t  *pool;

    pool = conn->pool;

    wait = ngx_http_supportdesk_redis_op_alloc(pool);
    if (wait == NULL) {
        return NGX_ERROR;
    }

    wait->start = conn->stream_len;

    if (ngx_http_supportdesk_redis_encode(conn,
                                          NGX_HTTP_SUPPORTDESK_NO_SCRIPT, 0, 3,
                                          pool->wait_argv, pool->wait_argvlen)
        != NGX_OK)
    {
        ngx_http_supportdesk_redis_op_free(pool, wait);
        return NGX_ERROR;
    }

    wait->conn = conn;
    wait->kind = NGX_HTTP_SUPPORTDESK_REDIS_OP_WAIT;
    wait->what = "WAIT";
    wait->handler = ngx_http_supportdesk_redis_wait_done;
    wait->data = op;
    wait->log = op->log;
    op->waiter = wait;

    ngx_queue_insert_tail(&conn->inflight, &wait->queue);
    conn->ninflight++;
    conn->npending++;

    ngx_add_timer(&wait->timer, pool->conf->timeout);

    return NGX_OK;
}


/* the write no longer waits for this WAIT (it is sent again, or refused) */

static void
ngx_http_supportdesk_redis_wait_detach(ngx_http_supportdesk_redis_op_t *op)
{
    if (op->waiter != NULL) {
        op->waiter->data = NULL;
        op->waiter = NULL;
    }
}


static void
ngx_http_supportdesk_redis_wait_done(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_redis_op_t  *op = data;

    redisReply                         *held;
    ngx_http_supportdesk_redis_conf_t  *rcf;

    if (op == NULL) {
        return;
    }

    op->waiter = NULL;
    held = op->held;
    op->held = NULL;
    rcf = op->pool->conf;

    if (held == NULL) {
        /* the connection failed before the write's own reply */
        ngx_http_supportdesk_redis_answer(op, rc ? rc
                                              : NGX_HTTP_SERVICE_UNAVAILABLE,
                                          NULL);
        return;
    }

    if (rc == NGX_OK && reply != NULL && reply->type == REDIS_REPLY_INTEGER
        && reply->integer >= (long long) rcf->wait_replicas)
    {
        ngx_http_supportdesk_redis_answer(op, NGX_OK, held);

    } else {
        if (rc == NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "supportdesk: redis %V: a write reached %s%L of "
                          "the %ui replicas supportdesk_redis_wait asks for "
                          "within %M ms; answering 503 (it may have been "
                          "applied on the master)", &rcf->addr->name,
                          reply != NULL && reply->type == REDIS_REPLY_INTEGER
                          ? "" : "(an error) ",
                          reply != NULL && reply->type == REDIS_REPLY_INTEGER
                          ? reply->integer : 0LL,
                          rcf->wait_replicas, rcf->wait_timeout);
        }

        ngx_http_supportdesk_redis_answer(op, rc ? rc
                                              : NGX_HTTP_SERVICE_UNAVAILABLE,
                                          NULL);
    }

    freeReplyObject(held);
}


/*
 * The script cache was flushed behind our back (SCRIPT FLUSH, a failover to
 * a fresh replica).  Resending the op at once, at the tail of the pipeline,
 * would let the commands sent after it run first.  So nothing more is
 * written until every reply due is in: then the scripts are loaded again,
 * the ops that got NOSCRIPT meanwhile are resent in their order, and the
 * ops held back are sent after them.  Every EVALSHA sent after the first
 * NOSCRIPT fails too, as no other client loads this connection's scripts.
 */

static void
ngx_http_supportdesk_redis_noscript(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op)
{
    off_t                             first;
    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *last;

    if (!conn->recovering) {
        conn->recovering = 1;

        /* commands not handed to the socket yet are held back too */
        first = conn->stream_len;

        while (!ngx_queue_empty(&conn->inflight)) {
            q = ngx_queue_last(&conn->inflight);
            last = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

            if (last->kind != NGX_HTTP_SUPPORTDESK_REDIS_OP_REQUEST
                || last->start < conn->stream_sent)
            {
                break;
            }

            ngx_queue_remove(q);
            ngx_queue_insert_head(&conn->held, q);
            conn->ninflight--;
            first = last->start;
        }

        conn->out_len -= (size_t) (conn->stream_len - first);
        conn->stream_len = first;

        ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                      "supportdesk: redis %V lost its scripts (NOSCRIPT): "
                      "%ui replies due before the commands are resent in "
                      "order", conn->peer.name, conn->ninflight);
    }

    if (op->handler == NULL) {
        /* nobody waits for it: not sent again */
        conn->npending--;
        ngx_http_supportdesk_redis_op_free(conn->pool, op);
        return;
    }

    ngx_queue_insert_tail(&conn->noscript, &op->queue);
}


/* every reply due is in: the scripts, the resends, the held ops, in order */

static void
ngx_http_supportdesk_redis_resume(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_uint_t                        i, n[2];
    ngx_queue_t                      *queue[2], *q;
    ngx_http_supportdesk_redis_op_t  *op;

    conn->recovering = 0;

    if (ngx_http_supportdesk_redis_load_scripts(conn) != NGX_OK) {
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    queue[0] = &conn->noscript;
    queue[1] = &conn->held;

    for (i = 0; i < 2; i++) {
        n[i] = 0;

        while (!ngx_queue_empty(queue[i])) {
            q = ngx_queue_head(queue[i]);
            ngx_queue_remove(q);
            op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

            if (op->handler == NULL) {
                conn->npending--;
                ngx_http_supportdesk_redis_op_free(conn->pool, op);
                continue;
            }

            if (ngx_http_supportdesk_redis_write_op(conn, op) != NGX_OK) {
                /* closing fails it with the others */
                ngx_queue_insert_tail(&conn->inflight, &op->queue);
                ngx_http_supportdesk_redis_close(conn,
                                                 NGX_HTTP_SERVICE_UNAVAILABLE,
                                                 1);
                return;
            }

            n[i]++;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, conn->pool->log, 0,
                   "supportdesk: redis %V: scripts loaded, %ui commands "
                   "resent, %ui held ones released", conn->peer.name, n[0],
                   n[1]);

    ngx_http_supportdesk_redis_schedule_flush(conn);
}


static void
ngx_http_supportdesk_redis_handshake_reply(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply)
{
    ngx_str_t                           user;
    ngx_uint_t                          noperm;
    ngx_http_supportdesk_redis_pool_t  *pool;

    pool = conn->pool;

    if (op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_ROLE
        && !(reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
             && reply->element[0]->type == REDIS_REPLY_STRING
             && reply->element[0]->len == 6
             && ngx_strncmp(reply->element[0]->str, "master", 6) == 0))
    {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "supportdesk: redis %V, which the sentinels named "
                      "master of \"%V\", is not a master (ROLE: %s), asking "
                      "them again", conn->peer.name,
                      &pool->conf->sentinel_master,
                      reply->type == REDIS_REPLY_ARRAY && reply->elements
                      && reply->element[0]->type == REDIS_REPLY_STRING
                      ? reply->element[0]->str : "not an array");
        ngx_http_supportdesk_redis_op_free(pool, op);
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    if (op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_SUBSCRIBE
        && reply->type != REDIS_REPLY_ARRAY)
    {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "supportdesk: sentinel %V refused SUBSCRIBE: %s",
                      conn->peer.name,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
        ngx_http_supportdesk_redis_op_free(pool, op);
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    noperm = (reply->type == REDIS_REPLY_ERROR
              && reply->len >= 6
              && ngx_strncmp(reply->str, "NOPERM", 6) == 0);

    if (reply->type == REDIS_REPLY_ERROR
        && (noperm || op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_HANDSHAKE))
    {
        if (!noperm) {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                          "supportdesk: redis %V refused %s: %s",
                          conn->peer.name, op->what, reply->str);

        } else if (!pool->noperm) {
            /* every reconnect meets it again: said once, until it is fixed */
            pool->noperm = 1;

            if (pool->conf->user.len) {
                user = pool->conf->user;

            } else {
                ngx_str_set(&user, "default");
            }

            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                          "supportdesk: redis %V: configuration error: the "
                          "ACL user \"%V\" may not run %s (%s); the module "
                          "needs SCRIPT LOAD and EVALSHA, requests are "
                          "answered 503 until the ACL allows them",
                          conn->peer.name, &user, op->what, reply->str);

        } else {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                           "supportdesk: redis %V still refuses %s: %s",
                           conn->peer.name, op->what, reply->str);
        }

        ngx_http_supportdesk_redis_op_free(pool, op);
        ngx_http_supportdesk_redis_close(conn, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         1);
        return;
    }

    ngx_http_supportdesk_redis_op_free(pool, op);

    if (--conn->nhandshake == 0 && pool->noperm) {
        pool->noperm = 0;
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "supportdesk: redis %V: the ACL allows the scripts "
                      "again", conn->peer.name);
    }
}


/* the op is recycled first: its handler may queue again */

static void
ngx_http_supportdesk_redis_answer(ngx_http_supportdesk_redis_op_t *op,
    ngx_int_t rc, redisReply *reply)
{
    void                                   *data;
    ngx_http_supportdesk_redis_handler_pt   handler;

    /* answered before its WAIT (a failure): the WAIT is not its any more */
    ngx_http_supportdesk_redis_wait_detach(op);

    handler = op->handler;
    data = op->data;
    ngx_http_supportdesk_metrics_redis_command(op->started);
    ngx_http_supportdesk_redis_op_free(op->pool, op);

    if (handler != NULL) {
        handler(data, rc, reply);
    }
}


static void
ngx_http_supportdesk_redis_op_timeout(ngx_event_t *ev)
{
    ngx_uint_t                          connecting;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_http_supportdesk_redis_conn_t  *conn;

    op = ev->data;
    conn = op->conn;

    if (op->retrying) {
        /*
         * It waited for the cluster, not for a connection: only it fails,
         * and with 503, as the cluster answered, refusing the work
         */
        ngx_log_error(NGX_LOG_ERR, op->log, NGX_ETIMEDOUT,
                      "supportdesk: redis cluster: a command redirected or "
                      "refused for now could not be served within %M ms",
                      op->pool->conf->timeout);
        ngx_http_supportdesk_metrics_redis_error(
                                   NGX_HTTP_SUPPORTDESK_METRICS_ERR_TIMEOUT);
        ngx_queue_remove(&op->queue);
        op->retrying = 0;
        ngx_http_supportdesk_redis_answer(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          NULL);
        return;
    }

    connecting = (conn->state == NGX_HTTP_SUPPORTDESK_REDIS_CONNECTING);

    ngx_log_error(NGX_LOG_ERR, op->log, NGX_ETIMEDOUT,
                  connecting
                  ? "supportdesk: redis %V: no connection within %M ms, "
                    "dropping the attempt with %ui requests due, "
                    "reconnecting in %M ms"
                  : "supportdesk: redis %V did not answer within %M ms, "
                    "dropping the connection with %ui requests due, "
                    "reconnecting in %M ms",
                  conn->peer.name, conn->pool->conf->timeout,
                  conn->npending, conn->backoff);

    /*
     * Still connecting (or in its TLS handshake): Redis was never reached,
     * 503 as when the connect timeout fires first.  Otherwise replies come
     * in order: everything queued behind a stalled reply is stalled too.
     * Either way the Redis is likely busy or stopped: the reconnect backs
     * off, as after a connection lost.
     */
    ngx_http_supportdesk_redis_close(conn,
                                     connecting ? NGX_HTTP_SERVICE_UNAVAILABLE
                                                : NGX_HTTP_GATEWAY_TIME_OUT,
                                     1);
}


/*
 * Redis Cluster.  A pool per master, created as the map names it; the map
 * (slot -> master) comes from CLUSTER SLOTS, asked of any master that is
 * up, and is patched by every MOVED.  A command is sent to its slot's
 * master; an answer that redirects it (MOVED, ASK) or refuses it for now
 * (TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, READONLY) is not the
 * request's: the command goes again, within the request's timeout.
 */

static ngx_http_supportdesk_redis_cluster_t *
ngx_http_supportdesk_redis_cluster_create(
    ngx_http_supportdesk_redis_conf_t *rcf, ngx_uint_t index, ngx_log_t *log)
{
    ngx_uint_t                             i;
    ngx_addr_t                            *seed;
    ngx_http_supportdesk_redis_cluster_t  *cluster;

    cluster = ngx_calloc(sizeof(ngx_http_supportdesk_redis_cluster_t), log);
    if (cluster == NULL) {
        return NULL;
    }

    cluster->nodes = ngx_calloc(NGX_HTTP_SUPPORTDESK_REDIS_NODES_MAX
                                * sizeof(ngx_http_supportdesk_redis_node_t *),
                                log);
    cluster->mem = ngx_create_pool(4096, log);

    if (cluster->nodes == NULL || cluster->mem == NULL) {
        ngx_http_supportdesk_redis_cluster_destroy(cluster);
        return NULL;
    }

    cluster->conf = rcf;
    cluster->index = index;
    cluster->log = log;
    ngx_queue_init(&cluster->retry);

    cluster->refresh_timer.handler =
        ngx_http_supportdesk_redis_cluster_refresh_handler;
    cluster->refresh_timer.data = cluster;
    cluster->refresh_timer.log = log;
    cluster->refresh_timer.cancelable = 1;

    cluster->retry_timer.handler =
        ngx_http_supportdesk_redis_cluster_retry_handler;
    cluster->retry_timer.data = cluster;
    cluster->retry_timer.log = log;

    seed = rcf->seeds->elts;

    for (i = 0; i < rcf->seeds->nelts; i++) {
        if (ngx_http_supportdesk_redis_node(cluster, &seed[i].name, &seed[i])
            == NULL)
        {
            ngx_http_supportdesk_redis_cluster_destroy(cluster);
            return NULL;
        }
    }

    /* the map, as soon as a seed is up (until then: MOVED says it) */
    ngx_http_supportdesk_redis_cluster_refresh(cluster, 1);

    return cluster;
}


static void
ngx_http_supportdesk_redis_cluster_destroy(
    ngx_http_supportdesk_redis_cluster_t *cluster)
{
    ngx_uint_t  i;

    if (cluster->refresh_timer.timer_set) {
        ngx_del_timer(&cluster->refresh_timer);
    }

    if (cluster->retry_timer.timer_set) {
        ngx_del_timer(&cluster->retry_timer);
    }

    /* the requests behind these ops are gone with the worker */
    ngx_http_supportdesk_redis_free_queue(&cluster->retry);

    if (cluster->nodes != NULL) {
        for (i = 0; i < cluster->nnodes; i++) {
            if (cluster->nodes[i]->pool != NULL) {
                ngx_http_supportdesk_redis_pool_destroy(
                                                     cluster->nodes[i]->pool);
            }

            ngx_free(cluster->nodes[i]);
        }

        ngx_free(cluster->nodes);
    }

    if (cluster->mem != NULL) {
        ngx_destroy_pool(cluster->mem);
    }

    ngx_free(cluster);
}


/*
 * The node of "host:port", made (with its pool) when the cluster names one
 * not seen before; addr given: a seed, already parsed.  NULL: not an
 * address, or too many nodes.
 */

static ngx_http_supportdesk_redis_node_t *
ngx_http_supportdesk_redis_node(ngx_http_supportdesk_redis_cluster_t *cluster,
    ngx_str_t *key, ngx_addr_t *addr)
{
    ngx_uint_t                          i;
    ngx_addr_t                          parsed;
    ngx_http_supportdesk_redis_node_t  *node;

    for (i = 0; i < cluster->nnodes; i++) {
        node = cluster->nodes[i];

        if (node->key.len == key->len
            && ngx_strncmp(node->key.data, key->data, key->len) == 0)
        {
            goto found;
        }
    }

    if (addr == NULL) {
        /*
         * IP addresses only: the worker never resolves a name; and a port,
         * which ngx_parse_addr_port() does not insist on
         */
        if (ngx_parse_addr_port(cluster->mem, &parsed, key->data, key->len)
                != NGX_OK
            || ngx_inet_get_port(parsed.sockaddr) == 0)
        {
            ngx_log_error(NGX_LOG_ERR, cluster->log, 0,
                          "supportdesk: redis cluster named the node \"%V\", "
                          "which is not an IP address and port", key);
            return NULL;
        }

        addr = &parsed;

        /* a seed by another name ("localhost:7000" as "127.0.0.1:7000") */
        for (i = 0; i < cluster->nnodes; i++) {
            node = cluster->nodes[i];

            if (ngx_cmp_sockaddr(node->addr.sockaddr, node->addr.socklen,
                                 addr->sockaddr, addr->socklen, 1)
                == NGX_OK)
            {
                goto found;
            }
        }
    }

    if (cluster->nnodes == NGX_HTTP_SUPPORTDESK_REDIS_NODES_MAX) {
        ngx_log_error(NGX_LOG_ERR, cluster->log, 0,
                      "supportdesk: redis cluster names more than %d "
                      "masters, \"%V\" is not used",
                      NGX_HTTP_SUPPORTDESK_REDIS_NODES_MAX, key);
        return NULL;
    }

    node = ngx_calloc(sizeof(ngx_http_supportdesk_redis_node_t),
                      cluster->log);
    if (node == NULL) {
        return NULL;
    }

    node->key.data = ngx_pstrdup(cluster->mem, key);
    node->addr.sockaddr = ngx_palloc(cluster->mem, addr->socklen);
    node->addr.name.data = ngx_pstrdup(cluster->mem, key);

    if (node->key.data == NULL || node->addr.sockaddr == NULL
        || node->addr.name.data == NULL)
    {
        ngx_free(node);
        return NULL;
    }

    node->key.len = key->len;
    ngx_memcpy(node->addr.sockaddr, addr->sockaddr, addr->socklen);
    node->addr.socklen = addr->socklen;
    node->addr.name.len = key->len;

    /* every master runs with the settings the cluster was given */
    node->conf = *cluster->conf;
    node->conf.addr = &node->addr;
    node->conf.seeds = NULL;
    node->conf.pool = NULL;
    node->conf.cluster = NULL;

    node->pool = ngx_http_supportdesk_redis_pool_create(&node->conf,
                                                        cluster->index,
                                                        cluster->log,
                                                        cluster, NULL, 0);
    if (node->pool == NULL) {
        ngx_free(node);
        return NULL;
    }

    node->conf.pool = node->pool;
    node->index = cluster->nnodes;
    cluster->nodes[cluster->nnodes++] = node;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cluster->log, 0,
                   "supportdesk: redis cluster node %V added", key);

    return node;

found:

    if (node->pool->retired) {
        /* named again: it serves again */
        node->pool->retired = 0;

        for (i = 0; i < node->pool->nconns; i++) {
            if (node->pool->conns[i].state
                    == NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED
                && !node->pool->conns[i].retry.timer_set)
            {
                ngx_http_supportdesk_redis_connect(&node->pool->conns[i]);
            }
        }
    }

    return node;
}


/* the master of a slot; no slot, or not known yet: a master that is up */

static ngx_http_supportdesk_redis_pool_t *
ngx_http_supportdesk_redis_cluster_pool(
    ngx_http_supportdesk_redis_cluster_t *cluster, ngx_int_t slot)
{
    ngx_uint_t                          i, j;
    ngx_http_supportdesk_redis_pool_t  *pool;

    if (slot >= 0 && cluster->slots[slot]) {
        return cluster->nodes[cluster->slots[slot] - 1]->pool;
    }

    for (i = 0; i < cluster->nnodes; i++) {
        pool = cluster->nodes[i]->pool;

        if (pool->retired) {
            continue;
        }

        for (j = 0; j < pool->nconns; j++) {
            if (pool->conns[j].state
                == NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED)
            {
                return pool;
            }
        }
    }

    return cluster->nnodes ? cluster->nodes[0]->pool : NULL;
}


/*
 * An answer to a request's command on a cluster: 1 when it is not the
 * request's (a redirection, a refusal for now) and the command is sent
 * again, 0 when the request takes it.
 */

static ngx_uint_t
ngx_http_supportdesk_redis_cluster_reply(
    ngx_http_supportdesk_redis_conn_t *conn,
    ngx_http_supportdesk_redis_op_t *op, redisReply *reply)
{
    ngx_str_t                                addr;
    ngx_msec_t                               delay;
    ngx_uint_t                               slot;
    ngx_http_supportdesk_redis_node_t       *node;
    ngx_http_supportdesk_redis_cluster_t    *cluster;
    ngx_http_supportdesk_cluster_verdict_e   verdict;

    cluster = conn->pool->cluster;
    verdict = ngx_http_supportdesk_cluster_verdict(reply, &slot, &addr);

    if (verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER) {
        return 0;
    }

    if (verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED) {
        ngx_http_supportdesk_metrics_redis_redirect(
                                        NGX_HTTP_SUPPORTDESK_METRICS_MOVED);

    } else if (verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_ASK) {
        ngx_http_supportdesk_metrics_redis_redirect(
                                          NGX_HTTP_SUPPORTDESK_METRICS_ASK);
    }

    /* sent again elsewhere, with a WAIT of its own there */
    ngx_http_supportdesk_redis_wait_detach(op);

    if (op->handler == NULL || op->argv == NULL) {
        /* nobody waits for it, and its arguments are gone */
        ngx_http_supportdesk_redis_op_free(op->pool, op);
        return 1;
    }

    /* a redirection loop ends; a refusal for now ends with the timeout */
    if ((verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED
         || verdict == NGX_HTTP_SUPPORTDESK_CLUSTER_ASK)
        && ++op->redirects > NGX_HTTP_SUPPORTDESK_REDIS_REDIRECTS_MAX)
    {
        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "supportdesk: redis cluster: a command was redirected "
                      "%d times, the last by %V: %*s",
                      NGX_HTTP_SUPPORTDESK_REDIS_REDIRECTS_MAX,
                      conn->peer.name, (size_t) reply->len, reply->str);
        ngx_http_supportdesk_redis_answer(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          NULL);
        return 1;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "supportdesk: redis cluster %V answered \"%*s\"",
                   conn->peer.name, (size_t) reply->len, reply->str);

    op->ask = NULL;
    op->moved = NULL;
    delay = 1;

    switch (verdict) {

    case NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED:
        node = ngx_http_supportdesk_redis_node(cluster, &addr, NULL);

        if (node != NULL) {
            /* sent where the MOVED said, whatever a map says meanwhile */
            op->moved = node;
            cluster->slots[slot] = (uint16_t) (node->index + 1);

            if (cluster->refreshing
                && cluster->nmoved < NGX_HTTP_SUPPORTDESK_REDIS_MOVED_KEEP)
            {
                cluster->moved_slot[cluster->nmoved] = (uint16_t) slot;
                cluster->moved_to[cluster->nmoved] = cluster->slots[slot];
                cluster->nmoved++;
            }
        }

        /* one slot moved: likely more did, the map is asked again */
        ngx_http_supportdesk_redis_cluster_refresh(cluster,
                                       NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
        break;

    case NGX_HTTP_SUPPORTDESK_CLUSTER_ASK:
        op->ask = ngx_http_supportdesk_redis_node(cluster, &addr, NULL);
        break;

    default:
        ngx_http_supportdesk_metrics_cluster_retry();

        /* 10 ms, doubling to 200, each command by its own refusals */
        delay = NGX_HTTP_SUPPORTDESK_REDIS_RETRY_MIN
                << ngx_min(op->refusals, 5);
        delay = ngx_min(delay, NGX_HTTP_SUPPORTDESK_REDIS_RETRY_MAX);
        op->refusals++;

        /* a failover or a cluster that lost quorum: the map may change */
        if (verdict != NGX_HTTP_SUPPORTDESK_CLUSTER_TRYAGAIN) {
            ngx_http_supportdesk_redis_cluster_refresh(cluster,
                                       NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
        }

        /*
         * The next try would come too late to be answered in time: this
         * refusal is the answer, now, rather than a timeout that would
         * find the command in flight and drop its connection.
         */
        if (op->timer.timer_set
            && (ngx_msec_int_t) (op->timer.timer.key - ngx_current_msec)
               < (ngx_msec_int_t) (delay
                                   + NGX_HTTP_SUPPORTDESK_REDIS_RETRY_MIN))
        {
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "supportdesk: redis cluster: a command refused for "
                          "now could not be served within %M ms (the last "
                          "answer, from %V: %*s)",
                          conn->pool->conf->timeout, conn->peer.name,
                          (size_t) reply->len, reply->str);
            ngx_http_supportdesk_redis_answer(op,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              NULL);
            return 1;
        }

        break;
    }

    op->conn = NULL;
    op->retrying = 1;
    ngx_queue_insert_tail(&cluster->retry, &op->queue);

    /* the queue goes in one piece, at the time the first one set */
    if (!cluster->retry_timer.timer_set) {
        ngx_add_timer(&cluster->retry_timer, delay);
    }

    return 1;
}


/*
 * Every command waiting is sent again, in the order the answers came, but
 * never before the command of its request in front of it: answers of two
 * nodes (a TRYAGAIN from the source of a migration, an ASK's TRYAGAIN
 * from its target) may come in either order.
 */

static void
ngx_http_supportdesk_redis_cluster_retry_handler(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_cluster_t  *cluster = ev->data;

    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *op;

    while (!ngx_queue_empty(&cluster->retry)) {
        q = ngx_queue_head(&cluster->retry);
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

        while (op->ahead != NULL && op->ahead->retrying) {
            op = op->ahead;
        }

        ngx_queue_remove(&op->queue);
        op->retrying = 0;

        ngx_http_supportdesk_redis_cluster_resend(cluster, op);
    }
}


static void
ngx_http_supportdesk_redis_cluster_resend(
    ngx_http_supportdesk_redis_cluster_t *cluster,
    ngx_http_supportdesk_redis_op_t *op)
{
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    if (op->ahead != NULL && op->ahead->conn != NULL) {
        /*
         * Right behind the command of its request in front of it, where
         * that one went: an ASK this one met is dropped when that one goes
         * by the map (the source answers ASK again, behind it), and taken
         * when that one follows an ASK.
         */
        op->ask = op->ahead->ask;
        conn = op->ahead->conn;

    } else {
        pool = (op->ask != NULL)
               ? op->ask->pool
               : (op->moved != NULL)
                 ? op->moved->pool
                 : ngx_http_supportdesk_redis_cluster_pool(cluster, op->slot);

        conn = (pool != NULL) ? ngx_http_supportdesk_redis_pick(pool) : NULL;
    }

    /* the request was admitted: its command is not refused for the bounds */
    if (conn == NULL) {
        ngx_http_supportdesk_redis_answer(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          NULL);
        return;
    }

    op->conn = conn;

    if (conn->recovering) {
        /* written once everything before it is answered or resent; an ASK
           then is met again, and followed again */
        ngx_queue_insert_tail(&conn->held, &op->queue);

    } else {
        if (op->ask != NULL
            && ngx_http_supportdesk_redis_asking_add(conn) != NGX_OK)
        {
            ngx_http_supportdesk_redis_answer(op,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              NULL);
            return;
        }

        if (ngx_http_supportdesk_redis_write_op(conn, op) != NGX_OK) {
            ngx_http_supportdesk_redis_answer(op,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              NULL);
            return;
        }
    }

    conn->npending++;

    ngx_http_supportdesk_redis_schedule_flush(conn);
}


/* ASKING, pipelined right in front of the command an ASK sent here */

static ngx_int_t
ngx_http_supportdesk_redis_asking_add(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_http_supportdesk_redis_op_t  *op;

    op = ngx_http_supportdesk_redis_op_alloc(conn->pool);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->start = conn->stream_len;

    if (ngx_http_supportdesk_redis_encode(conn,
                                          NGX_HTTP_SUPPORTDESK_NO_SCRIPT, 0,
                                          1, ngx_http_supportdesk_redis_asking,
                                          ngx_http_supportdesk_redis_asking_len)
        != NGX_OK)
    {
        ngx_http_supportdesk_redis_op_free(conn->pool, op);
        return NGX_ERROR;
    }

    op->conn = conn;
    op->kind = NGX_HTTP_SUPPORTDESK_REDIS_OP_ASKING;
    op->what = "ASKING";

    ngx_queue_insert_tail(&conn->inflight, &op->queue);
    conn->ninflight++;

    return NGX_OK;
}


/*
 * Asks for the map within that many ms (at most one CLUSTER SLOTS in
 * flight, and one per REFRESH_MIN); the refresh timer also runs every
 * REFRESH_EVERY, to find masters promoted or added.
 */

static void
ngx_http_supportdesk_redis_cluster_refresh(
    ngx_http_supportdesk_redis_cluster_t *cluster, ngx_msec_t within)
{
    ngx_http_supportdesk_redis_schedule(&cluster->refresh_timer,
                                        cluster->refreshed, within);
}


/*
 * The timer fires within that many ms, but not sooner than REFRESH_MIN
 * after last; an earlier time already set stays.
 */

static void
ngx_http_supportdesk_redis_schedule(ngx_event_t *timer, ngx_msec_t last,
    ngx_msec_t within)
{
    ngx_msec_t  since;

    since = ngx_current_msec - last;

    if (since < NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN) {
        within = ngx_max(within, NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN
                                 - since);
    }

    if (timer->timer_set) {
        if (timer->timer.key <= ngx_current_msec + within) {
            return;
        }

        ngx_del_timer(timer);
    }

    ngx_add_timer(timer, within);
}


static void
ngx_http_supportdesk_redis_cluster_refresh_handler(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_cluster_t  *cluster = ev->data;

    ngx_uint_t                          i, j, n, start;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    static const char   *argv[] = { "CLUSTER", "SLOTS" };
    static const size_t  argvlen[] = { 7, 5 };

    if (ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_EVERY);

    if (cluster->refreshing) {
        return;
    }

    /* the masters in turn, so one that lies or lags is not the only voice */
    n = cluster->nnodes;
    start = cluster->refreshes % (n ? n : 1);

    for (i = 0; i < n; i++) {
        pool = cluster->nodes[(start + i) % n]->pool;

        if (pool->retired) {
            continue;
        }

        for (j = 0; j < pool->nconns; j++) {
            conn = &pool->conns[j];

            if (conn->state != NGX_HTTP_SUPPORTDESK_REDIS_CONNECTED
                || conn->recovering)
            {
                continue;
            }

            op = ngx_http_supportdesk_redis_queue(conn, -1,
                                     NGX_HTTP_SUPPORTDESK_NO_SCRIPT, 2, argv,
                                     argvlen,
                                     ngx_http_supportdesk_redis_cluster_slots,
                                     cluster, cluster->log);
            if (op == NULL) {
                return;
            }

            cluster->refreshing = 1;
            cluster->refresh_waits = 0;
            cluster->nmoved = 0;
            cluster->refreshed = ngx_current_msec;
            cluster->refresh_node = cluster->nodes[(start + i) % n];
            cluster->refreshes++;
            ngx_http_supportdesk_metrics_cluster_refresh();

            return;
        }
    }

    /*
     * None is up: connecting, or backing off; the first to be up asks, or
     * else the next tick.
     */
    cluster->refresh_waits = 1;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
}


static void
ngx_http_supportdesk_redis_cluster_slots(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_redis_cluster_t  *cluster = data;

    u_char                                 buf[NGX_SOCKADDR_STRLEN + 8];
    ngx_int_t                              n;
    ngx_str_t                              key;
    ngx_uint_t                             i, s, covered;
    ngx_http_supportdesk_redis_node_t     *node, *answered;
    ngx_http_supportdesk_cluster_range_t   ranges[256];

    cluster->refreshing = 0;
    answered = cluster->refresh_node;

    if (rc != NGX_OK) {
        cluster->nmoved = 0;
        return;
    }

    n = ngx_http_supportdesk_cluster_parse_slots(reply, ranges, 256);

    if (n == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, cluster->log, 0,
                      "supportdesk: redis %V: CLUSTER SLOTS did not answer "
                      "a slot map%s%*s", &answered->key,
                      reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply->type == REDIS_REPLY_ERROR ? (size_t) reply->len
                                                       : (size_t) 0,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        return;
    }

    for (i = 0; i < cluster->nnodes; i++) {
        cluster->nodes[i]->in_map = 0;
    }

    ngx_memzero(cluster->slots, sizeof(cluster->slots));
    covered = 0;

    for (i = 0; i < (ngx_uint_t) n; i++) {
        if (ranges[i].host.len == 0) {
            /* "": the node that answered */
            node = answered;

        } else {
            if (ranges[i].host.len > NGX_SOCKADDR_STRLEN) {
                continue;
            }

            key.data = buf;
            key.len = ngx_sprintf(buf, "%V:%ui", &ranges[i].host,
                                  ranges[i].port)
                      - buf;

            node = ngx_http_supportdesk_redis_node(cluster, &key, NULL);
            if (node == NULL) {
                continue;
            }
        }

        node->in_map = 1;

        for (s = ranges[i].first; s <= ranges[i].last; s++) {
            cluster->slots[s] = (uint16_t) (node->index + 1);
        }

        covered += ranges[i].last - ranges[i].first + 1;
    }

    /* what a MOVED said since the map was asked for: newer than the map */
    for (i = 0; i < cluster->nmoved; i++) {
        s = cluster->moved_slot[i];

        if (cluster->slots[s] != cluster->moved_to[i]) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cluster->log, 0,
                           "supportdesk: redis cluster map from %V lags a "
                           "MOVED of slot %ui", &answered->key, s);

            cluster->slots[s] = cluster->moved_to[i];
            cluster->nodes[cluster->moved_to[i] - 1]->in_map = 1;
        }
    }

    cluster->nmoved = 0;

    /* a master no longer in the map stops reconnecting */
    for (i = 0; i < cluster->nnodes; i++) {
        cluster->nodes[i]->pool->retired = !cluster->nodes[i]->in_map;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cluster->log, 0,
                   "supportdesk: redis cluster map from %V: %i ranges, %ui "
                   "slots", &answered->key, n, covered);
}


/* Redis Sentinel (see the struct) */

static ngx_http_supportdesk_redis_sentinel_t *
ngx_http_supportdesk_redis_sentinel_create(
    ngx_http_supportdesk_redis_conf_t *rcf, ngx_uint_t index, ngx_log_t *log)
{
    ngx_uint_t                              i, n;
    ngx_addr_t                             *addr;
    ngx_http_supportdesk_redis_conf_t      *sc;
    ngx_http_supportdesk_redis_sentinel_t  *sentinel;

    n = rcf->sentinels->nelts;

    sentinel = ngx_calloc(sizeof(ngx_http_supportdesk_redis_sentinel_t), log);
    if (sentinel == NULL) {
        return NULL;
    }

    sentinel->conf = rcf;
    sentinel->index = index;
    sentinel->log = log;
    sentinel->nsentinels = n;

    sentinel->ask = ngx_calloc(n * sizeof(void *), log);
    sentinel->listen = ngx_calloc(n * sizeof(void *), log);
    sentinel->sentinel_confs = ngx_calloc(n * sizeof(*sc), log);

    if (sentinel->ask == NULL || sentinel->listen == NULL
        || sentinel->sentinel_confs == NULL)
    {
        ngx_http_supportdesk_redis_sentinel_destroy(sentinel);
        return NULL;
    }

    sentinel->query_argv[0] = "SENTINEL";
    sentinel->query_argvlen[0] = 8;
    sentinel->query_argv[1] = "get-master-addr-by-name";
    sentinel->query_argvlen[1] = 23;
    sentinel->query_argv[2] = (const char *) rcf->sentinel_master.data;
    sentinel->query_argvlen[2] = rcf->sentinel_master.len;

    sentinel->query_timer.handler = ngx_http_supportdesk_redis_sentinel_timer;
    sentinel->query_timer.data = sentinel;
    sentinel->query_timer.log = log;
    sentinel->query_timer.cancelable = 1;

    addr = rcf->sentinels->elts;

    for (i = 0; i < n; i++) {
        /* a sentinel takes the settings of the master, one connection */
        sc = &sentinel->sentinel_confs[i];
        *sc = *rcf;
        sc->addr = &addr[i];
        sc->sentinels = NULL;
        sc->connections = 1;
        sc->wait_replicas = 0;
        ngx_str_null(&sc->user);
        ngx_str_null(&sc->password);
        sc->db = 0;

        sentinel->ask[i] = ngx_http_supportdesk_redis_pool_create(sc, index,
                                      log, NULL, sentinel,
                                      NGX_HTTP_SUPPORTDESK_REDIS_PLAIN);
        if (sentinel->ask[i] == NULL) {
            ngx_http_supportdesk_redis_sentinel_destroy(sentinel);
            return NULL;
        }

        sentinel->listen[i] = ngx_http_supportdesk_redis_pool_create(sc,
                                      index, log, NULL, sentinel,
                                      NGX_HTTP_SUPPORTDESK_REDIS_PLAIN
                                      |NGX_HTTP_SUPPORTDESK_REDIS_SUBSCRIBER);
        if (sentinel->listen[i] == NULL) {
            ngx_http_supportdesk_redis_sentinel_destroy(sentinel);
            return NULL;
        }
    }

    ngx_http_supportdesk_redis_sentinel_query(sentinel, 1);

    return sentinel;
}


static void
ngx_http_supportdesk_redis_sentinel_destroy(
    ngx_http_supportdesk_redis_sentinel_t *sentinel)
{
    ngx_uint_t  i;

    if (sentinel->query_timer.timer_set) {
        ngx_del_timer(&sentinel->query_timer);
    }

    for (i = 0; i < sentinel->nsentinels; i++) {
        if (sentinel->ask != NULL && sentinel->ask[i] != NULL) {
            ngx_http_supportdesk_redis_pool_destroy(sentinel->ask[i]);
        }

        if (sentinel->listen != NULL && sentinel->listen[i] != NULL) {
            ngx_http_supportdesk_redis_pool_destroy(sentinel->listen[i]);
        }
    }

    if (sentinel->master_pool != NULL) {
        ngx_http_supportdesk_redis_pool_destroy(sentinel->master_pool);
    }

    ngx_free(sentinel->ask);
    ngx_free(sentinel->listen);
    ngx_free(sentinel->sentinel_confs);
    ngx_free(sentinel);
}


/* the sentinels are asked within that many ms, one at a time */

static void
ngx_http_supportdesk_redis_sentinel_query(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_msec_t within)
{
    ngx_http_supportdesk_redis_schedule(&sentinel->query_timer,
                                        sentinel->queried, within);
}


static void
ngx_http_supportdesk_redis_sentinel_timer(ngx_event_t *ev)
{
    ngx_http_supportdesk_redis_sentinel_t  *sentinel = ev->data;

    ngx_uint_t                          i;
    ngx_http_supportdesk_redis_op_t    *op;
    ngx_http_supportdesk_redis_pool_t  *pool;
    ngx_http_supportdesk_redis_conn_t  *conn;

    if (ngx_exiting) {
        return;
    }

    /* asked again anyway: a master may have moved while none told us */
    ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_EVERY);

    if (sentinel->querying) {
        return;
    }

    for (i = 0; i < sentinel->nsentinels; i++) {
        pool = sentinel->ask[(sentinel->next + i) % sentinel->nsentinels];
        conn = ngx_http_supportdesk_redis_pick(pool);

        if (conn == NULL) {
            continue;
        }

        op = ngx_http_supportdesk_redis_queue(conn, -1,
                                    NGX_HTTP_SUPPORTDESK_NO_SCRIPT, 3,
                                    sentinel->query_argv,
                                    sentinel->query_argvlen,
                                    ngx_http_supportdesk_redis_sentinel_answer,
                                    sentinel, sentinel->log);
        if (op == NULL) {
            continue;
        }

        sentinel->next = (sentinel->next + i) % sentinel->nsentinels;
        sentinel->querying = 1;
        sentinel->queried = ngx_current_msec;
        return;
    }

    /* none can be asked now (connecting, backing off): soon */
    ngx_del_timer(ev);
    ngx_add_timer(ev, NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
}


static void
ngx_http_supportdesk_redis_sentinel_answer(void *data, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_supportdesk_redis_sentinel_t  *sentinel = data;

    ngx_str_t  ip, port;

    sentinel->querying = 0;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, sentinel->log, 0,
                      "supportdesk: sentinel %V does not know the master "
                      "\"%V\"%s%s, asking the next one",
                      &sentinel->sentinel_confs[sentinel->next].addr->name,
                      &sentinel->conf->sentinel_master,
                      rc == NGX_OK && reply->type == REDIS_REPLY_ERROR
                      ? ": " : "",
                      rc == NGX_OK && reply->type == REDIS_REPLY_ERROR
                      ? reply->str : "");

        sentinel->next = (sentinel->next + 1) % sentinel->nsentinels;
        ngx_http_supportdesk_redis_sentinel_query(sentinel,
                                       NGX_HTTP_SUPPORTDESK_REDIS_REFRESH_MIN);
        return;
    }

    ip.data = (u_char *) reply->element[0]->str;
    ip.len = reply->element[0]->len;
    port.data = (u_char *) reply->element[1]->str;
    port.len = reply->element[1]->len;

    ngx_http_supportdesk_redis_sentinel_master(sentinel, &ip, &port,
                                               "SENTINEL get-master-addr");
}


/* ["message", "+switch-master", "<name> <old ip> <old port> <ip> <port>"] */

static void
ngx_http_supportdesk_redis_sentinel_message(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, redisReply *reply)
{
    u_char      *p, *end;
    ngx_str_t    word[5];
    ngx_uint_t   n;
    redisReply  *text;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    text = reply->element[2];
    p = (u_char *) text->str;
    end = p + text->len;

    for (n = 0; n < 5 && p < end; n++) {
        word[n].data = p;

        while (p < end && *p != ' ') {
            p++;
        }

        word[n].len = p - word[n].data;

        if (p < end) {
            p++;
        }
    }

    if (n != 5
        || word[0].len != sentinel->conf->sentinel_master.len
        || ngx_strncmp(word[0].data, sentinel->conf->sentinel_master.data,
                       word[0].len) != 0)
    {
        /* another master's switch */
        return;
    }

    ngx_http_supportdesk_redis_sentinel_master(sentinel, &word[3], &word[4],
                                               "+switch-master");
}


/* the master is at ip:port (as a sentinel says): a move reconnects */

static void
ngx_http_supportdesk_redis_sentinel_master(
    ngx_http_supportdesk_redis_sentinel_t *sentinel, ngx_str_t *ip,
    ngx_str_t *port, const char *why)
{
    u_char                              text[NGX_SOCKADDR_STRLEN];
    size_t                              len;
    ngx_int_t                           n;
    ngx_uint_t                          i;
    in_addr_t                           inaddr;
    ngx_sockaddr_t                      sa;
    struct sockaddr_in                 *sin;
    ngx_http_supportdesk_redis_conn_t  *conn;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6                *sin6;
#endif

    n = ngx_atoi(port->data, port->len);

    if (n < 1 || n > 65535 || ip->len > NGX_INET6_ADDRSTRLEN) {
        goto invalid;
    }

    ngx_memzero(&sa, sizeof(sa));
    inaddr = ngx_inet_addr(ip->data, ip->len);

    if (inaddr != INADDR_NONE) {
        sin = &sa.sockaddr_in;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((in_port_t) n);
        sin->sin_addr.s_addr = inaddr;
        len = sizeof(struct sockaddr_in);

#if (NGX_HAVE_INET6)
    } else if (ngx_inet6_addr(ip->data, ip->len,
                              sa.sockaddr_in6.sin6_addr.s6_addr)
               == NGX_OK)
    {
        sin6 = &sa.sockaddr_in6;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((in_port_t) n);
        len = sizeof(struct sockaddr_in6);
#endif

    } else {
        goto invalid;
    }

    if (sentinel->master_pool != NULL
        && ngx_cmp_sockaddr(&sa.sockaddr, len,
                            sentinel->master.sockaddr,
                            sentinel->master.socklen, 1)
           == NGX_OK)
    {
        return;
    }

    len = ngx_sock_ntop(&sa.sockaddr, len, text, sizeof(text), 1);

    ngx_log_error(NGX_LOG_NOTICE, sentinel->log, 0,
                  "supportdesk: the master \"%V\" is %*s (%s)%s%V",
                  &sentinel->conf->sentinel_master, len, text, why,
                  sentinel->master_pool != NULL ? ", was " : "",
                  sentinel->master_pool != NULL ? &sentinel->master.name
                                                : &sentinel->master.name);

    /* the address the master's pool connects to, changed in place */
    sentinel->master_sockaddr = sa;
    sentinel->master.sockaddr = &sentinel->master_sockaddr.sockaddr;
    sentinel->master.socklen = (sa.sockaddr.sa_family == AF_INET)
                               ? sizeof(struct sockaddr_in)
                               : sizeof(ngx_sockaddr_t);
#if (NGX_HAVE_INET6)
    if (sa.sockaddr.sa_family == AF_INET6) {
        sentinel->master.socklen = sizeof(struct sockaddr_in6);
    }
#endif
    ngx_memcpy(sentinel->master_text, text, len);
    sentinel->master.name.data = sentinel->master_text;
    sentinel->master.name.len = len;

    if (sentinel->master_pool == NULL) {
        sentinel->master_conf = *sentinel->conf;
        sentinel->master_conf.addr = &sentinel->master;
        sentinel->master_conf.sentinels = NULL;
        sentinel->master_conf.pool = NULL;
        sentinel->master_conf.sentinel = NULL;

        sentinel->master_pool = ngx_http_supportdesk_redis_pool_create(
                                    &sentinel->master_conf, sentinel->index,
                                    sentinel->log, NULL, sentinel, 0);
        if (sentinel->master_pool == NULL) {
            return;
        }

        sentinel->master_conf.pool = sentinel->master_pool;
        return;
    }

    /* what the old master holds fails (503); the connections go over,
       the background one too */
    for (i = 0; i <= sentinel->master_pool->nconns; i++) {
        conn = &sentinel->master_pool->conns[i];

        if (conn->retry.timer_set) {
            ngx_del_timer(&conn->retry);
        }

        if (conn->state != NGX_HTTP_SUPPORTDESK_REDIS_DISCONNECTED) {
            ngx_http_supportdesk_redis_close(conn,
                                             NGX_HTTP_SERVICE_UNAVAILABLE, 0);
        }

        conn->backoff = NGX_HTTP_SUPPORTDESK_REDIS_BACKOFF_MIN;
        ngx_http_supportdesk_redis_connect(conn);
    }

    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, sentinel->log, 0,
                  "supportdesk: a sentinel named \"%V:%V\" as the master "
                  "\"%V\", which is not an IP address and port (%s)",
                  ip, port, &sentinel->conf->sentinel_master, why);
}


/*
 * A command in RESP into the output buffer: argv alone (no script), or
 * EVALSHA of the connection's copy of script and argv, or (load) SCRIPT
 * LOAD of that copy: its source, then the connection's tag.
 */

static ngx_int_t
ngx_http_supportdesk_redis_encode(ngx_http_supportdesk_redis_conn_t *conn,
    ngx_int_t script, ngx_uint_t load, int argc, const char **argv,
    const size_t *argvlen)
{
    int         i, total, nprefix;
    u_char     *p, *out;
    size_t      need, size, pending;
    ngx_str_t   prefix[2], *source;

    nprefix = 0;
    source = NULL;

    if (script == NGX_HTTP_SUPPORTDESK_NO_SCRIPT) {
        /* a plain command */

    } else if (load) {
        ngx_str_set(&prefix[0], "SCRIPT");
        ngx_str_set(&prefix[1], "LOAD");
        nprefix = 2;
        source = &ngx_http_supportdesk_script_table[script].source;

    } else {
        ngx_str_set(&prefix[0], "EVALSHA");
        prefix[1].data = conn->sha[script];
        prefix[1].len = NGX_HTTP_SUPPORTDESK_SHA1_HEX_LEN;
        nprefix = 2;
    }

    total = nprefix + (source != NULL) + argc;

    /* "*N\r\n" then "$len\r\ndata\r\n" per argument */
    need = 1 + NGX_INT_T_LEN + 2 + total * (1 + NGX_SIZE_T_LEN + 2 + 2);

    for (i = 0; i < nprefix; i++) {
        need += prefix[i].len;
    }

    if (source != NULL) {
        need += source->len + conn->tag_len;
    }

    for (i = 0; i < argc; i++) {
        need += argvlen[i];
    }

    pending = conn->out_len - conn->out_sent;

    if (conn->out_size - conn->out_len < need) {
        if (conn->out_sent && conn->out_size - pending >= need) {
            ngx_memmove(conn->out, conn->out + conn->out_sent, pending);

        } else {
            size = ngx_max(NGX_HTTP_SUPPORTDESK_REDIS_OUT_SIZE,
                           ngx_max(conn->out_size * 2, pending + need));

            out = ngx_alloc(size, conn->pool->log);
            if (out == NULL) {
                return NGX_ERROR;
            }

            if (pending) {
                ngx_memcpy(out, conn->out + conn->out_sent, pending);
            }

            if (conn->out != NULL) {
                ngx_free(conn->out);
            }

            conn->out = out;
            conn->out_size = size;
        }

        conn->out_sent = 0;
        conn->out_len = pending;
    }

    /* by hand: a header per argument, ngx_sprintf() was the cost */
    p = conn->out + conn->out_len;
    *p++ = '*';
    p = ngx_http_supportdesk_decimal(p, total);
    *p++ = CR;
    *p++ = LF;

    for (i = 0; i < nprefix; i++) {
        p = ngx_http_supportdesk_redis_bulk(p, prefix[i].data, prefix[i].len,
                                            NULL, 0);
    }

    if (source != NULL) {
        p = ngx_http_supportdesk_redis_bulk(p, source->data, source->len,
                                            conn->tag, conn->tag_len);
    }

    for (i = 0; i < argc; i++) {
        p = ngx_http_supportdesk_redis_bulk(p, (u_char *) argv[i],
                                            argvlen[i], NULL, 0);
    }

    conn->stream_len += (p - conn->out) - conn->out_len;
    conn->out_len = p - conn->out;

    return NGX_OK;
}


/* one argument: data, then tail (which may be empty) */

static u_char *
ngx_http_supportdesk_redis_bulk(u_char *p, const u_char *data, size_t len,
    const u_char *tail, size_t tail_len)
{
    /* by hand: a header per argument, ngx_sprintf() was the cost */
    *p++ = '$';
    p = ngx_http_supportdesk_decimal(p, len + tail_len);
    *p++ = CR;
    *p++ = LF;

    if (len) {
        p = ngx_cpymem(p, data, len);
    }

    if (tail_len) {
        p = ngx_cpymem(p, tail, tail_len);
    }

    *p++ = CR;
    *p++ = LF;

    return p;
}


/*
 * The connection's tag and the SHA-1s of its copy of the scripts.  The tag
 * names the host, the pool, the worker's number and the connection's, so a
 * worker that replaces another (a reload, a crash) reuses its copies and
 * Redis keeps one copy per connection slot, however often they reconnect.
 */

static ngx_int_t
ngx_http_supportdesk_redis_own_scripts(
    ngx_http_supportdesk_redis_conn_t *conn, ngx_cycle_t *cycle,
    ngx_uint_t pool_index, ngx_uint_t conn_index)
{
    u_char        *p;
    u_char         md[EVP_MAX_MD_SIZE];
    size_t         i, host_len;
    ngx_int_t      rc;
    ngx_str_t     *source;
    EVP_MD_CTX    *ctx;
    unsigned int   mdlen;

    host_len = ngx_min(cycle->hostname.len, NGX_MAXHOSTNAMELEN);

    p = ngx_cpymem(conn->tag, "\n-- supportdesk connection ",
                   sizeof("\n-- supportdesk connection ") - 1);

    for (i = 0; i < host_len; i++) {
        /* it ends a line of Lua: nothing that could end it sooner */
        *p++ = (cycle->hostname.data[i] > ' '
                && cycle->hostname.data[i] < 0x7f)
               ? cycle->hostname.data[i] : '?';
    }

    p = ngx_sprintf(p, "/%ui/%ui/%ui\n", pool_index, ngx_worker, conn_index);
    conn->tag_len = p - conn->tag;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_SCRIPT_COUNT; i++) {
        source = &ngx_http_supportdesk_script_table[i].source;

        if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1
            || EVP_DigestUpdate(ctx, source->data, source->len) != 1
            || EVP_DigestUpdate(ctx, conn->tag, conn->tag_len) != 1
            || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "supportdesk: SHA-1 of a script failed");
            rc = NGX_ERROR;
            break;
        }

        ngx_hex_dump(conn->sha[i], md, mdlen);
    }

    EVP_MD_CTX_free(ctx);

    return rc;
}


/* worker exit: the ops of a queue go without their handlers */

static void
ngx_http_supportdesk_redis_free_queue(ngx_queue_t *queue)
{
    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *op;

    while (!ngx_queue_empty(queue)) {
        q = ngx_queue_head(queue);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        /* a WAIT holds its write, answered already or not, in no queue */
        if (op->kind == NGX_HTTP_SUPPORTDESK_REDIS_OP_WAIT
            && op->data != NULL)
        {
            ngx_http_supportdesk_redis_wait_release(op->data);
        }

        ngx_free(op);
    }
}


static void
ngx_http_supportdesk_redis_wait_release(ngx_http_supportdesk_redis_op_t *op)
{
    if (op->held == NULL) {
        /* its reply is still due: it is in a queue, freed there */
        op->waiter = NULL;
        return;
    }

    freeReplyObject(op->held);

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    ngx_free(op);
}


static redisReader *
ngx_http_supportdesk_redis_reader(ngx_http_supportdesk_redis_conn_t *conn)
{
    ngx_http_supportdesk_redis_conf_t  *rcf;

    rcf = conn->pool->conf;

    conn->arena.max_bytes = rcf->max_reply_size;
    conn->arena.max_elements = rcf->max_reply_elements;
    conn->arena.log = conn->pool->log;

    return ngx_http_supportdesk_reply_reader(&conn->arena);
}


static ngx_http_supportdesk_redis_op_t *
ngx_http_supportdesk_redis_op_alloc(ngx_http_supportdesk_redis_pool_t *pool)
{
    ngx_queue_t                      *q;
    ngx_http_supportdesk_redis_op_t  *op;

    if (!ngx_queue_empty(&pool->free_ops)) {
        q = ngx_queue_head(&pool->free_ops);
        ngx_queue_remove(q);
        pool->nfree--;
        op = ngx_queue_data(q, ngx_http_supportdesk_redis_op_t, queue);
        ngx_memzero(op, sizeof(ngx_http_supportdesk_redis_op_t));

    } else {
        op = ngx_calloc(sizeof(ngx_http_supportdesk_redis_op_t), pool->log);
        if (op == NULL) {
            return NULL;
        }

        if (++pool->nops > pool->peak_ops) {
            pool->peak_ops = pool->nops;
        }
    }

    op->pool = pool;
    op->slot = -1;
    op->timer.handler = ngx_http_supportdesk_redis_op_timeout;
    op->timer.data = op;
    op->timer.log = pool->log;
    op->log = pool->log;

    if (pool->metered) {
        ngx_http_supportdesk_metrics_redis_pending(1);
    }

    return op;
}


static void
ngx_http_supportdesk_redis_op_free(ngx_http_supportdesk_redis_pool_t *pool,
    ngx_http_supportdesk_redis_op_t *op)
{
    /* its own pool counts it: a redirected op came from another */
    pool = op->pool;

    if (op->ahead != NULL) {
        op->ahead->behind = op->behind;
    }

    if (op->behind != NULL) {
        op->behind->ahead = op->ahead;
    }

    if (pool->metered) {
        ngx_http_supportdesk_metrics_redis_pending(-1);
    }

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    /* a burst's ops are given back, not kept at its peak forever */
    if (pool->nfree >= NGX_HTTP_SUPPORTDESK_REDIS_FREE_KEEP) {
        ngx_free(op);

        if (--pool->nops == pool->nfree) {
            /* none in use: the burst is over */
            ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                          "supportdesk: redis %V: the ops of a burst are "
                          "given back, %ui at its peak, %ui kept for reuse",
                          &pool->conf->addr->name, pool->peak_ops,
                          pool->nfree);
            pool->peak_ops = pool->nops;
        }

        return;
    }

    op->handler = NULL;
    op->data = NULL;

    ngx_queue_insert_head(&pool->free_ops, &op->queue);
    pool->nfree++;
}
