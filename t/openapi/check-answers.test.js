// The validator must be able to fail: recorded answers, right and wrong
// ones, written as the harness writes them, checked against openapi.yaml.
// Each wrong answer must give exactly the mismatch it is there for; the
// right ones none; the allow-list must silence what it names and fail when
// it names nothing.  Run by `make openapi-check` (node --test).
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');

const TS = '2026-12-01T10:00:00Z';
const JSON_CT = 'application/json; charset=utf-8';
const CUSTOMER = { id: 'cus_1', externalId: 'c1', email: 'c1@example.com', name: 'C One',
                   createdAt: TS, updatedAt: TS };
const ok = (data) => JSON.stringify({ success: true, data, timestamp: TS });
const err = (code, message, extra = {}) => JSON.stringify({ success: false, error: { code, message }, timestamp: TS, ...extra });

// one record as t/lib/SupportDesk/Test.pm writes it
function rec(line, method, target, status, headers, body, o = {}) {
    const meta = { file: 't/fixture.t', line, prefixes: ['/api/v1/'], method, target, version: '1.1',
                   status, headers: { 'content-type': JSON_CT, ...headers },
                   request_headers: o.request_headers || [['host', 'x'], ['x-api-key', 'k']],
                   request_body: o.request_body || '', request_body_length: (o.request_body || '').length };
    if (o.noContentType) delete meta.headers['content-type'];
    const m = Buffer.from(JSON.stringify(meta), 'latin1');
    const b = Buffer.from(body || '', 'utf8');
    return Buffer.concat([Buffer.from(`SDREC ${m.length} ${b.length}\n`), m, Buffer.from('\n'), b, Buffer.from('\n')]);
}

const ETAG = { etag: '"v1"' };
const RIGHT = [
    rec(1, 'GET', '/api/v1/customers/c1', 200, ETAG, ok({ customer: CUSTOMER })),
    rec(2, 'GET', '/api/v1/customers', 401, {}, err('UNAUTHORIZED', 'missing or unknown API key')),
    rec(3, 'GET', '/', 200, { 'content-type': 'text/plain' }, 'legacy\n'),          // legacy: excluded
    rec(4, 'PUT', '/api/v1/customers/c1', 405, { allow: 'GET, HEAD, PATCH, DELETE' },
        err('METHOD_NOT_ALLOWED', 'method not allowed on this route')),
    rec(5, 'GET', '/api/v1/nope', 404, {}, err('NOT_FOUND', 'no such route')),
    rec(6, 'HEAD', '/api/v1/customers/c1', 200, ETAG, ''),
    rec(7, 'GET', '/api/v1/customers?limit=100&metadata.plan=gold&include=notesCount', 200, {},
        ok({ customers: [{ ...CUSTOMER, notesCount: 2 }], nextCursor: null, total: 1 })),
    rec(8, 'PATCH', '/api/v1/customers/c1', 200, ETAG, ok({ customer: CUSTOMER, wasCreated: true }),
        { request_body: '{"email":"c1@example.com","name":"  C One ","metadata":{"a":{"b":[1]}}}' }),
    rec(9, 'PATCH', '/api/v1/customers/c1', 400, {},
        JSON.stringify({ success: false, timestamp: TS, error: { code: 'VALIDATION_ERROR', message: 'email must be a valid email address',
                         details: [{ field: 'email', message: 'must be a valid email address' }] } })),
    rec(10, 'GET', '/api/v1/customers/c1', 304, ETAG, '', { noContentType: true }),
    rec(11, 'GET', '/api/v1/customers/c1', 599, {}, ''),                            // no answer: excluded
];
// [line, the mismatch it must give]
const WRONG = [
    [rec(101, 'GET', '/api/v1/customers/c1', 200, ETAG, ok({ customer: { ...CUSTOMER, email: undefined } })),
     /^body: .*must have required property 'email'/],
    [rec(102, 'GET', '/api/v1/customers/c1', 200, ETAG, JSON.stringify({ success: true, data: { customer: CUSTOMER }, timestamp: '2026-12-01 10:00:00' })),
     /^body: \/timestamp must match pattern/],
    [rec(103, 'PATCH', '/api/v1/customers/c1', 201, ETAG, ok({ customer: CUSTOMER, wasCreated: true })),
     /^status 201 is not an answer of this operation/],
    [rec(104, 'GET', '/api/v1/customers/c1', 404, {}, err('NOT_FOUND', 'no such route')),
     /^body: \/error\/code must be equal to constant/],
    [rec(105, 'GET', '/api/v1/customers/c1', 200, { ...ETAG, 'content-type': 'application/json' }, ok({ customer: CUSTOMER })),
     /^Content-Type "application\/json", not "application\/json; charset=utf-8"/],
    [rec(106, 'PUT', '/api/v1/customers/c1', 405, {}, err('METHOD_NOT_ALLOWED', 'method not allowed on this route')),
     /^header Allow is missing$/],
    [rec(107, 'GET', '/api/v1/customers', 401, {}, err('UNAUTHORIZED', 'missing or unknown API key', { requestId: 'x' })),
     /^body: .*must NOT have additional properties/],
    [rec(108, 'GET', '/api/v1/customers?limit=500', 200, {}, ok({ customers: [], nextCursor: null, total: 0 })),
     /^accepted query limit="500": \/ must be <= 100/],
    [rec(109, 'PATCH', '/api/v1/customers/c1', 200, ETAG, ok({ customer: CUSTOMER, wasCreated: false }),
        { request_body: '{"name":"x","createdAt":"now"}' }),
     /^accepted a request body the document refuses: .*additional properties \(createdAt\)/],
    [rec(110, 'GET', '/api/v1/nope', 200, {}, ok({})),
     /^status 200 is not an answer of this operation/],
    [rec(111, 'GET', '/api/v1/customers/c1', 200, {}, ok({ customer: CUSTOMER })),
     /^header ETag is missing$/],
    [rec(112, 'DELETE', '/api/v1/jobs/job_1', 405, { allow: 'GET' }, err('METHOD_NOT_ALLOWED', 'method not allowed on this route')),
     /^header Allow: "GET", the path item's methods are GET, HEAD$/],
    [rec(113, 'HEAD', '/api/v1/customers/c1', 200, ETAG, 'x'),
     /^a HEAD 200 answer has a body/],
    [rec(114, 'GET', '/api/v1/customers/c1', 404, {}, '{"success":false,'),
     /^body is not UTF-8 JSON/],
    [rec(115, 'GET', '/api/v1/customers/c1', 404, {}, err('CUSTOMER_NOT_FOUND', 'no customer'), {
        request_headers: [['x-api-key', 'a'], ['x-api-key', 'b']] }),
     /sent x-api-key 2 times/],
];

// main() in this process (the compiled document is cached across runs)
const { main } = require('./check-answers.js');
function run(records, args) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-openapi-test-'));
    fs.writeFileSync(path.join(dir, 'fixture.t.1.rec'), Buffer.concat(records));
    const lines = [];
    const errors = [];
    const status = main(['--json', ...args, dir], { log: (l) => lines.push(l), error: (l) => errors.push(l) });
    fs.rmSync(dir, { recursive: true, force: true });
    let out = null;
    try { out = JSON.parse(lines.join('\n')); } catch (e) { /* reported by the caller */ }
    return { status, out, stderr: errors.join('\n'), stdout: lines.join('\n') };
}

test('right answers: no mismatch, legacy and unanswered ones excluded', () => {
    const r = run(RIGHT, ['--no-allow']);
    assert.ok(r.out, r.stderr + r.stdout);
    assert.deepStrictEqual(r.out.failures.map((f) => `${f.at} ${f.problem}`), []);
    assert.strictEqual(r.out.counts.checked, RIGHT.length - 2);
    assert.deepStrictEqual(r.out.counts.excluded, { 'outside the API locations': 1, 'no answer': 1 });
    assert.strictEqual(r.status, 0);
});

for (const [record, want] of WRONG) {
    const line = JSON.parse(record.toString('latin1').split('\n')[1]).line;
    test(`wrong answer (t/fixture.t:${line}) fails with ${want}`, () => {
        const r = run([...RIGHT, record], ['--no-allow']);
        assert.ok(r.out, r.stderr + r.stdout);
        const got = r.out.failures.map((f) => f.problem);
        assert.strictEqual(got.length, 1, `exactly one mismatch, got: ${JSON.stringify(got)}`);
        assert.match(got[0], want);
        assert.strictEqual(r.out.failures[0].at, `t/fixture.t:${line}`);
        assert.strictEqual(r.status, 1);
    });
}

test('the allow-list silences what it names, and fails when it names nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-openapi-allow-'));
    const allow = path.join(dir, 'allow.yaml');
    fs.writeFileSync(allow, "- id: no-etag\n  why: test\n  route: /customers/{externalId}\n  problem: '^header ETag is missing$'\n");
    let r = run([...RIGHT, WRONG[10][0]], ['--allow', allow]);
    assert.deepStrictEqual(r.out.failures, []);
    assert.deepStrictEqual(r.out.allowList, [{ id: 'no-etag', used: 1 }]);
    assert.strictEqual(r.status, 0);
    r = run(RIGHT, ['--allow', allow]);
    assert.deepStrictEqual(r.out.stale, ['no-etag']);
    assert.strictEqual(r.status, 1);
    fs.rmSync(dir, { recursive: true, force: true });
});

test('no answer at all is a failure', () => {
    const r = run([rec(1, 'GET', '/', 200, {}, 'legacy\n')], ['--no-allow']);
    assert.strictEqual(r.status, 1);
});
