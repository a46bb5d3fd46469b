import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import pg from 'pg';
import { startCliServer, type CliServer } from '../support/cli.js';
import { request } from '../support/http.js';
import { tempDir } from '../support/tmp.js';
import { KEYS, TEST_USERS } from '../support/callfs.js';
import { ensurePostgres, ensureRedis, loopMountsAvailable, requireComponent } from '../support/services.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { forceCleanRoot } from '../support/cas.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)]));
}

/**
 * PUT a body in 256 KiB steps; with `holdLast`, the last step waits for it,
 * so the upload is certainly still streaming when a kill comes first.
 */
function slowPut(url: string, body: Buffer, holdLast?: Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = https.request({ method: 'PUT', hostname: u.hostname, port: u.port, path: u.pathname, rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}`, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    let offset = 0;
    const step = (): void => {
      if (offset >= body.length) return void req.end();
      const chunk = body.subarray(offset, offset + 256 * 1024);
      offset += chunk.length;
      const send = (): void => void req.write(chunk, () => setTimeout(step, 5));
      if (offset >= body.length && holdLast !== undefined) void holdLast.then(send);
      else send();
    };
    step();
  });
}

/**
 * The server process is SIGKILLed while 20 uploads are in flight. After a
 * restart every acknowledged file reads back byte-exact, and the CAS holds no
 * partial blob, visible or indexed.
 */
describe('a server killed in the middle of uploads', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let db: TestDatabase;
  let server: CliServer | null = null;
  let configFile: string;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    requireComponent(this, loopMountsAvailable());
    tmp = tempDir('callfs-crash-');
    db = await createTestDatabase('callfs_crash');
    configFile = join(tmp.dir, 'config.yaml');
    writeFileSync(configFile, stringify({
      server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, 'data') },
      metrics: { listen_addr: '' },
      metadata_store: { dsn: db.dsn },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { users: TEST_USERS, internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' },
      backend: { cas: { mode: 'loop', image_size: '1GiB', min_free_bytes: '64MiB', gc_grace: '1s', gc_interval: '0', scrub_interval: '0' } },
      log: { level: 'info' },
    }));
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    // A failure before the restart leaves the killed server's images mounted.
    if (tmp !== undefined) forceCleanRoot(tmp.dir);
  });

  it('keeps every acknowledged file byte-exact and no partial blob', async () => {
    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    const url = server.url;
    const bodies = Array.from({ length: 20 }, (_, i) => randomBytes((2 + (i % 5)) * 1024 * 1024));
    const acked = new Set<number>();
    let killed!: () => void;
    const kill = new Promise<void>((resolve) => (killed = resolve));
    // The odd ones keep their last 256 KiB until the kill: some uploads are always cut off.
    const uploads = bodies.map((body, i) => slowPut(`${url}/v1/files/crash/f${i}.bin`, body, i % 2 === 1 ? kill : undefined).then((status) => {
      if (status === 201) acked.add(i);
    }));
    // Kill once some uploads are acknowledged and others are still streaming.
    const deadline = Date.now() + 60_000;
    while (acked.size < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(acked.size, 'uploads acknowledged before the kill').to.be.greaterThanOrEqual(5);
    server.child.kill('SIGKILL');
    killed();
    await server.stop();
    await Promise.all(uploads);
    const ackedBeforeKill = new Set(acked);
    expect(ackedBeforeKill.size, 'some uploads must have been cut off').to.be.below(20);

    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    for (const i of ackedBeforeKill) {
      const got = await request(`${server.url}/v1/files/crash/f${i}.bin`, { token: KEYS.alice });
      expect(got.status, `f${i}`).to.equal(200);
      expect(sha256(got.body), `f${i}`).to.equal(sha256(bodies[i] as Buffer));
    }
    // Unacknowledged uploads are either absent or complete: never torn.
    for (let i = 0; i < bodies.length; i++) {
      if (ackedBeforeKill.has(i)) continue;
      const got = await request(`${server.url}/v1/files/crash/f${i}.bin`, { token: KEYS.alice });
      if (got.status === 200) expect(sha256(got.body)).to.equal(sha256(bodies[i] as Buffer));
      else expect(got.status).to.equal(404);
    }
    // Every blob file in every image hashes to its name, and temp space is empty.
    const volumes = join(tmp.dir, 'data', 'cas', 'volumes');
    const blobFiles = readdirSync(volumes).flatMap((v) => filesUnder(join(volumes, v, 'blobs')));
    expect(blobFiles.length).to.be.greaterThanOrEqual(ackedBeforeKill.size);
    for (const file of blobFiles) expect(sha256(readFileSync(file)), file).to.equal(file.slice(file.lastIndexOf('/') + 1));
    for (const v of readdirSync(volumes)) expect(filesUnder(join(volumes, v, 'tmp')), `${v}/tmp`).to.deep.equal([]);
    // Every referenced blob is indexed and has its file. The index row is written just
    // before the rename, so a kill in between leaves a row without a file: unreferenced,
    // and removed by the collector once its grace period is over.
    const client = new pg.Client({ connectionString: db.dsn });
    await client.connect();
    try {
      const onDisk = new Set(blobFiles.map((f) => f.slice(f.lastIndexOf('/') + 1)));
      const rows = async (): Promise<{ sha256: string; ref_count: string }[]> => (await client.query('SELECT sha256, ref_count FROM blobs')).rows;
      for (const row of await rows()) {
        if (!onDisk.has(row.sha256)) expect(Number(row.ref_count), `indexed blob ${row.sha256} has no file but is referenced`).to.equal(0);
      }
      const referenced = (await client.query("SELECT DISTINCT blob_id FROM inodes WHERE backend = 'cas'")).rows.map((r: { blob_id: string }) => r.blob_id);
      for (const sha of referenced) {
        expect(onDisk.has(sha), `referenced blob ${sha} has its file`).to.equal(true);
        expect((await rows()).map((r) => r.sha256), `referenced blob ${sha} is indexed`).to.include(sha);
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect((await request(`${server.url}/v1/cas/gc`, { method: 'POST', token: KEYS.root })).status).to.equal(200);
      for (const row of await rows()) expect(onDisk.has(row.sha256), `after collection, indexed blob ${row.sha256} has its file`).to.equal(true);
    } finally {
      await client.end();
    }
    const scrub = await request(`${server.url}/v1/cas/scrub`, { method: 'POST', token: KEYS.root });
    expect(scrub.status).to.equal(200);
    expect(scrub.json).to.include({ corrupted: 0, missing: 0 });
  });

  // A small file's blob-index row is written by the same commit as its entry (issue 22): a kill
  // at any point leaves every acknowledged file with its row, naming where its bytes are packed.
  it('keeps every acknowledged small file, packed and indexed, through a kill -9 in the middle of 4 KiB PUTs', async () => {
    await server?.stop();
    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    const url = server.url;
    const shared = Array.from({ length: 5 }, () => randomBytes(4096));
    // Every third file repeats one of five contents: deduplicated puts race with the first ones.
    const bodies = Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? (shared[i % 5] as Buffer) : randomBytes(4096)));
    const acked = new Set<number>();
    let next = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop && next < bodies.length) {
        const i = next++;
        const status = await request(`${url}/v1/files/small/d${i % 7}/f${i}`, { method: 'PUT', token: KEYS.alice, body: bodies[i] as Buffer }).then((r) => r.status, () => 0);
        if (status === 201 && !stop) acked.add(i);
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    const deadline = Date.now() + 60_000;
    while (acked.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(acked.size, 'small files acknowledged before the kill').to.be.greaterThanOrEqual(300);
    const ackedBeforeKill = new Set(acked);
    server.child.kill('SIGKILL');
    stop = true;
    await server.stop();
    await Promise.all(workers);
    expect(ackedBeforeKill.size, 'some uploads must have been in flight').to.be.below(bodies.length);

    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    for (const i of ackedBeforeKill) {
      const got = await request(`${server.url}/v1/files/small/d${i % 7}/f${i}`, { token: KEYS.alice });
      expect(got.status, `f${i}`).to.equal(200);
      expect(sha256(got.body), `f${i}`).to.equal(sha256(bodies[i] as Buffer));
    }
    const client = new pg.Client({ connectionString: db.dsn });
    await client.connect();
    try {
      const unplaced = await client.query(
        `SELECT i.path FROM inodes i LEFT JOIN blobs b ON b.instance_id = i.instance_id AND b.sha256 = i.blob_id
         WHERE i.backend = 'cas' AND i.path LIKE '/small/%' AND (b.sha256 IS NULL OR b.image_id = '' OR b.segment IS NULL)`,
      );
      expect(unplaced.rows, 'small files whose blob has no packed place in the index').to.deep.equal([]);
      const counts = await client.query(
        `SELECT b.sha256, b.ref_count, count(i.id) AS refs FROM blobs b JOIN inodes i ON i.instance_id = b.instance_id AND i.blob_id = b.sha256
         GROUP BY b.sha256, b.ref_count HAVING b.ref_count <> count(i.id)`,
      );
      expect(counts.rows, 'reference counts').to.deep.equal([]);
    } finally {
      await client.end();
    }
    const scrub = await request(`${server.url}/v1/cas/scrub`, { method: 'POST', token: KEYS.root });
    expect(scrub.status).to.equal(200);
    expect(scrub.json).to.include({ corrupted: 0, missing: 0 });
  });
});
