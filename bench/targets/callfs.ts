import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Cleanup } from '../harness/cleanup.js';
import { freePort } from '../../test/support/ports.js';
import { rssOf, startServer, type ServerProcess } from '../harness/processes.js';
import type { BenchTls } from '../harness/tls.js';
import { createHttpClient } from '../load/http.js';
import type { HttpTarget } from './types.js';

/**
 * CallFS as a user runs it: the built CLI (`callfs server -c config.yaml`)
 * with a generated configuration — Postgres metadata in the suite's scratch
 * database, Redis locks, the loop-image CAS, TLS with the shared
 * certificate, log level warn. The workloads run as an ordinary user (uid
 * 1000), so permission checks are paid as they would be; root is used only
 * for the CAS admin API.
 */
export interface CallfsTarget extends HttpTarget {
  name: 'callfs';
  /** Authorization of the uid-0 user, for GET /v1/cas/images. */
  adminAuthorization: string;
  dataDir: string;
}

export interface CallfsTargetOptions {
  dir: string;
  tls: BenchTls;
  dsn: string;
  redisAddr: string;
  /** Start node with --cpu-prof, writing the profile here on exit. */
  cpuProfDir?: string;
  /** More node flags (diagnostics; they change what is measured). */
  nodeArgs?: string[];
  /** Where the server's output (warnings, errors, diagnostics) is kept. */
  logFile: string;
  cleanup: Cleanup;
  log: (line: string) => void;
}

const CLI = fileURLToPath(new URL('../../cmd/callfs.js', import.meta.url));

/** The child's environment without CALLFS_* variables: the configuration file alone decides. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CALLFS_')));
}

export async function startCallfsTarget(options: CallfsTargetOptions): Promise<CallfsTarget> {
  const { dir, tls } = options;
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const key = (): string => randomBytes(24).toString('base64url');
  const userKey = key();
  const adminKey = key();
  const config = {
    server: {
      listen_addr: `127.0.0.1:${port}`,
      external_url: `https://127.0.0.1:${port}`,
      cert_file: tls.certFile,
      key_file: tls.keyFile,
      data_dir: dataDir,
      shutdown_timeout: '10s',
    },
    auth: {
      users: {
        bench: { api_key: userKey, uid: 1000, gid: 1000 },
        admin: { api_key: adminKey, uid: 0, gid: 0 },
      },
      internal_proxy_secret: key(),
      single_use_link_secret: key(),
    },
    log: { level: 'warn', format: 'json' },
    metrics: { listen_addr: '' },
    backend: { default_backend: 'cas', cas: { mode: 'loop' } },
    metadata_store: { type: 'postgres', dsn: options.dsn },
    dlm: { type: 'redis', redis_addr: options.redisAddr },
  };
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify(config), { mode: 0o600 });

  const authorization = `Bearer ${userKey}`;
  const probeClient = createHttpClient({ port, tls: tls.client, maxSockets: 1 });
  const nodeArgs = [...(options.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`]), ...(options.nodeArgs ?? [])];
  // Registered before it is up: an interrupt during start-up must still stop it (and its mounts).
  let spawned: ServerProcess | null = null;
  options.cleanup.add('stop callfs', async () => {
    if (spawned === null) return;
    // SIGTERM: graceful close, which unmounts the CAS images.
    const how = await spawned.stop('SIGTERM', 60_000);
    if (how !== 0) options.log(`callfs exited with ${how}`);
  });
  const { proc } = await startServer({
    name: 'callfs',
    file: process.execPath,
    args: [...nodeArgs, CLI, 'server', '-c', configFile],
    env: cleanEnv(),
    cwd: dir,
    timeoutMs: 90_000,
    logFile: options.logFile,
    onSpawn: (p) => (spawned = p),
    // Log level warn hides the "listening" line: ask /ready instead.
    probe: async () => ((await probeClient.request('GET', '/ready', { timeoutMs: 2000 })).status === 200 ? true : undefined),
  }).finally(() => probeClient.close());
  const pid = proc.pid;
  return {
    name: 'callfs',
    port,
    authorization,
    adminAuthorization: `Bearer ${adminKey}`,
    readPrefix: '/v1/files/bench/',
    writePrefix: '/v1/files/bench/',
    proc,
    dataDir,
    rss: () => rssOf(pid),
  };
}
