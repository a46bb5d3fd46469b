/**
 * B-node (BENCH.md §6.1): the raw node:https baseline. FROZEN — a change here
 * moves every ratio against it; version it deliberately, never tune it to a result.
 *   node dist/bench/baselines/b-node.js '{"certFile","keyFile","root","casDir","dsn","token"}'
 * GET/HEAD serve <root>/<path>; PUT stores in "cas" mode: stream → sha256 →
 * temp file → fsync → rename to <casDir>/blobs/<sha256> → one INSERT … ON
 * CONFLICT into Postgres. No framework, no locks; auth is one constant-time compare.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';

const cfg = JSON.parse(process.argv[2] ?? '{}') as { certFile: string; keyFile: string; root: string; casDir: string; dsn: string; token: string };
const pool = new pg.Pool({ connectionString: cfg.dsn, max: 10 });
const expected = createHash('sha256').update(`Bearer ${cfg.token}`).digest();
const authorized = (header = ''): boolean => timingSafeEqual(createHash('sha256').update(header).digest(), expected);
const clamp = (n: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, n));
const INSERT = `INSERT INTO bench_node_files (path, sha256, size) VALUES ($1, $2, $3)
  ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, mtime = now()`;

async function put(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const tmp = join(cfg.casDir, 'tmp', randomUUID());
  const hash = createHash('sha256');
  let size = 0;
  const hasher = new Transform({ transform: (chunk: Buffer, _enc, done) => (hash.update(chunk), (size += chunk.length), done(null, chunk)) });
  try {
    // flush: fsync before the close that pipeline waits for — durable before it is named.
    await pipeline(req, hasher, createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true }));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const sha256 = hash.digest('hex');
  await rename(tmp, join(cfg.casDir, 'blobs', sha256));
  await pool.query(INSERT, [path, sha256, size]);
  res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sha256, size }));
}

async function read(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const file = join(cfg.root, path);
  const st = await stat(file);
  if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
  if (req.method === 'HEAD') return void res.end();
  await pipeline(createReadStream(file, { highWaterMark: clamp(st.size, 64 * 1024, 1024 * 1024) }), res);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorized(req.headers.authorization)) return void res.writeHead(401).end();
  const path = posix.normalize(decodeURIComponent(new URL(req.url ?? '/', 'https://b-node').pathname));
  if (path.includes('\0')) return void res.writeHead(400).end();
  if (req.method === 'PUT') return put(req, res, path);
  if (req.method === 'GET' || req.method === 'HEAD') return read(req, res, path);
  res.writeHead(405).end();
}

const server = https.createServer({ cert: readFileSync(cfg.certFile), key: readFileSync(cfg.keyFile) }, (req, res) => {
  handle(req, res).catch((err: NodeJS.ErrnoException) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(err.code === 'ENOENT' ? 404 : 500).end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ listening: (server.address() as { port: number }).port }) + '\n'));
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
