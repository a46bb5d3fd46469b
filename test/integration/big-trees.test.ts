import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, TEST_USERS, startTestServer, type TestServer } from '../support/callfs.js';
import { startCliServer, type CliServer } from '../support/cli.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { makeBigTree, queryDb } from '../support/big-tree.js';
import { tempDir } from '../support/tmp.js';

/**
 * Issue 27: a recursive delete of any size completes. A big tree leaves the
 * namespace at once (202 Accepted with a job), its path can be used again
 * right away, and a job removes the old entries in bounded batches, resuming
 * after a kill -9.
 */

const INSTANCE = 'callfs-instance-1';
const SECRETS = { internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' };
const POSTGRES_EXTRAS = { dlm: { redis_addr: '127.0.0.1:6379' }, auth: SECRETS };

function client(base: string) {
  return (method: string, path: string, options: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<TestResponse> =>
    request(`${base}${path}`, { method, token: options.token ?? KEYS.root, ...(options.body === undefined ? {} : { body: options.body }), ...(options.headers === undefined ? {} : { headers: options.headers }) });
}

async function waitForJob(call: ReturnType<typeof client>, location: string, until: (job: any) => boolean, timeoutMs: number, token: string = KEYS.root): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call('GET', location, { token });
    expect(res.status, res.text).to.equal(200);
    if (until(res.json)) return res.json;
    if (Date.now() > deadline) throw new Error(`job not there in time: ${res.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('big trees: recursive delete as a job (Postgres, 1,000,000 entries)', function () {
  this.timeout(600_000);
  let db: TestDatabase;
  let server: TestServer;
  let call: ReturnType<typeof client>;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    db = await createTestDatabase('callfs_bigtree');
    server = await startTestServer({ metadata_store: { dsn: db.dsn }, ...POSTGRES_EXTRAS });
    call = client(server.url);
    expect((await call('POST', '/v1/files/data/', { body: '' })).status).to.equal(201);
    expect((await call('POST', '/v1/files/data/big/', { body: '' })).status).to.equal(201);
    expect((await call('PUT', '/v1/files/data/big/real.txt', { body: 'real bytes' })).status).to.equal(201);
    expect((await call('PUT', '/v1/files/data/keep.txt', { body: 'kept' })).status).to.equal(201);
    const made = await makeBigTree(db.dsn, '/data/big', { dirs: 1000, filesPerDir: 999, uid: 0, gid: 0, instanceId: INSTANCE });
    expect(made).to.equal(1_000_000);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('answers 202 with a job at once; the tree is gone, its path usable, and the job removes every entry', async () => {
    const started = Date.now();
    const res = await call('DELETE', '/v1/files/data/big?recursive=true');
    const answeredMs = Date.now() - started;
    expect(res.status, res.text).to.equal(202);
    expect(res.headers.location).to.match(/^\/v1\/jobs\/[\w-]+$/);
    expect(res.json).to.include({ kind: 'delete', path: '/data/big', state: 'running', entries_total: 1_000_001 });
    expect(answeredMs, 'the answer does not wait for the removal').to.be.below(15_000);
    const location = res.headers.location as string;

    // Out of the namespace as a whole, at once.
    expect((await call('HEAD', '/v1/files/data/big')).status).to.equal(404);
    expect((await call('GET', '/v1/files/data/big/d000007/f000003')).status).to.equal(404);
    expect((await call('GET', '/v1/files/data/big/real.txt')).status).to.equal(404);
    const listing = await call('GET', '/v1/directories/data?recursive=true');
    expect(listing.status).to.equal(200);
    expect(listing.json.items.map((e: { path: string }) => e.path)).to.deep.equal(['/data/keep.txt']);

    // The path itself can be used again right away; below it, only once the old entries are gone.
    expect((await call('POST', '/v1/files/data/big/', { body: '' })).status).to.equal(201);
    const early = await call('PUT', '/v1/files/data/big/new.txt', { body: 'new' });
    expect(early.status, early.text).to.equal(423);
    expect(early.json.code).to.equal('LOCKED');
    expect(early.headers['retry-after']).to.equal('2');
    // Moving the tree that holds the old rows would take them along: refused too.
    const moved = await call('PATCH', '/v1/files/data', { body: JSON.stringify({ name: 'data2' }), headers: { 'content-type': 'application/json' } });
    expect(moved.status, moved.text).to.equal(423);

    // Others cannot see the job; its owner (here root) can follow it to the end.
    expect((await call('GET', location, { token: KEYS.alice })).status).to.equal(404);
    const done = await waitForJob(call, location, (j) => j.state === 'done', 300_000);
    expect(done).to.include({ entries_total: 1_000_001, entries_done: 1_000_001 });
    expect(done.finished_at).to.be.a('string');

    const put = await call('PUT', '/v1/files/data/big/new.txt', { body: 'new' });
    expect(put.status, put.text).to.equal(201);
    expect((await call('PATCH', '/v1/files/data', { body: JSON.stringify({ name: 'data2' }), headers: { 'content-type': 'application/json' } })).status).to.equal(200);
    expect((await call('GET', '/v1/files/data2/big/new.txt')).text).to.equal('new');

    const left = await queryDb<{ n: string }>(db.dsn, "SELECT count(*) AS n FROM inodes WHERE path LIKE '#trash/%' OR path LIKE '/data2/big/d%'");
    expect(Number(left[0]?.n)).to.equal(0);
    const refs = await queryDb<{ n: string }>(db.dsn, "SELECT coalesce(sum(ref_count), 0) AS n FROM blobs WHERE sha256 LIKE 'fixture-blob-%'");
    expect(Number(refs[0]?.n), 'every reference the old tree held is released').to.equal(0);
    const metrics = await request(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(metrics.text).to.match(/^callfs_tree_job_entries_removed_total 1000001$/m);
  });

  it('moves a tree of 1,000,000 entries into another directory: whole at the old path, then whole at the new one', async () => {
    expect((await call('POST', '/v1/files/m/src/', { body: '' })).status).to.equal(201);
    await makeBigTree(db.dsn, '/m/src', { dirs: 1000, filesPerDir: 999, uid: 0, gid: 0, instanceId: INSTANCE });
    const started = Date.now();
    const res = await call('PATCH', '/v1/files/m/src', { body: JSON.stringify({ destination: '/other/dst', create_parents: true }), headers: { 'content-type': 'application/json' } });
    expect(res.status, res.text).to.equal(202);
    expect(res.json).to.include({ kind: 'move', path: '/m/src', destination: '/other/dst', state: 'running', entries_total: 1_000_000 });
    const location = res.headers.location as string;

    // While it runs: the tree is whole at the old path, nothing may be written into either end, and the rest of the namespace goes on.
    expect((await call('HEAD', '/v1/files/m/src/d000999/f000998')).status).to.equal(200);
    expect((await call('HEAD', '/v1/files/other/dst')).status).to.equal(404);
    const into = await call('PUT', '/v1/files/m/src/d000001/new', { body: 'x' });
    expect(into.status, into.text).to.equal(423);
    expect((await call('POST', '/v1/files/other/dst/x', { body: 'x' })).status).to.equal(423);
    const elsewhereStarted = Date.now();
    expect((await call('PUT', '/v1/files/data/elsewhere.txt', { body: 'elsewhere' })).status).to.be.oneOf([200, 201]);
    expect(Date.now() - elsewhereStarted, 'a write elsewhere does not wait for the move').to.be.below(2000);

    const done = await waitForJob(call, location, (j) => j.state !== 'running', 300_000);
    expect(done).to.include({ state: 'done', entries_total: 1_000_000, entries_done: 1_000_000 });
    process.stdout.write(`      (1,000,000-entry move: ${Date.now() - started} ms)\n`);
    expect((await call('HEAD', '/v1/files/other/dst/d000999/f000998')).status).to.equal(200);
    expect((await call('HEAD', '/v1/files/m/src')).status).to.equal(404);
    const counts = await queryDb<{ at: string; old: string }>(db.dsn, "SELECT count(*) FILTER (WHERE path > '/other/dst/' AND path < '/other/dst0') AS at, count(*) FILTER (WHERE path > '/m/src/' AND path < '/m/src0') AS old FROM inodes");
    expect(counts[0]).to.deep.equal({ at: '1000000', old: '0' });
    expect((await call('PUT', '/v1/files/other/dst/d000001/new', { body: 'x' })).status).to.equal(201);
  });
});

describe('big trees: a tree job survives kill -9 (Postgres)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let tmp: ReturnType<typeof tempDir>;
  let server: CliServer | null = null;
  let configFile: string;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    tmp = tempDir('callfs-bigtree-kill-');
    db = await createTestDatabase('callfs_bigtree_kill');
    configFile = join(tmp.dir, 'config.yaml');
    writeFileSync(configFile, stringify({
      server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, 'data') },
      metrics: { listen_addr: '' },
      // Small batches: the kill certainly lands between two of them.
      metadata_store: { dsn: db.dsn, tree_job_entries: 1000, tree_batch_entries: 500 },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { users: TEST_USERS, ...SECRETS },
      backend: { cas: { mode: 'dir', gc_interval: '0', scrub_interval: '0' } },
      log: { level: 'info' },
    }));
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await db?.drop();
    tmp?.remove();
  });

  it('goes on after a restart from the progress it recorded, and removes everything', async () => {
    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    const call = client(server.url);
    expect((await call('POST', '/v1/files/t/', { body: '' })).status).to.equal(201);
    await makeBigTree(db.dsn, '/t', { dirs: 200, filesPerDir: 999, uid: 0, gid: 0, instanceId: INSTANCE });
    const res = await call('DELETE', '/v1/files/t?recursive=true');
    expect(res.status, res.text).to.equal(202);
    const location = res.headers.location as string;
    const partway = await waitForJob(call, location, (j) => j.entries_done >= 20_000 || j.state === 'done', 120_000);
    expect(partway.state, 'the job must still be running when the kill comes').to.equal('running');
    server.child.kill('SIGKILL');
    await server.stop('SIGKILL');
    const atKill = (await queryDb<{ done: string }>(db.dsn, 'SELECT done FROM tree_jobs'))[0];
    expect(Number(atKill?.done)).to.be.above(0).and.below(200_001);

    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    const again = client(server.url);
    const done = await waitForJob(again, location, (j) => j.state === 'done', 180_000);
    expect(done).to.include({ entries_total: 200_000, entries_done: 200_000 });
    const left = await queryDb<{ n: string }>(db.dsn, "SELECT count(*) AS n FROM inodes WHERE path <> '/'");
    expect(Number(left[0]?.n)).to.equal(0);
    const refs = await queryDb<{ n: string }>(db.dsn, "SELECT coalesce(sum(ref_count), 0) AS n FROM blobs WHERE sha256 LIKE 'fixture-blob-%'");
    expect(Number(refs[0]?.n)).to.equal(0);
  });

  it('a move killed in the middle is rolled back whole, then done again after the restart', async () => {
    if (server === null) throw new Error('the server of the test before is not running');
    const call = client(server.url);
    expect((await call('POST', '/v1/files/mv/src/', { body: '' })).status).to.equal(201);
    await makeBigTree(db.dsn, '/mv/src', { dirs: 500, filesPerDir: 999, uid: 0, gid: 0, instanceId: INSTANCE });
    const res = await call('PATCH', '/v1/files/mv/src', { body: JSON.stringify({ name: 'dst' }), headers: { 'content-type': 'application/json' } });
    expect(res.status, res.text).to.equal(202);
    const location = res.headers.location as string;
    server.child.kill('SIGKILL');
    await server.stop('SIGKILL');
    const atKill = await queryDb<{ src: string; dst: string }>(db.dsn, "SELECT count(*) FILTER (WHERE path > '/mv/src/' AND path < '/mv/src0') AS src, count(*) FILTER (WHERE path > '/mv/dst/' AND path < '/mv/dst0') AS dst FROM inodes");
    expect(atKill[0], 'nothing of the move is visible after the kill').to.deep.equal({ src: '500000', dst: '0' });

    server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
    const again = client(server.url);
    const done = await waitForJob(again, location, (j) => j.state !== 'running', 180_000);
    expect(done).to.include({ state: 'done', entries_done: 500_000 });
    const after = await queryDb<{ src: string; dst: string }>(db.dsn, "SELECT count(*) FILTER (WHERE path > '/mv/src/' AND path < '/mv/src0') AS src, count(*) FILTER (WHERE path > '/mv/dst/' AND path < '/mv/dst0') AS dst FROM inodes");
    expect(after[0]).to.deep.equal({ src: '0', dst: '500000' });
    expect((await again('HEAD', '/v1/files/mv/dst/d000499/f000998')).status).to.equal(200);
  });
});

/** The job path with a small threshold, on both stores: permissions as today, and 204 for clients that wait for it. */
for (const store of ['postgres', 'embedded'] as const) {
  describe(`big trees: permissions and small jobs (${store})`, function () {
    this.timeout(120_000);
    let db: TestDatabase | null = null;
    let server: TestServer;
    let call: ReturnType<typeof client>;

    before(async function () {
      let extra: Record<string, unknown> = {};
      if (store === 'postgres') {
        requireComponent(this, await ensurePostgres());
        requireComponent(this, await ensureRedis());
        db = await createTestDatabase('callfs_bigtree_perm');
        extra = { dsn: db.dsn };
      }
      server = await startTestServer({ metadata_store: { ...extra, tree_job_entries: 5, tree_batch_entries: 3 }, ...(store === 'postgres' ? POSTGRES_EXTRAS : {}) });
      call = client(server.url);
      expect((await call('POST', '/v1/files/shared/', { body: '' })).status).to.equal(201);
      expect((await call('PATCH', '/v1/files/shared', { body: JSON.stringify({ mode: '1777' }), headers: { 'content-type': 'application/json' } })).status).to.equal(200);
    });
    after(async () => {
      await server?.stop();
      await db?.drop();
    });

    async function aliceTree(dir: string, files: number): Promise<void> {
      expect((await call('POST', `/v1/files/shared/${dir}/sub/`, { body: '', token: KEYS.alice })).status).to.equal(201);
      for (let i = 0; i < files; i++) expect((await call('PUT', `/v1/files/shared/${dir}/sub/f${i}`, { body: `f${i}`, token: KEYS.alice })).status).to.equal(201);
    }

    it("refuses a tree holding another user's file in a sticky directory, and removes nothing", async () => {
      await aliceTree('a', 8);
      // Bob's own directory (0755) inside alice's world-writable one: alice may not empty it.
      expect((await call('PATCH', '/v1/files/shared/a/sub', { body: JSON.stringify({ mode: '1777' }), headers: { 'content-type': 'application/json' }, token: KEYS.alice })).status).to.equal(200);
      expect((await call('POST', '/v1/files/shared/a/sub/bobs/x', { body: 'bob', token: KEYS.bob })).status).to.equal(201);
      const res = await call('DELETE', '/v1/files/shared/a?recursive=true', { token: KEYS.alice });
      expect(res.status, res.text).to.equal(403);
      expect(res.json.code).to.equal('PERMISSION_DENIED');
      const listing = await call('GET', '/v1/directories/shared/a?recursive=true', { token: KEYS.alice });
      expect(listing.json.items).to.have.length(11);
      expect((await call('DELETE', '/v1/files/shared/a/sub/bobs?recursive=true', { token: KEYS.bob })).status).to.equal(204);
      const metricsBefore = await request(`http://127.0.0.1:${server.metricsPort}/metrics`);
      const removedBefore = Number(/^callfs_tree_job_entries_removed_total (\d+)$/m.exec(metricsBefore.text)?.[1] ?? 0);
      // Small enough to finish within the short wait: 204, as the original answers.
      const ok = await call('DELETE', '/v1/files/shared/a?recursive=true', { token: KEYS.alice });
      expect(ok.status, ok.text).to.equal(204);
      expect((await call('GET', '/v1/files/shared/a', { token: KEYS.alice })).status).to.equal(404);
      const metrics = await request(`http://127.0.0.1:${server.metricsPort}/metrics`);
      expect(Number(/^callfs_tree_job_entries_removed_total (\d+)$/m.exec(metrics.text)?.[1]), 'it went through a job').to.equal(removedBefore + 9);
      expect((await call('POST', '/v1/files/shared/a/sub/again', { body: 'again', token: KEYS.alice })).status).to.equal(201);
    });

    it('moves a tree through a job and answers as the original (200 with the new path); a move into the tree is refused', async () => {
      await aliceTree('c', 6);
      const into = await call('PATCH', '/v1/files/shared/c', { body: JSON.stringify({ destination: '/shared/c/sub/inner' }), headers: { 'content-type': 'application/json' }, token: KEYS.alice });
      expect(into.status).to.equal(400);
      const res = await call('PATCH', '/v1/files/shared/c', { body: JSON.stringify({ name: 'c2', mode: '0750' }), headers: { 'content-type': 'application/json' }, token: KEYS.alice });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.deep.equal({ path: '/shared/c2' });
      expect((await call('GET', '/v1/files/shared/c2/sub/f5', { token: KEYS.alice })).text).to.equal('f5');
      expect((await call('HEAD', '/v1/files/shared/c2', { token: KEYS.alice })).headers['x-callfs-mode']).to.equal('0750');
      expect((await call('GET', '/v1/files/shared/c', { token: KEYS.alice })).status).to.equal(404);
      // Bob may not move alice's tree out of the sticky directory.
      const bobs = await call('PATCH', '/v1/files/shared/c2', { body: JSON.stringify({ name: 'mine' }), headers: { 'content-type': 'application/json' }, token: KEYS.bob });
      expect(bobs.status).to.equal(403);
    });

    it('answers 412 for a failed precondition, and 404 for a job that is not yours or does not exist', async () => {
      await aliceTree('b', 6);
      const stale = await call('DELETE', '/v1/files/shared/b?recursive=true', { token: KEYS.alice, headers: { 'if-match': '"0000"' } });
      expect(stale.status, stale.text).to.equal(412);
      expect((await call('GET', '/v1/jobs/no-such-job')).status).to.equal(404);
      expect((await call('GET', '/v1/jobs/..%2F..%2Fetc')).status).to.equal(404);
      expect((await call('GET', '/v1/files/shared/b/sub/f0', { token: KEYS.alice })).status).to.equal(200);
    });
  });
}

describe('big trees: another instance of a cluster finishes the job of one killed (Postgres)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let tmp: ReturnType<typeof tempDir>;
  const servers: CliServer[] = [];

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    tmp = tempDir('callfs-bigtree-cluster-');
    db = await createTestDatabase('callfs_bigtree_cluster');
  });
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    await db?.drop();
    tmp?.remove();
  });

  function configFor(id: string): string {
    const file = join(tmp.dir, `${id}.yaml`);
    writeFileSync(file, stringify({
      server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, id) },
      metrics: { listen_addr: '' },
      instance_discovery: { instance_id: id },
      metadata_store: { dsn: db.dsn, tree_job_entries: 1000, tree_batch_entries: 500 },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { users: TEST_USERS, ...SECRETS },
      backend: { cas: { mode: 'dir', gc_interval: '0', scrub_interval: '0' } },
      log: { level: 'info' },
    }));
    return file;
  }

  it('a delete started on one instance, killed -9 partway, is finished by the other once its lease runs out', async () => {
    const a = await startCliServer(['-c', configFor('tree-a')], { cwd: tmp.dir });
    servers.push(a);
    const b = await startCliServer(['-c', configFor('tree-b')], { cwd: tmp.dir });
    servers.push(b);
    const callA = client(a.url);
    const callB = client(b.url);
    expect((await callA('POST', '/v1/files/shared-tree/', { body: '' })).status).to.equal(201);
    await makeBigTree(db.dsn, '/shared-tree', { dirs: 200, filesPerDir: 999, uid: 0, gid: 0, instanceId: 'tree-a' });
    const res = await callA('DELETE', '/v1/files/shared-tree?recursive=true');
    expect(res.status, res.text).to.equal(202);
    const location = res.headers.location as string;
    // Either instance answers for the job; the other one sees the tree gone too.
    expect((await callB('HEAD', '/v1/files/shared-tree/d000100')).status).to.equal(404);
    const partway = await waitForJob(callB, location, (j) => j.entries_done >= 20_000 || j.state === 'done', 120_000);
    expect(partway.state, 'the job must still be running when the kill comes').to.equal('running');
    a.child.kill('SIGKILL');
    await a.stop('SIGKILL');
    const done = await waitForJob(callB, location, (j) => j.state === 'done', 120_000);
    expect(done).to.include({ entries_total: 200_000, entries_done: 200_000 });
    expect(b.output()).to.match(/tree job: done/);
    const left = await queryDb<{ n: string }>(db.dsn, "SELECT count(*) AS n FROM inodes WHERE path <> '/'");
    expect(Number(left[0]?.n)).to.equal(0);
  });
});
