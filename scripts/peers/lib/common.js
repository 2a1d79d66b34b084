'use strict';
// Shared helpers for the peer servers: flag parsing, durations, HS256 JWT
// verification (node:crypto only, so the lockfile stays small) and the
// `listening on HOST:PORT` readiness line that bench and the tests wait for.

const crypto = require('node:crypto');

/** Parses `--name value` / `--name=value` / `--flag` into an object. */
function parseArgs(argv, spec) {
  const out = {};
  for (const [name, def] of Object.entries(spec)) out[name] = def.default;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      const lines = Object.entries(spec).map(
        ([n, d]) => `  --${n}${d.flag ? '' : ' VALUE'}  ${d.help} (default: ${JSON.stringify(d.default)})`,
      );
      process.stdout.write(`options:\n${lines.join('\n')}\n`);
      process.exit(0);
    }
    if (!arg.startsWith('--')) usage(`unexpected argument ${arg}`);
    let value;
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const name = arg.slice(2);
    const def = spec[name];
    if (!def) usage(`unknown option --${name}`);
    if (def.flag) {
      out[name] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`--${name} needs a value`);
      value = argv[++i];
    }
    out[name] = def.parse ? def.parse(value, name) : value;
  }
  return out;
}

function usage(msg) {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(2);
}

/** `250ms`, `30s`, `2m` or a bare number of milliseconds → milliseconds. */
function parseDuration(text, name = 'duration') {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(text).trim());
  if (!m) usage(`--${name}: bad duration ${JSON.stringify(text)} (use e.g. 250ms, 30s)`);
  const n = Number(m[1]);
  const unit = m[2] || 'ms';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60000);
}

function parseIntArg(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usage(`--${name}: expected a non-negative integer, got ${text}`);
  return n;
}

/** Only loopback addresses: peers are test and benchmark targets, never public. */
function parseLoopbackHost(text, name) {
  if (!/^127\.\d+\.\d+\.\d+$/.test(text)) usage(`--${name}: only 127.0.0.0/8 addresses are allowed, got ${text}`);
  return text;
}

/**
 * Verifies an HS256 JWT. Returns `{ok:true, claims}` or `{ok:false, reason}`.
 * Same rules and reasons as the reference server (reference-server/src/auth.rs):
 * HS256 only, `sub` and `exp` required, `exp` enforced.
 */
function verifyJwt(token, secret) {
  if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'missing token' };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'invalid token: malformed' };
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid token: malformed' };
  }
  if (!header || header.alg !== 'HS256') return { ok: false, reason: 'token algorithm must be HS256' };
  const expected = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'invalid token signature' };
  }
  if (!claims || typeof claims !== 'object') return { ok: false, reason: 'invalid token: claims are not an object' };
  if (typeof claims.exp !== 'number') return { ok: false, reason: 'token lacks the `exp` claim' };
  if (claims.sub === undefined) return { ok: false, reason: 'token lacks the `sub` claim' };
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) return { ok: false, reason: 'token `sub` is empty' };
  if (claims.exp * 1000 <= Date.now()) return { ok: false, reason: 'token expired' };
  return { ok: true, claims };
}

/** Whether a token's `rooms` claim (names or `prefix*` patterns) allows `room`. */
function roomAllowed(claims, room) {
  if (!claims || !Array.isArray(claims.rooms)) return true;
  return claims.rooms.some((p) =>
    typeof p === 'string' && (p.endsWith('*') ? room.startsWith(p.slice(0, -1)) : p === room),
  );
}

/** Prints the readiness line exactly once, after the socket accepts connections. */
/** The flags of `createServer`: TLS when both are given. */
const TLS_FLAGS = {
  'tls-cert': { default: '', help: 'certificate chain (PEM); with --tls-key the port speaks TLS (wss://, https://)' },
  'tls-key': { default: '', help: 'private key (PEM) of --tls-cert' },
};

/** An HTTP server, or HTTPS with --tls-cert/--tls-key (node:https, OpenSSL underneath). */
function createServer(opts, handler) {
  const cert = opts['tls-cert'];
  const key = opts['tls-key'];
  if (!cert && !key) return require('node:http').createServer(handler);
  if (!cert || !key) usage('--tls-cert and --tls-key go together');
  const fs = require('node:fs');
  return require('node:https').createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler);
}

function announce(server) {
  const addr = server.address();
  process.stdout.write(`listening on ${addr.address}:${addr.port}\n`);
}

/** Exits cleanly on SIGTERM/SIGINT so bench's child handling sees status 0. */
function exitOnSignals(cleanup) {
  const stop = () => {
    Promise.resolve()
      .then(cleanup)
      .catch(() => {})
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

module.exports = {
  parseArgs,
  parseDuration,
  parseIntArg,
  parseLoopbackHost,
  verifyJwt,
  roomAllowed,
  announce,
  exitOnSignals,
  TLS_FLAGS,
  createServer,
};
