import { expect } from 'chai';
import { CallfsError } from '../../../lib/errors.js';
import { API_KEYS, startTestApp, type AppUnderTest } from '../../support/app.js';
import { request } from '../../support/http.js';

// lib/http/readiness.ts and GET /ready: the instance's state from its dependencies' checks.
describe('http: readiness', function () {
  let app: AppUnderTest | undefined;

  afterEach(async function () {
    await app?.close();
    app = undefined;
  });

  const ready = async (a: AppUnderTest): Promise<{ status: number; body: any; retryAfter: unknown }> => {
    const res = await request(`${a.url}/ready`);
    return { status: res.status, body: res.json, retryAfter: res.headers['retry-after'] };
  };

  it('is ok when every dependency serves', async function () {
    app = await startTestApp();
    expect(await ready(app)).to.deep.equal({ status: 200, body: { status: 'ok', checks: { metadata: 'ok', locks: 'ok', backends: { cas: 'ok' } } }, retryAfter: undefined });
  });

  it('is degraded, and still 200, while a backend is full', async function () {
    app = await startTestApp({ capacityBytes: 4 });
    expect((await request(`${app.url}/v1/files/f`, { token: API_KEYS.root, method: 'PUT', body: 'full' })).status).to.equal(201);
    const { status, body } = await ready(app);
    expect(status).to.equal(200);
    expect(body).to.deep.equal({ status: 'degraded', checks: { metadata: 'ok', locks: 'ok', backends: { cas: 'full' } } });
  });

  it('is unavailable (503, Retry-After) when the metadata store cannot serve, and says no more than that', async function () {
    app = await startTestApp();
    await app.store.close();
    const { status, body, retryAfter } = await ready(app);
    expect(status).to.equal(503);
    expect(retryAfter).to.equal('5');
    expect(body).to.deep.equal({ status: 'unavailable', checks: { metadata: 'unavailable', locks: 'ok', backends: { cas: 'ok' } } });
    // Liveness does not depend on it.
    expect((await request(`${app.url}/health`)).status).to.equal(200);
  });

  it('is unavailable when a backend cannot serve', async function () {
    app = await startTestApp();
    await app.backend.close();
    const { status, body } = await ready(app);
    expect(status).to.equal(503);
    expect(body.checks.backends).to.deep.equal({ cas: 'unavailable' });
  });

  it('reports peers without letting a peer that is down make this instance unready', async function () {
    app = await startTestApp({
      peers: {
        up: async () => {},
        down: async () => {
          throw new CallfsError('BAD_GATEWAY', 'peer down at 10.9.9.9', { component: 'peer' });
        },
      },
    });
    const { status, body } = await ready(app);
    expect(status).to.equal(200);
    expect(body.status).to.equal('ok');
    expect(body.checks.peers).to.deep.equal({ up: 'ok', down: 'unavailable' });
  });
});
