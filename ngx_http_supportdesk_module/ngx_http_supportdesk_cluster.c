
/*
 * Redis Cluster without I/O: key slots, what a node's answer means for
 * routing, and the slot map of a CLUSTER SLOTS reply (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_cluster.h"


static ngx_uint_t ngx_http_supportdesk_cluster_prefix(redisReply *reply,
    const char *prefix, size_t len);
static ngx_int_t ngx_http_supportdesk_cluster_target(redisReply *reply,
    size_t skip, ngx_uint_t *slot, ngx_str_t *addr);
static ngx_int_t ngx_http_supportdesk_cluster_number(const u_char *p,
    size_t len, ngx_uint_t max);


/* CRC16-CCITT (XMODEM), as the cluster specification hashes keys */
static uint16_t  ngx_http_supportdesk_crc16_table[256];


void
ngx_http_supportdesk_cluster_init(void)
{
    ngx_uint_t  i, bit;
    uint16_t    crc;

    for (i = 0; i < 256; i++) {
        crc = (uint16_t) (i << 8);

        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }

        ngx_http_supportdesk_crc16_table[i] = crc;
    }
}


ngx_uint_t
ngx_http_supportdesk_cluster_key_slot(const u_char *key, size_t len)
{
    size_t          i;
    uint16_t        crc;
    const u_char   *open, *close;

    /* a non-empty {tag} hashes alone: every key of an app is in its slot */
    open = ngx_strlchr((u_char *) key, (u_char *) key + len, '{');

    if (open != NULL) {
        close = ngx_strlchr((u_char *) open + 1, (u_char *) key + len, '}');

        if (close != NULL && close > open + 1) {
            len = close - open - 1;
            key = open + 1;
        }
    }

    crc = 0;

    for (i = 0; i < len; i++) {
        crc = (uint16_t) ((crc << 8)
                          ^ ngx_http_supportdesk_crc16_table[((crc >> 8)
                                                              ^ key[i])
                                                             & 0xff]);
    }

    return crc & (NGX_HTTP_SUPPORTDESK_CLUSTER_SLOTS - 1);
}


ngx_int_t
ngx_http_supportdesk_cluster_command_slot(ngx_int_t script, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_int_t  numkeys;

    if (argc < 2) {
        return NGX_DECLINED;
    }

    if (script >= 0) {
        numkeys = ngx_http_supportdesk_cluster_number((u_char *) argv[0],
                                                      argvlen[0], 1000000);

        if (numkeys <= 0) {
            return NGX_DECLINED;
        }
    }

    /* the first key: the module's keys of one command share their slot */
    return ngx_http_supportdesk_cluster_key_slot((const u_char *) argv[1],
                                                 argvlen[1]);
}


ngx_http_supportdesk_cluster_verdict_e
ngx_http_supportdesk_cluster_verdict(redisReply *reply, ngx_uint_t *slot,
    ngx_str_t *addr)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER;
    }

#define ngx_http_supportdesk_cluster_is(p)                                   \
    ngx_http_supportdesk_cluster_prefix(reply, p, sizeof(p) - 1)

    if (ngx_http_supportdesk_cluster_is("MOVED ")) {
        return ngx_http_supportdesk_cluster_target(reply, 6, slot, addr)
               == NGX_OK ? NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED
                         : NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER;
    }

    if (ngx_http_supportdesk_cluster_is("ASK ")) {
        return ngx_http_supportdesk_cluster_target(reply, 4, slot, addr)
               == NGX_OK ? NGX_HTTP_SUPPORTDESK_CLUSTER_ASK
                         : NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER;
    }

    if (ngx_http_supportdesk_cluster_is("TRYAGAIN")) {
        return NGX_HTTP_SUPPORTDESK_CLUSTER_TRYAGAIN;
    }

    if (ngx_http_supportdesk_cluster_is("CLUSTERDOWN")
        || ngx_http_supportdesk_cluster_is("LOADING")
        || ngx_http_supportdesk_cluster_is("MASTERDOWN"))
    {
        return NGX_HTTP_SUPPORTDESK_CLUSTER_RETRY;
    }

    if (ngx_http_supportdesk_cluster_is("READONLY")) {
        return NGX_HTTP_SUPPORTDESK_CLUSTER_READONLY;
    }

#undef ngx_http_supportdesk_cluster_is

    return NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER;
}


static ngx_uint_t
ngx_http_supportdesk_cluster_prefix(redisReply *reply, const char *prefix,
    size_t len)
{
    return reply->len >= len && ngx_strncmp(reply->str, prefix, len) == 0;
}


/* "<slot> <host>:<port>" after the word */

static ngx_int_t
ngx_http_supportdesk_cluster_target(redisReply *reply, size_t skip,
    ngx_uint_t *slot, ngx_str_t *addr)
{
    u_char     *p, *end, *start;
    ngx_int_t   n;

    p = (u_char *) reply->str + skip;
    end = (u_char *) reply->str + reply->len;
    start = p;

    while (p < end && *p >= '0' && *p <= '9') {
        p++;
    }

    n = ngx_http_supportdesk_cluster_number(start, p - start,
                                        NGX_HTTP_SUPPORTDESK_CLUSTER_SLOTS - 1);

    if (n == NGX_ERROR
        || p == end || *p != ' ')
    {
        return NGX_ERROR;
    }

    p++;

    if (p == end) {
        return NGX_ERROR;
    }

    *slot = n;
    addr->data = p;
    addr->len = end - p;

    return NGX_OK;
}


/* digits only, at most max; NGX_ERROR otherwise */

static ngx_int_t
ngx_http_supportdesk_cluster_number(const u_char *p, size_t len,
    ngx_uint_t max)
{
    size_t      i;
    ngx_uint_t  n;

    if (len == 0) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_ERROR;
        }

        n = n * 10 + (p[i] - '0');

        if (n > max) {
            return NGX_ERROR;
        }
    }

    return (ngx_int_t) n;
}


ngx_int_t
ngx_http_supportdesk_cluster_parse_slots(redisReply *reply,
    ngx_http_supportdesk_cluster_range_t *ranges, ngx_uint_t max)
{
    size_t       i;
    ngx_uint_t   n;
    redisReply  *e, *node, *host, *port;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        /* start, end, the master [host, port, id, ...], replicas... */
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2)
        {
            return NGX_ERROR;
        }

        node = e->element[2];
        host = node->element[0];
        port = node->element[1];

        if (e->element[0]->integer < 0
            || e->element[1]->integer < e->element[0]->integer
            || e->element[1]->integer >= NGX_HTTP_SUPPORTDESK_CLUSTER_SLOTS
            || host->type != REDIS_REPLY_STRING
            || port->type != REDIS_REPLY_INTEGER
            || port->integer <= 0 || port->integer > 65535)
        {
            return NGX_ERROR;
        }

        /* "?": the master's address is unknown for now; skipped */
        if (host->len == 1 && host->str[0] == '?') {
            continue;
        }

        if (n == max) {
            return NGX_ERROR;
        }

        ranges[n].first = (ngx_uint_t) e->element[0]->integer;
        ranges[n].last = (ngx_uint_t) e->element[1]->integer;
        ranges[n].host.data = (u_char *) host->str;
        ranges[n].host.len = host->len;
        ranges[n].port = (ngx_uint_t) port->integer;
        n++;
    }

    return n;
}
