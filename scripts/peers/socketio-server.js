#!/usr/bin/env node
'use strict';
// A Socket.IO v4 chat server with reference protocol v1's semantics expressed
// as events, so bench's `protocol = "socketio"` dialect drives it with its
// default event names and no mapping:
//
//   client → server            ack                      server → others in room
//   join   {room}              {seq, members}           presence {room, user, status}
//   leave  {room}              {room}                   presence (offline)
//   chat   {room,id,text,ts}   {seq}                    chat {room, seq, from, id, text, ts}
//   typing {room}              —                        typing {room, user}
//   resume {room, after}       {room, replayed, complete}  (replayed chat events first)
//   ping   any                 the same value           —   (app-level RTT)
//   echo   any args            the same args            —   (binary attachments round trip)
//
// Errors are acked as {error: CODE, message}. Namespaces `/` and `/chat`
// behave the same. With --jwt-secret or --token, a middleware checks
// `auth.token` on CONNECT and rejects with a connect error whose message is
// the reason and whose data is {code: "UNAUTHORIZED"}.
//
// With --redis URL, rooms span processes through @socket.io/redis-adapter and
// room seqs come from Redis INCR so they stay one sequence per room.

const { Server } = require('socket.io');
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
  'jwt-secret': { default: process.env.BENCH_JWT_SECRET || '', help: 'HS256 secret; auth.token must be a valid JWT' },
  token: { default: '', help: 'shared secret; auth.token must equal it' },
  'ping-interval': { default: 25000, parse: parseDuration, help: 'Engine.IO pingInterval' },
  'ping-timeout': { default: 20000, parse: parseDuration, help: 'Engine.IO pingTimeout' },
  'history-len': { default: 100, parse: parseIntArg, help: 'chat events kept per room for resume' },
  transports: { default: 'polling,websocket', help: 'allowed Engine.IO transports, comma-separated' },
  redis: { default: '', help: 'redis:// URL; enables @socket.io/redis-adapter' },
  'max-message-size': { default: 1e6, parse: parseIntArg, help: 'maxHttpBufferSize in bytes' },
});
// Short titles (≤ 15 chars, the kernel's comm length) so `server_process` matches them.
process.title = opts.redis ? 'bench-sioredis' : 'bench-peer-sio';

const MAX_ROOM_LEN = 128;
const NAMESPACES = ['/', '/chat'];

async function main() {
  const httpServer = createServer(opts, (req, res) => {
    // Socket.IO answers its own path; everything else lands here.
    if ((req.url || '').startsWith('/healthz')) res.writeHead(200).end('ok');
    else if (!res.headersSent && !(req.url || '').startsWith('/socket.io')) res.writeHead(404).end('not found');
  });
  const io = new Server(httpServer, {
    pingInterval: opts['ping-interval'],
    pingTimeout: opts['ping-timeout'],
    transports: opts.transports.split(',').map((t) => t.trim()),
    maxHttpBufferSize: opts['max-message-size'],
    perMessageDeflate: false,
    httpCompression: false,
    serveClient: false,
  });

  let redis = null;
  if (opts.redis) {
    const { createClient } = require('redis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = createClient({ url: opts.redis });
    const sub = pub.duplicate();
    redis = pub.duplicate();
    for (const c of [pub, sub, redis]) c.on('error', (e) => process.stderr.write(`socketio-server: redis: ${e.message}\n`));
    await Promise.all([pub.connect(), sub.connect(), redis.connect()]);
    io.adapter(createAdapter(pub, sub));
    // Close Socket.IO first: the adapter still talks to Redis while it closes.
    exitOnSignals(
      () =>
        new Promise((resolve) => io.close(() => resolve())).then(() =>
          Promise.allSettled([pub.quit(), sub.quit(), redis.quit()]),
        ),
    );
  } else {
    exitOnSignals(() => new Promise((resolve) => io.close(() => resolve())));
  }

  for (const name of NAMESPACES) setupNamespace(io.of(name), redis);

  httpServer.listen(opts.port, opts.host, () => announce(httpServer));
}

function authMiddleware(socket, next) {
  const secret = opts['jwt-secret'];
  const shared = opts.token;
  const auth = socket.handshake.auth || {};
  const token = typeof auth.token === 'string' ? auth.token : socket.handshake.query.token;
  if (secret) {
    const v = verifyJwt(token, secret);
    if (!v.ok) return next(reject(v.reason));
    socket.data.claims = v.claims;
    socket.data.user = v.claims.sub;
  } else if (shared) {
    if (token !== shared) return next(reject(token ? 'invalid token' : 'missing token'));
  }
  if (!socket.data.user) {
    const given = auth.user || socket.handshake.query.user;
    socket.data.user = typeof given === 'string' && given ? given : `u-${socket.id}`;
  }
  return next();
}

function reject(reason) {
  const err = new Error(reason);
  err.data = { code: 'UNAUTHORIZED' };
  return err;
}

function setupNamespace(nsp, redis) {
  /** room → { seq, history: [{seq, payload}], users: Map<user, localCount> } (per process) */
  const rooms = new Map();
  const roomState = (name) => {
    let r = rooms.get(name);
    if (!r) {
      r = { seq: 0, history: [], users: new Map() };
      rooms.set(name, r);
    }
    return r;
  };
  // Without Redis these answer synchronously, so acks leave in the order
  // the events came in (an `await` would let a later ping ack overtake).
  const nextSeq = (name) => (redis ? redis.incr(`bench:seq:${nsp.name}:${name}`).then(Number) : ++roomState(name).seq);
  const currentSeq = (name) =>
    redis ? redis.get(`bench:seq:${nsp.name}:${name}`).then((v) => Number(v || 0)) : roomState(name).seq;
  const memberCount = (name) => {
    if (redis) return nsp.in(name).fetchSockets().then((s) => s.length);
    const set = nsp.adapter.rooms.get(name);
    return set ? set.size : 0;
  };
  /** Calls `f` with the value now, or when the promise resolves. */
  const when = (v, f, onError) => (v && typeof v.then === 'function' ? v.then(f, onError) : f(v));

  nsp.use(authMiddleware);
  nsp.on('connection', (socket) => {
    const user = socket.data.user;
    const joined = new Set();
    const reply = (ack, value) => {
      if (typeof ack === 'function') ack(value);
    };
    const fail = (ack, code, message) => reply(ack, { error: code, message });
    const roomOf = (payload, ack) => {
      const room = payload && payload.room;
      if (typeof room !== 'string' || room.length === 0 || room.length > MAX_ROOM_LEN) {
        fail(ack, 'INVALID_MESSAGE', 'missing or bad field `room`');
        return null;
      }
      return room;
    };
    const leaveRoom = (room) => {
      if (!joined.delete(room)) return;
      socket.leave(room);
      const r = roomState(room);
      const n = (r.users.get(user) || 1) - 1;
      if (n === 0) {
        r.users.delete(user);
        socket.to(room).emit('presence', { room, user, status: 'offline' });
      } else {
        r.users.set(user, n);
      }
    };

    socket.on('join', (payload, ack) => {
      const room = roomOf(payload, ack);
      if (room === null) return;
      if (!roomAllowed(socket.data.claims, room)) return fail(ack, 'FORBIDDEN', `room ${room} not allowed by token`);
      // Count members and read the seq first, then join and ack in the same
      // tick: the socket receives exactly the chats after `seq`, never one
      // before the ack (with Redis, counting members is a cross-process
      // request, and a socket already in the room would get chats meanwhile).
      const onError = (e) => fail(ack, 'INTERNAL', String(e && e.message));
      when(memberCount(room), (members) =>
        when(currentSeq(room), (seq) => {
          if (!joined.has(room)) {
            joined.add(room);
            socket.join(room);
            members += 1;
            const r = roomState(room);
            const n = r.users.get(user) || 0;
            r.users.set(user, n + 1);
            if (n === 0) socket.to(room).emit('presence', { room, user, status: 'online' });
          }
          reply(ack, { seq, members });
        }, onError), onError);
    });

    socket.on('leave', (payload, ack) => {
      const room = roomOf(payload, ack);
      if (room === null) return;
      if (!joined.has(room)) return fail(ack, 'NOT_IN_ROOM', `not a member of ${room}`);
      leaveRoom(room);
      reply(ack, { room });
    });

    socket.on('chat', (payload, ack) => {
      const room = roomOf(payload, ack);
      if (room === null) return;
      const { id, text, ts } = payload;
      if (typeof id !== 'string' && typeof id !== 'number') return fail(ack, 'INVALID_MESSAGE', '`id` must be a string or a number');
      if (typeof ts !== 'number') return fail(ack, 'INVALID_MESSAGE', '`ts` must be a number');
      // Text may arrive as a binary attachment (a Buffer): relayed as binary.
      if (typeof text !== 'string' && !Buffer.isBuffer(text)) return fail(ack, 'INVALID_MESSAGE', 'missing field `text`');
      if (!joined.has(room)) return fail(ack, 'NOT_IN_ROOM', `not a member of ${room}`);
      const relay = (seq) => {
        reply(ack, { seq });
        const event = { room, seq, from: user, id, text, ts };
        socket.to(room).emit('chat', event);
        const r = roomState(room);
        r.history.push({ seq, event });
        if (r.history.length > opts['history-len']) r.history.shift();
      };
      when(nextSeq(room), relay, (e) => fail(ack, 'INTERNAL', String(e && e.message)));
    });

    socket.on('typing', (payload) => {
      const room = payload && payload.room;
      if (typeof room === 'string' && joined.has(room)) socket.to(room).emit('typing', { room, user });
    });

    socket.on('resume', async (payload, ack) => {
      const room = roomOf(payload, ack);
      if (room === null) return;
      const after = payload.after;
      if (!Number.isInteger(after) || after < 0) return fail(ack, 'INVALID_MESSAGE', '`after` must be a non-negative integer');
      // History is per process: with the Redis adapter a resume only replays
      // what this process relayed, so `complete` can be false there.
      const r = roomState(room);
      const latest = await Promise.resolve(currentSeq(room)).catch(() => r.seq);
      const oldest = r.history.length ? r.history[0].seq : latest + 1;
      let replayed = 0;
      for (const h of r.history) {
        if (h.seq > after) {
          socket.emit('chat', h.event);
          replayed++;
        }
      }
      reply(ack, { room, replayed, complete: after >= latest || oldest <= after + 1 });
    });

    socket.on('ping', (payload, ack) => reply(ack, payload));
    socket.on('echo', (...args) => {
      const ack = args.length && typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (ack) ack(...args);
    });

    socket.on('disconnect', () => {
      for (const room of [...joined]) leaveRoom(room);
    });
  });
}

main().catch((e) => {
  process.stderr.write(`socketio-server: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
