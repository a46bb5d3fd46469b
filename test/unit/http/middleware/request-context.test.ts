import { expect } from 'chai';
import http from 'node:http';
import { Router } from '@koa/router';
import type { RequestState } from '../../../../lib/http/state.js';
import { API_KEYS, startTestApp, type AppUnderTest } from '../../../support/app.js';
import { request, type TestResponse } from '../../../support/http.js';
import { routeLabel } from '../../../../lib/http/middleware/request-context.js';

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

// lib/http/middleware/request-context.ts: request ids and the headers every response carries.
describe('http: request context', function () {
  let app: AppUnderTest;
  let plain: AppUnderTest;

  // Waits for its client to go away, then reads the request's signal for the first time.
  let lateSignal: Promise<{ aborted: boolean; reason: unknown }>;
  let seeLateSignal: (seen: { aborted: boolean; reason: unknown }) => void;
  const late = new Router<RequestState>();
  late.get('/test/late-signal', async (ctx) => {
    await new Promise((resolve) => ctx.res.once('close', resolve));
    const { signal } = ctx.state;
    seeLateSignal({ aborted: signal.aborted, reason: signal.reason });
  });

  before(async function () {
    app = await startTestApp({ tls: true, routers: [late] });
    plain = await startTestApp({ tls: false });
  });

  after(async function () {
    await app.close();
    await plain.close();
  });

  const get = (path: string, headers: Record<string, string> = {}, token?: string): Promise<TestResponse> =>
    request(`${app.url}${path}`, { headers, ...(token === undefined ? {} : { token }) });

  it('keeps a well-formed X-Request-ID (lowercased) and the error body says the same id', async function () {
    const res = await get('/v1/files/missing', { 'x-request-id': '0123456789ABCDEF' }, API_KEYS.alice);
    expect(res.headers['x-request-id']).to.equal('0123456789abcdef');
    expect(res.json.request_id).to.equal('0123456789abcdef');
  });

  it('replaces a malformed or missing one with a fresh 16-hex id per request', async function () {
    const seen = new Set<string>();
    for (const incoming of ['', 'abc', '0123456789abcdef0', 'not-hex-at-all!!', '0123456789abcdeg', '01234567 9abcdef']) {
      const res = await get('/health', incoming === '' ? {} : { 'x-request-id': incoming });
      const id = String(res.headers['x-request-id']);
      expect(id, incoming).to.match(/^[0-9a-f]{16}$/);
      expect(id).to.not.equal(incoming);
      seen.add(id);
    }
    expect(seen.size).to.equal(6);
  });

  it('keeps fresh ids distinct across refills of the random pool (512 ids each)', async function () {
    const seen = new Set<string>();
    for (let i = 0; i < 600; i++) seen.add(String((await get('/health')).headers['x-request-id']));
    expect(seen.size).to.equal(600);
  });

  it('gives an aborted signal to a handler that first asks for it after its client went away', async function () {
    lateSignal = new Promise((resolve) => (seeLateSignal = resolve));
    const req = http.get(`${app.url}/test/late-signal`);
    req.on('error', () => {});
    setTimeout(() => req.destroy(), 50);
    const seen = await lateSignal;
    expect(seen.aborted).to.equal(true);
    expect(String(seen.reason)).to.match(/client went away/);
  });

  it('sets the security headers on every answer: success, refusal and error', async function () {
    for (const res of [await get('/health'), await get('/v1/files/x'), await get('/v1/files/missing', {}, API_KEYS.alice)]) {
      expect(res.headers, String(res.status)).to.include(SECURITY_HEADERS);
      expect(res.headers['content-security-policy']).to.match(/default-src 'none'/);
      expect(res.headers['permissions-policy']).to.match(/camera=\(\)/);
      expect(res.headers['strict-transport-security']).to.match(/max-age=\d+/);
    }
  });

  it('sends Strict-Transport-Security only over TLS', async function () {
    const res = await request(`${plain.url}/health`);
    expect(res.headers).to.include(SECURITY_HEADERS);
    expect(res.headers).to.not.have.property('strict-transport-security');
  });
});

describe('routeLabel', () => {
  it('labels a route by the literal part of its pattern, up to the first parameter', () => {
    expect(routeLabel('/v1/files{/*path}')).to.equal('/v1/files');
    expect(routeLabel('/v1/directories{/*path}')).to.equal('/v1/directories');
    expect(routeLabel('/download/:token')).to.equal('/download');
    expect(routeLabel('/v1/blobs/:sha256')).to.equal('/v1/blobs');
    expect(routeLabel('/files/*rest')).to.equal('/files');
  });

  it('keeps a pattern without parameters as it is', () => {
    expect(routeLabel('/v1/links/generate')).to.equal('/v1/links/generate');
    expect(routeLabel('/health')).to.equal('/health');
    expect(routeLabel('/openapi.json')).to.equal('/openapi.json');
  });

  it('labels a pattern that is all parameter "/"', () => {
    expect(routeLabel('/:anything')).to.equal('/');
    expect(routeLabel('/')).to.equal('/');
  });
});
