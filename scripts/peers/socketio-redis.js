#!/usr/bin/env node
'use strict';
// The Socket.IO scale-out pattern: N worker processes (default 2) of
// socketio-server.js behind one port (node:cluster, round-robin accept),
// joined by @socket.io/redis-adapter over a real `redis-server` that this
// script starts on a free loopback port (or --redis-url to use one you run).
//
// Prints one `listening on HOST:PORT` line once every worker accepts.
// WebSocket transport only: long polling across processes needs sticky
// sessions, which this launcher does not add.
//
// Process titles: primary `bench-sio-main`, workers
// `bench-sioredis`, so `server_process = "bench-sioredis"` samples
// the workers; the redis-server child is named `redis-server`.

const cluster = require('node:cluster');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs, parseDuration, parseIntArg, parseLoopbackHost } = require('./lib/common');

const opts = parseArgs(process.argv.slice(2), {
  host: { default: '127.0.0.1', parse: parseLoopbackHost, help: 'loopback address to bind' },
  port: { default: 8080, parse: parseIntArg, help: 'TCP port; 0 picks a free one' },
  workers: { default: 2, parse: parseIntArg, help: 'Socket.IO worker processes' },
  'redis-url': { default: '', help: 'use this Redis instead of starting redis-server' },
  'redis-server': { default: 'redis-server', help: 'redis-server binary to start' },
  'jwt-secret': { default: process.env.BENCH_JWT_SECRET || '', help: 'passed to workers' },
  token: { default: '', help: 'passed to workers' },
  'ping-interval': { default: 25000, parse: parseDuration, help: 'passed to workers (ms)' },
  'ping-timeout': { default: 20000, parse: parseDuration, help: 'passed to workers (ms)' },
});
process.title = 'bench-sio-main';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function waitForRedis(port, deadlineMs) {
  const until = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.write('PING\r\n');
        sock.once('data', (d) => {
          sock.destroy();
          if (d.toString().startsWith('+PONG')) resolve();
          else retry();
        });
      });
      sock.once('error', retry);
      function retry() {
        sock.destroy();
        if (Date.now() > until) reject(new Error(`redis-server did not answer on port ${port}`));
        else setTimeout(attempt, 50);
      }
    };
    attempt();
  });
}

async function main() {
  let redisChild = null;
  let redisUrl = opts['redis-url'];
  if (!redisUrl) {
    const port = await freePort();
    redisChild = spawn(
      opts['redis-server'],
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    redisChild.once('error', (e) => {
      process.stderr.write(`socketio-redis: cannot start ${opts['redis-server']}: ${e.message}\n`);
      process.exit(1);
    });
    await waitForRedis(port, 10000);
    redisUrl = `redis://127.0.0.1:${port}`;
  }

  const args = [
    '--host', opts.host,
    '--port', String(opts.port),
    '--redis', redisUrl,
    '--transports', 'websocket',
    '--ping-interval', String(opts['ping-interval']),
    '--ping-timeout', String(opts['ping-timeout']),
  ];
  if (opts['jwt-secret']) args.push('--jwt-secret', opts['jwt-secret']);
  if (opts.token) args.push('--token', opts.token);
  cluster.setupPrimary({ exec: path.join(__dirname, 'socketio-server.js'), args, silent: true });

  let ready = 0;
  let stopping = false;
  const workers = [];
  // Workers first (they still talk to Redis while closing), then redis-server.
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    const alive = workers.filter((w) => w.process.exitCode === null && w.process.signalCode === null);
    let left = alive.length;
    const finish = () => {
      if (redisChild) redisChild.kill('SIGTERM');
      setTimeout(() => process.exit(code), 200).unref();
    };
    if (left === 0) finish();
    for (const w of alive) {
      w.process.once('exit', () => {
        if (--left === 0) finish();
      });
      w.process.kill('SIGTERM');
    }
    setTimeout(finish, 3000).unref();
    setTimeout(() => process.exit(code), 5000);
  };
  for (let i = 0; i < Math.max(1, opts.workers); i++) {
    const w = cluster.fork();
    workers.push(w);
    let buf = '';
    w.process.stdout.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^listening on (.+)$/.exec(line);
        if (m && ++ready === workers.length) {
          process.stdout.write(`listening on ${m[1]}\n`);
          process.stderr.write(`socketio-redis: workers ${workers.map((x) => x.process.pid).join(',')}, ${redisUrl}\n`);
        }
      }
    });
    w.process.stderr.pipe(process.stderr);
    w.on('exit', (code) => {
      if (!stopping) {
        process.stderr.write(`socketio-redis: worker ${w.process.pid} exited (${code}); stopping\n`);
        stop(1);
      }
    });
  }
  if (redisChild) {
    redisChild.once('exit', (code) => {
      if (!stopping) {
        process.stderr.write(`socketio-redis: redis-server exited (${code}); stopping\n`);
        stop(1);
      }
    });
  }
  process.once('SIGTERM', () => stop(0));
  process.once('SIGINT', () => stop(0));
}

main().catch((e) => {
  process.stderr.write(`socketio-redis: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
