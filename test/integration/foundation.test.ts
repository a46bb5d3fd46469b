import { expect } from 'chai';
import { request } from '../support/http.js';
import { startTestServer, KEYS, type TestServer } from '../support/callfs.js';

describe('HTTPS server foundation', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('answers /health without auth, over TLS verified against its own certificate', async () => {
    const res = await request(`${server.url}/health`, { ca: server.ca });
    expect(res.status).to.equal(200);
    expect(res.json).to.deep.equal({ status: 'ok' });
  });

  it('sets X-Request-ID and the security headers on every response', async () => {
    for (const res of [await request(`${server.url}/health`), await request(`${server.url}/metrics`)]) {
      expect(res.headers['x-request-id']).to.match(/^[0-9a-f]{16}$/);
      expect(res.headers['strict-transport-security']).to.match(/max-age=\d+/);
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['x-frame-options']).to.equal('DENY');
      expect(res.headers['referrer-policy']).to.be.a('string');
      expect(res.headers['content-security-policy']).to.include("default-src 'none'");
      expect(res.headers['cross-origin-opener-policy']).to.equal('same-origin');
    }
  });

  it('keeps a well-formed incoming X-Request-ID and replaces a malformed one', async () => {
    const kept = await request(`${server.url}/health`, { headers: { 'x-request-id': '0123456789abcdef' } });
    expect(kept.headers['x-request-id']).to.equal('0123456789abcdef');
    const replaced = await request(`${server.url}/health`, { headers: { 'x-request-id': 'evil\u0000id' .replace('\u0000', '') } });
    expect(replaced.headers['x-request-id']).to.match(/^[0-9a-f]{16}$/).and.not.equal('evilid');
  });

  describe('Bearer authentication', () => {
    const refused: [string, Record<string, string>][] = [
      ['no Authorization header', {}],
      ['a wrong key', { authorization: 'Bearer wrong-key-0123456789abcdef' }],
      ['"Bearer " with an empty value', { authorization: 'Bearer ' }],
      ['a key without the "Bearer " prefix', { authorization: KEYS.alice }],
      ['another scheme', { authorization: `Basic ${KEYS.alice}` }],
      ['a key with trailing junk', { authorization: `Bearer ${KEYS.alice}x` }],
    ];
    for (const [what, headers] of refused) {
      it(`refuses ${what} with 401 AUTHENTICATION_FAILED in the JSON envelope`, async () => {
        const res = await request(`${server.url}/metrics`, { headers });
        expect(res.status).to.equal(401);
        expect(res.json.code).to.equal('AUTHENTICATION_FAILED');
        expect(res.json.request_id).to.equal(res.headers['x-request-id']);
        expect(res.json.message).to.be.a('string');
        expect(res.headers['www-authenticate']).to.match(/^Bearer/);
      });
    }

    it('accepts a configured key', async () => {
      const res = await request(`${server.url}/metrics`, { token: KEYS.alice });
      expect(res.status).to.equal(200);
    });

    it('requires auth before telling whether an endpoint exists', async () => {
      expect((await request(`${server.url}/no/such/thing`)).status).to.equal(401);
      const res = await request(`${server.url}/no/such/thing`, { token: KEYS.alice });
      expect(res.status).to.equal(404);
      expect(res.json.code).to.equal('FILE_NOT_FOUND');
    });
  });

  describe('metrics', () => {
    it('serves Prometheus text on the main port with auth', async () => {
      await request(`${server.url}/health`);
      const res = await request(`${server.url}/metrics`, { token: KEYS.bob });
      expect(res.headers['content-type']).to.match(/^text\/plain/);
      expect(res.text).to.match(/^callfs_http_requests_total\{method="GET",route="\/health",status="200",path="\/health",status_code="200"\} \d+/m);
      expect(res.text).to.include('callfs_process_');
    });

    it('serves the same metrics without auth on metrics.listen_addr, and nothing else there', async () => {
      expect(server.metricsPort).to.be.a('number');
      const res = await request(`http://127.0.0.1:${server.metricsPort}/metrics`);
      expect(res.status).to.equal(200);
      expect(res.text).to.include('callfs_http_requests_total');
      expect((await request(`http://127.0.0.1:${server.metricsPort}/v1/files/`)).status).to.equal(404);
    });
  });

  it('reports readiness of each dependency', async () => {
    const res = await request(`${server.url}/ready`);
    expect(res.status).to.equal(200);
    expect(res.json.status).to.equal('ok');
    expect(res.json.checks).to.be.an('object');
  });

  it('serves its OpenAPI 3.1 document to authenticated callers', async () => {
    const res = await request(`${server.url}/openapi.json`, { token: KEYS.alice });
    expect(res.status).to.equal(200);
    expect(res.json.openapi).to.equal('3.1.0');
    expect(res.json.paths).to.have.property('/health');
  });

  it('answers 405 METHOD_NOT_ALLOWED for a known route with the wrong method', async () => {
    const res = await request(`${server.url}/health`, { method: 'DELETE', token: KEYS.alice });
    expect(res.status).to.equal(405);
    expect(res.json.code).to.equal('METHOD_NOT_ALLOWED');
  });
});
