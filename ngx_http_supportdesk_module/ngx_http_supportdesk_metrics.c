
/*
 * Metrics: Prometheus text exposition 0.0.4 of counters, gauges and
 * histograms kept in one shared memory zone ("supportdesk_metrics").
 *
 * Counters and histograms are single words in the zone, added to with
 * ngx_atomic_fetch_add(): every worker adds to the same words, so a scrape
 * reads the sum over the workers as it is, and the hot path takes no lock.
 * The zone outlives a reload (same name, same size), so counters go on
 * counting across reloads; a restart starts them at zero.
 *
 * Gauges (connections, pending commands, running jobs) are a worker's own
 * state: each worker writes them into a slot of its own (claimed at start,
 * given back at exit), and a scrape sums the slots of the processes still
 * alive, so a worker that was killed leaves nothing behind.
 *
 * Requests are counted per (route, method, status, error code) in a small
 * open-addressing table: a combination takes its entry once, by a
 * compare-and-swap of its key, and is only added to after that.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_metrics.h"


#define NGX_HTTP_SUPPORTDESK_METRICS_SLOTS       1024
#define NGX_HTTP_SUPPORTDESK_METRICS_PROCS       256
#define NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS   17
#define NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS   20
#define NGX_HTTP_SUPPORTDESK_METRICS_METHODS        8

/* a request's key: route, method, status, error, each in its bits */
#define ngx_http_supportdesk_metrics_key(route, method, status, error)       \
    ((((route) << 24) | ((method) << 20) | ((status) << 8) | (error)) + 1)


/* shorter names for the sizes of the zone's arrays */
#define NGX_HTTP_SUPPORTDESK_MX_BUCKETS                                       \
    NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS
#define NGX_HTTP_SUPPORTDESK_MX_STATES                                        \
    NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES
#define NGX_HTTP_SUPPORTDESK_MX_ROUTES   NGX_HTTP_SUPPORTDESK_METRICS_ROUTES


/* bucket counts (not cumulative: one add per observation), the sum */
typedef struct {
    ngx_atomic_t   bucket[NGX_HTTP_SUPPORTDESK_MX_BUCKETS];
    ngx_atomic_t   sum_us;
} ngx_http_supportdesk_metrics_hist_t;


typedef struct {
    /* 0: free; else the key of the combination it counts */
    ngx_atomic_t   key;
    ngx_atomic_t   count;
} ngx_http_supportdesk_metrics_entry_t;


/* one process's gauges, a cache line of its own */
typedef struct {
    ngx_atomic_t   pid;
    ngx_atomic_t   conns[NGX_HTTP_SUPPORTDESK_MX_STATES];
    ngx_atomic_t   pending;
    ngx_atomic_t   jobs_running;
    ngx_atomic_t   pad[2];
} ngx_http_supportdesk_metrics_proc_t;


typedef struct {
    ngx_http_supportdesk_metrics_entry_t
                   requests[NGX_HTTP_SUPPORTDESK_METRICS_SLOTS];
    /* requests of a combination that found the table full */
    ngx_atomic_t   requests_dropped;

    ngx_http_supportdesk_metrics_hist_t
                   request_duration[NGX_HTTP_SUPPORTDESK_MX_ROUTES];
    ngx_http_supportdesk_metrics_hist_t
                   command_duration;

    ngx_atomic_t   redis_errors[NGX_HTTP_SUPPORTDESK_METRICS_ERR_KINDS];
    ngx_atomic_t   redirects[NGX_HTTP_SUPPORTDESK_METRICS_REDIRECT_KINDS];
    ngx_atomic_t   cluster_refreshes;
    ngx_atomic_t   key_cache[NGX_HTTP_SUPPORTDESK_METRICS_KEY_RESULTS];
    ngx_atomic_t   events_appended;
    ngx_atomic_t   replays;
    ngx_atomic_t   jobs_done;
    ngx_atomic_t   jobs_lost;

    ngx_http_supportdesk_metrics_proc_t
                   procs[NGX_HTTP_SUPPORTDESK_METRICS_PROCS];
} ngx_http_supportdesk_metrics_sh_t;


/* one row of supportdesk_http_requests_total as a scrape sums it */
typedef struct {
    ngx_uint_t                           key;
    ngx_atomic_uint_t                    count;
} ngx_http_supportdesk_metrics_row_t;


typedef struct {
    u_char                              *pos;
    u_char                              *end;
} ngx_http_supportdesk_metrics_out_t;


static ngx_int_t ngx_http_supportdesk_metrics_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static void ngx_http_supportdesk_metrics_observe(
    ngx_http_supportdesk_metrics_hist_t *h, const uint64_t *bounds,
    ngx_uint_t n, uint64_t us);
static ngx_uint_t ngx_http_supportdesk_metrics_method(ngx_http_request_t *r);
static ngx_uint_t ngx_http_supportdesk_metrics_error_index(const char *code);
static ngx_int_t ngx_http_supportdesk_metrics_render(ngx_http_request_t *r,
    ngx_buf_t *b);
static void ngx_http_supportdesk_metrics_requests(
    ngx_http_supportdesk_metrics_out_t *out,
    ngx_http_supportdesk_metrics_row_t *rows, ngx_uint_t nrows,
    ngx_uint_t errors);
static void ngx_http_supportdesk_metrics_histogram(
    ngx_http_supportdesk_metrics_out_t *out, const char *name,
    ngx_str_t *route, ngx_http_supportdesk_metrics_hist_t *h,
    const char **les, ngx_uint_t n);
static void ngx_http_supportdesk_metrics_header(
    ngx_http_supportdesk_metrics_out_t *out, const char *name,
    const char *type, const char *help);
static void ngx_http_supportdesk_metrics_label(
    ngx_http_supportdesk_metrics_out_t *out, const char *name,
    ngx_str_t *value, ngx_uint_t first);
static void ngx_http_supportdesk_metrics_printf(
    ngx_http_supportdesk_metrics_out_t *out, const char *fmt, ...);
static int ngx_libc_cdecl ngx_http_supportdesk_metrics_cmp(const void *one,
    const void *two);
static ngx_uint_t ngx_http_supportdesk_metrics_alive(ngx_pid_t pid);


static ngx_http_supportdesk_metrics_sh_t    *ngx_http_supportdesk_metrics_sh;
static ngx_http_supportdesk_metrics_proc_t  *ngx_http_supportdesk_metrics_me;

/* the route templates, by route number (0: none matched) */
static ngx_str_t   ngx_http_supportdesk_metrics_route_names[
                                      NGX_HTTP_SUPPORTDESK_METRICS_ROUTES];
static ngx_uint_t  ngx_http_supportdesk_metrics_nroutes = 1;


/*
 * Histogram bounds in microseconds, and as the le label says them.  A
 * request: OpenTelemetry's http.server.request.duration buckets (5 ms to
 * 10 s) and 1 ms, 2.5 ms below them (nginx times a request to the
 * millisecond, as $request_time); a Redis command: finer ones below 5 ms.
 * The last bucket is +Inf.
 */
static const uint64_t  ngx_http_supportdesk_metrics_req_bounds[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 75000, 100000, 250000, 500000,
    750000, 1000000, 2500000, 5000000, 7500000, 10000000
};

static const char  *ngx_http_supportdesk_metrics_req_les[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.075", "0.1",
    "0.25", "0.5", "0.75", "1", "2.5", "5", "7.5", "10", "+Inf"
};

static const uint64_t  ngx_http_supportdesk_metrics_cmd_bounds[] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 75000, 100000,
    250000, 500000, 750000, 1000000, 2500000, 5000000, 10000000
};

static const char  *ngx_http_supportdesk_metrics_cmd_les[] = {
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1",
    "2.5", "5", "10", "+Inf"
};


/* the method label: OpenTelemetry's http.request.method, _OTHER else */
static ngx_str_t  ngx_http_supportdesk_metrics_methods[] = {
    ngx_string("_OTHER"), ngx_string("GET"), ngx_string("HEAD"),
    ngx_string("POST"), ngx_string("PUT"), ngx_string("PATCH"),
    ngx_string("DELETE"), ngx_string("OPTIONS")
};


/* the envelope's error codes (envelope.c, store.c); 0 is none */
static ngx_str_t  ngx_http_supportdesk_metrics_errors[] = {
    ngx_null_string,
    ngx_string("VALIDATION_ERROR"),
    ngx_string("INVALID_JSON"),
    ngx_string("UNAUTHORIZED"),
    ngx_string("NOT_FOUND"),
    ngx_string("CUSTOMER_NOT_FOUND"),
    ngx_string("NOTE_NOT_FOUND"),
    ngx_string("METHOD_NOT_ALLOWED"),
    ngx_string("REQUEST_TIMEOUT"),
    ngx_string("CUSTOMER_EMAIL_EXISTS"),
    ngx_string("IDEMPOTENCY_KEY_IN_USE"),
    ngx_string("CURSOR_EXPIRED"),
    ngx_string("PRECONDITION_FAILED"),
    ngx_string("PAYLOAD_TOO_LARGE"),
    ngx_string("UNSUPPORTED_MEDIA_TYPE"),
    ngx_string("IDEMPOTENCY_KEY_REUSED"),
    ngx_string("RATE_LIMITED"),
    ngx_string("INTERNAL_ERROR"),
    ngx_string("SERVICE_UNAVAILABLE"),
    ngx_string("GATEWAY_TIMEOUT"),
    /* a code this table does not know yet */
    ngx_string("OTHER")
};

#define NGX_HTTP_SUPPORTDESK_METRICS_NERRORS                                 \
    (sizeof(ngx_http_supportdesk_metrics_errors) / sizeof(ngx_str_t))


static ngx_str_t  ngx_http_supportdesk_metrics_error_kinds[] = {
    ngx_string("connect"), ngx_string("closed"), ngx_string("timeout"),
    ngx_string("admission"), ngx_string("refused")
};

static ngx_str_t  ngx_http_supportdesk_metrics_redirect_kinds[] = {
    ngx_string("moved"), ngx_string("ask"), ngx_string("tryagain")
};

static ngx_str_t  ngx_http_supportdesk_metrics_key_results[] = {
    ngx_string("hit"), ngx_string("negative"), ngx_string("miss")
};

/* the pool's states: disconnected, connecting, connected */
static ngx_str_t  ngx_http_supportdesk_metrics_conn_states[] = {
    ngx_string("disconnected"), ngx_string("connecting"),
    ngx_string("connected")
};


/* ------------------------------------------------------------ the zone */

ngx_shm_zone_t *
ngx_http_supportdesk_metrics_zone(ngx_conf_t *cf, void *tag)
{
    size_t           size;
    ngx_str_t        name;
    ngx_shm_zone_t  *zone;

    /* its size follows the layout: a changed layout is a new zone */
    size = ngx_align(sizeof(ngx_http_supportdesk_metrics_sh_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    ngx_str_set(&name, "supportdesk_metrics");

    zone = ngx_shared_memory_add(cf, &name, size, tag);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_http_supportdesk_metrics_init_zone;

    return zone;
}


static ngx_int_t
ngx_http_supportdesk_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                    *shpool;
    ngx_http_supportdesk_metrics_sh_t  *sh;

    if (data != NULL) {
        /* a reload: the counters go on */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_supportdesk_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_supportdesk_metrics_sh_t));

    shpool->data = sh;
    shm_zone->data = sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_supportdesk_metrics_routes(ngx_conf_t *cf, ngx_str_t *names,
    ngx_uint_t n)
{
    ngx_uint_t  i;

    if (n + 1 > NGX_HTTP_SUPPORTDESK_METRICS_ROUTES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "supportdesk: %ui routes, the metrics have room "
                           "for %d", n,
                           NGX_HTTP_SUPPORTDESK_METRICS_ROUTES - 1);
        return NGX_ERROR;
    }

    ngx_str_set(&ngx_http_supportdesk_metrics_route_names[0], "unmatched");

    for (i = 0; i < n; i++) {
        ngx_http_supportdesk_metrics_route_names[i + 1] = names[i];
    }

    ngx_http_supportdesk_metrics_nroutes = n + 1;

    return NGX_OK;
}


void
ngx_http_supportdesk_metrics_init_process(ngx_shm_zone_t *zone)
{
    ngx_uint_t                            i;
    ngx_atomic_uint_t                     pid;
    ngx_http_supportdesk_metrics_sh_t    *sh;
    ngx_http_supportdesk_metrics_proc_t  *p;

    ngx_http_supportdesk_metrics_sh = NULL;
    ngx_http_supportdesk_metrics_me = NULL;

    if (zone == NULL || zone->data == NULL) {
        return;
    }

    sh = zone->data;

    /* a free slot, or the slot of a process that is gone */
    for (i = 0; i < NGX_HTTP_SUPPORTDESK_METRICS_PROCS; i++) {
        p = &sh->procs[i];
        pid = p->pid;

        if (pid != 0 && ngx_http_supportdesk_metrics_alive((ngx_pid_t) pid))
        {
            continue;
        }

        if (!ngx_atomic_cmp_set(&p->pid, pid, (ngx_atomic_uint_t) ngx_pid)) {
            continue;
        }

        p->conns[0] = 0;
        p->conns[1] = 0;
        p->conns[2] = 0;
        p->pending = 0;
        p->jobs_running = 0;

        ngx_http_supportdesk_metrics_me = p;
        break;
    }

    if (ngx_http_supportdesk_metrics_me == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "supportdesk: no metrics slot is free (%d processes): "
                      "this worker's connections, pending commands and "
                      "jobs are not in the gauges",
                      NGX_HTTP_SUPPORTDESK_METRICS_PROCS);
    }

    ngx_http_supportdesk_metrics_sh = sh;
}


void
ngx_http_supportdesk_metrics_exit_process(void)
{
    ngx_http_supportdesk_metrics_proc_t  *p;

    p = ngx_http_supportdesk_metrics_me;

    ngx_http_supportdesk_metrics_sh = NULL;
    ngx_http_supportdesk_metrics_me = NULL;

    if (p != NULL) {
        p->pending = 0;
        p->jobs_running = 0;
        p->conns[0] = 0;
        p->conns[1] = 0;
        p->conns[2] = 0;
        ngx_memory_barrier();
        p->pid = 0;
    }
}


static ngx_uint_t
ngx_http_supportdesk_metrics_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


/* ------------------------------------------------------------ recording */

uint64_t
ngx_http_supportdesk_metrics_now(void)
{
    struct timespec  ts;

    if (ngx_http_supportdesk_metrics_sh == NULL) {
        return 0;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
ngx_http_supportdesk_metrics_request(ngx_http_request_t *r, ngx_uint_t route,
    ngx_uint_t status, const char *error)
{
    ngx_uint_t                             i, n, key, hash;
    ngx_msec_int_t                         ms;
    ngx_time_t                            *tp;
    ngx_http_supportdesk_metrics_sh_t     *sh;
    ngx_http_supportdesk_metrics_entry_t  *e;

    sh = ngx_http_supportdesk_metrics_sh;

    if (sh == NULL) {
        return;
    }

    if (route >= ngx_http_supportdesk_metrics_nroutes) {
        route = 0;
    }

    if (status > 999) {
        status = 0;
    }

    key = ngx_http_supportdesk_metrics_key(route,
                                  ngx_http_supportdesk_metrics_method(r),
                                  status,
                                  ngx_http_supportdesk_metrics_error_index(
                                                                      error));

    /* Fibonacci hashing into the table, then the next entries */
    hash = (ngx_uint_t) (((uint32_t) key * 2654435769u) >> 22);

    for (n = 0; n < NGX_HTTP_SUPPORTDESK_METRICS_SLOTS; n++) {
        e = &sh->requests[(hash + n) % NGX_HTTP_SUPPORTDESK_METRICS_SLOTS];

        if (e->key == key
            || (e->key == 0 && ngx_atomic_cmp_set(&e->key, 0, key))
            || e->key == key)
        {
            (void) ngx_atomic_fetch_add(&e->count, 1);
            break;
        }
    }

    if (n == NGX_HTTP_SUPPORTDESK_METRICS_SLOTS) {
        (void) ngx_atomic_fetch_add(&sh->requests_dropped, 1);
    }

    /* as $request_time: the cached time, to the millisecond */
    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    i = route;

    ngx_http_supportdesk_metrics_observe(&sh->request_duration[i],
                            ngx_http_supportdesk_metrics_req_bounds,
                            NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS - 1,
                            (uint64_t) ms * 1000);
}


void
ngx_http_supportdesk_metrics_redis_command(uint64_t start)
{
    uint64_t  now;

    if (ngx_http_supportdesk_metrics_sh == NULL || start == 0) {
        return;
    }

    now = ngx_http_supportdesk_metrics_now();

    ngx_http_supportdesk_metrics_observe(
                            &ngx_http_supportdesk_metrics_sh->command_duration,
                            ngx_http_supportdesk_metrics_cmd_bounds,
                            NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS - 1,
                            now > start ? now - start : 0);
}


static void
ngx_http_supportdesk_metrics_observe(ngx_http_supportdesk_metrics_hist_t *h,
    const uint64_t *bounds, ngx_uint_t n, uint64_t us)
{
    ngx_uint_t  i;

    for (i = 0; i < n && us > bounds[i]; i++) { /* void */ }

    (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum_us, (ngx_atomic_int_t) us);
}


void
ngx_http_supportdesk_metrics_redis_error(
    ngx_http_supportdesk_metrics_error_e kind)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(
                          &ngx_http_supportdesk_metrics_sh->redis_errors[kind],
                          1);
    }
}


void
ngx_http_supportdesk_metrics_redis_redirect(
    ngx_http_supportdesk_metrics_redirect_e kind)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(
                             &ngx_http_supportdesk_metrics_sh->redirects[kind],
                             1);
    }
}


void
ngx_http_supportdesk_metrics_cluster_refresh(void)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(
                           &ngx_http_supportdesk_metrics_sh->cluster_refreshes,
                           1);
    }
}


/* a worker's own slot: only it writes there, no atomic needed */

void
ngx_http_supportdesk_metrics_redis_conn(ngx_uint_t from, ngx_uint_t to)
{
    ngx_http_supportdesk_metrics_proc_t  *p;

    p = ngx_http_supportdesk_metrics_me;

    if (p == NULL || from == to) {
        return;
    }

    if (from < NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES) {
        p->conns[from]--;
    }

    if (to < NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES) {
        p->conns[to]++;
    }
}


void
ngx_http_supportdesk_metrics_redis_pending(ngx_int_t n)
{
    if (ngx_http_supportdesk_metrics_me != NULL) {
        ngx_http_supportdesk_metrics_me->pending += n;
    }
}


void
ngx_http_supportdesk_metrics_key_cache(
    ngx_http_supportdesk_metrics_key_e result)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(
                           &ngx_http_supportdesk_metrics_sh->key_cache[result],
                           1);
    }
}


void
ngx_http_supportdesk_metrics_events(ngx_uint_t n)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(
                             &ngx_http_supportdesk_metrics_sh->events_appended,
                             (ngx_atomic_int_t) n);
    }
}


void
ngx_http_supportdesk_metrics_replay(void)
{
    if (ngx_http_supportdesk_metrics_sh != NULL) {
        (void) ngx_atomic_fetch_add(&ngx_http_supportdesk_metrics_sh->replays,
                                    1);
    }
}


void
ngx_http_supportdesk_metrics_job_claimed(void)
{
    if (ngx_http_supportdesk_metrics_me != NULL) {
        ngx_http_supportdesk_metrics_me->jobs_running++;
    }
}


void
ngx_http_supportdesk_metrics_job_ended(u_char *status, size_t len)
{
    ngx_atomic_t                       *counter;
    ngx_http_supportdesk_metrics_sh_t  *sh;

    sh = ngx_http_supportdesk_metrics_sh;

    if (sh == NULL) {
        return;
    }

    if (ngx_http_supportdesk_metrics_me != NULL
        && ngx_http_supportdesk_metrics_me->jobs_running)
    {
        ngx_http_supportdesk_metrics_me->jobs_running--;
    }

    /* job_chunk.lua says "done" (failed jobs too) or "lost" */
    if (len == 4 && ngx_strncmp(status, "done", 4) == 0) {
        counter = &sh->jobs_done;

    } else {
        counter = &sh->jobs_lost;
    }

    (void) ngx_atomic_fetch_add(counter, 1);
}


static ngx_uint_t
ngx_http_supportdesk_metrics_method(ngx_http_request_t *r)
{
    switch (r->method) {
    case NGX_HTTP_GET:
        return 1;
    case NGX_HTTP_HEAD:
        return 2;
    case NGX_HTTP_POST:
        return 3;
    case NGX_HTTP_PUT:
        return 4;
    case NGX_HTTP_PATCH:
        return 5;
    case NGX_HTTP_DELETE:
        return 6;
    case NGX_HTTP_OPTIONS:
        return 7;
    default:
        return 0;
    }
}


static ngx_uint_t
ngx_http_supportdesk_metrics_error_index(const char *code)
{
    size_t      len;
    ngx_uint_t  i;

    if (code == NULL) {
        return 0;
    }

    len = ngx_strlen(code);

    for (i = 1; i < NGX_HTTP_SUPPORTDESK_METRICS_NERRORS - 1; i++) {
        if (ngx_http_supportdesk_metrics_errors[i].len == len
            && ngx_strncmp(ngx_http_supportdesk_metrics_errors[i].data, code,
                           len)
               == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_SUPPORTDESK_METRICS_NERRORS - 1;
}


/* ------------------------------------------------------------ the scrape */

ngx_int_t
ngx_http_supportdesk_metrics_handler(ngx_http_request_t *r)
{
    size_t            size;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *allow;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
        ngx_str_set(&allow->key, "Allow");
        ngx_str_set(&allow->value, "GET, HEAD");

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_supportdesk_metrics_sh == NULL) {
        /* not a worker of this configuration (cannot happen) */
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /*
     * Room for every line that can be: each request entry twice (the
     * counts and the errors), each route's histogram, the rest.
     */
    size = NGX_HTTP_SUPPORTDESK_METRICS_SLOTS * 2 * 192
           + (NGX_HTTP_SUPPORTDESK_METRICS_ROUTES + 1)
             * (NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS + 3) * 160
           + 16384;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_supportdesk_metrics_render(r, b) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_supportdesk_metrics_render(ngx_http_request_t *r, ngx_buf_t *b)
{
    ngx_uint_t                            i, j, nrows, used;
    ngx_atomic_uint_t                     key, count, v, pending, running;
    ngx_http_supportdesk_metrics_sh_t    *sh;
    ngx_http_supportdesk_metrics_row_t   *rows;
    ngx_http_supportdesk_metrics_out_t    out;
    ngx_http_supportdesk_metrics_proc_t  *p;
    ngx_http_supportdesk_metrics_hist_t  *h;
    ngx_atomic_uint_t                     conns[NGX_HTTP_SUPPORTDESK_MX_STATES];

    sh = ngx_http_supportdesk_metrics_sh;

    out.pos = b->last;
    out.end = b->end;

    /* -------------------------------------------------- requests */

    rows = ngx_palloc(r->pool, NGX_HTTP_SUPPORTDESK_METRICS_SLOTS
                               * sizeof(ngx_http_supportdesk_metrics_row_t));
    if (rows == NULL) {
        return NGX_ERROR;
    }

    nrows = 0;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_METRICS_SLOTS; i++) {
        key = sh->requests[i].key;
        count = sh->requests[i].count;

        if (key == 0 || count == 0) {
            continue;
        }

        rows[nrows].key = key - 1;
        rows[nrows].count = count;
        nrows++;
    }

    ngx_qsort(rows, nrows, sizeof(ngx_http_supportdesk_metrics_row_t),
              ngx_http_supportdesk_metrics_cmp);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_requests_total", "counter",
        "Requests answered in the supportdesk locations, by route template, "
        "method and HTTP status.");
    ngx_http_supportdesk_metrics_requests(&out, rows, nrows, 0);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_errors_total", "counter",
        "Error answers (the envelope's error code), by route template, "
        "method, HTTP status and code.");
    ngx_http_supportdesk_metrics_requests(&out, rows, nrows, 1);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_requests_dropped_total", "counter",
        "Requests not counted by route: the table of combinations was full.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_http_requests_dropped_total %uA\n",
        sh->requests_dropped);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_request_duration_seconds", "histogram",
        "Time from the request's first byte to its log phase, by route "
        "template (millisecond resolution, as $request_time).");

    for (i = 0; i < ngx_http_supportdesk_metrics_nroutes; i++) {
        h = &sh->request_duration[i];
        used = 0;

        for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS; j++) {
            used |= (h->bucket[j] != 0);
        }

        if (!used) {
            continue;
        }

        ngx_http_supportdesk_metrics_histogram(&out,
                             "supportdesk_http_request_duration_seconds",
                             &ngx_http_supportdesk_metrics_route_names[i], h,
                             ngx_http_supportdesk_metrics_req_les,
                             NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS);
    }

    /* -------------------------------------------------- Redis */

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_command_duration_seconds", "histogram",
        "Time from a command queued to its answer (reply, failure or "
        "timeout), redirections and retries included.");
    ngx_http_supportdesk_metrics_histogram(&out,
                             "supportdesk_redis_command_duration_seconds",
                             NULL, &sh->command_duration,
                             ngx_http_supportdesk_metrics_cmd_les,
                             NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS);

    conns[0] = conns[1] = conns[2] = 0;
    pending = 0;
    running = 0;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_METRICS_PROCS; i++) {
        p = &sh->procs[i];
        v = p->pid;

        if (v == 0 || !ngx_http_supportdesk_metrics_alive((ngx_pid_t) v)) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES; j++) {
            conns[j] += p->conns[j];
        }

        pending += p->pending;
        running += p->jobs_running;
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_connections", "gauge",
        "The workers' Redis connections, by state.");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_redis_connections{state=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_conn_states[j], conns[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_pending_commands", "gauge",
        "Redis commands queued or in flight and not answered yet, the "
        "connections' handshakes included.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_redis_pending_commands %uA\n", pending);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_errors_total", "counter",
        "Redis failures by kind: connect (an attempt failed), closed (a "
        "connection lost or dropped), timeout (no reply within "
        "supportdesk_redis_timeout), admission (a request answered 503 at "
        "once), refused (Redis refused the work: LOADING, OOM, READONLY...).");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_ERR_KINDS; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_redis_errors_total{kind=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_error_kinds[j],
            sh->redis_errors[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_redirects_total", "counter",
        "Redis Cluster answers that sent a command again: moved (MOVED), "
        "ask (ASK), tryagain (TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, "
        "READONLY, retried after a backoff).");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_REDIRECT_KINDS; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_redis_redirects_total{kind=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_redirect_kinds[j],
            sh->redirects[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_cluster_refreshes_total", "counter",
        "CLUSTER SLOTS sent to refresh a Redis Cluster's slot map.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_redis_cluster_refreshes_total %uA\n",
        sh->cluster_refreshes);

    /* -------------------------------------------------- the rest */

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_key_cache_lookups_total", "counter",
        "API key cache lookups: hit (a good key), negative (a key known to "
        "be bad, refused from the cache), miss (asked of Redis).");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_KEY_RESULTS; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_key_cache_lookups_total{result=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_key_results[j], sh->key_cache[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_jobs", "gauge",
        "Bulk-update jobs this gateway's workers are running now.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_jobs{status=\"running\"} %uA\n", running);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_jobs_finished_total", "counter",
        "Bulk-update jobs this gateway's workers ran to their end (done: "
        "finished, or failed) or lost (another worker holds the lease now "
        "and goes on).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_jobs_finished_total{status=\"done\"} %uA\n"
        "supportdesk_jobs_finished_total{status=\"lost\"} %uA\n",
        sh->jobs_done, sh->jobs_lost);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_events_appended_total", "counter",
        "Change-feed events the writes of this gateway appended (requests "
        "and bulk-update chunks).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_events_appended_total %uA\n", sh->events_appended);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_idempotent_replays_total", "counter",
        "Answers replayed from an Idempotency-Key's record (a batch's items "
        "each).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_idempotent_replays_total %uA\n", sh->replays);

    if (out.pos == out.end) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "supportdesk: the metrics do not fit in %uz bytes",
                      (size_t) (b->end - b->start));
        return NGX_ERROR;
    }

    b->last = out.pos;

    return NGX_OK;
}


/* the rows, sorted by key; errors: one line per error code, else summed */

static void
ngx_http_supportdesk_metrics_requests(ngx_http_supportdesk_metrics_out_t *out,
    ngx_http_supportdesk_metrics_row_t *rows, ngx_uint_t nrows,
    ngx_uint_t errors)
{
    u_char             code[NGX_INT_T_LEN];
    ngx_str_t          status;
    ngx_uint_t         i, key, route, method, error;
    ngx_atomic_uint_t  count;

    for (i = 0; i < nrows; i++) {
        key = rows[i].key;
        error = key & 0xff;
        count = rows[i].count;

        if (errors) {
            if (error == 0) {
                continue;
            }

        } else {
            /* the same route, method and status with other error codes */
            while (i + 1 < nrows && (rows[i + 1].key >> 8) == (key >> 8)) {
                count += rows[++i].count;
            }
        }

        route = key >> 24;
        method = (key >> 20) & 0xf;

        status.data = code;
        status.len = ngx_sprintf(code, "%ui", (key >> 8) & 0xfff) - code;

        ngx_http_supportdesk_metrics_printf(out, "%s",
                                      errors
                                      ? "supportdesk_http_errors_total"
                                      : "supportdesk_http_requests_total");
        ngx_http_supportdesk_metrics_label(out, "route",
                        &ngx_http_supportdesk_metrics_route_names[route], 1);
        ngx_http_supportdesk_metrics_label(out, "method",
                        &ngx_http_supportdesk_metrics_methods[method], 0);
        ngx_http_supportdesk_metrics_label(out, "code", &status, 0);

        if (errors) {
            ngx_http_supportdesk_metrics_label(out, "error",
                            &ngx_http_supportdesk_metrics_errors[error], 0);
        }

        ngx_http_supportdesk_metrics_printf(out, "} %uA\n", count);
    }
}


static void
ngx_http_supportdesk_metrics_histogram(ngx_http_supportdesk_metrics_out_t *out,
    const char *name, ngx_str_t *route, ngx_http_supportdesk_metrics_hist_t *h,
    const char **les, ngx_uint_t n)
{
    ngx_str_t          le;
    ngx_uint_t         i;
    ngx_atomic_uint_t  sum, count;

    count = 0;

    for (i = 0; i < n; i++) {
        count += h->bucket[i];

        ngx_http_supportdesk_metrics_printf(out, "%s_bucket", name);

        if (route != NULL) {
            ngx_http_supportdesk_metrics_label(out, "route", route, 1);
        }

        le.data = (u_char *) les[i];
        le.len = ngx_strlen(les[i]);

        ngx_http_supportdesk_metrics_label(out, "le", &le, route == NULL);
        ngx_http_supportdesk_metrics_printf(out, "} %uA\n", count);
    }

    sum = h->sum_us;

    ngx_http_supportdesk_metrics_printf(out, "%s_sum", name);

    if (route != NULL) {
        ngx_http_supportdesk_metrics_label(out, "route", route, 1);
        ngx_http_supportdesk_metrics_printf(out, "}");
    }

    ngx_http_supportdesk_metrics_printf(out, " %uA.%06uA\n",
                                        sum / 1000000, sum % 1000000);

    ngx_http_supportdesk_metrics_printf(out, "%s_count", name);

    if (route != NULL) {
        ngx_http_supportdesk_metrics_label(out, "route", route, 1);
        ngx_http_supportdesk_metrics_printf(out, "}");
    }

    ngx_http_supportdesk_metrics_printf(out, " %uA\n", count);
}


static void
ngx_http_supportdesk_metrics_header(ngx_http_supportdesk_metrics_out_t *out,
    const char *name, const char *type, const char *help)
{
    ngx_http_supportdesk_metrics_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
                                        name, help, name, type);
}


/* first: opens the braces; the caller closes them */

static void
ngx_http_supportdesk_metrics_label(ngx_http_supportdesk_metrics_out_t *out,
    const char *name, ngx_str_t *value, ngx_uint_t first)
{
    size_t  len;

    len = ngx_strlen(name);

    if ((size_t) (out->end - out->pos) < len + 2 * value->len + 5) {
        out->pos = out->end;
        return;
    }

    *out->pos++ = first ? '{' : ',';
    out->pos = ngx_cpymem(out->pos, name, len);
    *out->pos++ = '=';
    *out->pos++ = '"';
    out->pos = ngx_http_supportdesk_metrics_escape(out->pos, value->data,
                                                   value->len);
    *out->pos++ = '"';
}


u_char *
ngx_http_supportdesk_metrics_escape(u_char *dst, u_char *src, size_t len)
{
    u_char  *end;

    for (end = src + len; src < end; src++) {
        switch (*src) {

        case '\\':
        case '"':
            *dst++ = '\\';
            *dst++ = *src;
            break;

        case LF:
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        default:
            *dst++ = *src;
        }
    }

    return dst;
}


/* writes nothing more once the buffer is full: out->pos == out->end then */

static void
ngx_http_supportdesk_metrics_printf(ngx_http_supportdesk_metrics_out_t *out,
    const char *fmt, ...)
{
    va_list  args;

    if (out->pos == out->end) {
        return;
    }

    va_start(args, fmt);
    out->pos = ngx_vslprintf(out->pos, out->end, fmt, args);
    va_end(args);
}


static int ngx_libc_cdecl
ngx_http_supportdesk_metrics_cmp(const void *one, const void *two)
{
    const ngx_http_supportdesk_metrics_row_t  *a = one, *b = two;

    return (a->key > b->key) - (a->key < b->key);
}
