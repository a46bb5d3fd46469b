import { expect } from 'chai';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { runCli } from '../support/cli.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import type { InstanceStatus as Instance } from '../../lib/cluster/status.js';

/** GET /v1/cluster/status (the web UI's cluster page) and GET /v1/whoami, over HTTPS. */

describe('cluster status and whoami over HTTPS (embedded store, one instance)', function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('answers 401 without a key or with a wrong one', async () => {
    for (const path of ['/v1/cluster/status', '/v1/whoami']) {
      const none = await request(`${server.url}${path}`, { ca: server.ca });
      expect(none.status, path).to.equal(401);
      expect(none.json.code).to.equal('AUTHENTICATION_FAILED');
      expect((await request(`${server.url}${path}`, { ca: server.ca, token: 'not-a-key-0123456789' })).status, path).to.equal(401);
    }
  });

  it('shows any user the one instance: up, with its space read now and its blobs counted', async () => {
    expect((await request(`${server.url}/v1/files/status/a.bin`, { method: 'PUT', token: KEYS.alice, ca: server.ca, body: Buffer.alloc(5000, 1) })).status).to.equal(201);
    expect((await request(`${server.url}/v1/files/status/b.bin`, { method: 'PUT', token: KEYS.alice, ca: server.ca, body: Buffer.alloc(3000, 2) })).status).to.equal(201);
    for (const key of [KEYS.alice, KEYS.root]) {
      const res = await request(`${server.url}/v1/cluster/status`, { token: key, ca: server.ca });
      expect(res.status, res.text).to.equal(200);
      expect(res.headers['cache-control']).to.equal('no-store');
      expect(res.json).to.include({ replicas: 1, min_replicas: 1, under_replicated: 0 });
      const instances = res.json.instances as Instance[];
      expect(instances).to.have.length(1);
      const [one] = instances as [Instance];
      expect(one).to.include({ id: 'callfs-instance-1', state: 'active', up: true, lost: false, blobs: 2, blob_bytes: 8000, under_replicated: 0 });
      expect(one.free_bytes).to.be.greaterThan(0);
      expect(one.used_bytes).to.be.at.least(0);
      expect(Date.parse(one.last_seen ?? '')).to.be.closeTo(Date.now(), 60_000);
      expect(Object.keys(one).sort()).to.deep.equal(['blob_bytes', 'blobs', 'free_bytes', 'id', 'last_seen', 'lost', 'state', 'under_replicated', 'up', 'url', 'used_bytes']);
    }
  });

  it('whoami names the key’s user, and whether it is root', async () => {
    const alice = await request(`${server.url}/v1/whoami`, { token: KEYS.alice, ca: server.ca });
    expect(alice.status).to.equal(200);
    expect(alice.json).to.deep.equal({ name: 'alice', uid: 1001, gid: 1001, groups: [100], root: false });
    const root = await request(`${server.url}/v1/whoami`, { token: KEYS.root, ca: server.ca });
    expect(root.json).to.include({ name: 'root', uid: 0, root: true });
  });

  it('is read-only: other methods are 405', async () => {
    const res = await request(`${server.url}/v1/cluster/status`, { method: 'POST', token: KEYS.root, ca: server.ca });
    expect(res.status).to.equal(405);
    expect(res.json.code).to.equal('METHOD_NOT_ALLOWED');
  });
});

describe('cluster status over HTTPS: two instances on Postgres', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['s1', 's2'], { cluster: { heartbeat_interval: '200ms', down_after: '1s', lost_after: '0', repair_interval: '0' } });
  });
  after(async () => {
    await cluster?.stop();
  });

  const status = async (via: number): Promise<{ instances: Instance[]; replicas: number }> => {
    const i = cluster.instances[via];
    const res = await request(`${i?.url}/v1/cluster/status`, { token: KEYS.alice, ca: cluster.ca });
    expect(res.status, res.text).to.equal(200);
    return res.json;
  };
  /** What a status says that does not move with every heartbeat. */
  const stable = (s: { instances: Instance[] }) => s.instances.map(({ last_seen: _l, used_bytes: _u, free_bytes: _f, ...rest }) => rest);

  it('answers what `callfs cluster status --json` prints, from either instance', async () => {
    const [s1] = cluster.instances;
    const put = await request(`${s1?.url}/v1/files/c/x.bin`, { method: 'PUT', token: KEYS.alice, ca: cluster.ca, body: Buffer.alloc(4096, 7) });
    expect(put.status, put.text).to.equal(201);
    const cli = await runCli(['cluster', 'status', '--json', '-c', s1?.configFile as string], { cwd: dirname(s1?.configFile as string), timeoutMs: 60_000 });
    expect(cli.code, cli.stderr).to.equal(0);
    const printed = JSON.parse(cli.stdout);
    for (const via of [0, 1]) {
      const answered = await status(via);
      expect(stable(answered)).to.deep.equal(stable(printed));
      expect(answered.instances.map((i) => [i.id, i.up])).to.deep.equal([['s1', true], ['s2', true]]);
    }
  });

  it('shows an instance that stopped as down, from the one still up', async () => {
    await cluster.instances[1]?.stop();
    const deadline = Date.now() + 30_000;
    let s2: Instance | undefined;
    do {
      await sleep(300);
      s2 = (await status(0)).instances.find((i) => i.id === 's2');
    } while (s2?.up !== false && Date.now() < deadline);
    expect(s2).to.include({ id: 's2', up: false, state: 'active' });
  });
});
