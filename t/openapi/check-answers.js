#!/usr/bin/env node
// t/openapi/check-answers.js: validates the answers the t/ suite received
// (recorded by t/lib/SupportDesk/Test.pm when SD_RECORD_DIR is set) against
// openapi.yaml.  t/openapi/README.md describes the checks, the records and
// the exclusion rules.
//
//   node t/openapi/check-answers.js [--spec openapi.yaml]
//        [--allow t/openapi/allow-list.yaml] [--json] RECORD_DIR_OR_FILE...
//
// Exit status 0: every answer is one the document describes (or one the
// allow-list names); 1: mismatches (listed), an allow-list entry that
// matched nothing, or no answer at all; 2: bad usage or a bad document.
// The node modules come from SD_NODE_DIR (default build/node, filled by
// util/node-deps.sh).
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const REPO = path.resolve(__dirname, '..', '..');
const NODE_DIR = process.env.SD_NODE_DIR || path.join(REPO, 'build', 'node');
const req = createRequire(path.join(NODE_DIR, 'package.json'));
const YAML = req('yaml');
const Ajv2020 = req('ajv/dist/2020').default;

// ---------------------------------------------------------------- the document

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SCHEMAS_ID = 'sd:openapi-schemas';

function loadDocument(file) {
    const doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    if (!doc || !doc.paths || !doc.components) throw new Error(`${file}: not an OpenAPI document`);
    return doc;
}

// a local reference '#/a/b' of the document
function pointer(doc, ref) {
    if (!ref.startsWith('#/')) throw new Error(`only local references: ${ref}`);
    let v = doc;
    for (const raw of ref.slice(2).split('/')) {
        const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
        if (v == null || !(k in v)) throw new Error(`unresolved reference ${ref}`);
        v = v[k];
    }
    return v;
}

function deref(doc, obj) {
    const seen = new Set();
    while (obj && obj.$ref) {
        if (seen.has(obj.$ref)) throw new Error(`reference loop at ${obj.$ref}`);
        seen.add(obj.$ref);
        obj = pointer(doc, obj.$ref);
    }
    return obj;
}

// schemas refer to '#/components/schemas/X': for ajv they live in one
// schema document of their own, as $defs
function rewriteRefs(v) {
    if (Array.isArray(v)) return v.map(rewriteRefs);
    if (v && typeof v === 'object') {
        const o = {};
        for (const [k, x] of Object.entries(v)) {
            if (k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')) {
                o[k] = `${SCHEMAS_ID}#/$defs/${x.slice('#/components/schemas/'.length)}`;
            } else {
                o[k] = rewriteRefs(x);
            }
        }
        return o;
    }
    return v;
}

function makeAjv(doc) {
    // inlineRefs false: each referenced schema is compiled once, not into
    // every schema that refers to it (seconds for this document)
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, inlineRefs: false,
                              strictTuples: false, strictRequired: false });
    // OpenAPI 3.1's vocabulary on top of JSON Schema 2020-12: annotations here
    ajv.addVocabulary(['discriminator', 'xml', 'externalDocs', 'example']);
    ajv.addSchema({ $id: SCHEMAS_ID, $defs: rewriteRefs(doc.components.schemas) });
    const cache = new Map();
    return {
        ajv,
        compile(schema) {
            const key = JSON.stringify(schema);
            if (!cache.has(key)) cache.set(key, ajv.compile(rewriteRefs(schema)));
            return cache.get(key);
        },
    };
}

// every component must be referenced somewhere (x-supportdesk included):
// redocly's no-unused-components cannot see the x- references
function unusedComponents(doc) {
    const used = new Set();
    (function walk(v) {
        if (Array.isArray(v)) return v.forEach(walk);
        if (v && typeof v === 'object') {
            for (const [k, x] of Object.entries(v)) {
                if (k === '$ref' && typeof x === 'string') used.add(x);
                else walk(x);
            }
        }
    })(doc);
    const out = [];
    for (const [kind, group] of Object.entries(doc.components)) {
        if (kind === 'securitySchemes') continue;   // used by name, in security
        for (const name of Object.keys(group)) {
            if (!used.has(`#/components/${kind}/${name}`)) out.push(`#/components/${kind}/${name}`);
        }
    }
    return out;
}

// path templates as regular expressions over the raw path below the prefix;
// literal segments win over parameters (OpenAPI: concrete paths first)
function routeTable(doc) {
    const routes = [];
    for (const [tmpl, item] of Object.entries(doc.paths)) {
        const names = [];
        const segs = tmpl.split('/').slice(1);
        const re = segs.map((s) => {
            const m = /^\{(.+)\}$/.exec(s);
            if (m) { names.push(m[1]); return '([^/]+)'; }
            return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        }).join('/');
        routes.push({ tmpl, item: deref(doc, item), names, re: new RegExp(`^/${re}$`), params: names.length });
    }
    routes.sort((a, b) => a.params - b.params);
    return routes;
}

// ---------------------------------------------------------------- records

// "SDREC <meta bytes> <body bytes>\n<meta>\n<body>\n", meta JSON whose
// strings hold bytes (one character each)
function readRecords(file) {
    const buf = fs.readFileSync(file);
    const out = [];
    let p = 0;
    while (p < buf.length) {
        const nl = buf.indexOf(0x0a, p);
        const head = buf.toString('latin1', p, nl < 0 ? buf.length : nl);
        const m = /^SDREC (\d+) (\d+)$/.exec(head);
        if (!m) throw new Error(`${file}: byte ${p}: not a record header: ${head.slice(0, 60)}`);
        const ml = Number(m[1]);
        const bl = Number(m[2]);
        const ms = nl + 1;
        const meta = JSON.parse(buf.toString('latin1', ms, ms + ml));
        const body = buf.subarray(ms + ml + 1, ms + ml + 1 + bl);
        meta.body = body;
        meta.recfile = file;
        out.push(meta);
        p = ms + ml + 1 + bl + 1;
    }
    return out;
}

function recordFiles(args) {
    const files = [];
    for (const a of args) {
        if (!fs.existsSync(a)) throw new Error(`${a}: no such file or directory (no answers recorded: make test records them)`);
        const st = fs.statSync(a);
        if (st.isDirectory()) {
            for (const f of fs.readdirSync(a).sort()) if (f.endsWith('.rec')) files.push(path.join(a, f));
        } else {
            files.push(a);
        }
    }
    return files;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function bytesOf(s) { return Buffer.from(s, 'latin1'); }
function textOf(s) { return utf8.decode(bytesOf(s)); }   // throws unless UTF-8

function pctDecode(s) {
    const bytes = [];
    for (let i = 0; i < s.length; i++) {
        if (s[i] === '%') {
            const h = s.slice(i + 1, i + 3);
            if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw new Error(`bad percent-encoding in ${s.slice(0, 60)}`);
            bytes.push(parseInt(h, 16));
            i += 2;
        } else {
            bytes.push(s.charCodeAt(i) & 0xff);
        }
    }
    return utf8.decode(Buffer.from(bytes));
}

// a chunked request body (a string of bytes) without its framing
function dechunk(s) {
    let out = '';
    let p = 0;
    for (;;) {
        const e = s.indexOf('\r\n', p);
        if (e < 0) throw new Error('no chunk size line');
        const m = /^([0-9A-Fa-f]+)/.exec(s.slice(p, e));
        if (!m) throw new Error('bad chunk size');
        const n = parseInt(m[1], 16);
        p = e + 2;
        if (n === 0) return out;
        out += s.slice(p, p + n);
        p += n + 2;
    }
}

function headerValues(headers, name) {
    const v = headers[name.toLowerCase()];
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).map(String);
}

// ---------------------------------------------------------------- checks

function ajvErrors(validate) {
    return (validate.errors || []).slice(0, 6)
        .map((e) => `${e.instancePath || '/'} ${e.message}`
             + (e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : '')
             + (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : '')
             + (e.params && e.params.unevaluatedProperty ? ` (${e.params.unevaluatedProperty})` : ''))
        .join('; ');
}

function coerce(schema, doc, raw) {
    const s = deref(doc, schema) || {};
    const t = s.type;
    if ((t === 'integer' || t === 'number') && /^-?[0-9]+(\.[0-9]+)?$/.test(raw)) return Number(raw);
    return raw;
}

// the answer-side checks: status allowed, headers, body
function checkAnswer(ctx, rec, responses, op, allowMethods, problems) {
    const { doc, A, x } = ctx;
    const st = String(rec.status);
    let resp = responses[st] || responses[`${st[0]}XX`] || responses.default;
    if (!resp) {
        problems.push(`status ${st} is not an answer of this operation (it lists ${Object.keys(responses).join(' ')})`);
        return null;
    }
    resp = deref(doc, resp);
    const headers = rec.headers || {};

    for (const [name, h0] of Object.entries(resp.headers || {})) {
        if (name.toLowerCase() === 'content-type') continue;
        const h = deref(doc, h0);
        const vals = headerValues(headers, name);
        if (!vals.length) {
            if (h.required) problems.push(`header ${name} is missing`);
            continue;
        }
        if (vals.length > 1) { problems.push(`header ${name} sent ${vals.length} times`); continue; }
        if (h.schema) {
            const v = A.compile(h.schema);
            if (!v(vals[0])) problems.push(`header ${name}: ${JSON.stringify(vals[0])} ${ajvErrors(v)}`);
        }
    }
    if (allowMethods && resp.headers && resp.headers.Allow) {
        const got = headerValues(headers, 'Allow')[0];
        if (got !== undefined) {
            const want = allowMethods.slice().sort().join(', ');
            const have = got.split(/\s*,\s*/).sort().join(', ');
            if (want !== have) problems.push(`header Allow: "${got}", the path item's methods are ${want}`);
        }
    }

    const noBody = rec.method === 'HEAD' || rec.status === 304 || rec.status === 204;
    const content = resp.content;
    if (noBody) {
        if (rec.body.length) problems.push(`a ${rec.method} ${st} answer has a body (${rec.body.length} bytes)`);
        return resp;
    }
    if (!content) {
        if (rec.body.length) problems.push(`the document describes no body, got ${rec.body.length} bytes`);
        return resp;
    }
    const ct = headerValues(headers, 'Content-Type');
    if (ct.length !== 1 || ct[0] !== x.contentType) {
        problems.push(`Content-Type ${JSON.stringify(ct.length > 1 ? ct : ct[0])}, not "${x.contentType}"`);
    }
    const media = content['application/json'];
    if (!media) { problems.push('the document has no application/json content here'); return resp; }
    let json;
    try {
        json = JSON.parse(utf8.decode(rec.body));
    } catch (e) {
        problems.push(`body is not UTF-8 JSON (${e.message}): ${rec.body.toString('latin1').slice(0, 80)}`);
        return resp;
    }
    rec.json = json;
    const v = A.compile(media.schema);
    if (!v(json)) problems.push(`body: ${ajvErrors(v)}`);
    return resp;
}

// the request-side checks of an accepted (2xx) answer: what the module
// took must be what the document allows
function checkAccepted(ctx, rec, route, m, op, item, query, problems) {
    const { doc, A } = ctx;
    const params = new Map();
    for (const p0 of [...(item.parameters || []), ...(op.parameters || [])]) {
        const p = deref(doc, p0);
        params.set(`${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`, p);
    }
    // path
    route.names.forEach((name, i) => {
        const p = params.get(`path:${name}`);
        let val;
        try { val = pctDecode(m[i + 1]); } catch (e) { problems.push(`accepted path parameter ${name}: ${e.message}`); return; }
        const v = A.compile(p.schema);
        if (!v(val)) problems.push(`accepted path parameter ${name}=${JSON.stringify(val).slice(0, 80)}: ${ajvErrors(v)}`);
    });
    // query
    const takesQuery = [...params.values()].some((p) => p.in === 'query');
    const seen = new Map();
    for (const [rn, rv] of query) {
        let name; let val;
        try { name = pctDecode(rn.replace(/\+/g, ' ')); val = pctDecode(rv.replace(/\+/g, ' ')); } catch (e) {
            problems.push(`accepted query: ${e.message}`); continue;
        }
        seen.set(name, (seen.get(name) || 0) + 1);
        let p = params.get(`query:${name}`);
        if (!p) {
            for (const q of params.values()) {
                if (q.in === 'query' && q['x-name-pattern'] && new RegExp(q['x-name-pattern'], 'u').test(name)) p = q;
            }
        }
        // an operation that takes query parameters refuses unknown ones
        // (SPEC 4); one that takes none ignores the query string
        if (!p) {
            if (takesQuery) problems.push(`accepted an unknown query parameter ${JSON.stringify(name)}`);
            continue;
        }
        const v = A.compile(p.schema);
        if (!v(coerce(p.schema, doc, val))) problems.push(`accepted query ${name}=${JSON.stringify(val).slice(0, 60)}: ${ajvErrors(v)}`);
    }
    for (const [name, n] of seen) if (n > 1) problems.push(`accepted the query parameter ${name} repeated ${n} times`);
    // headers the operation takes
    for (const p of params.values()) {
        if (p.in !== 'header') continue;
        const vals = (rec.request_headers || []).filter(([k]) => k === p.name.toLowerCase()).map(([, v]) => v);
        if (!vals.length) continue;
        const v = A.compile(p.schema);
        if (!v(vals[0])) problems.push(`accepted header ${p.name}: ${JSON.stringify(vals[0]).slice(0, 60)} ${ajvErrors(v)}`);
    }
    // body
    if (op.requestBody) {
        const rb = deref(doc, op.requestBody);
        const media = rb.content && rb.content['application/json'];
        if (rec.request_body_length !== rec.request_body.length) return;   // (not all of it recorded)
        let raw = rec.request_body;
        const te = (rec.request_headers || []).find(([k]) => k === 'transfer-encoding');
        if (te && /chunked/i.test(te[1])) {
            try { raw = dechunk(raw); } catch (e) { problems.push(`accepted a bad chunked body (${e.message})`); return; }
        }
        let body;
        try { body = JSON.parse(textOf(raw)); } catch (e) {
            if (rec.request_body.length) problems.push(`accepted a body that is not UTF-8 JSON (${e.message})`);
            else if (rb.required) problems.push('accepted a request without its required body');
            return;
        }
        let schema = media.schema;
        // batch: an item that breaks the rules is an error result, not a
        // refusal, so only the items answered success: true must be valid
        if (op.operationId === 'upsertCustomers' && body && Array.isArray(body.customers) && rec.json) {
            const results = (rec.json.data && rec.json.data.results) || [];
            const items = body.customers.filter((_, i) => results[i] && results[i].success === true);
            body = { ...body, customers: items.length ? items : body.customers.slice(0, 0) };
            if (!items.length) return;
            schema = { $ref: '#/components/schemas/BatchInput' };
        }
        const v = A.compile(schema);
        if (!v(body)) problems.push(`accepted a request body the document refuses: ${ajvErrors(v)}`);
    }
}

// SPEC 8: a header the API reads sent twice is a client error, never
// silently resolved; only the checks that come first (route, 413 before
// routing) may answer something else
const SINGLE_HEADERS = ['x-api-key', 'idempotency-key', 'if-match'];
function checkRepeatedInput(rec, problems) {
    for (const h of SINGLE_HEADERS) {
        const n = (rec.request_headers || []).filter(([k]) => k === h).length;
        if (n < 2) continue;
        const code = rec.json && rec.json.error && rec.json.error.code;
        if (![400, 401].includes(rec.status) && !['NOT_FOUND', 'METHOD_NOT_ALLOWED', 'PAYLOAD_TOO_LARGE'].includes(code)) {
            problems.push(`the request sent ${h} ${n} times (SPEC 8: a client error), answered ${rec.status} ${code || ''}`.trim());
        }
    }
}

function classify(ctx, rec) {
    if (!rec.status || rec.status >= 598) return { exclude: 'no answer' };
    if (!rec.method) return { exclude: 'garbage request line' };
    if (!rec.target.startsWith('/')) return { exclude: 'garbage request line' };
    const q = rec.target.indexOf('?');
    const rawPath = q < 0 ? rec.target : rec.target.slice(0, q);
    const prefix = (rec.prefixes || []).filter((p) => rawPath.startsWith(p)).sort((a, b) => b.length - a.length)[0];
    if (!prefix) return { exclude: 'outside the API locations' };
    return { rel: rawPath.slice(prefix.length - 1), query: q < 0 ? '' : rec.target.slice(q + 1) };
}

function checkRecord(ctx, rec) {
    const { doc, routes, x } = ctx;
    const c = classify(ctx, rec);
    if (c.exclude) return c;
    const problems = [];
    const method = rec.method.toLowerCase();
    let template = '(no route)';
    let route = null; let m = null;
    for (const r of routes) {
        const mm = r.re.exec(c.rel);
        if (mm) { route = r; m = mm; break; }
    }
    const query = c.query === '' ? [] : c.query.split('&').filter((s) => s !== '').map((s) => {
        const i = s.indexOf('=');
        return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
    });
    let resp;
    if (!route) {
        resp = checkAnswer(ctx, rec, x.unmatchedRoute, null, null, problems);
    } else {
        template = route.tmpl;
        const op = METHODS.includes(method) ? route.item[method] : undefined;
        const allow = METHODS.filter((k) => route.item[k]).map((k) => k.toUpperCase());
        if (!op) {
            resp = checkAnswer(ctx, rec, x.unlistedMethod, null, allow, problems);
        } else {
            resp = checkAnswer(ctx, rec, op.responses, op, null, problems);
            if (resp && rec.status >= 200 && rec.status < 300) {
                checkAccepted(ctx, rec, route, m, op, route.item, query, problems);
            }
        }
    }
    checkRepeatedInput(rec, problems);
    void resp;
    return { template, problems };
}

// ---------------------------------------------------------------- allow-list

function loadAllowList(file) {
    if (!file || !fs.existsSync(file)) return [];
    const list = YAML.parse(fs.readFileSync(file, 'utf8')) || [];
    if (!Array.isArray(list)) throw new Error(`${file}: not a list`);
    return list.map((e, i) => {
        for (const k of ['id', 'why', 'problem']) {
            if (!e[k]) throw new Error(`${file}: entry ${i + 1} has no ${k}`);
        }
        return { ...e, re: new RegExp(e.problem), used: 0 };
    });
}

function allowed(list, f) {
    return list.find((e) => (!e.method || e.method === f.method)
        && (!e.route || e.route === f.template)
        && (!e.status || Number(e.status) === f.status)
        && (!e.code || e.code === f.code)
        && e.re.test(f.problem));
}

// ---------------------------------------------------------------- main

// the compiled document, per file (the unit test runs main() many times)
const CONTEXTS = new Map();
function context(spec) {
    if (CONTEXTS.has(spec)) return CONTEXTS.get(spec);
    const doc = loadDocument(spec);
    const x = doc['x-supportdesk'];
    if (!x || !x.contentType || !x.unmatchedRoute || !x.unlistedMethod) throw new Error('x-supportdesk is incomplete');
    const ctx = { doc, x, A: makeAjv(doc), routes: routeTable(doc) };
    const unused = unusedComponents(doc);
    if (unused.length) throw new Error(`components nothing refers to: ${unused.join(', ')}`);
    // compile every schema of the document once: a bad pattern fails here
    for (const name of Object.keys(doc.components.schemas)) ctx.A.compile({ $ref: `#/components/schemas/${name}` });
    CONTEXTS.set(spec, ctx);
    return ctx;
}

function main(argv, io = {}) {
    const log = io.log || console.log;
    const error = io.error || console.error;
    const opt = { spec: path.join(REPO, 'openapi.yaml'), allow: path.join(__dirname, 'allow-list.yaml'), json: false, inputs: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--spec') opt.spec = argv[++i];
        else if (a === '--allow') opt.allow = argv[++i];
        else if (a === '--no-allow') opt.allow = null;
        else if (a === '--json') opt.json = true;
        else if (a.startsWith('-')) { error(`check-answers: unknown option ${a}`); return 2; }
        else opt.inputs.push(a);
    }
    if (!opt.inputs.length) { error('usage: check-answers.js [--spec F] [--allow F|--no-allow] [--json] DIR|FILE...'); return 2; }

    let ctx;
    try {
        ctx = context(opt.spec);
    } catch (e) {
        error(`check-answers: ${opt.spec}: ${e.message}`);
        return 2;
    }
    const list = loadAllowList(opt.allow);

    let files;
    try { files = recordFiles(opt.inputs); } catch (e) { error(`check-answers: ${e.message}`); return 1; }
    const counts = { answers: 0, checked: 0, excluded: {}, allowed: 0 };
    const failures = [];
    const perTemplate = {};
    for (const f of files) {
        for (const rec of readRecords(f)) {
            counts.answers++;
            const r = checkRecord(ctx, rec);
            if (r.exclude) { counts.excluded[r.exclude] = (counts.excluded[r.exclude] || 0) + 1; continue; }
            counts.checked++;
            const key = `${rec.method} ${r.template}`;
            perTemplate[key] = (perTemplate[key] || 0) + 1;
            const code = rec.json && rec.json.error ? rec.json.error.code : undefined;
            for (const problem of r.problems) {
                const fnd = { method: rec.method, template: r.template, status: rec.status, code, problem,
                              at: `${rec.file}:${rec.line}`, target: rec.target };
                const e = allowed(list, fnd);
                if (e) { e.used++; counts.allowed++; continue; }
                failures.push(fnd);
            }
        }
    }

    const stale = list.filter((e) => !e.used);
    // the operations no answer exercised (information, not a failure)
    const unexercised = [];
    for (const [tmpl, item] of Object.entries(ctx.doc.paths)) {
        for (const m of METHODS) if (item[m] && !perTemplate[`${m.toUpperCase()} ${tmpl}`]) unexercised.push(`${m.toUpperCase()} ${tmpl}`);
    }
    counts.unexercised = unexercised;
    if (opt.json) {
        log(JSON.stringify({ counts, perTemplate, failures, stale: stale.map((e) => e.id),
                                     allowList: list.map((e) => ({ id: e.id, used: e.used })) }, null, 1));
    } else {
        report(log, counts, failures, list, stale, files.length);
    }
    if (!counts.checked) { error('check-answers: no answer to check (was SD_RECORD_DIR set?)'); return 1; }
    return failures.length || stale.length ? 1 : 0;
}

function report(log, counts, failures, list, stale, nfiles) {
    const ex = Object.entries(counts.excluded).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
    log(`openapi: ${counts.answers} answers in ${nfiles} record files; ${counts.checked} checked against openapi.yaml; excluded: ${ex}`);
    if (counts.unexercised.length) log(`openapi: operations no answer exercised: ${counts.unexercised.join(', ')}`);
    for (const e of list) {
        log(`openapi: allow-list ${e.id}: ${e.used} mismatches${e.used ? '' : ' (matched nothing: remove it)'}`);
    }
    if (!failures.length) {
        log(`openapi: no mismatch${counts.allowed ? ` beyond the ${counts.allowed} the allow-list names` : ''}`);
        return;
    }
    const groups = new Map();
    for (const f of failures) {
        const k = `${f.method} ${f.template} -> ${f.status}${f.code ? ` ${f.code}` : ''}: ${f.problem.replace(/"[^"]{40,}"/g, '"..."')}`;
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push(f);
    }
    log(`openapi: ${failures.length} mismatches (${groups.size} kinds):`);
    for (const [k, fs_] of groups) {
        log(`  ${k}`);
        for (const f of fs_.slice(0, 3)) log(`      ${f.at}  ${f.method} ${f.target.length > 100 ? `${f.target.slice(0, 100)}...` : f.target}`);
        if (fs_.length > 3) log(`      ... ${fs_.length - 3} more`);
    }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
module.exports = { main, readRecords, loadDocument, checkRecord };
