
/*
 * Metrics (ngx_http_supportdesk_metrics.c): counters, histograms and gauges
 * in one shared memory zone, each process writing its own part, summed
 * over every worker by the supportdesk_metrics location that serves them
 * as Prometheus text.
 *
 * It stands apart, like the error filter and the job runner: the log
 * phase, the store, the pool and the runner call the small recording
 * functions below; it calls nothing of the module's.  Every recording
 * function does nothing until the worker has the zone (no
 * supportdesk_metrics location: no zone, no cost but a test).
 */

#ifndef _NGX_HTTP_SUPPORTDESK_METRICS_H_INCLUDED_
#define _NGX_HTTP_SUPPORTDESK_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* route 0 is "no route matched"; the router's routes are 1 ... */
#define NGX_HTTP_SUPPORTDESK_METRICS_ROUTES      16


/*
 * supportdesk_redis_errors_total{kind}: the gateway's own failures to get
 * an answer, then the error replies Redis sent, by their code.
 */
typedef enum {
    NGX_HTTP_SUPPORTDESK_METRICS_ERR_CONNECT = 0,
    NGX_HTTP_SUPPORTDESK_METRICS_ERR_CLOSED,
    NGX_HTTP_SUPPORTDESK_METRICS_ERR_TIMEOUT,
    NGX_HTTP_SUPPORTDESK_METRICS_ERR_ADMISSION,
    /* the first of the error replies' codes (metrics.c names them) */
    NGX_HTTP_SUPPORTDESK_METRICS_ERR_REPLY
} ngx_http_supportdesk_metrics_error_e;


/* supportdesk_redis_redirects_total{kind} (Redis Cluster) */
typedef enum {
    NGX_HTTP_SUPPORTDESK_METRICS_MOVED = 0,
    NGX_HTTP_SUPPORTDESK_METRICS_ASK,
    NGX_HTTP_SUPPORTDESK_METRICS_REDIRECT_KINDS
} ngx_http_supportdesk_metrics_redirect_e;


/* supportdesk_key_cache_lookups_total{result} */
typedef enum {
    NGX_HTTP_SUPPORTDESK_METRICS_KEY_HIT = 0,
    NGX_HTTP_SUPPORTDESK_METRICS_KEY_NEGATIVE,
    NGX_HTTP_SUPPORTDESK_METRICS_KEY_MISS,
    /* a key the cache does not know, refused without a lookup (the rate) */
    NGX_HTTP_SUPPORTDESK_METRICS_KEY_LIMITED,
    NGX_HTTP_SUPPORTDESK_METRICS_KEY_RESULTS
} ngx_http_supportdesk_metrics_key_e;


/*
 * supportdesk_redis_connections{state}: the pool's own numbering of a
 * connection's states (ngx_http_supportdesk_redis_state_e), which it
 * passes as they are.
 */
#define NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES  3
#define NGX_HTTP_SUPPORTDESK_METRICS_CONN_NONE    ((ngx_uint_t) -1)


/* configuration: the zone, once a supportdesk_metrics location asks */
ngx_shm_zone_t *ngx_http_supportdesk_metrics_zone(ngx_conf_t *cf,
    void *tag);

/* the route templates, by route number - 1 (postconfiguration) */
ngx_int_t ngx_http_supportdesk_metrics_routes(ngx_conf_t *cf,
    ngx_str_t *names, ngx_uint_t n);

/* the content handler of a supportdesk_metrics location */
ngx_int_t ngx_http_supportdesk_metrics_handler(ngx_http_request_t *r);

/* a worker takes the zone (zone NULL: metrics off) and its process slot's
   part of it; at exit it zeroes its gauges (its counters stay summed) */
void ngx_http_supportdesk_metrics_init_process(ngx_shm_zone_t *zone);
void ngx_http_supportdesk_metrics_exit_process(void);


/*
 * Recording.  A monotonic clock in microseconds, for durations; 0 when
 * metrics are off (nothing then is timed).
 */
uint64_t ngx_http_supportdesk_metrics_now(void);

/*
 * One answered request, at the log phase: its route (0: none), the
 * status logged, the envelope's error code (NULL: none), its duration.
 */
void ngx_http_supportdesk_metrics_request(ngx_http_request_t *r,
    ngx_uint_t route, ngx_uint_t status, const char *error);

/* one Redis command answered, queued at start (metrics_now()) */
void ngx_http_supportdesk_metrics_redis_command(uint64_t start);

void ngx_http_supportdesk_metrics_redis_error(
    ngx_http_supportdesk_metrics_error_e kind);

/* an error reply to a command, counted by its code; a script's own refusal
   (SD_...) is an answer: not counted */
void ngx_http_supportdesk_metrics_redis_reply_error(const char *str,
    size_t len);

/* Redis Cluster: a MOVED or ASK answer, a command sent again after a
   refusal for now (TRYAGAIN, CLUSTERDOWN...), a CLUSTER SLOTS sent */
void ngx_http_supportdesk_metrics_redis_redirect(
    ngx_http_supportdesk_metrics_redirect_e kind);
void ngx_http_supportdesk_metrics_cluster_retry(void);
void ngx_http_supportdesk_metrics_cluster_refresh(void);

/* a connection from one state to another (CONN_NONE: a new one) */
void ngx_http_supportdesk_metrics_redis_conn(ngx_uint_t from, ngx_uint_t to);

/* an op taken (+1) or given back (-1): the commands not answered yet */
void ngx_http_supportdesk_metrics_redis_pending(ngx_int_t n);

void ngx_http_supportdesk_metrics_key_cache(
    ngx_http_supportdesk_metrics_key_e result);

/* a write's answer: the events its script appended, a replay */
void ngx_http_supportdesk_metrics_events(ngx_uint_t n);
void ngx_http_supportdesk_metrics_replay(void);

/* bulk-update jobs: one begun by this worker's runner; a claimed job's
   chunk under way (+1) or over (-1); a chunk's end, as job_chunk.lua says */
typedef enum {
    NGX_HTTP_SUPPORTDESK_METRICS_JOB_RUNNING = 0,
    NGX_HTTP_SUPPORTDESK_METRICS_JOB_DONE,
    NGX_HTTP_SUPPORTDESK_METRICS_JOB_LOST
} ngx_http_supportdesk_metrics_job_e;

void ngx_http_supportdesk_metrics_job_started(void);
void ngx_http_supportdesk_metrics_job_running(ngx_int_t n);
void ngx_http_supportdesk_metrics_job_chunk(
    ngx_http_supportdesk_metrics_job_e status);


/* a label value as the text exposition quotes it: \ " and LF escaped;
   dst has room for 2 * len */
u_char *ngx_http_supportdesk_metrics_escape(u_char *dst, u_char *src,
    size_t len);


#endif /* _NGX_HTTP_SUPPORTDESK_METRICS_H_INCLUDED_ */
