import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureSelfSignedCertificate } from '../../lib/config/embedded.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { startCliServer, type CliServer } from './cli.js';
import { TEST_USERS, merge } from './callfs.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export const PROXY_SECRET = 'cluster-proxy-secret-0123456789';
export const LINK_SECRET = 'cluster-link-secret-0123456789';

export interface ClusterInstance {
  id: string;
  url: string;
  configFile: string;
  server: CliServer | null;
  /** (Re)start this instance's process. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestCluster {
  instances: ClusterInstance[];
  db: TestDatabase;
  /** The certificate every instance serves (and trusts for its peers). */
  ca: Buffer;
  stop(): Promise<void>;
}

/**
 * N real `callfs server` processes on loopback ports, one Postgres database
 * and one Redis shared, each with its own CAS, peers of each other, all
 * serving one self-signed certificate that each also trusts as the peers' CA.
 */
export async function startCluster(ids: string[], extra: Record<string, any> = {}): Promise<TestCluster> {
  const tmp = tempDir('callfs-cluster-');
  const db = await createTestDatabase('callfs_cluster');
  const certFile = join(tmp.dir, 'tls', 'cluster.crt');
  const keyFile = join(tmp.dir, 'tls', 'cluster.key');
  await ensureSelfSignedCertificate(certFile, keyFile);
  const ports = await Promise.all(ids.map(() => freePort()));
  const endpoints = Object.fromEntries(ids.map((id, i) => [id, `https://127.0.0.1:${ports[i]}`]));
  const instances: ClusterInstance[] = ids.map((id, i) => {
    const dir = join(tmp.dir, id);
    mkdirSync(dir, { recursive: true });
    const configFile = join(dir, 'config.yaml');
    writeFileSync(configFile, stringify(merge({
      server: { listen_addr: `127.0.0.1:${ports[i]}`, data_dir: join(dir, 'data'), cert_file: certFile, key_file: keyFile, external_url: endpoints[id], shutdown_timeout: '5s' },
      metrics: { listen_addr: '' },
      metadata_store: { dsn: db.dsn, pool_size: 6 },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { users: TEST_USERS, internal_proxy_secret: PROXY_SECRET, single_use_link_secret: LINK_SECRET },
      backend: { internal_proxy_ca_file: certFile, cas: { mode: 'dir', gc_interval: '0', scrub_interval: '0' } },
      instance_discovery: { instance_id: id, peer_endpoints: endpoints },
      log: { level: 'info' },
    }, extra)));
    const instance: ClusterInstance = {
      id,
      url: endpoints[id] as string,
      configFile,
      server: null,
      async start() {
        instance.server = await startCliServer(['-c', configFile], { cwd: dir });
      },
      async stop() {
        const s = instance.server;
        instance.server = null;
        if (s !== null) await s.stop();
      },
    };
    return instance;
  });
  try {
    // One at a time: the first migrates the shared database.
    for (const instance of instances) await instance.start();
  } catch (err) {
    for (const instance of instances) await instance.stop().catch(() => {});
    await db.drop();
    tmp.remove();
    throw err;
  }
  return {
    instances,
    db,
    ca: readFileSync(certFile),
    async stop() {
      await Promise.all(instances.map((i) => i.stop().catch(() => {})));
      await db.drop();
      tmp.remove();
    },
  };
}
