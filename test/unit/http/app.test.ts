import { expect } from 'chai';
import { API_KEYS, startTestApp, type AppUnderTest } from '../../support/app.js';
import { request } from '../../support/http.js';

// lib/http/app.ts: what happens when no route matches.
describe('http: unmatched requests', function () {
  let app: AppUnderTest;

  before(async function () {
    app = await startTestApp();
  });

  after(async function () {
    await app.close();
  });

  it('asks for a key before saying whether a route exists', async function () {
    for (const [method, path] of [['GET', '/nowhere'], ['POST', '/health'], ['DELETE', '/v1/directories/x']]) {
      const res = await request(`${app.url}${path}`, { method });
      expect([res.status, res.json.code], `${method} ${path}`).to.deep.equal([401, 'AUTHENTICATION_FAILED']);
    }
  });

  it('answers an unknown route 404 and a known one with the wrong method 405 with Allow', async function () {
    const token = API_KEYS.alice;
    const missing = await request(`${app.url}/nowhere`, { token });
    expect([missing.status, missing.json.code]).to.deep.equal([404, 'FILE_NOT_FOUND']);
    const wrong = await request(`${app.url}/health`, { token, method: 'POST' });
    expect([wrong.status, wrong.json.code]).to.deep.equal([405, 'METHOD_NOT_ALLOWED']);
    expect(String(wrong.headers.allow).split(', ')).to.include('GET');
    const listing = await request(`${app.url}/v1/directories/x`, { token, method: 'DELETE' });
    expect(listing.status).to.equal(405);
    expect(String(listing.headers.allow).split(', ')).to.include('GET');
  });
});
