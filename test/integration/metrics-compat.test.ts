import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack } from '../support/stacks.js';
import { startWithS3 } from '../support/s3.js';
import { startCluster, type ClusterInstance, type TestCluster } from '../support/cluster.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { scrape, type Scrape } from '../support/prometheus.js';

/** The original CallFS's metrics: type and label names, as its metrics package defined them. */
const ORIGINAL: Record<string, { type: string; labels: string[] }> = {
  callfs_http_requests_total: { type: 'counter', labels: ['method', 'path', 'status_code'] },
  callfs_http_request_duration_seconds: { type: 'histogram', labels: ['method', 'path'] },
  callfs_backend_ops_total: { type: 'counter', labels: ['backend_type', 'operation'] },
  callfs_backend_op_duration_seconds: { type: 'histogram', labels: ['backend_type', 'operation'] },
  callfs_metadata_db_queries_total: { type: 'counter', labels: ['operation'] },
  callfs_metadata_db_query_duration_seconds: { type: 'histogram', labels: ['operation'] },
  callfs_single_use_link_generations_total: { type: 'counter', labels: [] },
  callfs_single_use_link_consumptions_total: { type: 'counter', labels: ['status'] },
  callfs_lock_operations_total: { type: 'counter', labels: ['operation', 'status'] },
  callfs_lock_operation_duration_seconds: { type: 'histogram', labels: ['operation'] },
  callfs_active_locks: { type: 'gauge', labels: [] },
  callfs_file_operations_total: { type: 'counter', labels: ['backend_type', 'operation'] },
  callfs_errors_total: { type: 'counter', labels: ['component', 'error_type'] },
};

const LINK_METRICS = ['callfs_single_use_link_generations_total', 'callfs_single_use_link_consumptions_total'];

/** Each of `names` is served with the original's type, and its series carry the original's label names. */
function expectOriginalShape(scraped: Scrape, names: string[]): void {
  for (const name of names) {
    const { type, labels } = ORIGINAL[name] as { type: string; labels: string[] };
    expect(scraped.type(name), name).to.equal(type);
    expect(scraped.labelNames(name), name).to.include.members(labels);
  }
}

/** How much a series grew between two scrapes. */
const growth = (before: Scrape, after: Scrape) => (name: string, labels: Record<string, string> = {}): number => after.value(name, labels) - before.value(name, labels);

/** Poll until `condition` holds (the thing waited for happens in another task), failing after `ms`. */
async function until(condition: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const stack of [embeddedStack, clusterStack]) describe(`the original CallFS's metric names — ${stack.name}`, function () {
  this.timeout(120_000);
  let server: TestServer;
  const call = (method: string, path: string, options: Parameters<typeof request>[1] = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });

  before(async function () {
    await stack.require(this);
    server = await stack.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('serves each with its type and labels, live: PUT, GET, DELETE, a locked write and a refused request move them', async () => {
    const before = await scrape(server.url, { token: KEYS.root });
    expect((await call('PUT', '/v1/files/compat/a.txt', { body: 'first' })).status).to.equal(201);
    expect((await call('PUT', '/v1/files/compat/a.txt', { body: 'second, longer' })).status).to.equal(200);
    expect((await call('GET', '/v1/files/compat/a.txt')).text).to.equal('second, longer');
    expect((await call('DELETE', '/v1/files/compat/a.txt')).status).to.equal(204);
    const missing = await call('GET', '/v1/files/compat/a.txt');
    expect([missing.status, missing.json.code]).to.deep.equal([404, 'FILE_NOT_FOUND']);
    const after = await scrape(server.url, { token: KEYS.root });
    const grew = growth(before, after);

    // Every name is served; the links' series appear with the first link (next test).
    for (const name of LINK_METRICS) expect(after.type(name), name).to.equal(ORIGINAL[name]?.type);
    expectOriginalShape(after, Object.keys(ORIGINAL).filter((name) => !LINK_METRICS.includes(name)));
    // The CAS is the original's local backend: localfs.
    for (const operation of ['create', 'update', 'read', 'delete']) {
      expect(grew('callfs_file_operations_total', { operation, backend_type: 'localfs' }), operation).to.equal(1);
    }
    expect(grew('callfs_backend_ops_total', { backend_type: 'localfs', operation: 'create' })).to.equal(2);
    expect(grew('callfs_backend_ops_total', { backend_type: 'localfs', operation: 'open' })).to.equal(1);
    expect(grew('callfs_backend_op_duration_seconds_count', { backend_type: 'localfs', operation: 'create' })).to.equal(2);
    expect(grew('callfs_metadata_db_queries_total', { operation: 'get_metadata' })).to.be.greaterThan(0);
    expect(grew('callfs_metadata_db_queries_total', { operation: 'create_metadata' })).to.be.greaterThan(0);
    expect(grew('callfs_metadata_db_queries_total', { operation: 'update_metadata' })).to.be.greaterThan(0);
    expect(grew('callfs_metadata_db_queries_total', { operation: 'delete_metadata' })).to.equal(1);
    expect(grew('callfs_metadata_db_query_duration_seconds_count', { operation: 'delete_metadata' })).to.equal(1);
    // The delete runs under the path's lock; content-addressed writes take none.
    const acquired = grew('callfs_lock_operations_total', { operation: 'acquire', status: 'success' });
    expect(acquired).to.be.at.least(1);
    expect(grew('callfs_lock_operations_total', { operation: 'release', status: 'success' })).to.equal(acquired);
    expect(grew('callfs_lock_operation_duration_seconds_count', { operation: 'acquire' })).to.be.at.least(acquired);
    expect(grew('callfs_lock_operation_duration_seconds_count', { operation: 'release' })).to.equal(acquired);
    expect(after.value('callfs_active_locks')).to.equal(0);
    expect(grew('callfs_errors_total', { component: 'http', error_type: 'FILE_NOT_FOUND' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'GET', path: '/v1/files/*', status_code: '404' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'PUT', path: '/v1/files/*', status_code: '201' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'DELETE', path: '/v1/files/*', status_code: '204' })).to.equal(1);
    expect(grew('callfs_http_request_duration_seconds_count', { method: 'GET', path: '/v1/files/*' })).to.equal(2);
    // Our own names go on counting the same operations.
    expect(grew('callfs_http_requests_total', { method: 'GET', route: '/v1/files', status: '404' })).to.equal(1);
    expect(grew('callfs_backend_operations_total', { backend: 'cas', operation: 'put', outcome: 'ok' })).to.equal(2);
    expect(grew('callfs_lock_acquisitions_total', { outcome: 'ok' })).to.equal(acquired);
  });

  it('counts link downloads with the original statuses: success, then invalid for a used link', async () => {
    expect((await call('PUT', '/v1/files/compat/link.txt', { body: 'shared' })).status).to.equal(201);
    const before = await scrape(server.url, { token: KEYS.root });
    const generated = await call('POST', '/v1/links/generate', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/compat/link.txt' }) });
    expect(generated.status).to.equal(201);
    expect((await request(`${server.url}/download/${generated.json.token}`)).status).to.equal(200);
    expect((await request(`${server.url}/download/${generated.json.token}`)).status).to.equal(410);
    const after = await scrape(server.url, { token: KEYS.root });
    const grew = growth(before, after);
    expectOriginalShape(after, LINK_METRICS);
    expect(grew('callfs_single_use_link_generations_total')).to.equal(1);
    expect(grew('callfs_single_use_link_consumptions_total', { status: 'success' })).to.equal(1);
    expect(grew('callfs_single_use_link_consumptions_total', { status: 'invalid' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'GET', path: '/download/{token}', status_code: '410' })).to.equal(1);
    expect(grew('callfs_metadata_db_queries_total', { operation: 'create_link' })).to.equal(1);
  });

  it('labels each request by the pattern of the route that took it, and one that no route took as other (unmatched)', async () => {
    expect((await call('PUT', '/v1/files/labels/a.txt', { body: 'labelled' })).status).to.equal(201);
    const sha = (await call('HEAD', '/v1/files/labels/a.txt')).headers.etag?.replaceAll('"', '');
    const generated = await call('POST', '/v1/links/generate', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/labels/a.txt' }) });
    expect(generated.status).to.equal(201);
    const before = await scrape(server.url, { token: KEYS.root });
    const answers: [string, string, number, Promise<TestResponse>][] = [
      ['GET', '/health', 200, request(`${server.url}/health`)],
      ['GET', '/ready', 200, request(`${server.url}/ready`)],
      ['GET', '/openapi.json', 200, call('GET', '/openapi.json')],
      ['HEAD', '/v1/files', 200, call('HEAD', '/v1/files/labels/a.txt')],
      ['GET', '/v1/files', 401, request(`${server.url}/v1/files/labels/a.txt`)],
      ['GET', '/v1/directories', 200, call('GET', '/v1/directories/labels')],
      ['GET', '/v1/cas/images', 200, call('GET', '/v1/cas/images', { token: KEYS.root })],
      ['GET', '/v1/blobs', 200, call('GET', `/v1/blobs/${sha}`, { token: KEYS.root })],
      ['GET', '/download', 200, request(`${server.url}/download/${generated.json.token}`)],
      // The download namespace answers what none of its routes took itself, under its own label.
      ['GET', '/download', 404, request(`${server.url}/download/a/b`)],
      ['POST', '/download', 405, request(`${server.url}/download/some-token`, { method: 'POST' })],
      ['GET', 'other', 404, call('GET', '/v1/nowhere/labels')],
      ['PUT', 'other', 405, call('PUT', '/v1/directories/labels')],
    ];
    for (const [method, route, status, answer] of answers) expect((await answer).status, `${method} ${route}`).to.equal(status);
    const after = await scrape(server.url, { token: KEYS.root });
    const grew = growth(before, after);
    const seen = (method: string, route: string, status: number): number => grew('callfs_http_requests_total', { method, route, status: String(status) });
    for (const [method, route, status] of answers) expect(seen(method, route, status), `${method} ${route} ${status}`).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'GET', path: '/download/{token}', status_code: '404' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'GET', path: 'unmatched', status_code: '404' })).to.equal(1);
    expect(grew('callfs_http_requests_total', { method: 'GET', path: '/v1/directories/*', status_code: '200' })).to.equal(1);
  });
});

describe("the original CallFS's metric names on the S3 backend", function () {
  this.timeout(120_000);
  let server: TestServer;
  let stopBoth: (() => Promise<void>) | undefined;

  before(async () => {
    ({ server, stop: stopBoth } = await startWithS3((s3) => startTestServer({ backend: { default_backend: 's3', ...s3.config() } })));
  });
  after(async () => {
    await stopBoth?.();
  });

  it('labels S3 files s3, and callfs_active_locks shows the lock an upload holds while it streams', async () => {
    const before = await scrape(server.url, { token: KEYS.root });
    const body = new PassThrough();
    const upload = request(`${server.url}/v1/files/compat/s3.txt`, { method: 'PUT', token: KEYS.alice, body });
    body.write('streamed ');
    // A path-keyed upload streams under the path's lock.
    await until(async () => (await scrape(server.url, { token: KEYS.root })).value('callfs_active_locks') === 1, 'the upload to hold its lock');
    body.end('under a lock');
    expect((await upload).status).to.equal(201);
    expect((await request(`${server.url}/v1/files/compat/s3.txt`, { token: KEYS.alice })).text).to.equal('streamed under a lock');
    const after = await scrape(server.url, { token: KEYS.root });
    const grew = growth(before, after);

    expect(after.value('callfs_active_locks')).to.equal(0);
    expect(grew('callfs_file_operations_total', { operation: 'create', backend_type: 's3' })).to.equal(1);
    expect(grew('callfs_file_operations_total', { operation: 'read', backend_type: 's3' })).to.equal(1);
    expect(grew('callfs_backend_ops_total', { backend_type: 's3', operation: 'create' })).to.equal(1);
    expect(grew('callfs_backend_ops_total', { backend_type: 's3', operation: 'open' })).to.equal(1);
    expect(grew('callfs_backend_op_duration_seconds_count', { backend_type: 's3', operation: 'open' })).to.equal(1);
    expect(grew('callfs_lock_operations_total', { operation: 'acquire', status: 'success' })).to.equal(1);
    expect(grew('callfs_lock_operations_total', { operation: 'release', status: 'success' })).to.equal(1);
  });
});

describe("the original CallFS's metric names through the peer proxy (two real instances)", function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let a: ClusterInstance;
  let b: ClusterInstance;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['node-a', 'node-b']);
    [a, b] = cluster.instances as [ClusterInstance, ClusterInstance];
  });
  after(async () => {
    await cluster?.stop();
  });

  it('counts a read of bytes another instance holds as an internalproxy open', async () => {
    const put = await request(`${a.url}/v1/files/compat/peer.txt`, { method: 'PUT', token: KEYS.alice, ca: cluster.ca, body: 'held by a' });
    expect(put.status).to.equal(201);
    const before = await scrape(b.url, { token: KEYS.root, ca: cluster.ca });
    const got = await request(`${b.url}/v1/files/compat/peer.txt`, { token: KEYS.alice, ca: cluster.ca });
    expect(got.text).to.equal('held by a');
    const grew = growth(before, await scrape(b.url, { token: KEYS.root, ca: cluster.ca }));
    expect(grew('callfs_backend_ops_total', { backend_type: 'internalproxy', operation: 'open' })).to.equal(1);
    expect(grew('callfs_backend_op_duration_seconds_count', { backend_type: 'internalproxy', operation: 'open' })).to.equal(1);
    expect(grew('callfs_file_operations_total', { operation: 'read', backend_type: 'localfs' })).to.equal(1);
  });
});
