import { expect } from 'chai';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

const LINK_SECRET = 'link-secret-for-edges-0123456789';
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('HTTP edges', () => {
  let server: TestServer;
  const call = (method: string, path: string, extra: { body?: string | Buffer; token?: string | null; headers?: Record<string, string> } = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, {
      method,
      ...(extra.token === null ? {} : { token: extra.token ?? KEYS.alice }),
      ...(extra.body === undefined ? {} : { body: extra.body }),
      ...(extra.headers === undefined ? {} : { headers: extra.headers }),
    });
  const link = async (path: string): Promise<string> => {
    const res = await call('POST', '/v1/links/generate', { body: JSON.stringify({ path, expiry_seconds: 600 }), headers: { 'content-type': 'application/json' } });
    expect(res.status, res.text).to.equal(201);
    return res.json.token as string;
  };
  const expectError = (res: { status?: number; json?: any }, status: number, code: string): void => {
    expect(res.status, JSON.stringify(res.json)).to.equal(status);
    expect(res.json?.code).to.equal(code);
  };

  before(async () => {
    server = await startTestServer({
      auth: { single_use_link_secret: LINK_SECRET },
      links: { generate_rate_limit: 0, download_rate_limit: 0 },
    });
    for (const name of ['a.txt', 'b.txt']) expect((await call('PUT', `/v1/files/edges/${name}`, { body: `content of ${name}` })).status).to.equal(201);
  });
  after(async () => {
    await server?.stop();
  });

  describe('security headers', () => {
    const expectHeaders = (res: TestResponse, what: string): void => {
      expect(res.headers['x-request-id'], what).to.match(/^[0-9a-f]{16}$/);
      expect(res.headers['strict-transport-security'], what).to.match(/max-age=\d+/);
      expect(res.headers['x-content-type-options'], what).to.equal('nosniff');
      expect(res.headers['x-frame-options'], what).to.equal('DENY');
      expect(res.headers['cross-origin-opener-policy'], what).to.equal('same-origin');
      expect(res.headers['cross-origin-embedder-policy'], what).to.equal('require-corp');
      const policy = String(res.headers['permissions-policy']);
      for (const feature of ['camera', 'microphone', 'geolocation', 'payment', 'usb']) expect(policy, what).to.include(`${feature}=()`);
      // Every feature named is denied: an allow-list here would be a mistake.
      expect(policy.split(',').map((p) => p.trim()).every((p) => /^[a-z-]+=\(\)$/.test(p)), policy).to.equal(true);
    };

    it('are on a normal response, an error response, /health and a /download', async () => {
      const ok = await call('GET', '/v1/files/edges/a.txt');
      expect(ok.status).to.equal(200);
      expectHeaders(ok, 'GET a file');
      const missing = await call('GET', '/v1/files/edges/none.txt');
      expect(missing.status).to.equal(404);
      expectHeaders(missing, 'a 404');
      const refused = await call('GET', '/v1/files/edges/a.txt', { token: null });
      expect(refused.status).to.equal(401);
      expectHeaders(refused, 'a 401');
      expectHeaders(await call('GET', '/health', { token: null }), '/health');
      const download = await call('GET', `/download/${await link('/edges/a.txt')}`, { token: null });
      expect(download.status).to.equal(200);
      expectHeaders(download, 'a download');
      const badLink = await call('GET', '/download/not-a-token', { token: null });
      expect(badLink.status).to.equal(404);
      expectHeaders(badLink, 'a refused download');
    });
  });

  describe('the /download namespace needs no key', () => {
    for (const path of ['/download', '/download/', '/download/a/b', '/download/a/b/c/', '/download//x']) {
      it(`GET ${path} without a key is 404 LINK_NOT_FOUND`, async () => {
        expectError(await call('GET', path, { token: null }), 404, 'LINK_NOT_FOUND');
      });
    }

    it('HEAD of a path that is not a token is 404 too; another method on a token is 405 (Allow: GET), without a key', async () => {
      expect((await call('HEAD', '/download/', { token: null })).status).to.equal(404);
      const post = await call('POST', '/download/some-token', { token: null });
      expectError(post, 405, 'METHOD_NOT_ALLOWED');
      expect(post.headers.allow).to.equal('GET');
      expectError(await call('DELETE', '/download', { token: null }), 404, 'LINK_NOT_FOUND');
      // Only the namespace itself: a neighbour still asks for a key.
      expectError(await call('GET', '/downloads/x', { token: null }), 401, 'AUTHENTICATION_FAILED');
    });
  });

  describe('link tokens', () => {
    it('a token re-spelled in non-canonical base64url is 404 LINK_NOT_FOUND and does not burn the link', async () => {
      const token = await link('/edges/b.txt');
      const signature = token.split('.')[2] as string;
      const last = BASE64URL.indexOf(signature.slice(-1));
      // The lowest bit of the 43rd character is not part of the 32 signature bytes.
      const respelled = token.slice(0, -1) + BASE64URL.charAt(last ^ 1);
      expect(Buffer.from(respelled.split('.')[2] as string, 'base64url')).to.deep.equal(Buffer.from(signature, 'base64url'));
      expectError(await call('GET', `/download/${respelled}`, { token: null }), 404, 'LINK_NOT_FOUND');
      const genuine = await call('GET', `/download/${token}`, { token: null });
      expect(genuine.status).to.equal(200);
      expect(genuine.text).to.equal('content of b.txt');
      expectError(await call('GET', `/download/${token}`, { token: null }), 410, 'LINK_USED');
    });
  });
});
