// The Node.js peer of the benchmark: what a developer would write with mqtt + ioredis (the
// stack of the reference streaming demo) to do hb-consumer's job. Per heartbeat it validates the
// topic, JSON.parses the payload, bins by receive time and sends HINCRBY key device 1 and
// PEXPIREAT key <interval start + 2 intervals>; ioredis's auto-pipelining puts every command of
// one event-loop turn into one write, so there is no hand-made batching.
'use strict';

const mqtt = require('mqtt');
const { Redis } = require('ioredis');

function parseArgs(argv) {
  const opt = {
    broker: 'mqtt://127.0.0.1:1883',
    redis: 'redis://127.0.0.1:6379',
    interval: 60,
    filter: '$share/hb-consumers/hb/+/+',
    prefix: 'hb',
    statsInterval: 1,
  };
  for (let i = 2; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name}: missing value`);
    if (name === '--broker') opt.broker = value.replace(/^tcp:/, 'mqtt:');
    else if (name === '--redis') opt.redis = value;
    else if (name === '--interval') opt.interval = Number(value);
    else if (name === '--filter') opt.filter = value;
    else if (name === '--topic-prefix') opt.prefix = value;
    else if (name === '--stats-interval') opt.statsInterval = Number(value);
    else throw new Error(`unknown option ${name}`);
  }
  if (!(Number.isInteger(opt.interval) && opt.interval > 0)) throw new Error('--interval');
  return opt;
}

const ID = /^[A-Za-z0-9._:-]{1,64}$/;

function percentile(hist, q) {
  let total = 0;
  for (const n of hist) total += n;
  if (total === 0) return -1;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= rank) return i;
  }
  return hist.length - 1;
}

function main() {
  const opt = parseArgs(process.argv);
  const intervalMs = opt.interval * 1000;
  const stats = { received: 0, accepted: 0, written: 0, rejected: 0, redisErrors: 0 };
  const latency = new Uint32Array(1002);
  const redis = new Redis(opt.redis, { enableAutoPipelining: true });
  const client = mqtt.connect(opt.broker, {
    clientId: `hb-node-peer-${process.pid}`,
    clean: true,
    protocolVersion: 4,
    keepalive: 30,
  });

  const onWritten = () => {
    stats.written++;
  };
  const onError = (err) => {
    stats.redisErrors++;
    if (stats.redisErrors <= 10) console.error(`hb-node-peer: redis: ${err.message}`);
  };

  client.on('connect', () => {
    client.subscribe(opt.filter, { qos: 1 }, (err, granted) => {
      if (err || !granted || granted[0].qos === 128) {
        console.error(`hb-node-peer: subscribe to ${opt.filter} failed`);
        process.exit(1);
      }
      console.error(`hb-node-peer: subscribed to ${opt.filter}`);
    });
  });
  client.on('error', (err) => console.error(`hb-node-peer: mqtt: ${err.message}`));

  client.on('message', (topic, payload, packet) => {
    const now = Date.now();
    stats.received++;
    const parts = topic.split('/');
    if (packet.retain || parts.length !== 3 || parts[0] !== opt.prefix ||
        !ID.test(parts[1]) || !ID.test(parts[2]) || payload.length > 1024) {
      stats.rejected++;
      return;
    }
    let body = null;
    if (payload.length > 0) {
      try {
        body = JSON.parse(payload);
      } catch (e) {
        stats.rejected++;
        return;
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        stats.rejected++;
        return;
      }
    }
    const start = now - (now % intervalMs);
    const key = `hb:{${parts[1]}}:${start}`;
    stats.accepted++;
    redis.hincrby(key, parts[2], 1).then(onWritten, onError);
    redis.pexpireat(key, start + 2 * intervalMs).catch(onError);
    if (body && typeof body.ts === 'number' && now - body.ts <= 60000 && body.ts - now <= 1000)
      latency[Math.min(Math.max(now - body.ts, 0), 1001)]++;
  });

  const line = () =>
    `stats received=${stats.received} accepted=${stats.accepted} written=${stats.written} ` +
    `rejected=${stats.rejected} redis_errors=${stats.redisErrors} ` +
    `latency_p50_ms=${percentile(latency, 0.5)} latency_p99_ms=${percentile(latency, 0.99)}`;
  const timer = setInterval(() => console.error(line()), opt.statsInterval * 1000);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    client.end(false, {}, () => {
      // quit() is queued behind every pending command, so it resolves after the last reply.
      redis.quit().finally(() => {
        console.error(line());
        process.exit(0);
      });
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
