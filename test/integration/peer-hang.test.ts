import { expect } from 'chai';
import { request, type TestResponse } from '../support/http.js';
import { KEYS } from '../support/callfs.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { startCluster, type ClusterInstance, type TestCluster } from '../support/cluster.js';

/**
 * A peer that accepts TCP but never answers (SIGSTOP: the kernel still
 * completes TCP handshakes, nothing answers TLS or HTTP) must not hang the
 * clients of the other instances: they get 502 within
 * instance_discovery.peer_timeout, and a link download that failed that way
 * is not used up.
 */
describe('a hung peer (SIGSTOP) does not hang the clients of the other instances', function () {
  this.timeout(120_000);
  const PEER_TIMEOUT_MS = 1500;
  let cluster: TestCluster;
  let a: ClusterInstance;
  let b: ClusterInstance;
  const on = (instance: ClusterInstance, method: string, path: string, options: Parameters<typeof request>[1] = {}) =>
    request(`${instance.url}${path}`, { method, token: KEYS.alice, ca: cluster.ca, ...options });
  const pid = (instance: ClusterInstance): number => instance.server?.child.pid as number;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['hang-a', 'hang-b'], { instance_discovery: { peer_timeout: `${PEER_TIMEOUT_MS}ms` }, links: { download_rate_limit: 0 } });
    [a, b] = cluster.instances as [ClusterInstance, ClusterInstance];
  });
  after(async () => {
    if (a?.server !== null && a?.server !== undefined) process.kill(pid(a), 'SIGCONT');
    await cluster?.stop();
  });

  /** The answer, and how long it took; a closed connection without an answer fails the test. */
  async function timed(work: () => Promise<TestResponse>): Promise<{ res: TestResponse; ms: number }> {
    const started = Date.now();
    const res = await work();
    return { res, ms: Date.now() - started };
  }

  it('GET, PUT and a link download of its files answer 502 within the peer timeout; the link stays unused', async () => {
    expect((await on(a, 'PUT', '/v1/files/hung/f.txt', { body: 'held by a' })).status).to.equal(201);
    expect((await on(a, 'PUT', '/v1/files/hung/put.txt', { body: 'also held by a' })).status).to.equal(201);
    // A first read through B leaves a kept-alive connection to A in B's pool; later ones need new connections.
    expect((await on(b, 'GET', '/v1/files/hung/f.txt')).text).to.equal('held by a');
    const link = await on(b, 'POST', '/v1/links/generate', { body: JSON.stringify({ path: '/hung/f.txt', expiry_seconds: 600 }) });
    expect(link.status).to.equal(201);
    const token = link.json.token as string;

    process.kill(pid(a), 'SIGSTOP');
    try {
      const attempts: [string, () => Promise<TestResponse>][] = [
        ['GET on a kept-alive connection', () => on(b, 'GET', '/v1/files/hung/f.txt')],
        ['GET on a new connection', () => on(b, 'GET', '/v1/files/hung/f.txt')],
        ['a range GET', () => on(b, 'GET', '/v1/files/hung/f.txt', { headers: { range: 'bytes=0-3' } })],
        ['PUT (forwarded)', () => on(b, 'PUT', '/v1/files/hung/put.txt', { body: 'from b' })],
        ['a link download', () => request(`${b.url}/download/${token}`, { ca: cluster.ca })],
      ];
      for (const [what, attempt] of attempts) {
        const { res, ms } = await timed(attempt);
        expect(res.status, `${what}: ${res.text}`).to.equal(502);
        expect(res.json.code, what).to.equal('BAD_GATEWAY');
        // Bounded by the peer timeout (a forwarded write may also wait for its lock there),
        // far from the 30 s of silence a client saw before.
        expect(ms, what).to.be.below(PEER_TIMEOUT_MS + 10_000 + 5000);
      }
      // What needs no bytes is still served from the shared metadata.
      expect((await on(b, 'HEAD', '/v1/files/hung/f.txt')).status).to.equal(200);
      expect((await on(b, 'GET', '/v1/directories/hung')).status).to.equal(200);
    } finally {
      process.kill(pid(a), 'SIGCONT');
    }

    const download = await request(`${b.url}/download/${token}`, { ca: cluster.ca });
    expect(download.status, 'the link was not used up by the failed download').to.equal(200);
    expect(download.text).to.equal('held by a');
    expect((await request(`${b.url}/download/${token}`, { ca: cluster.ca })).json.code).to.equal('LINK_USED');
  });

  it('reads answer 502 within the peer timeout itself', async () => {
    process.kill(pid(a), 'SIGSTOP');
    try {
      for (let i = 0; i < 2; i++) {
        const { res, ms } = await timed(() => on(b, 'GET', '/v1/files/hung/f.txt'));
        expect(res.status).to.equal(502);
        expect(ms).to.be.below(PEER_TIMEOUT_MS + 2000);
      }
    } finally {
      process.kill(pid(a), 'SIGCONT');
    }
  });
});
