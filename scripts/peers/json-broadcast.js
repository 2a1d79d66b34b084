#!/usr/bin/env node
'use strict';
// The chat server of a typical `ws` tutorial: no rooms, no ids, no seqs.
// Every client gets `{type:"welcome", message, timestamp}` on connect, and
// every `{type:"message", message}` it sends is broadcast to *every*
// connected client, the sender included, as
// `{type:"broadcast", message, timestamp}` with an ISO 8601 timestamp.
// A plain-text `ping` is answered `pong`.
//
// bench drives it with `protocol = "json"` (scenarios/json-broadcast.toml):
// membership = "all", echo_to_sender = true, accounting by the generator.
//
// For tests: GET /stats returns what the server delivered and dropped;
// `--drop-every N` silently skips every Nth delivery (a lossy server);
// `--stall-after MS --stall-for MS` holds every broadcast for MS once,
// MS after the first message, then sends what it held (a frozen server).

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');
const { parseArgs, parseIntArg, parseDuration, parseLoopbackHost, announce, exitOnSignals } = require('./lib/common');

const opts = parseArgs(process.argv.slice(2), {
  host: { default: '127.0.0.1', parse: parseLoopbackHost, help: 'loopback address to bind' },
  port: { default: 8080, parse: parseIntArg, help: 'TCP port; 0 picks a free one' },
  'drop-every': { default: 0, parse: parseIntArg, help: 'skip every Nth delivery (0: never)' },
  'stall-after': { default: 0, parse: parseDuration, help: 'ms after the first message when the stall starts' },
  'stall-for': { default: 0, parse: parseDuration, help: 'hold broadcasts this long, once (0: never)' },
});
process.title = 'bench-peer-json-broadcast';

const stats = { connections: 0, messages: 0, deliveries: 0, dropped: 0 };
let attempts = 0;
let firstAt = 0;
let held = null; // broadcasts held during the stall

function stalled(now) {
  if (opts['stall-for'] <= 0 || firstAt === 0) return false;
  const start = firstAt + opts['stall-after'];
  return now >= start && now < start + opts['stall-for'];
}

function broadcast(out) {
  wss.clients.forEach((client) => {
    if (client.readyState !== WebSocket.OPEN) return;
    attempts++;
    if (opts['drop-every'] > 0 && attempts % opts['drop-every'] === 0) {
      stats.dropped++;
      return;
    }
    stats.deliveries++;
    client.send(out);
  });
}

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

wss.on('connection', (ws) => {
  stats.connections++;
  ws.send(JSON.stringify({ type: 'welcome', message: 'Welcome to the chat!', timestamp: new Date().toISOString() }));
  ws.on('message', (data, isBinary) => {
    const text = data.toString();
    if (!isBinary && text === 'ping') {
      ws.send('pong');
      return;
    }
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || msg.type !== 'message') return;
    stats.messages++;
    const now = Date.now();
    if (firstAt === 0) firstAt = now;
    const out = JSON.stringify({ type: 'broadcast', message: msg.message, timestamp: new Date(now).toISOString() });
    if (stalled(now)) {
      if (held === null) {
        held = [];
        const left = firstAt + opts['stall-after'] + opts['stall-for'] - now;
        setTimeout(() => {
          const h = held;
          held = undefined; // the one stall is over
          h.forEach(broadcast);
        }, left);
      }
      if (held) {
        held.push(out);
        return;
      }
    }
    broadcast(out);
  });
});

exitOnSignals(() => new Promise((resolve) => server.close(resolve)));
server.listen(opts.port, opts.host, () => announce(server));
