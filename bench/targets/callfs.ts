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
  name: 'callfs' | 'callfs-r2';
  /** Authorization of the uid-0 user, for GET /v1/cas/images. */
  adminAuthorization: string;
  /** The workload user's credentials as HTTP Basic (its name, its API key as the password): how WebDAV clients log in. */
  basicAuthorization: string;
  /** Port of its S3-compatible API (s3.listen_addr), and the workload user's S3 credentials (its name, its API key). */
  s3Port: number;
  s3Credentials: { accessKeyId: string; secretAccessKey: string };
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
  /** A cluster member (the replication scenario): its id, port, the shared keys, its peers and more config. */
  member?: { instanceId: string; port: number; keys: ClusterKeys; peers: Record<string, string>; config: Record<string, unknown> };
  /** More configuration merged over the base (e.g. the embedded metadata store). */
  extraConfig?: Record<string, unknown>;
  cleanup: Cleanup;
  log: (line: string) => void;
}

/** The ordinary user (uid 1000) the workloads run as. */
const BENCH_USER = 'bench';

const CLI = fileURLToPath(new URL('../../cmd/callfs.js', import.meta.url));

/** The child's environment without CALLFS_* variables: the configuration file alone decides. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CALLFS_')));
}

/** The keys every member of a cluster shares. */
export interface ClusterKeys {
  user: string;
  admin: string;
  internal: string;
  link: string;
}

export function newClusterKeys(): ClusterKeys {
  const key = (): string => randomBytes(24).toString('base64url');
  return { user: key(), admin: key(), internal: key(), link: key() };
}

/** Deep-merge plain config objects (`extra` wins). */
function mergeConfig(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' ? mergeConfig(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startCallfsTarget(options: CallfsTargetOptions): Promise<CallfsTarget> {
  const { dir, tls, member } = options;
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = member?.port ?? (await freePort());
  const s3Port = await freePort();
  const keys = member?.keys ?? newClusterKeys();
  const userKey = keys.user;
  const adminKey = keys.admin;
  const base = {
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
        [BENCH_USER]: { api_key: userKey, uid: 1000, gid: 1000 },
        admin: { api_key: adminKey, uid: 0, gid: 0 },
      },
      internal_proxy_secret: keys.internal,
      single_use_link_secret: keys.link,
    },
    s3: { listen_addr: `127.0.0.1:${s3Port}` },
    log: { level: 'warn', format: 'json' },
    metrics: { listen_addr: '' },
    backend: { default_backend: 'cas', cas: { mode: 'loop' } },
    metadata_store: { type: 'postgres', dsn: options.dsn },
    dlm: { type: 'redis', redis_addr: options.redisAddr },
  };
  const withExtra = options.extraConfig === undefined ? base : mergeConfig(base, options.extraConfig);
  const config = member === undefined
    ? withExtra
    : mergeConfig(mergeConfig(withExtra, {
      instance_discovery: { instance_id: member.instanceId, peer_endpoints: member.peers },
      backend: { internal_proxy_ca_file: tls.certFile },
    }), member.config);
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
    name: member === undefined ? 'callfs' : 'callfs-r2',
    port,
    authorization,
    adminAuthorization: `Bearer ${adminKey}`,
    basicAuthorization: `Basic ${Buffer.from(`${BENCH_USER}:${userKey}`).toString('base64')}`,
    s3Port,
    s3Credentials: { accessKeyId: BENCH_USER, secretAccessKey: userKey },
    readPrefix: '/v1/files/bench/',
    writePrefix: '/v1/files/bench/',
    proc,
    dataDir,
    rss: () => rssOf(pid),
  };
}
