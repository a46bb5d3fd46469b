import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { prepareConfig } from '../../lib/config/index.js';
import { createLogger, createSilentLogger } from '../../lib/log/index.js';
import { startCallfs, type RunningCallfs } from '../../cmd/compose.js';
import { tlsFiles } from '../../lib/config/embedded.js';
import { tempDir } from './tmp.js';

/** Keys of the standard test users. */
export const KEYS = {
  root: 'root-key-0123456789abcdef',
  alice: 'alice-key-0123456789abcdef',
  bob: 'bob-key-0123456789abcdef',
} as const;

export const TEST_USERS = {
  root: { api_key: KEYS.root, uid: 0, gid: 0 },
  alice: { api_key: KEYS.alice, uid: 1001, gid: 1001, groups: [100] },
  bob: { api_key: KEYS.bob, uid: 1002, gid: 1002, groups: [100] },
};

export interface TestServer extends RunningCallfs {
  dataDir: string;
  /** PEM of the server certificate, to verify TLS against. */
  ca: Buffer;
  /** Stop the server and remove its data directory. */
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Deep-merge config objects (arrays and scalars of `extra` win). */
export function merge(base: Record<string, any>, extra: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' ? merge(out[k], v) : v;
  }
  return out;
}

/**
 * Start CallFS in this process on loopback ports chosen by the OS, with a
 * fresh data directory, the test users and the CAS in dir mode (loop mode where
 * a test asks for it). The config goes through the same file loading and
 * validation as `callfs server -c`.
 */
export async function startTestServer(overrides: DeepPartial<Record<string, any>> = {}): Promise<TestServer> {
  const tmp = tempDir('callfs-server-');
  const base = {
    server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, 'data'), shutdown_timeout: '5s' },
    metrics: { listen_addr: '127.0.0.1:0' },
    auth: { users: TEST_USERS },
    backend: { cas: { mode: 'dir', gc_interval: '0', scrub_interval: '0' } },
  };
  const file = join(tmp.dir, 'config.yaml');
  writeFileSync(file, stringify(merge(base, overrides as Record<string, any>)));
  let running: RunningCallfs;
  let prepared: ReturnType<typeof prepareConfig>;
  try {
    prepared = prepareConfig({ file, cwd: tmp.dir, env: {}, createMissing: true });
    // CALLFS_TEST_LOG=debug shows the server's log while debugging a test.
    const level = process.env.CALLFS_TEST_LOG;
    const logger = level === undefined ? createSilentLogger() : createLogger({ level, format: 'json' }, process.stderr);
    running = await startCallfs({ settings: prepared.settings, logger });
  } catch (err) {
    tmp.remove();
    throw err;
  }
  const tls = tlsFiles(prepared.settings);
  return {
    ...running,
    dataDir: prepared.settings.dataDir,
    ca: prepared.settings.config.server.protocol === 'https' ? readFileSync(tls.certFile) : Buffer.alloc(0),
    async stop() {
      try {
        await running.close();
      } finally {
        tmp.remove();
      }
    },
  };
}
