#!/usr/bin/env node
'use strict';
// A rooms chat in the style of `ws` tutorials, with first-message auth:
//   client → {type:"auth", token}          server → {type:"welcome", user}
//   client → {type:"room:join", room}      server → {type:"room:joined", room}
//   client → {type:"room:leave", room}     server → {type:"room:left", room}
//   client → {type:"chat:message", room, text}
//        server → {type:"chat:sent"} to the sender (an ack without id),
//                 {type:"chat:message", room, text, from, sentAt} to every
//                 *other* member of the room (sentAt: ms since the epoch)
//   server → {type:"ping"} every --ping-interval; client → {type:"pong"}
// Anything before a valid auth closes with 4001; the token is an HS256
// JWT checked with --jwt-secret (any non-empty token without a secret).
// WebSocket-level pings are answered by `ws` itself.
//
// bench drives it with `protocol = "json"` (scenarios/json-rooms.toml).
// For tests: GET /stats; `--drop-every N` skips every Nth room delivery.

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');
const {
  parseArgs,
  parseIntArg,
  parseDuration,
  parseLoopbackHost,
  verifyJwt,
  announce,
  exitOnSignals,
} = require('./lib/common');

const opts = parseArgs(process.argv.slice(2), {
  host: { default: '127.0.0.1', parse: parseLoopbackHost, help: 'loopback address to bind' },
  port: { default: 8080, parse: parseIntArg, help: 'TCP port; 0 picks a free one' },
  'jwt-secret': { default: process.env.BENCH_JWT_SECRET || '', help: 'HS256 secret for the auth token' },
  'ping-interval': { default: 0, parse: parseDuration, help: 'JSON {type:"ping"} to every client (0: never)' },
  'drop-every': { default: 0, parse: parseIntArg, help: 'skip every Nth delivery (0: never)' },
});
process.title = 'bench-peer-json-rooms';

const stats = { connections: 0, messages: 0, deliveries: 0, dropped: 0, auth_failures: 0, pongs: 0 };
const rooms = new Map(); // name → Set<ws>
let attempts = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
  } else {
    res.writeHead(404);
    res.end();
  }
});
const wss = new WebSocketServer({ server });

function authenticate(token) {
  if (typeof token !== 'string' || token.length === 0) return null;
  if (!opts['jwt-secret']) return token.slice(0, 32);
  const v = verifyJwt(token, opts['jwt-secret']);
  return v.ok ? v.claims.sub : null;
}

wss.on('connection', (ws) => {
  stats.connections++;
  ws.user = null;
  ws.rooms = new Set();
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'BAD_JSON' }));
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (ws.user === null) {
      const user = msg.type === 'auth' ? authenticate(msg.token) : null;
      if (user === null) {
        stats.auth_failures++;
        ws.close(4001, 'authenticate first');
        return;
      }
      ws.user = user;
      ws.send(JSON.stringify({ type: 'welcome', user }));
      return;
    }
    switch (msg.type) {
      case 'room:join': {
        if (typeof msg.room !== 'string') return;
        if (!rooms.has(msg.room)) rooms.set(msg.room, new Set());
        rooms.get(msg.room).add(ws);
        ws.rooms.add(msg.room);
        ws.send(JSON.stringify({ type: 'room:joined', room: msg.room }));
        break;
      }
      case 'room:leave': {
        rooms.get(msg.room)?.delete(ws);
        ws.rooms.delete(msg.room);
        ws.send(JSON.stringify({ type: 'room:left', room: msg.room }));
        break;
      }
      case 'chat:message': {
        const members = rooms.get(msg.room);
        if (!members || !members.has(ws)) {
          ws.send(JSON.stringify({ type: 'error', code: 'NOT_IN_ROOM' }));
          return;
        }
        stats.messages++;
        ws.send(JSON.stringify({ type: 'chat:sent' }));
        const out = JSON.stringify({ type: 'chat:message', room: msg.room, text: msg.text, from: ws.user, sentAt: Date.now() });
        for (const member of members) {
          if (member === ws || member.readyState !== WebSocket.OPEN) continue;
          attempts++;
          if (opts['drop-every'] > 0 && attempts % opts['drop-every'] === 0) {
            stats.dropped++;
            continue;
          }
          stats.deliveries++;
          member.send(out);
        }
        break;
      }
      case 'pong':
        stats.pongs++;
        break;
      default:
        break;
    }
  });
  ws.on('close', () => {
    for (const r of ws.rooms) rooms.get(r)?.delete(ws);
  });
});

if (opts['ping-interval'] > 0) {
  setInterval(() => {
    const ping = JSON.stringify({ type: 'ping' });
    wss.clients.forEach((c) => c.readyState === WebSocket.OPEN && c.user !== null && c.send(ping));
  }, opts['ping-interval']).unref();
}

exitOnSignals(() => new Promise((resolve) => server.close(resolve)));
server.listen(opts.port, opts.host, () => announce(server));
