'use strict';
// make bench-peer: the Node.js peer of the module, Fastify + ioredis, one
// process (as the module's one nginx worker).  It serves the routes the
// get, upsert-update, upsert-create and list workloads send, with the
// module's envelope and answers, so bench/run's wrk scripts check its
// answers as they check the module's:
//   GET   /api/v1/customers/:externalId   HGETALL, ETag
//   PATCH /api/v1/customers/:externalId   the body checked by a JSON schema
//         (ajv, Fastify's own) and SPEC section 4's rules, then one
//         EVALSHA of upsert.lua (ioredis defineCommand)
//   GET   /api/v1/customers?limit=N       first page: ZRANGE of the order
//         and ZCARD, then one HGETALL per customer, pipelined
//   GET   /bench-noop                     204 (bench/wrk/seed.lua)
// X-API-Key: its SHA-256 looked up once in sd:apikey:<hex> (field app), then
// kept in a Map, as the module's key cache keeps it.  Commands go out with
// ioredis's auto-pipelining: those of one turn of the event loop in one
// write.  Not served (no workload sends them): Idempotency-Key, the other
// routes.
//
// Environment: PEER_PORT, REDIS_PORT, PEER_EVENTS_MAX (100000).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const Fastify = require('fastify');
const Redis = require('ioredis');

const port = Number(process.env.PEER_PORT);
const redisPort = Number(process.env.REDIS_PORT);
const eventsMax = String(process.env.PEER_EVENTS_MAX || 100000);

const redis = new Redis({ host: '127.0.0.1', port: redisPort,
                          enableAutoPipelining: true });
redis.defineCommand('sdUpsert', {
  numberOfKeys: 5,
  lua: fs.readFileSync(path.join(__dirname, 'upsert.lua'), 'utf8'),
});

// Fastify's ajv defaults would drop unknown fields and coerce types: the
// SPEC refuses both, and reports every rule broken
const app = Fastify({ logger: false,
                      ajv: { customOptions: { removeAdditional: false,
                                              coerceTypes: false,
                                              allErrors: true } } });

function envelope(data) {
  return JSON.stringify({ success: true, data,
                          timestamp: iso(Math.floor(Date.now() / 1000)) });
}

function fail(reply, status, code, message, details) {
  const error = { code, message };
  if (details) error.details = details;
  reply.code(status).type('application/json; charset=utf-8')
    .send(JSON.stringify({ success: false, error,
                           timestamp: iso(Math.floor(Date.now() / 1000)) }));
}

function iso(unix) {
  return new Date(Number(unix) * 1000).toISOString().replace('.000Z', 'Z');
}

// the customer object of a hash (field -> value)
function customer(xid, h) {
  const c = { id: 'cus_' + h.s, externalId: xid };
  if (h.e !== undefined) c.email = h.e;
  if (h.n !== undefined) c.name = h.n;
  if (h.p !== undefined) c.phone = h.p;
  if (h.a !== undefined) c.avatarUrl = h.a;
  if (h.m !== undefined) c.metadata = JSON.parse(h.m);
  c.createdAt = iso(h.c);
  c.updatedAt = iso(h.u || h.c);
  return c;
}

const apps = new Map();   // SHA-256 of an X-API-Key -> app id

async function authenticate(request, reply) {
  const key = request.headers['x-api-key'];
  if (typeof key !== 'string' || key === '') {
    return fail(reply, 401, 'UNAUTHORIZED', 'missing X-API-Key');
  }
  const hash = crypto.createHash('sha256').update(key).digest('hex');
  let appId = apps.get(hash);
  if (appId === undefined) {
    appId = await redis.hget('sd:apikey:' + hash, 'app');
    if (appId === null) {
      return fail(reply, 401, 'UNAUTHORIZED', 'unknown X-API-Key');
    }
    apps.set(hash, appId);
  }
  request.appId = appId;
}

const upsertSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' },
    name: { type: 'string', minLength: 1, maxLength: 255 },
    phone: { type: ['string', 'null'], maxLength: 32,
             pattern: '^[0-9 +().-]*[0-9][0-9 +().-]*$' },
    avatarUrl: { type: ['string', 'null'], maxLength: 2048,
                 pattern: '^https?://[^/?#\\s]+' },
    metadata: { type: ['object', 'null'] },
  },
};

// a body the schema refuses, and any other failure, in the envelope
app.setErrorHandler((err, request, reply) => {
  if (err.validation) {
    return fail(reply, 400, 'VALIDATION_ERROR', 'invalid fields',
                err.validation.map((v) => ({ field: v.instancePath.slice(1)
                                                    || v.params.additionalProperty,
                                             message: v.message })));
  }
  return fail(reply, err.statusCode >= 400 && err.statusCode < 500
                     ? err.statusCode : 503, 'ERROR', err.message);
});

function depth(v) {
  if (v === null || typeof v !== 'object') return 0;
  let d = 0;
  for (const k in v) d = Math.max(d, depth(v[k]));
  return d + 1;
}

app.get('/bench-noop', async (request, reply) => reply.code(204).send());

app.get('/api/v1/customers/:externalId', { preHandler: authenticate },
  async (request, reply) => {
    const xid = request.params.externalId;
    const h = await redis.hgetall('sd:{' + request.appId + '}:c:' + xid);
    if (h.s === undefined) {
      return fail(reply, 404, 'NOT_FOUND', 'customer not found');
    }
    reply.header('ETag', '"' + h.s + '-' + h.v + '"')
      .type('application/json; charset=utf-8')
      .send(envelope({ customer: customer(xid, h) }));
  });

app.patch('/api/v1/customers/:externalId',
  { preHandler: authenticate, schema: { body: upsertSchema } },
  async (request, reply) => {
    const xid = request.params.externalId;
    const body = request.body;
    const details = [];
    if (Buffer.byteLength(xid) > 255 || /[\x00-\x1f\x7f/]/.test(xid)) {
      details.push({ field: 'externalId', message: 'invalid' });
    }
    if (body.name !== undefined && body.name.trim() === '') {
      details.push({ field: 'name', message: 'empty' });
    }
    let meta;
    if (body.metadata) {
      meta = JSON.stringify(body.metadata);
      if (Buffer.byteLength(meta) > 16384 || depth(body.metadata) > 8) {
        details.push({ field: 'metadata', message: 'too large or too deep' });
      }
    }
    if (details.length > 0) {
      return fail(reply, 400, 'VALIDATION_ERROR', 'invalid fields', details);
    }
    const args = [];
    for (const [f, name] of [['e', 'email'], ['n', 'name'], ['p', 'phone'],
                             ['a', 'avatarUrl'], ['m', 'metadata']]) {
      const v = body[name];
      if (v === undefined) continue;
      args.push(f, v === null ? '' : f === 'm' ? meta : v);
    }
    const k = 'sd:{' + request.appId + '}:';
    let out;
    try {
      out = await redis.sdUpsert(k + 'c:' + xid, k + 'emails', k + 'order',
                                 k + 'seq', k + 'events',
                                 Math.floor(Date.now() / 1000), xid,
                                 request.headers['if-match'] || '',
                                 eventsMax, ...args);
    } catch (e) {
      const code = String(e.message).split(' ')[0];
      if (code === 'EMAIL_EXISTS') {
        return fail(reply, 409, 'EMAIL_EXISTS', 'email in use');
      }
      if (code === 'REQUIRED') {
        return fail(reply, 400, 'VALIDATION_ERROR', 'email and name required');
      }
      if (code === 'PRECONDITION_FAILED') {
        return fail(reply, 412, 'PRECONDITION_FAILED', 'If-Match');
      }
      throw e;
    }
    const h = {};
    for (let i = 1; i < out.length; i += 2) h[out[i]] = out[i + 1];
    reply.header('ETag', '"' + h.s + '-' + h.v + '"')
      .type('application/json; charset=utf-8')
      .send(envelope({ customer: customer(xid, h), wasCreated: out[0] === 1 }));
  });

app.get('/api/v1/customers', { preHandler: authenticate },
  async (request, reply) => {
    const limit = Math.min(100, Math.max(1, Number(request.query.limit) || 20));
    const k = 'sd:{' + request.appId + '}:';
    const [ids, total] = await Promise.all([
      redis.zrange(k + 'order', 0, limit, 'WITHSCORES'),
      redis.zcard(k + 'order'),
    ]);
    const n = Math.min(limit, ids.length / 2);
    const hashes = await Promise.all(
      Array.from({ length: n }, (_, i) => redis.hgetall(k + 'c:' + ids[2 * i])));
    const customers = hashes.map((h, i) => customer(ids[2 * i], h));
    const nextCursor = ids.length / 2 > limit ? ids[2 * limit - 1] : null;
    reply.type('application/json; charset=utf-8')
      .send(envelope({ customers, nextCursor, total }));
  });

app.listen({ host: '127.0.0.1', port }).then(() => {
  process.stdout.write('peer: listening on 127.0.0.1:' + port + '\n');
}, (err) => {
  process.stderr.write('peer: ' + err.message + '\n');
  process.exit(1);
});
