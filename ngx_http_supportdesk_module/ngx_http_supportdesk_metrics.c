
/*
 * Metrics: Prometheus text exposition 0.0.4 of counters, gauges and
 * histograms kept in one shared memory zone ("supportdesk_metrics").
 *
 * Every process writes only its own part of the zone, chosen by its nginx
 * process slot (ngx_process_slot), so that the hot path touches no cache
 * line another worker writes: with many workers, one shared counter that
 * all of them add to on every request would bounce between their cores.
 *
 * - Counters and histograms: a shard per process slot, single words added
 *   to in place (the last shard is shared by the slots past the others,
 *   with atomic adds).  A shard is never zeroed: the process that takes a
 *   slot after another (a worker respawned after a crash, the next
 *   generation after a reload) goes on counting in the same words, so a
 *   scrape, which sums every shard, only ever sees counters grow.
 * - Gauges (connections, pending commands, running jobs): a process's own
 *   state, zeroed when a process takes the slot and at its exit; a scrape
 *   sums those of processes still alive, so a killed worker leaves nothing.
 *
 * The zone outlives a reload (same name, same size): counters go on across
 * reloads, a restart starts them at zero.
 *
 * Requests are counted per (route, method, status, error code): a
 * combination takes an entry of a table shared by every process, once, by
 * a compare-and-swap of its key; each shard counts it at that entry.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_supportdesk_metrics.h"
#include "ngx_http_supportdesk_envelope.h"


/* combinations of route, method, status and error code */
#define NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES      512
/* shards of counters: a slot past the last but one shares the last */
#define NGX_HTTP_SUPPORTDESK_METRICS_SHARDS        64
#define NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS   17
#define NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS   20

/* a request's key: route, method, status, error, each in its bits */
#define ngx_http_supportdesk_metrics_key(route, method, status, error)       \
    ((((route) << 24) | ((method) << 20) | ((status) << 8) | (error)) + 1)


/* shorter names for the sizes of the zone's arrays */
#define NGX_HTTP_SUPPORTDESK_MX_BUCKETS                                       \
    NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS
#define NGX_HTTP_SUPPORTDESK_MX_STATES                                        \
    NGX_HTTP_SUPPORTDESK_METRICS_CONN_STATES
#define NGX_HTTP_SUPPORTDESK_MX_ROUTES   NGX_HTTP_SUPPORTDESK_METRICS_ROUTES
#define NGX_HTTP_SUPPORTDESK_MX_ENTRIES  NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES
#define NGX_HTTP_SUPPORTDESK_MX_ERRORS                                        \
    (NGX_HTTP_SUPPORTDESK_METRICS_ERR_REPLY                                   \
     + sizeof(ngx_http_supportdesk_metrics_reply_codes) / sizeof(ngx_str_t))


/*
 * The codes of Redis error replies counted as errors_total{kind} (after
 * the gateway's own kinds), lower-cased as the label; the last is every
 * other code.
 */
static ngx_str_t  ngx_http_supportdesk_metrics_reply_codes[] = {
    ngx_string("LOADING"), ngx_string("BUSY"), ngx_string("MASTERDOWN"),
    ngx_string("READONLY"), ngx_string("NOAUTH"), ngx_string("WRONGPASS"),
    ngx_string("NOPERM"), ngx_string("OOM"), ngx_string("CLUSTERDOWN"),
    ngx_string("TRYAGAIN"), ngx_string("NOREPLICAS"), ngx_string("MISCONF"),
    ngx_string("NOSCRIPT"), ngx_string("ERR"), ngx_string("OTHER")
};


/* bucket counts (not cumulative: one add per observation), the sum */
typedef struct {
    ngx_atomic_t   bucket[NGX_HTTP_SUPPORTDESK_MX_BUCKETS];
    ngx_atomic_t   sum_us;
} ngx_http_supportdesk_metrics_hist_t;


/*
 * One shard of counters: every member a word, so that a scrape sums the
 * shards word by word.
 */
typedef struct {
    ngx_atomic_t   requests[NGX_HTTP_SUPPORTDESK_MX_ENTRIES];
    /* requests of a combination that found the table full */
    ngx_atomic_t   requests_dropped;

    ngx_http_supportdesk_metrics_hist_t
                   request_duration[NGX_HTTP_SUPPORTDESK_MX_ROUTES];
    ngx_http_supportdesk_metrics_hist_t
                   command_duration;

    ngx_atomic_t   redis_errors[NGX_HTTP_SUPPORTDESK_MX_ERRORS];
    ngx_atomic_t   redirects[NGX_HTTP_SUPPORTDESK_METRICS_REDIRECT_KINDS];
    ngx_atomic_t   cluster_retries;
    ngx_atomic_t   cluster_refreshes;
    ngx_atomic_t   key_cache[NGX_HTTP_SUPPORTDESK_METRICS_KEY_RESULTS];
    ngx_atomic_t   events_appended;
    ngx_atomic_t   replays;
    ngx_atomic_t   jobs_started;
    ngx_atomic_t   jobs_done;
    ngx_atomic_t   jobs_lost;
} ngx_http_supportdesk_metrics_shard_t;

#define NGX_HTTP_SUPPORTDESK_METRICS_WORDS                                    \
    (sizeof(ngx_http_supportdesk_metrics_shard_t) / sizeof(ngx_atomic_t))

/* a shard and the next never share a cache line */
#define NGX_HTTP_SUPPORTDESK_METRICS_STRIDE                                   \
    ngx_align(sizeof(ngx_http_supportdesk_metrics_shard_t),                   \
              NGX_CPU_CACHE_LINE)


/* one process's gauges, a cache line of its own */
typedef struct {
    ngx_atomic_t   pid;
    ngx_atomic_t   conns[NGX_HTTP_SUPPORTDESK_MX_STATES];
    ngx_atomic_t   pending;
    ngx_atomic_t   jobs_running;
    ngx_atomic_t   pad[2];
} ngx_http_supportdesk_metrics_proc_t;


/* the zone: its start is page-aligned, so is every part (sizes of 64) */
typedef struct {
    /* 0: free; else the key of the combination the entry counts */
    ngx_atomic_t   keys[NGX_HTTP_SUPPORTDESK_MX_ENTRIES];

    ngx_http_supportdesk_metrics_proc_t
                   procs[NGX_MAX_PROCESSES];

    /* NGX_HTTP_SUPPORTDESK_METRICS_SHARDS, STRIDE bytes apart */
    u_char         shards[1];
} ngx_http_supportdesk_metrics_sh_t;

#define NGX_HTTP_SUPPORTDESK_METRICS_SIZE                                     \
    (offsetof(ngx_http_supportdesk_metrics_sh_t, shards)                      \
     + NGX_HTTP_SUPPORTDESK_METRICS_SHARDS                                    \
       * NGX_HTTP_SUPPORTDESK_METRICS_STRIDE)


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
static ngx_inline void ngx_http_supportdesk_metrics_add(ngx_atomic_t *word,
    ngx_atomic_uint_t n);
static void ngx_http_supportdesk_metrics_observe(
    ngx_http_supportdesk_metrics_hist_t *h, const uint64_t *bounds,
    ngx_uint_t n, uint64_t us);
static ngx_uint_t ngx_http_supportdesk_metrics_method(ngx_http_request_t *r);
static ngx_uint_t ngx_http_supportdesk_metrics_error_index(const char *code);
static ngx_int_t ngx_http_supportdesk_metrics_render(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_http_supportdesk_metrics_shard_t *total,
    ngx_http_supportdesk_metrics_row_t *rows, ngx_uint_t nrows);
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


/* this process's zone, shard (NULL: metrics off) and gauges (NULL: none) */
static ngx_http_supportdesk_metrics_sh_t     *ngx_http_supportdesk_metrics_sh;
static ngx_http_supportdesk_metrics_shard_t  *ngx_http_supportdesk_metrics_my;
static ngx_http_supportdesk_metrics_proc_t   *ngx_http_supportdesk_metrics_me;
/* the shard is this process's alone: plain adds, no atomic needed */
static ngx_uint_t                        ngx_http_supportdesk_metrics_alone;

/* the route templates, by route number (0: none matched) */
static ngx_str_t   ngx_http_supportdesk_metrics_route_names[
                                      NGX_HTTP_SUPPORTDESK_METRICS_ROUTES];
static ngx_uint_t  ngx_http_supportdesk_metrics_nroutes = 1;
static size_t      ngx_http_supportdesk_metrics_route_max;


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


static ngx_str_t  ngx_http_supportdesk_metrics_allow =
    ngx_string("GET, HEAD");

/* Prometheus's text exposition format */
static ngx_str_t  ngx_http_supportdesk_metrics_type =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");


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


/* the gateway's own kinds, then the reply codes lower-cased */
static ngx_str_t  ngx_http_supportdesk_metrics_error_kinds[] = {
    ngx_string("connect"), ngx_string("closed"), ngx_string("timeout"),
    ngx_string("admission")
};

static ngx_str_t  ngx_http_supportdesk_metrics_redirect_kinds[] = {
    ngx_string("moved"), ngx_string("ask")
};

static ngx_str_t  ngx_http_supportdesk_metrics_key_results[] = {
    ngx_string("hit"), ngx_string("negative"), ngx_string("miss"),
    ngx_string("limited")
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
    size = ngx_align(NGX_HTTP_SUPPORTDESK_METRICS_SIZE, ngx_pagesize)
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

    /* more than a page: page-aligned, as the layout needs */
    sh = ngx_slab_alloc(shpool, NGX_HTTP_SUPPORTDESK_METRICS_SIZE);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, NGX_HTTP_SUPPORTDESK_METRICS_SIZE);

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
    ngx_http_supportdesk_metrics_route_max = sizeof("unmatched") - 1;

    for (i = 0; i < n; i++) {
        ngx_http_supportdesk_metrics_route_names[i + 1] = names[i];
        ngx_http_supportdesk_metrics_route_max =
                      ngx_max(ngx_http_supportdesk_metrics_route_max,
                              names[i].len);
    }

    ngx_http_supportdesk_metrics_nroutes = n + 1;

    return NGX_OK;
}


void
ngx_http_supportdesk_metrics_init_process(ngx_shm_zone_t *zone)
{
    ngx_uint_t                            slot;
    ngx_http_supportdesk_metrics_sh_t    *sh;
    ngx_http_supportdesk_metrics_proc_t  *p;

    ngx_http_supportdesk_metrics_sh = NULL;
    ngx_http_supportdesk_metrics_my = NULL;
    ngx_http_supportdesk_metrics_me = NULL;

    if (zone == NULL || zone->data == NULL) {
        return;
    }

    sh = zone->data;

    /*
     * The master spawns a process into a free slot, or a crashed worker's
     * replacement into the crashed one's: a slot's previous process is
     * gone (single-process mode: slot 0).
     */
    slot = (ngx_process_slot >= 0) ? (ngx_uint_t) ngx_process_slot : 0;

    if (slot < NGX_HTTP_SUPPORTDESK_METRICS_SHARDS - 1) {
        ngx_http_supportdesk_metrics_alone = 1;

    } else {
        slot = NGX_HTTP_SUPPORTDESK_METRICS_SHARDS - 1;
        ngx_http_supportdesk_metrics_alone = 0;
    }

    ngx_http_supportdesk_metrics_my = (ngx_http_supportdesk_metrics_shard_t *)
        (sh->shards + slot * NGX_HTTP_SUPPORTDESK_METRICS_STRIDE);

    if (ngx_process_slot >= 0 && ngx_process_slot < NGX_MAX_PROCESSES) {
        p = &sh->procs[ngx_process_slot];

        p->pid = 0;
        ngx_memory_barrier();

        p->conns[0] = 0;
        p->conns[1] = 0;
        p->conns[2] = 0;
        p->pending = 0;
        p->jobs_running = 0;

        ngx_memory_barrier();
        p->pid = (ngx_atomic_uint_t) ngx_pid;

        ngx_http_supportdesk_metrics_me = p;
    }

    ngx_http_supportdesk_metrics_sh = sh;
}


void
ngx_http_supportdesk_metrics_exit_process(void)
{
    ngx_http_supportdesk_metrics_proc_t  *p;

    p = ngx_http_supportdesk_metrics_me;

    ngx_http_supportdesk_metrics_sh = NULL;
    ngx_http_supportdesk_metrics_my = NULL;
    ngx_http_supportdesk_metrics_me = NULL;

    if (p != NULL) {
        p->pid = 0;
        ngx_memory_barrier();

        p->pending = 0;
        p->jobs_running = 0;
        p->conns[0] = 0;
        p->conns[1] = 0;
        p->conns[2] = 0;
    }
}


static ngx_uint_t
ngx_http_supportdesk_metrics_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


/* ------------------------------------------------------------ recording */

static ngx_inline void
ngx_http_supportdesk_metrics_add(ngx_atomic_t *word, ngx_atomic_uint_t n)
{
    if (ngx_http_supportdesk_metrics_alone) {
        /* one writer; a scrape reads the aligned word whole */
        *word += n;

    } else {
        (void) ngx_atomic_fetch_add(word, (ngx_atomic_int_t) n);
    }
}


uint64_t
ngx_http_supportdesk_metrics_now(void)
{
    struct timespec  ts;

    if (ngx_http_supportdesk_metrics_my == NULL) {
        return 0;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
ngx_http_supportdesk_metrics_request(ngx_http_request_t *r, ngx_uint_t route,
    ngx_uint_t status, const char *error)
{
    ngx_uint_t                             n, key, hash;
    ngx_msec_int_t                         ms;
    ngx_time_t                            *tp;
    ngx_atomic_t                          *k;
    ngx_http_supportdesk_metrics_sh_t     *sh;
    ngx_http_supportdesk_metrics_shard_t  *my;

    my = ngx_http_supportdesk_metrics_my;

    if (my == NULL) {
        return;
    }

    sh = ngx_http_supportdesk_metrics_sh;

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
    hash = (ngx_uint_t) (((uint32_t) key * 2654435769u) >> 23);

    for (n = 0; n < NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES; n++) {
        k = &sh->keys[(hash + n) % NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES];

        /* another process may take a free entry first, for this key too */
        if (*k == key
            || (*k == 0 && ngx_atomic_cmp_set(k, 0, key))
            || *k == key)
        {
            ngx_http_supportdesk_metrics_add(&my->requests[k - sh->keys], 1);
            break;
        }
    }

    if (n == NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES) {
        ngx_http_supportdesk_metrics_add(&my->requests_dropped, 1);
    }

    /* as $request_time: the cached time, to the millisecond */
    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    ngx_http_supportdesk_metrics_observe(&my->request_duration[route],
                            ngx_http_supportdesk_metrics_req_bounds,
                            NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS - 1,
                            (uint64_t) ms * 1000);
}


void
ngx_http_supportdesk_metrics_redis_command(uint64_t start)
{
    uint64_t  now;

    if (ngx_http_supportdesk_metrics_my == NULL || start == 0) {
        return;
    }

    now = ngx_http_supportdesk_metrics_now();

    ngx_http_supportdesk_metrics_observe(
                            &ngx_http_supportdesk_metrics_my->command_duration,
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

    ngx_http_supportdesk_metrics_add(&h->bucket[i], 1);
    ngx_http_supportdesk_metrics_add(&h->sum_us, (ngx_atomic_uint_t) us);
}


void
ngx_http_supportdesk_metrics_redis_error(
    ngx_http_supportdesk_metrics_error_e kind)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                           &ngx_http_supportdesk_metrics_my->redis_errors[kind],
                           1);
    }
}


void
ngx_http_supportdesk_metrics_redis_reply_error(const char *str, size_t len)
{
    size_t       n;
    ngx_uint_t   i, last;
    ngx_str_t   *code;

    if (ngx_http_supportdesk_metrics_my == NULL) {
        return;
    }

    /* the code: the first word */
    for (n = 0; n < len && str[n] != ' '; n++) { /* void */ }

    /* a script's own refusal is an answer */
    if (n >= 3 && ngx_strncmp(str, "SD_", 3) == 0) {
        return;
    }

    last = sizeof(ngx_http_supportdesk_metrics_reply_codes) / sizeof(ngx_str_t)
           - 1;

    for (i = 0; i < last; i++) {
        code = &ngx_http_supportdesk_metrics_reply_codes[i];

        if (code->len == n && ngx_strncmp(str, code->data, n) == 0) {
            break;
        }
    }

    ngx_http_supportdesk_metrics_add(
           &ngx_http_supportdesk_metrics_my->redis_errors[
                                 NGX_HTTP_SUPPORTDESK_METRICS_ERR_REPLY + i],
           1);
}


void
ngx_http_supportdesk_metrics_redis_redirect(
    ngx_http_supportdesk_metrics_redirect_e kind)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                              &ngx_http_supportdesk_metrics_my->redirects[kind],
                              1);
    }
}


void
ngx_http_supportdesk_metrics_cluster_retry(void)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                             &ngx_http_supportdesk_metrics_my->cluster_retries,
                             1);
    }
}


void
ngx_http_supportdesk_metrics_cluster_refresh(void)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                           &ngx_http_supportdesk_metrics_my->cluster_refreshes,
                           1);
    }
}


/* a process's own gauges: only it writes there */

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
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                           &ngx_http_supportdesk_metrics_my->key_cache[result],
                           1);
    }
}


void
ngx_http_supportdesk_metrics_events(ngx_uint_t n)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                             &ngx_http_supportdesk_metrics_my->events_appended,
                             n);
    }
}


void
ngx_http_supportdesk_metrics_replay(void)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                                     &ngx_http_supportdesk_metrics_my->replays,
                                     1);
    }
}


void
ngx_http_supportdesk_metrics_job_started(void)
{
    if (ngx_http_supportdesk_metrics_my != NULL) {
        ngx_http_supportdesk_metrics_add(
                                &ngx_http_supportdesk_metrics_my->jobs_started,
                                1);
    }
}


void
ngx_http_supportdesk_metrics_job_running(ngx_int_t n)
{
    if (ngx_http_supportdesk_metrics_me != NULL) {
        ngx_http_supportdesk_metrics_me->jobs_running += n;
    }
}


void
ngx_http_supportdesk_metrics_job_chunk(
    ngx_http_supportdesk_metrics_job_e status)
{
    ngx_http_supportdesk_metrics_shard_t  *my;

    my = ngx_http_supportdesk_metrics_my;

    if (my == NULL) {
        return;
    }

    switch (status) {

    case NGX_HTTP_SUPPORTDESK_METRICS_JOB_DONE:
        ngx_http_supportdesk_metrics_add(&my->jobs_done, 1);
        break;

    case NGX_HTTP_SUPPORTDESK_METRICS_JOB_LOST:
        ngx_http_supportdesk_metrics_add(&my->jobs_lost, 1);
        break;

    default:
        break;
    }
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
    size_t                                 size, line;
    ngx_int_t                              rc;
    ngx_buf_t                             *b;
    ngx_uint_t                             i, s, nrows;
    ngx_atomic_t                          *sum, *word;
    ngx_atomic_uint_t                      key, count;
    ngx_http_supportdesk_metrics_sh_t     *sh;
    ngx_http_supportdesk_metrics_row_t    *rows;
    ngx_http_supportdesk_metrics_shard_t  *total;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        if (ngx_http_supportdesk_allow_header(r,
                                      &ngx_http_supportdesk_metrics_allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_supportdesk_metrics_sh;

    if (sh == NULL) {
        /* not a worker of this configuration (cannot happen) */
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* every shard's counters summed, word by word */
    total = ngx_pcalloc(r->pool, sizeof(ngx_http_supportdesk_metrics_shard_t));
    if (total == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sum = (ngx_atomic_t *) total;

    for (s = 0; s < NGX_HTTP_SUPPORTDESK_METRICS_SHARDS; s++) {
        word = (ngx_atomic_t *)
                   (sh->shards + s * NGX_HTTP_SUPPORTDESK_METRICS_STRIDE);

        for (i = 0; i < NGX_HTTP_SUPPORTDESK_METRICS_WORDS; i++) {
            sum[i] += word[i];
        }
    }

    /* the combinations counted, by key */
    rows = ngx_palloc(r->pool, NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES
                               * sizeof(ngx_http_supportdesk_metrics_row_t));
    if (rows == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nrows = 0;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_METRICS_ENTRIES; i++) {
        key = sh->keys[i];
        count = total->requests[i];

        if (key == 0 || count == 0) {
            continue;
        }

        rows[nrows].key = key - 1;
        rows[nrows].count = count;
        nrows++;
    }

    ngx_qsort(rows, nrows, sizeof(ngx_http_supportdesk_metrics_row_t),
              ngx_http_supportdesk_metrics_cmp);

    /*
     * Room for every line there is: a line with a route label at most
     * "line" long (name, labels escaped, value); each combination twice
     * (the requests, the errors), each route's histogram, the rest.
     */
    line = 160 + 2 * ngx_http_supportdesk_metrics_route_max;
    size = (2 * nrows
            + ngx_http_supportdesk_metrics_nroutes
              * (NGX_HTTP_SUPPORTDESK_METRICS_REQ_BUCKETS + 2))
           * line
           + 32768;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_supportdesk_metrics_render(r, b, total, rows, nrows)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_supportdesk_send_buffer(r, NGX_HTTP_OK,
                                        &ngx_http_supportdesk_metrics_type, b);
}


static ngx_int_t
ngx_http_supportdesk_metrics_render(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_http_supportdesk_metrics_shard_t *total,
    ngx_http_supportdesk_metrics_row_t *rows, ngx_uint_t nrows)
{
    u_char                                lower[16];
    ngx_str_t                            *kind, code;
    ngx_uint_t                            i, j, used, nkinds;
    ngx_atomic_uint_t                     v, pending, running;
    ngx_http_supportdesk_metrics_sh_t    *sh;
    ngx_http_supportdesk_metrics_out_t    out;
    ngx_http_supportdesk_metrics_proc_t  *p;
    ngx_http_supportdesk_metrics_hist_t  *h;
    ngx_atomic_uint_t                     conns[NGX_HTTP_SUPPORTDESK_MX_STATES];

    sh = ngx_http_supportdesk_metrics_sh;

    out.pos = b->last;
    out.end = b->end;

    /* -------------------------------------------------- requests */

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_requests_total", "counter",
        "Requests answered in the supportdesk locations, by route template, "
        "method and HTTP status code.");
    ngx_http_supportdesk_metrics_requests(&out, rows, nrows, 0);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_errors_total", "counter",
        "Error answers by route template, method, HTTP status code and the "
        "envelope's error code (error).");
    ngx_http_supportdesk_metrics_requests(&out, rows, nrows, 1);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_requests_dropped_total", "counter",
        "Requests not counted by route: the table of combinations was full.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_http_requests_dropped_total %uA\n",
        total->requests_dropped);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_http_request_duration_seconds", "histogram",
        "Time from the request's first byte to its log phase, by route "
        "template (millisecond resolution, as $request_time).");

    for (i = 0; i < ngx_http_supportdesk_metrics_nroutes; i++) {
        h = &total->request_duration[i];
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
                             NULL, &total->command_duration,
                             ngx_http_supportdesk_metrics_cmd_les,
                             NGX_HTTP_SUPPORTDESK_METRICS_CMD_BUCKETS);

    conns[0] = conns[1] = conns[2] = 0;
    pending = 0;
    running = 0;

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
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
        "The workers' connections to Redis for requests (to every master "
        "of a cluster; not those to sentinels, nor the job runner's), by "
        "state.");

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
        "supportdesk_redis_timeout), admission (a request answered 503 "
        "without a command sent); then the error replies Redis sent, by "
        "their code (loading, readonly, oom, clusterdown, tryagain, noscript, "
        "err ..., other: a MOVED or ASK not followed too), a script's own "
        "refusals and the redirects a cluster follows not included.");

    nkinds = sizeof(ngx_http_supportdesk_metrics_error_kinds)
             / sizeof(ngx_str_t);

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_MX_ERRORS; j++) {
        if (j < nkinds) {
            kind = &ngx_http_supportdesk_metrics_error_kinds[j];

        } else {
            kind = &ngx_http_supportdesk_metrics_reply_codes[j - nkinds];
            code.len = ngx_min(kind->len, sizeof(lower));
            code.data = lower;
            ngx_strlow(lower, kind->data, code.len);
            kind = &code;
        }

        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_redis_errors_total{kind=\"%V\"} %uA\n",
            kind, total->redis_errors[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_redirects_total", "counter",
        "Redis Cluster redirections: moved (MOVED: the slot lives on "
        "another master, the command goes there), ask (ASK: a slot being "
        "migrated, this command goes to the target).");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_REDIRECT_KINDS; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_redis_redirects_total{kind=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_redirect_kinds[j],
            total->redirects[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_cluster_retries_total", "counter",
        "Redis Cluster commands sent again after a short backoff, refused "
        "for now by a node (TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, "
        "READONLY; errors_total counts each by its code).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_redis_cluster_retries_total %uA\n",
        total->cluster_retries);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_redis_cluster_refreshes_total", "counter",
        "Redis Cluster slot map refreshes: CLUSTER SLOTS sent (after a "
        "MOVED, a node lost or refusing, and periodically).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_redis_cluster_refreshes_total %uA\n",
        total->cluster_refreshes);

    /* -------------------------------------------------- the rest */

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_key_cache_lookups_total", "counter",
        "API key cache lookups: hit (a good key), negative (a key known to "
        "be bad, refused from the cache), miss (asked of Redis: unknown, or "
        "past its ttl), limited (unknown, refused without a lookup: "
        "supportdesk_key_lookup_rate reached).");

    for (j = 0; j < NGX_HTTP_SUPPORTDESK_METRICS_KEY_RESULTS; j++) {
        ngx_http_supportdesk_metrics_printf(&out,
            "supportdesk_key_cache_lookups_total{result=\"%V\"} %uA\n",
            &ngx_http_supportdesk_metrics_key_results[j],
            total->key_cache[j]);
    }

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_jobs", "gauge",
        "Bulk-update jobs this gateway's workers are running now: a chunk "
        "claimed and not answered yet (between chunks a job pauses, and "
        "any gateway may run its next one).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_jobs{status=\"running\"} %uA\n", running);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_jobs_started_total", "counter",
        "Bulk-update jobs whose first chunk this gateway's workers ran.");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_jobs_started_total %uA\n", total->jobs_started);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_jobs_finished_total", "counter",
        "Bulk-update jobs whose last chunk this gateway's workers ran (done: "
        "finished, or failed), or whose chunk found another runner holding "
        "the job (lost).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_jobs_finished_total{status=\"done\"} %uA\n"
        "supportdesk_jobs_finished_total{status=\"lost\"} %uA\n",
        total->jobs_done, total->jobs_lost);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_events_appended_total", "counter",
        "Change-feed events the writes of this gateway appended (requests "
        "and bulk-update chunks).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_events_appended_total %uA\n", total->events_appended);

    ngx_http_supportdesk_metrics_header(&out,
        "supportdesk_idempotent_replays_total", "counter",
        "Answers replayed from an Idempotency-Key's record (a batch's items "
        "each).");
    ngx_http_supportdesk_metrics_printf(&out,
        "supportdesk_idempotent_replays_total %uA\n", total->replays);

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
