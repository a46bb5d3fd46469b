import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../support/callfs.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { ensureSelfSignedCertificate } from '../../lib/config/embedded.js';
import { backendContractSuite, type BackendContractSubject } from './backend-contract.js';

/** The blob files of an instance's CAS (dir mode): what its peers can see of it. */
function blobFiles(server: TestServer): string[] {
  const volumes = join(server.dataDir, 'cas', 'volumes');
  if (!existsSync(volumes)) return [];
  const out: string[] = [];
  for (const volume of readdirSync(volumes)) {
    const blobs = join(volumes, volume, 'blobs');
    if (!existsSync(blobs)) continue;
    for (const a of readdirSync(blobs)) for (const b of readdirSync(join(blobs, a))) for (const f of readdirSync(join(blobs, a, b))) out.push(f);
  }
  return out;
}

/**
 * Two real instances on one Postgres database and one Redis; the subject is
 * instance A's peer backend for instance B: B's blobs, reached from A over
 * HTTPS through the internal routes, as placement reads and writes them.
 */
async function peerSubject(): Promise<BackendContractSubject> {
  const db: TestDatabase = await createTestDatabase('callfs_peer_contract');
  const certs = tempDir('callfs-peer-tls-');
  const servers: TestServer[] = [];
  try {
    const certFile = join(certs.dir, 'server.crt');
    const keyFile = join(certs.dir, 'server.key');
    await ensureSelfSignedCertificate(certFile, keyFile);
    const ports = { a: await freePort(), b: await freePort() };
    const endpoints = { 'peer-a': `https://127.0.0.1:${ports.a}`, 'peer-b': `https://127.0.0.1:${ports.b}` };
    const config = (id: 'a' | 'b') => ({
      server: { listen_addr: `127.0.0.1:${ports[id]}`, cert_file: certFile, key_file: keyFile },
      metadata_store: { dsn: db.dsn, pool_size: 4 },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { internal_proxy_secret: 'proxy-secret-peer-contract-0123456789', single_use_link_secret: 'link-secret-peer-contract-0123456789' },
      backend: { internal_proxy_ca_file: certFile },
      instance_discovery: { instance_id: `peer-${id}`, peer_endpoints: endpoints },
    });
    servers.push(await startTestServer(config('a')));
    servers.push(await startTestServer(config('b')));
    const [a, b] = servers as [TestServer, TestServer];
    const backend = a.peers.get('peer-b');
    if (backend === undefined) throw new Error('instance A has no peer backend for B');
    return {
      backend,
      deletesImmediately: false,
      // What a peer sees of B: its finished blobs (B's own temp files are the CAS contract's business).
      storedObjects: async () => blobFiles(b),
      async teardown() {
        for (const server of servers.reverse()) await server.stop();
        certs.remove();
        await db.drop();
      },
    };
  } catch (err) {
    for (const server of servers.reverse()) await server.stop().catch(() => undefined);
    certs.remove();
    await db.drop();
    throw err;
  }
}

describe('peer proxy backend (two real instances)', function () {
  this.timeout(120_000);
  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
  });
  backendContractSuite('peer proxy', peerSubject);

  it('is what a peer backend claims to be: content-addressed and instance-local', async function () {
    const subject = await peerSubject();
    try {
      expect(subject.backend.capabilities).to.deep.equal({ addressing: 'content', locality: 'instance' });
      expect(subject.backend.pathKeys).to.equal(undefined);
    } finally {
      await subject.teardown();
    }
  });
});
