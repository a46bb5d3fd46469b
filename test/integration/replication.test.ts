import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../support/http.js';
import { KEYS } from '../support/callfs.js';
import { runCli } from '../support/cli.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { startCluster, type ClusterInstance, type TestCluster } from '../support/cluster.js';
import { flipStoredByte, storedBytes } from '../support/cas.js';

/**
 * Replication with real processes: three `callfs server`s with
 * backend.cas.replicas 2 over one Postgres and one Redis, each with its own
 * CAS (dir mode), and short heartbeats so that failures are seen in about a
 * second. The cases run in order on one cluster, as an operator would live
 * them: copies on disk, a corrupted copy, a crash during uploads, an
 * instance lost with its disk, forgotten, replaced, and another drained.
 */

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('replication: three instances, replicas 2', function () {
  this.timeout(600_000);
  let cluster: TestCluster;
  let r1: ClusterInstance;
  let r2: ClusterInstance;
  let r3: ClusterInstance;
  /** Every file written and acknowledged so far: path → bytes. */
  const files = new Map<string, Buffer>();

  const on = (instance: ClusterInstance, method: string, path: string, options: Parameters<typeof request>[1] = {}) =>
    request(`${instance.url}${path}`, { method, token: KEYS.alice, ca: cluster.ca, ...options });
  const dataDir = (i: ClusterInstance): string => join(dirname(i.configFile), 'data');

  /** The blob file of `hash` on an instance's disk, or null. */
  /** The instances among `among` whose disk holds an intact copy of `content` (a file of its own, or packed in a segment). */
  const intactOn = (content: Buffer, among: ClusterInstance[]): string[] =>
    among.filter((i) => {
      const stored = storedBytes(join(dataDir(i), 'cas'), sha256(content));
      return stored !== null && sha256(stored) === sha256(content);
    }).map((i) => i.id);

  async function put(via: ClusterInstance, path: string, body: Buffer): Promise<void> {
    const res = await on(via, 'PUT', `/v1/files${path}`, { body });
    expect(res.status, res.text).to.be.oneOf([200, 201]);
    expect(String(res.headers['x-callfs-replicas']).split(',')).to.have.length(2);
    files.set(path, body);
  }
  async function expectReadable(via: ClusterInstance[]): Promise<void> {
    for (const [path, body] of files) {
      for (const i of via) {
        const res = await on(i, 'GET', `/v1/files${path}`);
        expect(res.status, `${path} via ${i.id}: ${res.text.slice(0, 200)}`).to.equal(200);
        expect(res.body.equals(body), `${path} via ${i.id}`).to.equal(true);
      }
    }
  }
  async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  }
  const cli = (i: ClusterInstance, args: string[]) => runCli(['cluster', ...args, '-c', i.configFile], { cwd: dirname(i.configFile), timeoutMs: 120_000 });

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['r1', 'r2', 'r3'], {
      backend: { cas: { replicas: 2 } },
      cluster: { heartbeat_interval: '200ms', down_after: '1s', lost_after: '0', repair_interval: '300ms' },
    });
    [r1, r2, r3] = cluster.instances as [ClusterInstance, ClusterInstance, ClusterInstance];
  });
  after(async () => {
    await cluster?.stop();
  });

  it('acknowledges a PUT with its two copies, and every blob has exactly two copies on disk', async () => {
    for (let n = 0; n < 12; n++) await put(n % 2 === 0 ? r1 : r2, `/rep/file-${n}.bin`, randomBytes(1000 + n * 40_000));
    await put(r3, '/rep/big.bin', randomBytes(6 * 1024 * 1024 + 5));
    for (const [path, body] of files) {
      expect(intactOn(body, [r1, r2, r3]), path).to.have.length(2);
      const head = await on(r3, 'HEAD', `/v1/files${path}`);
      expect(String(head.headers['x-callfs-replicas']).split(',').sort(), path).to.deep.equal(intactOn(body, [r1, r2, r3]).sort());
    }
    const status = await cli(r1, ['status', '--json']);
    expect(status.code, status.stderr).to.equal(0);
    const parsed = JSON.parse(status.stdout);
    expect(parsed.under_replicated).to.equal(0);
    expect(parsed.instances.map((i: { id: string; up: boolean }) => [i.id, i.up])).to.deep.equal([['r1', true], ['r2', true], ['r3', true]]);
    expect(parsed.instances.reduce((n: number, i: { blobs: number }) => n + i.blobs, 0)).to.equal(2 * files.size);
    const text = await cli(r2, ['status']);
    expect(text.stdout).to.match(/^INSTANCE\s+STATE\s+UP\s+SPACE\s+BLOBS\s+UNDER\s+URL/);
    expect(parsed.instances.map((i: { under_replicated: number }) => i.under_replicated)).to.deep.equal([0, 0, 0]);
    expect(text.stdout).to.match(/under-replicated blobs: 0/);
  });

  it('writes nothing on either copy\'s instance when a replicated file is uploaded again with the same bytes, and keeps two copies', async () => {
    const written = async (): Promise<number> => {
      let sum = 0;
      for (const i of [r1, r2, r3]) {
        const res = await on(i, 'GET', '/metrics');
        expect(res.status).to.equal(200);
        for (const m of res.text.matchAll(/^callfs_cas_written_bytes_total\{mode="\w+"\} (\d+)$/gm)) sum += Number(m[1]);
      }
      return sum;
    };
    const body = randomBytes(3 * 1024 * 1024 + 7);
    await put(r1, '/rep/twice.bin', body);
    const before = await written();
    // The same path: a replaced file keeps its holders, which hold these bytes already.
    await put(r1, '/rep/twice.bin', body);
    expect(await written()).to.equal(before);
    expect(intactOn(body, [r1, r2, r3])).to.have.length(2);
    const head = await on(r2, 'HEAD', '/v1/files/rep/twice.bin');
    expect(String(head.headers['x-callfs-replicas']).split(',').sort()).to.deep.equal(intactOn(body, [r1, r2, r3]).sort());
  });

  it('serves a file whose copy here is corrupted from its replica, and heals the copy without being asked', async () => {
    const body = Buffer.from('these bytes will rot on one of their two instances');
    await put(r1, '/rep/rot.txt', body);
    const [victimId] = intactOn(body, [r1, r2, r3]);
    const victim = [r1, r2, r3].find((i) => i.id === victimId) as ClusterInstance;
    flipStoredByte(join(dataDir(victim), 'cas'), sha256(body), 6);
    const res = await on(victim, 'GET', '/v1/files/rep/rot.txt');
    expect(res.status, res.text).to.equal(200);
    expect(res.body.equals(body)).to.equal(true);
    await until('two intact copies again', () => intactOn(body, [r1, r2, r3]).length >= 2);
  });

  it('kill -9 during 20 replicated uploads: every acknowledged file has two intact copies after the restart', async () => {
    const bodies = Array.from({ length: 20 }, (_, n) => randomBytes(256 * 1024 + n * 100_000));
    const acked: [string, Buffer][] = [];
    const uploads = bodies.map(async (body, n) => {
      const path = `/crash/up-${n}.bin`;
      const res = await on(r1, 'PUT', `/v1/files${path}`, { body }).catch(() => null);
      if (res !== null && (res.status === 201 || res.status === 200)) acked.push([path, body]);
    });
    await until('a few acknowledged uploads', () => acked.length >= 3, 60_000);
    r1.server?.child.kill('SIGKILL');
    await Promise.all(uploads);
    await r1.stop();
    await r1.start();
    for (const [path, body] of acked) {
      expect(intactOn(body, [r1, r2, r3]), path).to.have.length.at.least(2);
      files.set(path, body);
    }
    await expectReadable([r1]);
  });

  it('with one instance killed and its disk gone, every file reads byte-exact through the others at once, and writes go on', async () => {
    r3.server?.child.kill('SIGKILL');
    await r3.stop();
    rmSync(dataDir(r3), { recursive: true, force: true });
    await expectReadable([r1, r2]);
    // Once the others see it down (cluster.down_after), new files take their two copies from r1 and r2.
    await sleep(1500);
    for (let n = 0; n < 4; n++) await put(n % 2 === 0 ? r1 : r2, `/rep/after-${n}.bin`, randomBytes(50_000 + n));
    const ready = await request(`${r1.url}/ready`, { ca: cluster.ca });
    expect(ready.json.checks.replication).to.equal('ok');
    // r2 paused (SIGSTOP) and seen down: r1 alone cannot keep two copies; a write says so and keeps nothing.
    r2.server?.child.kill('SIGSTOP');
    try {
      await sleep(1500);
      const refused = await on(r1, 'PUT', '/v1/files/rep/refused.bin', { body: randomBytes(1000) });
      expect(refused.status, refused.text).to.equal(503);
      expect(refused.headers['retry-after']).to.be.a('string');
      expect(refused.json.message).to.equal('too few instances are up to keep the copies a write needs; retry shortly');
      expect((await request(`${r1.url}/ready`, { ca: cluster.ca })).json.checks.replication).to.equal('read_only');
      expect((await on(r1, 'HEAD', '/v1/files/rep/refused.bin')).status).to.equal(404);
    } finally {
      r2.server?.child.kill('SIGCONT');
    }
    await sleep(1000);
  });

  it('forget: every blob is back at two copies on the instances left, within a bounded time', async () => {
    const forget = await cli(r1, ['forget', 'r3']);
    expect(forget.code, forget.stderr).to.equal(0);
    expect(forget.stdout).to.match(/r3 is forgotten/);
    await until('every blob at two copies on r1 and r2', () => [...files.values()].every((body) => intactOn(body, [r1, r2]).length === 2), 60_000);
    const status = JSON.parse((await cli(r2, ['status', '--json'])).stdout);
    expect(status.under_replicated).to.equal(0);
    expect(status.instances.find((i: { id: string }) => i.id === 'r3').state).to.equal('forgotten');
  });

  it('drain: a forgotten id rejoins with an empty store, another is drained and switched off, and nothing is lost', async () => {
    await r3.start();
    const drain = await cli(r1, ['drain', 'r2', '--timeout', '90s']);
    expect(drain.code, drain.stderr + drain.stdout).to.equal(0);
    expect(drain.stdout).to.match(/r2 is drained/);
    await r2.stop();
    for (const [path, body] of files) expect(intactOn(body, [r1, r3]), path).to.have.length(2);
    await expectReadable([r1, r3]);
  });

  it('refuses what is not an instance, and forgetting one that is up without --force', async () => {
    const unknown = await cli(r1, ['forget', 'nobody']);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/no instance nobody/);
    const up = await cli(r1, ['forget', 'r3']);
    expect(up.code).to.equal(1);
    expect(up.stderr).to.match(/r3 is up/);
  });
});

describe('rebalance: two instances, one copy each, all written through one', function () {
  this.timeout(300_000);
  let cluster: TestCluster;
  let a: ClusterInstance;
  let b: ClusterInstance;
  const on = (instance: ClusterInstance, method: string, path: string, options: Parameters<typeof request>[1] = {}) =>
    request(`${instance.url}${path}`, { method, token: KEYS.alice, ca: cluster.ca, ...options });
  const blobFiles = (i: ClusterInstance): number => {
    const volumes = join(dirname(i.configFile), 'data', 'cas', 'volumes');
    let n = 0;
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (/^[0-9a-f]{64}$/.test(e.name)) n++;
      }
    };
    for (const v of existsSync(volumes) ? readdirSync(volumes) : []) if (existsSync(join(volumes, v, 'blobs'))) walk(join(volumes, v, 'blobs'));
    return n;
  };

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['ba', 'bb'], { cluster: { heartbeat_interval: '200ms', down_after: '1s', repair_interval: '300ms' } });
    [a, b] = cluster.instances as [ClusterInstance, ClusterInstance];
  });
  after(async () => {
    await cluster?.stop();
  });

  it('moves copies from the full instance to the empty one (copy, verify, record, drop), and every file still reads', async () => {
    const files = new Map<string, Buffer>();
    for (let n = 0; n < 16; n++) {
      const body = randomBytes(512 * 1024 + n);
      expect((await on(a, 'PUT', `/v1/files/even/f-${n}`, { body })).status).to.equal(201);
      files.set(`/even/f-${n}`, body);
    }
    expect([blobFiles(a), blobFiles(b)]).to.deep.equal([16, 0]);
    const run = await runCli(['cluster', 'rebalance', '--timeout', '60s', '-c', a.configFile], { cwd: dirname(a.configFile), timeoutMs: 120_000 });
    expect(run.code, run.stderr + run.stdout).to.equal(0);
    expect(run.stdout).to.match(/rebalanced/);
    const [onA, onB] = [blobFiles(a), blobFiles(b)];
    expect(onA + onB, 'each blob in one place: the old copies were dropped').to.equal(16);
    expect(onA).to.be.within(6, 10);
    for (const [path, body] of files) {
      for (const via of [a, b]) {
        const res = await on(via, 'GET', `/v1/files${path}`);
        expect(res.status, `${path} via ${via.id}`).to.equal(200);
        expect(res.body.equals(body)).to.equal(true);
      }
      const head = await on(b, 'HEAD', `/v1/files${path}`);
      expect(String(head.headers['x-callfs-replicas']).split(',')).to.have.length(1);
    }
  });
});
