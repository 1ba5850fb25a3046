
/*
 * API key authentication.  Keys are looked up by their SHA-256 in Redis
 * (sd:apikey:<hex>, field "app") and the answer kept in a shared memory
 * zone, so that every worker shares one cache.
 *
 * The cache names a key by its tag: SipHash-2-4-128 of the key under a
 * secret drawn when the zone is made.  It costs about 600 instructions
 * against SHA-256's 5,000 (a fifth of a cached GET, make bench-instr), and
 * the SHA-256 is computed for the keys the cache does not know only.  The
 * tag is a keyed pseudorandom function of the key: two keys share one with
 * a chance of 2^-128, and no one outside the workers sees a tag or the
 * secret, so no one can make up a key that shares another's; the tags also
 * spread the unknown keys over their buckets in a way no one can aim at.
 *
 * Good keys and unknown ones live apart in the zone, so that a flood of
 * made-up keys cannot evict a good one: good keys in an rbtree with an LRU
 * (a node per key, about 128 bytes), unknown ones in a fixed table of an
 * eighth of the zone, 4 slots per bucket, where a new entry replaces the
 * one of its bucket that expires first.  A good key past its ttl stays
 * (stale): it is asked again, and knowing it was good exempts that lookup
 * from the worker's bound on lookups of keys the cache does not know
 * (supportdesk_key_lookup_rate a second; past it 401 without a lookup).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_http_supportdesk.h"
#include "ngx_http_supportdesk_auth.h"
#include "ngx_http_supportdesk_siphash.h"
#include "ngx_http_supportdesk_store.h"


#define NGX_HTTP_SUPPORTDESK_KEY_PREFIX  "sd:apikey:"
/* entries dropped per failed allocation before giving up on caching */
#define NGX_HTTP_SUPPORTDESK_EVICT_MAX   8
/* the unknown keys' table: its share of the zone, and slots per bucket */
#define NGX_HTTP_SUPPORTDESK_BAD_SHARE   8
#define NGX_HTTP_SUPPORTDESK_BAD_WAYS    4


/* a good key; allocated to the length of its app (128 bytes up to 47) */
typedef struct {
    ngx_rbtree_node_t      node;
    ngx_queue_t            lru;
    ngx_msec_t             expires;     /* then stale: asked again */
    u_char                 tag[NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN];
    u_char                 app_len;
    u_char                 app[1];
} ngx_http_supportdesk_key_node_t;


/* an unknown key; expires 0: a free slot */
typedef struct {
    u_char                 tag[NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN];
    ngx_msec_t             expires;
} ngx_http_supportdesk_bad_key_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      lru;
    ngx_http_supportdesk_bad_key_t  *bad;
    ngx_uint_t                       nbuckets;
    /* the tags' key: written once, before any worker, then only read */
    u_char             secret[NGX_HTTP_SUPPORTDESK_SIPHASH_KEY_LEN];
} ngx_http_supportdesk_key_shctx_t;


typedef struct {
    ngx_http_supportdesk_key_shctx_t  *sh;
    ngx_slab_pool_t                   *shpool;
} ngx_http_supportdesk_key_cache_t;


static void ngx_http_supportdesk_auth_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_supportdesk_key_node_t *ngx_http_supportdesk_auth_lock(
    ngx_http_request_t *r, u_char *tag,
    ngx_http_supportdesk_key_cache_t **cachep);
static ngx_http_supportdesk_key_node_t *ngx_http_supportdesk_auth_find(
    ngx_http_supportdesk_key_cache_t *cache, u_char *tag);
static ngx_http_supportdesk_bad_key_t *ngx_http_supportdesk_auth_bad(
    ngx_http_supportdesk_key_cache_t *cache, u_char *tag,
    ngx_uint_t insert);
static void ngx_http_supportdesk_auth_drop(
    ngx_http_supportdesk_key_cache_t *cache,
    ngx_http_supportdesk_key_node_t *node);
static void ngx_http_supportdesk_auth_store(ngx_http_request_t *r,
    u_char *tag, ngx_str_t *app);
static ngx_int_t ngx_http_supportdesk_auth_spend(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx);
static ngx_int_t ngx_http_supportdesk_auth_reply(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply);


ngx_int_t
ngx_http_supportdesk_auth_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_supportdesk_key_cache_t  *ocache = data;

    size_t                             len, n;
    ngx_http_supportdesk_key_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache != NULL) {
        /* reload: the keys cached so far stay valid */
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_supportdesk_key_shctx_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    if (RAND_bytes(cache->sh->secret, sizeof(cache->sh->secret)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "supportdesk: no random bytes for the key cache's "
                      "secret (RAND_bytes() failed)");
        return NGX_ERROR;
    }

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_supportdesk_auth_rbtree_insert);
    ngx_queue_init(&cache->sh->lru);

    /* the unknown keys' share, taken once: they never ask for more */
    n = shm_zone->shm.size / NGX_HTTP_SUPPORTDESK_BAD_SHARE
        / (NGX_HTTP_SUPPORTDESK_BAD_WAYS
           * sizeof(ngx_http_supportdesk_bad_key_t));
    n = ngx_max(n, 1);

    cache->sh->bad = ngx_slab_calloc(cache->shpool,
                                  n * NGX_HTTP_SUPPORTDESK_BAD_WAYS
                                  * sizeof(ngx_http_supportdesk_bad_key_t));
    if (cache->sh->bad == NULL) {
        return NGX_ERROR;
    }

    cache->sh->nbuckets = n;

    len = sizeof(" in supportdesk key cache \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in supportdesk key cache \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full cache evicts; it is not worth an error line per request */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


void
ngx_http_supportdesk_auth_tag(ngx_http_request_t *r, ngx_str_t *key,
    u_char *tag)
{
    ngx_http_supportdesk_key_cache_t  *cache;
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
    cache = smcf->key_cache_zone->data;

    ngx_http_supportdesk_siphash128(cache->sh->secret, key->data, key->len,
                                    tag);
}


/*
 * OpenSSL 3 looks the algorithm up again on every SHA256() or
 * EVP_DigestInit_ex(EVP_sha256()) call, and a fresh context is allocated
 * each time: about 7,800 instructions, a fifth of a cached GET (make
 * bench-instr).  The algorithm is fetched once and one context reused:
 * a worker hashes one thing at a time.
 */

static EVP_MD      *ngx_http_supportdesk_sha256_md;
static EVP_MD_CTX  *ngx_http_supportdesk_sha256_ctx;


ngx_int_t
ngx_http_supportdesk_auth_sha256(ngx_str_t *parts, ngx_uint_t n, u_char *md)
{
    ngx_uint_t  i;

    if (ngx_http_supportdesk_sha256_ctx == NULL) {
        ngx_http_supportdesk_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        ngx_http_supportdesk_sha256_ctx = EVP_MD_CTX_new();

        if (ngx_http_supportdesk_sha256_md == NULL
            || ngx_http_supportdesk_sha256_ctx == NULL)
        {
            ngx_http_supportdesk_auth_sha256_free();
            return NGX_ERROR;
        }
    }

    if (EVP_DigestInit_ex2(ngx_http_supportdesk_sha256_ctx,
                           ngx_http_supportdesk_sha256_md, NULL) != 1)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (parts[i].len
            && EVP_DigestUpdate(ngx_http_supportdesk_sha256_ctx,
                                parts[i].data, parts[i].len) != 1)
        {
            return NGX_ERROR;
        }
    }

    if (EVP_DigestFinal_ex(ngx_http_supportdesk_sha256_ctx, md, NULL) != 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_supportdesk_auth_sha256_free(void)
{
    if (ngx_http_supportdesk_sha256_ctx != NULL) {
        EVP_MD_CTX_free(ngx_http_supportdesk_sha256_ctx);
        ngx_http_supportdesk_sha256_ctx = NULL;
    }

    if (ngx_http_supportdesk_sha256_md != NULL) {
        EVP_MD_free(ngx_http_supportdesk_sha256_md);
        ngx_http_supportdesk_sha256_md = NULL;
    }
}


/*
 * The worker's bound on lookups of keys the cache does not know: spent
 * counts those sent in the current second (window), less those that
 * found a good key (a burst of new good keys is not held to it, as long
 * as they do not all wait on Redis at once).
 */

static ngx_msec_t  ngx_http_supportdesk_lookup_window;
static ngx_uint_t  ngx_http_supportdesk_lookup_spent;
static ngx_uint_t  ngx_http_supportdesk_lookup_refused;


ngx_int_t
ngx_http_supportdesk_auth_lookup(ngx_http_request_t *r, u_char *tag,
    ngx_str_t *app, ngx_uint_t *known)
{
    ngx_int_t                          rc;
    ngx_http_supportdesk_key_node_t   *node;
    ngx_http_supportdesk_key_cache_t  *cache;

    *known = 0;

    node = ngx_http_supportdesk_auth_lock(r, tag, &cache);

    if (node != NULL) {
        app->data = ngx_pnalloc(r->pool, node->app_len);
        if (app->data == NULL) {
            rc = NGX_ERROR;

        } else {
            app->len = node->app_len;
            ngx_memcpy(app->data, node->app, node->app_len);
            ngx_queue_remove(&node->lru);
            ngx_queue_insert_head(&cache->sh->lru, &node->lru);

            if ((ngx_msec_int_t) (node->expires - ngx_current_msec) > 0) {
                rc = NGX_OK;

            } else {
                /* stale: asked again, app the one it had till then */
                *known = 1;
                rc = NGX_AGAIN;
            }
        }

    } else if (ngx_http_supportdesk_auth_bad(cache, tag, 0) != NULL) {
        rc = NGX_DECLINED;

    } else {
        rc = NGX_AGAIN;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "supportdesk: key cache %s",
                   rc == NGX_OK ? "hit"
                   : rc == NGX_DECLINED ? "hit: known bad key"
                   : *known ? "hit: stale"
                   : rc == NGX_AGAIN ? "miss" : "error");

    return rc;
}


/* app NULL records a negative answer */

static void
ngx_http_supportdesk_auth_store(ngx_http_request_t *r, u_char *tag,
    ngx_str_t *app)
{
    size_t                             size;
    uint32_t                           key;
    ngx_uint_t                         i;
    ngx_queue_t                       *q;
    ngx_http_supportdesk_bad_key_t    *bad;
    ngx_http_supportdesk_key_node_t   *node, *old;
    ngx_http_supportdesk_key_cache_t  *cache;
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
    node = ngx_http_supportdesk_auth_lock(r, tag, &cache);

    if (app == NULL) {
        /* revoked, or never was: no longer a known key */
        if (node != NULL) {
            ngx_http_supportdesk_auth_drop(cache, node);
        }

        bad = ngx_http_supportdesk_auth_bad(cache, tag, 1);
        bad->expires = ngx_current_msec + smcf->key_cache_negative_ttl;

        /* 0 marks a free slot */
        if (bad->expires == 0) {
            bad->expires = 1;
        }

        goto done;
    }

    /* provisioned since it was found unknown */
    bad = ngx_http_supportdesk_auth_bad(cache, tag, 0);
    if (bad != NULL) {
        bad->expires = 0;
    }

    if (node != NULL && node->app_len != app->len) {
        /* the key now names another app: a node of the new size */
        ngx_http_supportdesk_auth_drop(cache, node);
        node = NULL;
    }

    if (node != NULL) {
        ngx_queue_remove(&node->lru);

    } else {
        size = offsetof(ngx_http_supportdesk_key_node_t, app) + app->len;
        node = ngx_slab_alloc_locked(cache->shpool, size);

        for (i = 0; node == NULL && i < NGX_HTTP_SUPPORTDESK_EVICT_MAX; i++) {
            if (ngx_queue_empty(&cache->sh->lru)) {
                break;
            }

            q = ngx_queue_last(&cache->sh->lru);
            old = ngx_queue_data(q, ngx_http_supportdesk_key_node_t, lru);
            ngx_http_supportdesk_auth_drop(cache, old);

            node = ngx_slab_alloc_locked(cache->shpool, size);
        }

        if (node == NULL) {
            goto done;
        }

        ngx_memcpy(&key, tag, sizeof(uint32_t));
        node->node.key = key;
        ngx_memcpy(node->tag, tag, NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN);
        node->app_len = (u_char) app->len;
        ngx_rbtree_insert(&cache->sh->rbtree, &node->node);
    }

    ngx_memcpy(node->app, app->data, app->len);
    node->expires = ngx_current_msec + smcf->key_cache_ttl;

    ngx_queue_insert_head(&cache->sh->lru, &node->lru);

done:

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_http_supportdesk_auth_fetch(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    u_char                       *p, *key;
    u_char                        hash[NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN];
    ngx_int_t                     rc;
    ngx_http_supportdesk_args_t   args;

    if (!ctx->key_known) {
        rc = ngx_http_supportdesk_auth_spend(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    key = ngx_pnalloc(r->pool, sizeof(NGX_HTTP_SUPPORTDESK_KEY_PREFIX) - 1
                               + 2 * NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN);

    if (key == NULL
        || ngx_http_supportdesk_auth_sha256(&ctx->api_key, 1, hash)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_supportdesk_args_init(&args, r->pool, 3);

    p = ngx_cpymem(key, NGX_HTTP_SUPPORTDESK_KEY_PREFIX,
                   sizeof(NGX_HTTP_SUPPORTDESK_KEY_PREFIX) - 1);
    p = ngx_hex_dump(p, hash, NGX_HTTP_SUPPORTDESK_KEY_HASH_LEN);

    ngx_http_supportdesk_args_literal(&args, "HGET");
    ngx_http_supportdesk_args_add(&args, key, p - key);
    ngx_http_supportdesk_args_literal(&args, "app");

    /* the answer goes to ctx->status, and the phases run on */
    return ngx_http_supportdesk_store_call(r, ctx,
                                           NGX_HTTP_SUPPORTDESK_NO_SCRIPT,
                                           &args,
                                           NGX_HTTP_SUPPORTDESK_REPLY_STRING
                                           |NGX_HTTP_SUPPORTDESK_REPLY_NIL
                                           |NGX_HTTP_SUPPORTDESK_REPLY_RESUME,
                                           ngx_http_supportdesk_auth_reply);
}


/*
 * A lookup of a key the cache does not know, if this second's bound
 * allows one: NGX_OK (ctx->key_spent notes the second), else 401, the
 * refusals of a second logged once, when its first comes.
 */

static ngx_int_t
ngx_http_supportdesk_auth_spend(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx)
{
    ngx_msec_t                         window;
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);

    window = ngx_current_msec / 1000;

    if (window != ngx_http_supportdesk_lookup_window) {
        ngx_http_supportdesk_lookup_window = window;
        ngx_http_supportdesk_lookup_spent = 0;
        ngx_http_supportdesk_lookup_refused = 0;
    }

    if (ngx_http_supportdesk_lookup_spent >= smcf->key_lookup_rate) {
        if (ngx_http_supportdesk_lookup_refused++ == 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "supportdesk: unknown API keys refused without a "
                          "lookup: more than %ui lookups of keys the cache "
                          "does not know this second "
                          "(supportdesk_key_lookup_rate)",
                          smcf->key_lookup_rate);
        }

        return NGX_HTTP_UNAUTHORIZED;
    }

    ngx_http_supportdesk_lookup_spent++;
    ctx->key_spent = 1;
    ctx->key_window = window;

    return NGX_OK;
}


/* NGX_OK when the key is good (ctx->app set), else the status to answer */

static ngx_int_t
ngx_http_supportdesk_auth_reply(ngx_http_request_t *r,
    ngx_http_supportdesk_ctx_t *ctx, redisReply *reply)
{
    ngx_str_t  app;

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "supportdesk: unknown API key");
        ngx_http_supportdesk_auth_store(r, ctx->key_tag, NULL);
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (!ngx_http_supportdesk_valid_app((u_char *) reply->str, reply->len)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "supportdesk: API key record has an invalid app id, "
                      "key refused");
        ngx_http_supportdesk_auth_store(r, ctx->key_tag, NULL);
        return NGX_HTTP_UNAUTHORIZED;
    }

    /* a good key does not count against the bound */
    if (ctx->key_spent
        && ctx->key_window == ngx_http_supportdesk_lookup_window
        && ngx_http_supportdesk_lookup_spent > 0)
    {
        ngx_http_supportdesk_lookup_spent--;
    }

    ctx->key_spent = 0;

    /* the reply is freed once we return: keep a copy */
    app.len = reply->len;
    app.data = ngx_pnalloc(r->pool, app.len);
    if (app.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(app.data, reply->str, app.len);

    ngx_http_supportdesk_auth_store(r, ctx->key_tag, &app);
    ctx->app = app;

    return NGX_OK;
}


/* locks the cache, then finds the key's node (NULL: none) */

static ngx_http_supportdesk_key_node_t *
ngx_http_supportdesk_auth_lock(ngx_http_request_t *r, u_char *tag,
    ngx_http_supportdesk_key_cache_t **cachep)
{
    ngx_http_supportdesk_key_cache_t  *cache;
    ngx_http_supportdesk_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_supportdesk_module);
    cache = smcf->key_cache_zone->data;
    *cachep = cache;

    ngx_shmtx_lock(&cache->shpool->mutex);

    return ngx_http_supportdesk_auth_find(cache, tag);
}


static ngx_http_supportdesk_key_node_t *
ngx_http_supportdesk_auth_find(ngx_http_supportdesk_key_cache_t *cache,
    u_char *tag)
{
    uint32_t                          key;
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_supportdesk_key_node_t  *kn;

    ngx_memcpy(&key, tag, sizeof(uint32_t));

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        kn = (ngx_http_supportdesk_key_node_t *) node;
        rc = ngx_memcmp(tag, kn->tag, NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN);

        if (rc == 0) {
            return kn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * The slot of an unknown key in its bucket: the one that holds it and has
 * not expired (NULL: none), or with insert, the one to write it to: its
 * own, a free or expired one, else the one that expires first.
 */

static ngx_http_supportdesk_bad_key_t *
ngx_http_supportdesk_auth_bad(ngx_http_supportdesk_key_cache_t *cache,
    u_char *tag, ngx_uint_t insert)
{
    uint32_t                         b;
    ngx_uint_t                       i;
    ngx_msec_int_t                   left, least;
    ngx_http_supportdesk_bad_key_t  *slot, *pick;

    /* the node's rbtree key is the first 4 bytes: these are others */
    ngx_memcpy(&b, tag + 4, sizeof(uint32_t));
    slot = &cache->sh->bad[(b % cache->sh->nbuckets)
                           * NGX_HTTP_SUPPORTDESK_BAD_WAYS];

    pick = NULL;
    least = NGX_MAX_INT_T_VALUE;

    for (i = 0; i < NGX_HTTP_SUPPORTDESK_BAD_WAYS; i++, slot++) {

        left = slot->expires == 0
               ? 0 : (ngx_msec_int_t) (slot->expires - ngx_current_msec);

        if (left > 0
            && ngx_memcmp(slot->tag, tag, NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN)
               == 0)
        {
            return slot;
        }

        if (left < least) {
            least = left;
            pick = slot;
        }
    }

    if (!insert) {
        return NULL;
    }

    ngx_memcpy(pick->tag, tag, NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN);

    return pick;
}


static void
ngx_http_supportdesk_auth_drop(ngx_http_supportdesk_key_cache_t *cache,
    ngx_http_supportdesk_key_node_t *node)
{
    ngx_queue_remove(&node->lru);
    ngx_rbtree_delete(&cache->sh->rbtree, &node->node);
    ngx_slab_free_locked(cache->shpool, node);
}


static void
ngx_http_supportdesk_auth_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_supportdesk_key_node_t  *kn, *kt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            kn = (ngx_http_supportdesk_key_node_t *) node;
            kt = (ngx_http_supportdesk_key_node_t *) temp;

            p = (ngx_memcmp(kn->tag, kt->tag,
                            NGX_HTTP_SUPPORTDESK_KEY_TAG_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
