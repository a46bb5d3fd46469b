import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from '../harness/cleanup.js';
import { rssOf, startServer, type ServerProcess } from '../harness/processes.js';
import type { BenchTls } from '../harness/tls.js';
import type { HttpTarget } from './types.js';

/** Starts the frozen raw-Node baseline (bench/baselines/b-node.ts) pinned to the server core. */
export interface BNodeTargetOptions {
  dir: string;
  staticRoot: string;
  tls: BenchTls;
  /** Its Postgres (the suite's scratch database, which has bench_node_files). */
  dsn: string;
  cleanup: Cleanup;
}

const SERVER = fileURLToPath(new URL('../baselines/b-node.js', import.meta.url));

export async function startBNodeTarget(options: BNodeTargetOptions): Promise<HttpTarget> {
  const casDir = join(options.dir, 'cas');
  mkdirSync(join(casDir, 'tmp'), { recursive: true });
  mkdirSync(join(casDir, 'blobs'), { recursive: true });
  const token = randomBytes(24).toString('base64url');
  const config = { certFile: options.tls.certFile, keyFile: options.tls.keyFile, root: options.staticRoot, casDir, dsn: options.dsn, token };
  let spawned: ServerProcess | null = null;
  options.cleanup.add('stop B-node', async () => void (await spawned?.stop('SIGTERM', 10_000)));
  const { proc, ready: port } = await startServer({
    name: 'B-node',
    file: process.execPath,
    args: [SERVER, JSON.stringify(config)],
    timeoutMs: 30_000,
    onSpawn: (p) => (spawned = p),
    ready: (line) => {
      try {
        return (JSON.parse(line) as { listening?: number }).listening;
      } catch {
        return undefined;
      }
    },
  });
  return {
    name: 'B-node',
    port,
    authorization: `Bearer ${token}`,
    readPrefix: '/',
    writePrefix: '/',
    proc,
    rss: () => rssOf(proc.pid),
  };
}
