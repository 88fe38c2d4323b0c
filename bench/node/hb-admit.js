// The Node.js peer of the admission benchmark: POST /v1/plays as a developer would otherwise
// write it — the http module, ioredis running hb-api's own admission script (its text comes
// from build/bench/hb-admit-script at run time; defineCommand does EVALSHA with EVAL after
// NOSCRIPT), jsonwebtoken for the device token with the same claims, the same API-key check
// and the same JSON contract (200 / 409 / 4xx with {"error", "field"}). One process, one
// Redis connection with auto-pipelining, as a Node service runs per core.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const jwt = require('jsonwebtoken');
const { Redis } = require('ioredis');

function parseArgs(argv) {
  const opt = {
    listen: 8082, redis: 'redis://127.0.0.1:6379', key: null, kid: null, apiKeyFile: null,
    script: null, limit: 3, policy: 'block_new', grace: 30, heartbeat: 10, ttl: 1800,
    prefix: 'hb', control: 'ctl',
  };
  const names = {
    '--listen': 'listen', '--redis': 'redis', '--key': 'key', '--kid': 'kid',
    '--api-key-file': 'apiKeyFile', '--script': 'script', '--default-limit': 'limit',
    '--default-policy': 'policy', '--grace-seconds': 'grace', '--heartbeat-seconds': 'heartbeat',
    '--token-ttl': 'ttl',
  };
  for (let i = 2; i < argv.length; i += 2) {
    const name = names[argv[i]];
    if (name === undefined || argv[i + 1] === undefined) throw new Error(`bad option ${argv[i]}`);
    opt[name] = argv[i + 1];
  }
  for (const n of ['listen', 'limit', 'grace', 'heartbeat', 'ttl']) opt[n] = Number(opt[n]);
  if (!opt.key || !opt.apiKeyFile || !opt.script) {
    throw new Error('--key, --api-key-file and --script are required');
  }
  return opt;
}

const opt = parseArgs(process.argv);
const ID = /^[A-Za-z0-9._:-]{1,64}$/;
const FIELDS = new Set(['account', 'device', 'group', 'media']);
const BODY_MAX = 4096;

// The signing key as hb-api reads it: a PEM private key (ES256) or a secret's text (HS256);
// kid = the file's name without its extension. Both become a KeyObject once: given a string,
// jsonwebtoken tries to parse it as a PEM key on every sign (half the CPU in a first try).
const keyText = fs.readFileSync(opt.key, 'utf8');
const signing = keyText.includes('-----BEGIN')
  ? { key: crypto.createPrivateKey(keyText), algorithm: 'ES256' }
  : { key: crypto.createSecretKey(Buffer.from(keyText.replace(/\r?\n$/, ''))), algorithm: 'HS256' };
const kid = opt.kid || opt.key.replace(/^.*\//, '').replace(/\.[^.]*$/, '');

// API keys kept as SHA-256 digests and compared in constant time, as hb-api does.
const sha256 = (s) => crypto.createHash('sha256').update(s).digest();
const apiKeys = fs.readFileSync(opt.apiKeyFile, 'utf8').split('\n')
  .map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map(sha256);
function authorized(header) {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const d = sha256(header.slice(7));
  let ok = false;
  for (const k of apiKeys) ok = crypto.timingSafeEqual(k, d) || ok;
  return ok;
}

const redis = new Redis(opt.redis, { enableAutoPipelining: true });
redis.defineCommand('admit', { numberOfKeys: 2, lua: fs.readFileSync(opt.script, 'utf8') });

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json', 'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function bad(res, status, error, field) {
  reply(res, status, field ? { error, field } : { error });
}

function mint(account, device) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    acl: [
      { permission: 'allow', action: 'publish', topic: `${opt.prefix}/${account}/\${clientid}` },
      { permission: 'allow', action: 'subscribe', topic: `${opt.control}/${account}/${device}` },
      { permission: 'deny', action: 'all', topic: '#' },
    ],
    sub: account, iat: now, nbf: now, exp: now + opt.ttl,
    jti: crypto.randomBytes(16).toString('hex'), role: 'device', device,
  };
  return { token: jwt.sign(claims, signing.key, { algorithm: signing.algorithm, keyid: kid }),
    expiresAt: now + opt.ttl };
}

function activeList(rows) {
  return rows.map((r) => ({
    device: r[0], since: Number(r[1]) / 1000, last_seen: Number(r[2]) / 1000,
    group: r[3] || null, media: r[4] || null,
  }));
}

async function play(res, body) {
  for (const k of Object.keys(body)) if (!FIELDS.has(k)) return bad(res, 400, 'unknown_field', k);
  for (const k of ['account', 'device', 'group', 'media']) {
    const v = body[k];
    if (v === undefined && (k === 'group' || k === 'media')) continue;
    if (v === undefined) return bad(res, 400, 'missing_field', k);
    if (typeof v !== 'string' || !ID.test(v)) return bad(res, 400, 'invalid_field', k);
  }
  const { account, device } = body;
  let r;
  try {
    r = await redis.admit(`hb:plays:{${account}}`, `hb:limits:{${account}}`, device,
      body.group || '', body.media || '', 0, opt.grace * 1000, opt.limit, opt.policy);
  } catch (e) {
    return bad(res, 503, 'redis_unavailable');
  }
  const [decision, limit, , active, evicted, again] = r;
  if (decision !== 'ok') {
    return reply(res, 409, { allow: false, reason: decision, limit, active: activeList(active) });
  }
  const t = mint(account, device);
  return reply(res, 200, {
    allow: true, token: t.token, expires_at: t.expiresAt, heartbeat_seconds: opt.heartbeat,
    active: active.length, limit, again: again === 1, evicted,
  });
}

const server = http.createServer((req, res) => {
  if (req.url === '/healthz' && req.method === 'GET') return reply(res, 200, { ok: true });
  if (req.url !== '/v1/plays') return bad(res, 404, 'not_found', 'path');
  if (req.method !== 'POST') return bad(res, 405, 'method_not_allowed');
  if (!authorized(req.headers.authorization)) return bad(res, 401, 'unauthorized');
  if (!/^application\/json\b/.test(req.headers['content-type'] || '')) {
    return bad(res, 415, 'unsupported_media_type');
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size <= BODY_MAX) chunks.push(c); });
  req.on('end', () => {
    if (size > BODY_MAX) return bad(res, 413, 'payload_too_large');
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      return bad(res, 400, 'malformed_json');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return bad(res, 400, 'malformed_json');
    }
    play(res, body).catch(() => bad(res, 500, 'internal'));
  });
});
server.keepAliveTimeout = 10000;
server.listen(opt.listen, '127.0.0.1', () => {
  process.stderr.write(`hb-admit (node) listening on 127.0.0.1:${opt.listen}, ` +
    `${signing.algorithm} key ${kid}\n`);
});
process.on('SIGTERM', () => { server.close(); redis.disconnect(); process.exit(0); });
