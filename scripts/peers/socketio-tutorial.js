#!/usr/bin/env node
'use strict';
// A Socket.IO chat in the style of its tutorials, with no seq and no ts:
//   client emits `room:join` "<room>" (bare name), ack → {ok: true}
//   client emits `message:send` {roomId, content}, ack → {ok: true}
//   server emits `message:new` {roomId, content, from} to the *other*
//   sockets in the room
// bench drives it with `protocol = "socketio"` and `accounting =
// "generator"` (scenarios/json-socketio-tutorial.toml): the server numbers
// nothing, so bench accounts deliveries from its own ids.
//
// For tests: GET /stats; `--drop-every N` skips every Nth delivery.

const http = require('node:http');
const { Server } = require('socket.io');
const { parseArgs, parseIntArg, parseLoopbackHost, announce, exitOnSignals } = require('./lib/common');

const opts = parseArgs(process.argv.slice(2), {
  host: { default: '127.0.0.1', parse: parseLoopbackHost, help: 'loopback address to bind' },
  port: { default: 8080, parse: parseIntArg, help: 'TCP port; 0 picks a free one' },
  'drop-every': { default: 0, parse: parseIntArg, help: 'skip every Nth delivery (0: never)' },
});
process.title = 'bench-peer-siotut';

const stats = { connections: 0, messages: 0, deliveries: 0, dropped: 0 };
let attempts = 0;

const httpServer = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
  } else if (!(req.url || '').startsWith('/socket.io') && !res.headersSent) {
    res.writeHead(404).end();
  }
});
const io = new Server(httpServer, { serveClient: false, perMessageDeflate: false });

io.on('connection', (socket) => {
  stats.connections++;
  socket.on('room:join', (room, ack) => {
    if (typeof room !== 'string') return typeof ack === 'function' && ack({ ok: false });
    socket.join(room);
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('message:send', (msg, ack) => {
    if (!msg || typeof msg.roomId !== 'string') return;
    stats.messages++;
    const out = { roomId: msg.roomId, content: msg.content, from: socket.id };
    // `socket.to(room).emit(...)` in the tutorials; spelled out to count and drop.
    for (const id of io.sockets.adapter.rooms.get(msg.roomId) || []) {
      if (id === socket.id) continue;
      const peer = io.sockets.sockets.get(id);
      if (!peer) continue;
      attempts++;
      if (opts['drop-every'] > 0 && attempts % opts['drop-every'] === 0) {
        stats.dropped++;
        continue;
      }
      stats.deliveries++;
      peer.emit('message:new', out);
    }
    if (typeof ack === 'function') ack({ ok: true });
  });
});

exitOnSignals(() => new Promise((resolve) => io.close(() => resolve())));
httpServer.listen(opts.port, opts.host, () => announce(httpServer));
