#!/usr/bin/env node
'use strict';
// A chat server on the `ws` npm package that speaks bench's reference
// protocol v1 (docs/protocol.md): the same JSON frames as reference-server,
// so `bench run` can drive it with `protocol = "chat"` and the two can be
// compared side by side. Plain, idiomatic `ws` code — the point is to measure
// what a typical Node service costs, not to out-tune it.
//
// Not implemented (documented in README.md): rate limiting, batching,
// backpressure shedding, /metrics beyond a few counters, chaos flags.

const { WebSocketServer } = require('ws');
const {
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
} = require('./lib/common');

const opts = parseArgs(process.argv.slice(2), {
  ...TLS_FLAGS,
  host: { default: '127.0.0.1', parse: parseLoopbackHost, help: 'loopback address to bind' },
  port: { default: 8080, parse: parseIntArg, help: 'TCP port; 0 picks a free one' },
  'jwt-secret': { default: process.env.BENCH_JWT_SECRET || '', help: 'HS256 secret; enables auth' },
  'heartbeat-interval': { default: 30000, parse: parseDuration, help: 'WebSocket ping interval' },
  'heartbeat-timeout': { default: 10000, parse: parseDuration, help: 'pong deadline after a ping' },
  'history-len': { default: 100, parse: parseIntArg, help: 'chat messages kept per room for resume' },
  'max-message-size': { default: 65536, parse: parseIntArg, help: 'bytes; larger frames close with 1009' },
  deflate: { flag: true, default: false, help: "accept permessage-deflate (ws's perMessageDeflate, its defaults: context takeover both ways)" },
  'deflate-threshold': { default: 0, parse: parseIntArg, help: 'with --deflate, bytes below which messages go uncompressed' },
});
process.title = 'bench-peer-ws';

const MAX_ROOM_LEN = 128;
const MAX_TEXT_LEN = 16384;
const AUTH_DEADLINE_MS = 5000;
const secret = opts['jwt-secret'];

/** room name → { seq, history: [{seq, frame}], members: Set<Conn>, users: Map<user, count> } */
const rooms = new Map();
const counters = { connections_current: 0, connections_total: 0, frames_in_total: 0, frames_out_total: 0, deliveries_total: 0, heartbeat_timeouts_total: 0, auth_failures_total: 0 };
let nextConn = 1;
// Protocol v1 `welcome.instance`: new per process, so clients can tell a
// restarted server (whose room seqs start over) from the same one.
const INSTANCE = `${process.pid.toString(16)}-${Date.now().toString(16)}`;

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, history: [], members: new Set(), users: new Map() };
    rooms.set(name, r);
  }
  return r;
}

function send(conn, text) {
  if (conn.ws.readyState !== 1) return;
  counters.frames_out_total++;
  conn.ws.send(text);
}

function errorFrame(code, message, id) {
  const f = { type: 'error', code, message };
  if (id !== undefined) f.id = id;
  return JSON.stringify(f);
}

function isScalarId(v) {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

function validRoom(conn, msg) {
  if (typeof msg.room !== 'string') {
    send(conn, errorFrame('INVALID_MESSAGE', 'missing field `room`', msg.id));
    return false;
  }
  if (msg.room.length === 0 || msg.room.length > MAX_ROOM_LEN) {
    send(conn, errorFrame('INVALID_MESSAGE', `room name must be 1..${MAX_ROOM_LEN} characters`, msg.id));
    return false;
  }
  return true;
}

function requireMember(conn, msg) {
  if (conn.rooms.has(msg.room)) return true;
  send(conn, errorFrame('NOT_IN_ROOM', `not a member of ${msg.room}`, msg.id));
  return false;
}

function join(conn, name) {
  const r = room(name);
  if (!r.members.has(conn)) {
    r.members.add(conn);
    conn.rooms.add(name);
    const n = r.users.get(conn.user) || 0;
    r.users.set(conn.user, n + 1);
    if (n === 0) {
      const presence = JSON.stringify({ type: 'presence', room: name, user: conn.user, status: 'online' });
      for (const m of r.members) if (m !== conn) send(m, presence);
    }
  }
  send(conn, JSON.stringify({ type: 'joined', room: name, seq: r.seq, members: r.members.size }));
}

function leave(conn, name) {
  const r = rooms.get(name);
  if (!r || !r.members.delete(conn)) return;
  conn.rooms.delete(name);
  const n = (r.users.get(conn.user) || 1) - 1;
  if (n === 0) {
    r.users.delete(conn.user);
    const presence = JSON.stringify({ type: 'presence', room: name, user: conn.user, status: 'offline' });
    for (const m of r.members) send(m, presence);
  } else {
    r.users.set(conn.user, n);
  }
  if (r.members.size === 0 && r.history.length === 0) rooms.delete(name);
}

function handle(conn, text) {
  counters.frames_in_total++;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    if (!conn.authed) authFailed(conn, `the first frame must be an \`auth\` frame: ${e.message}`);
    else send(conn, errorFrame('PARSE_ERROR', e.message));
    return;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    send(conn, errorFrame('INVALID_MESSAGE', 'frame must be a JSON object'));
    return;
  }
  if (!conn.authed) {
    if (msg.type !== 'auth' || typeof msg.token !== 'string') {
      authFailed(conn, 'the first frame must be an `auth` frame');
      return;
    }
    const v = verifyJwt(msg.token, secret);
    if (!v.ok) {
      authFailed(conn, v.reason);
      return;
    }
    clearTimeout(conn.authTimer);
    authenticated(conn, v.claims);
    return;
  }
  switch (msg.type) {
    case 'join':
      if (!validRoom(conn, msg)) return;
      if (!roomAllowed(conn.claims, msg.room)) {
        send(conn, errorFrame('FORBIDDEN', `room ${msg.room} not allowed by token`, msg.id));
        return;
      }
      join(conn, msg.room);
      return;
    case 'leave':
      if (!validRoom(conn, msg) || !requireMember(conn, msg)) return;
      leave(conn, msg.room);
      send(conn, JSON.stringify({ type: 'left', room: msg.room }));
      return;
    case 'chat': {
      if (!validRoom(conn, msg)) return;
      if (!isScalarId(msg.id)) {
        send(conn, errorFrame('INVALID_MESSAGE', msg.id === undefined ? 'missing field `id`' : '`id` must be a string or a number', msg.id));
        return;
      }
      if (typeof msg.ts !== 'number') {
        send(conn, errorFrame('INVALID_MESSAGE', msg.ts === undefined ? 'missing field `ts`' : '`ts` must be a number', msg.id));
        return;
      }
      if (typeof msg.text !== 'string') {
        send(conn, errorFrame('INVALID_MESSAGE', 'missing field `text`', msg.id));
        return;
      }
      if (msg.text.length > MAX_TEXT_LEN) {
        send(conn, errorFrame('TOO_LARGE', `text longer than ${MAX_TEXT_LEN} characters`, msg.id));
        return;
      }
      if (!requireMember(conn, msg)) return;
      const r = room(msg.room);
      const seq = ++r.seq;
      send(conn, JSON.stringify({ type: 'ack', id: msg.id, seq }));
      const frame = JSON.stringify({ type: 'chat', room: msg.room, seq, from: conn.user, id: msg.id, text: msg.text, ts: msg.ts });
      r.history.push({ seq, frame });
      if (r.history.length > opts['history-len']) r.history.shift();
      for (const m of r.members) {
        if (m !== conn) {
          counters.deliveries_total++;
          send(m, frame);
        }
      }
      return;
    }
    case 'typing': {
      if (!validRoom(conn, msg) || !requireMember(conn, msg)) return;
      const frame = JSON.stringify({ type: 'typing', room: msg.room, user: conn.user });
      for (const m of rooms.get(msg.room).members) if (m !== conn) send(m, frame);
      return;
    }
    case 'resume': {
      if (!validRoom(conn, msg)) return;
      if (!Number.isInteger(msg.after) || msg.after < 0) {
        send(conn, errorFrame('INVALID_MESSAGE', msg.after === undefined ? 'missing field `after`' : '`after` must be a non-negative integer', msg.id));
        return;
      }
      if (!roomAllowed(conn.claims, msg.room)) {
        send(conn, errorFrame('FORBIDDEN', `room ${msg.room} not allowed by token`, msg.id));
        return;
      }
      const r = rooms.get(msg.room);
      let replayed = 0;
      let complete = true;
      if (r) {
        const oldest = r.history.length ? r.history[0].seq : r.seq + 1;
        complete = msg.after >= r.seq || oldest <= msg.after + 1;
        for (const h of r.history) {
          if (h.seq > msg.after) {
            send(conn, h.frame);
            replayed++;
          }
        }
      }
      send(conn, JSON.stringify({ type: 'resumed', room: msg.room, replayed, complete }));
      return;
    }
    case 'ping':
      if (typeof msg.ts !== 'number') {
        send(conn, errorFrame('INVALID_MESSAGE', msg.ts === undefined ? 'missing field `ts`' : '`ts` must be a number', msg.id));
        return;
      }
      send(conn, JSON.stringify({ type: 'pong', ts: msg.ts }));
      return;
    case 'auth':
      send(conn, errorFrame('INVALID_MESSAGE', 'already authenticated', msg.id));
      return;
    case undefined:
      send(conn, errorFrame('INVALID_MESSAGE', 'missing field `type`', msg.id));
      return;
    default:
      send(conn, errorFrame('INVALID_MESSAGE', `unknown type \`${msg.type}\``, msg.id));
  }
}

/** As the reference server: an UNAUTHORIZED error frame, then close 1008. */
function authFailed(conn, why) {
  counters.auth_failures_total++;
  clearTimeout(conn.authTimer);
  send(conn, errorFrame('UNAUTHORIZED', why));
  conn.ws.close(1008, why.slice(0, 120));
}

function authenticated(conn, claims) {
  conn.authed = true;
  conn.claims = claims;
  conn.user = claims.sub;
  send(conn, JSON.stringify({ type: 'welcome', user: conn.user, conn: conn.id, heartbeat_ms: opts['heartbeat-interval'], instance: INSTANCE }));
}

const server = createServer(opts, (req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  } else if (path === '/metrics') {
    const lines = Object.entries(counters).map(([k, v]) => `${k} ${v}`);
    lines.push(`rooms_current ${rooms.size}`, `process_resident_memory_bytes ${process.memoryUsage().rss}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }
});

const perMessageDeflate = opts.deflate ? { threshold: opts['deflate-threshold'] } : false;
const wss = new WebSocketServer({ noServer: true, maxPayload: opts['max-message-size'], perMessageDeflate });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url || '/', 'http://localhost');
  if (url.pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found');
    return;
  }
  let claims = null;
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  const token = url.searchParams.get('token') || (bearer && bearer[1]);
  if (secret && token) {
    const v = verifyJwt(token, secret);
    if (!v.ok) {
      counters.auth_failures_total++;
      socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(v.reason)}\r\nConnection: close\r\n\r\n${v.reason}`);
      return;
    }
    claims = v.claims;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const conn = { id: nextConn++, ws, user: null, claims: null, authed: false, alive: true, rooms: new Set(), authTimer: null };
    counters.connections_current++;
    counters.connections_total++;
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (!conn.authed) authFailed(conn, 'the first frame must be a JSON `auth` frame');
        else send(conn, errorFrame('INVALID_MESSAGE', 'binary frames are not supported; send JSON text frames'));
        return;
      }
      handle(conn, data.toString('utf8'));
    });
    ws.on('close', () => {
      counters.connections_current--;
      clearTimeout(conn.authTimer);
      for (const name of [...conn.rooms]) leave(conn, name);
      conns.delete(conn);
    });
    ws.on('error', () => {});
    conns.add(conn);
    if (claims) {
      authenticated(conn, claims);
    } else if (secret) {
      conn.authTimer = setTimeout(() => authFailed(conn, 'no auth frame within the auth timeout'), AUTH_DEADLINE_MS);
    } else {
      authenticated(conn, { sub: url.searchParams.get('user') || `u${conn.id}` });
      conn.claims = null;
    }
  });
});

// Heartbeat: ping every interval; a connection that has not answered the
// previous ping by the time the timeout passes is terminated and counted.
const conns = new Set();
const heartbeat = setInterval(() => {
  for (const conn of conns) {
    if (!conn.alive) continue;
    conn.alive = false;
    conn.ws.ping();
    setTimeout(() => {
      if (!conn.alive && conn.ws.readyState === 1) {
        counters.heartbeat_timeouts_total++;
        conn.ws.terminate();
      }
    }, opts['heartbeat-timeout']).unref();
  }
}, opts['heartbeat-interval']);
heartbeat.unref();

server.listen(opts.port, opts.host, () => announce(server));
exitOnSignals(
  () =>
    new Promise((resolve) => {
      for (const conn of conns) conn.ws.close(1012, 'server restarting');
      server.close(() => resolve());
    }),
);
