
/*
 * Unit tests of ngx_http_supportdesk_cluster.c: key slots against the
 * values CLUSTER KEYSLOT gives, the commands' slots, the verdicts on a
 * node's answers, and CLUSTER SLOTS replies, well and badly formed (built
 * by hiredis's own reader from RESP, as the pool gets them).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_supportdesk_cluster.h"
#include "tap.h"


static redisReply *resp(const char *text);
static ngx_http_supportdesk_cluster_verdict_e verdict(const char *error,
    ngx_uint_t *slot, char *addr);
static ngx_int_t slots(const char *text,
    ngx_http_supportdesk_cluster_range_t *r, ngx_uint_t max);


/* the replies parsed, freed at the end (ranges point into them) */
static redisReply  *replies[64];
static ngx_uint_t   nreplies;


int
main(void)
{
    char                                   addr[64];
    size_t                                 lens[3];
    ngx_uint_t                             slot;
    const char                            *argv[3];
    ngx_http_supportdesk_cluster_range_t   r[4];

    ngx_http_supportdesk_cluster_init();

    /* CRC16-XMODEM of "123456789" is 0x31C3: slot 12739 */
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "123456789",
                                                     9), 12739,
               "slot: the CRC16 check value");
    /* as CLUSTER KEYSLOT answers (redis-server 7.0) */
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "acme", 4),
               11304, "slot: acme");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot(
                   (u_char *) "sd:{acme}:c:user_42", 19), 11304,
               "slot: a key of app acme hashes on acme");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "foo", 3),
               12182, "slot: foo");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "{}foo", 5),
               9500, "slot: an empty {} hashes the whole key");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "foo{bar", 7),
               15278, "slot: a { without } hashes the whole key");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot(
                   (u_char *) "{user1000}.following", 20),
               ngx_http_supportdesk_cluster_key_slot((u_char *) "user1000",
                                                     8),
               "slot: the first {tag} only");
    tap_is_int(ngx_http_supportdesk_cluster_key_slot((u_char *) "", 0), 0,
               "slot: the empty key");

    argv[0] = "2";
    argv[1] = "sd:{acme}:c:x";
    argv[2] = "sd:{acme}:emails";
    lens[0] = 1;
    lens[1] = strlen(argv[1]);
    lens[2] = strlen(argv[2]);
    tap_is_int(ngx_http_supportdesk_cluster_command_slot(3, 3, argv, lens),
               11304, "command: a script's first key");
    argv[0] = "0";
    tap_is_int(ngx_http_supportdesk_cluster_command_slot(3, 3, argv, lens),
               NGX_DECLINED, "command: a script without keys");
    argv[0] = "x";
    tap_is_int(ngx_http_supportdesk_cluster_command_slot(3, 3, argv, lens),
               NGX_DECLINED, "command: a script's bad numkeys");
    argv[0] = "HGET";
    argv[1] = "sd:apikey:abc";
    lens[0] = 4;
    lens[1] = strlen(argv[1]);
    tap_is_int(ngx_http_supportdesk_cluster_command_slot(-1, 2, argv, lens),
               ngx_http_supportdesk_cluster_key_slot((u_char *) argv[1],
                                                     lens[1]),
               "command: a plain command's key, argv[1]");
    tap_is_int(ngx_http_supportdesk_cluster_command_slot(-1, 1, argv, lens),
               NGX_DECLINED, "command: no key");

    tap_is_int(verdict("MOVED 3999 127.0.0.1:6381", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_MOVED, "verdict: MOVED");
    tap_is_int(slot, 3999, "verdict: MOVED's slot");
    tap_is(addr, "127.0.0.1:6381", "verdict: MOVED's address");
    tap_is_int(verdict("ASK 16383 [::1]:7000", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ASK, "verdict: ASK");
    tap_is_int(slot, 16383, "verdict: ASK's slot");
    tap_is(addr, "[::1]:7000", "verdict: ASK's address");
    tap_is_int(verdict("MOVED 16384 127.0.0.1:1", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: a slot past the last is not a redirection");
    tap_is_int(verdict("MOVED 12", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: MOVED without an address");
    tap_is_int(verdict("MOVED 12 ", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: MOVED with an empty address");
    tap_is_int(verdict("MOVED x 1.2.3.4:5", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: MOVED without a slot");
    tap_is_int(verdict("MOVED 99999999999999999999 1.2.3.4:5", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: a slot number that overflows");
    tap_is_int(verdict("TRYAGAIN Multiple keys request during rehashing of "
                       "slot", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_TRYAGAIN, "verdict: TRYAGAIN");
    tap_is_int(verdict("CLUSTERDOWN The cluster is down", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_RETRY, "verdict: CLUSTERDOWN");
    tap_is_int(verdict("LOADING Redis is loading", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_RETRY, "verdict: LOADING");
    tap_is_int(verdict("MASTERDOWN Link with MASTER is down", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_RETRY, "verdict: MASTERDOWN");
    tap_is_int(verdict("READONLY You can't write against a read only "
                       "replica.", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_READONLY, "verdict: READONLY");
    tap_is_int(verdict("CROSSSLOT Keys in request don't hash to the same "
                       "slot", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: CROSSSLOT is the request's (a bug, not a route)");
    tap_is_int(verdict("ERR MOVED 1 1.2.3.4:5", &slot, addr),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER,
               "verdict: a script's own error that mentions MOVED");
    tap_is_int(ngx_http_supportdesk_cluster_verdict(resp("+OK\r\n"), &slot,
                                                    (ngx_str_t *) r),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER, "verdict: a status");
    tap_is_int(ngx_http_supportdesk_cluster_verdict(NULL, &slot,
                                                    (ngx_str_t *) r),
               NGX_HTTP_SUPPORTDESK_CLUSTER_ANSWER, "verdict: no reply");

    /* two masters with a replica each, the second one's host empty */
    tap_is_int(slots("*2\r\n"
                     "*4\r\n:0\r\n:5460\r\n"
                     "*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n"
                     "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n"
                     "*3\r\n:5461\r\n:16383\r\n"
                     "*3\r\n$0\r\n\r\n:7002\r\n$2\r\nid\r\n", r, 4), 2,
               "slots: two ranges");
    tap_is_int(r[0].first, 0, "slots: first range's start");
    tap_is_int(r[0].last, 5460, "slots: first range's end");
    tap_ok(r[0].host.len == 9 && memcmp(r[0].host.data, "127.0.0.1", 9) == 0,
           "slots: first range's master host");
    tap_is_int(r[0].port, 7001, "slots: first range's master port");
    tap_is_int(r[1].host.len, 0, "slots: an empty host (the node asked)");
    tap_is_int(r[1].port, 7002, "slots: second range's port");

    tap_is_int(slots("*1\r\n*3\r\n:0\r\n:16383\r\n"
                     "*3\r\n$1\r\n?\r\n:7001\r\n$2\r\nid\r\n", r, 4), 0,
               "slots: a master whose address is unknown is skipped");
    tap_is_int(slots("*0\r\n", r, 4), 0, "slots: no slots assigned");
    tap_is_int(slots("-ERR This instance has cluster support disabled\r\n",
                     r, 4), NGX_ERROR, "slots: an error");
    tap_is_int(slots("*1\r\n*3\r\n:10\r\n:5\r\n"
                     "*2\r\n$1\r\na\r\n:1\r\n", r, 4), NGX_ERROR,
               "slots: a range that ends before it starts");
    tap_is_int(slots("*1\r\n*3\r\n:0\r\n:16384\r\n"
                     "*2\r\n$1\r\na\r\n:1\r\n", r, 4), NGX_ERROR,
               "slots: a range past the last slot");
    tap_is_int(slots("*1\r\n*3\r\n:0\r\n:1\r\n"
                     "*2\r\n$1\r\na\r\n:70000\r\n", r, 4), NGX_ERROR,
               "slots: a port out of range");
    tap_is_int(slots("*1\r\n*2\r\n:0\r\n:1\r\n", r, 4), NGX_ERROR,
               "slots: a range without a master");
    tap_is_int(slots("*1\r\n*3\r\n$1\r\n0\r\n:1\r\n"
                     "*2\r\n$1\r\na\r\n:1\r\n", r, 4), NGX_ERROR,
               "slots: a start that is not a number");
    tap_is_int(slots("*2\r\n"
                     "*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:1\r\n"
                     "*3\r\n:2\r\n:3\r\n*2\r\n$1\r\nb\r\n:1\r\n", r, 1),
               NGX_ERROR, "slots: more ranges than room");

    while (nreplies) {
        freeReplyObject(replies[--nreplies]);
    }

    return tap_done();
}


/* a reply as the pool gets it: parsed by hiredis's reader */

static redisReply *
resp(const char *text)
{
    void         *reply;
    redisReader  *reader;

    reader = redisReaderCreate();
    reply = NULL;

    if (reader == NULL
        || redisReaderFeed(reader, text, strlen(text)) != REDIS_OK
        || redisReaderGetReply(reader, &reply) != REDIS_OK)
    {
        fprintf(stderr, "# cannot parse the test reply\n");
        reply = NULL;
    }

    if (reader != NULL) {
        redisReaderFree(reader);
    }

    if (reply != NULL && nreplies < sizeof(replies) / sizeof(replies[0])) {
        replies[nreplies++] = reply;
    }

    return reply;
}


static ngx_http_supportdesk_cluster_verdict_e
verdict(const char *error, ngx_uint_t *slot, char *addr)
{
    char                                    text[256];
    ngx_str_t                               a;
    ngx_http_supportdesk_cluster_verdict_e  v;

    snprintf(text, sizeof(text), "-%s\r\n", error);

    a.len = 0;
    a.data = NULL;
    *slot = 0;
    v = ngx_http_supportdesk_cluster_verdict(resp(text), slot, &a);

    memcpy(addr, a.data ? (char *) a.data : "", a.len);
    addr[a.len] = '\0';

    return v;
}


static ngx_int_t
slots(const char *text, ngx_http_supportdesk_cluster_range_t *r,
    ngx_uint_t max)
{
    return ngx_http_supportdesk_cluster_parse_slots(resp(text), r, max);
}
