/**
 * B-ceil (BENCH.md §6.1): the server-core half of the physical ceilings, run
 * pinned to the server core while the harness drives the other end from the
 * load core. FROZEN like b-node.ts.
 *   node dist/bench/baselines/ceiling.js sha256 <seconds>
 *       hash 1 MiB buffers with one createHash('sha256') → {"bytes","seconds"}
 *   node dist/bench/baselines/ceiling.js tls-send <cert> <key>
 *       → {"port"}; answers every HTTP request on a connection with 256 MiB
 *       from memory in 1 MiB writes (no fs, no http module), for wrk to read
 *   node dist/bench/baselines/ceiling.js tls-recv <cert> <key> <hash: 0|1>
 *       → {"port"}; reads (and hashes) one client's stream → {"bytes","seconds"} at its end
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const MiB = 1024 * 1024;
const RESPONSE_CHUNKS = 256;
const [mode, a, b, c] = process.argv.slice(2);
const print = (value: object): void => void process.stdout.write(JSON.stringify(value) + '\n');

if (mode === 'sha256') {
  const buf = randomBytes(MiB);
  const hash = createHash('sha256');
  const seconds = Number(a ?? '3');
  const started = performance.now();
  let bytes = 0;
  while (performance.now() - started < seconds * 1000) {
    hash.update(buf);
    bytes += buf.length;
  }
  hash.digest();
  print({ bytes, seconds: (performance.now() - started) / 1000 });
} else if (mode === 'tls-send' || mode === 'tls-recv') {
  const server = tls.createServer({ cert: readFileSync(a ?? ''), key: readFileSync(b ?? ''), minVersion: 'TLSv1.3' }, (socket) => {
    socket.on('error', () => socket.destroy());
    if (mode === 'tls-send') {
      const header = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${RESPONSE_CHUNKS * MiB}\r\n\r\n`;
      const chunk = randomBytes(MiB);
      let pending = '';
      let asked = 0;
      let left = 0;
      let waiting = false;
      const pump = (): void => {
        waiting = false;
        while (!socket.destroyed) {
          if (left === 0) {
            if (asked === 0) return;
            asked--;
            left = RESPONSE_CHUNKS;
            socket.write(header);
          }
          left--;
          if (!socket.write(chunk)) {
            waiting = true;
            return;
          }
        }
      };
      socket.on('drain', pump);
      socket.on('data', (data: Buffer) => {
        pending += data.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          pending = pending.slice(end + 4);
          asked++;
        }
        if (!waiting) pump();
      });
      return;
    }
    const hash = c === '1' ? createHash('sha256') : null;
    let bytes = 0;
    let started = 0;
    socket.on('data', (chunk: Buffer) => {
      if (started === 0) started = performance.now();
      hash?.update(chunk);
      bytes += chunk.length;
    });
    socket.on('end', () => {
      print({ bytes, seconds: (performance.now() - started) / 1000 });
      socket.end();
    });
  });
  server.listen(0, '127.0.0.1', () => print({ port: (server.address() as { port: number }).port }));
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stderr.write('usage: ceiling.js sha256 <seconds> | tls-send <cert> <key> | tls-recv <cert> <key> <0|1>\n');
  process.exit(2);
}
