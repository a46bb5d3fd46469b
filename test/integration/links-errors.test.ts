import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

const LINK_SECRET = 'link-secret-for-tests-0123456789';

/** Refusals of link generation and download: validation, permissions, forged tokens, rate limits. */
describe('single-use links: refusals', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ auth: { single_use_link_secret: LINK_SECRET }, links: { generate_rate_limit: 0, download_rate_limit: 0 } });
    for (const [path, key, mode] of [['/refuse/a.txt', KEYS.alice, '0644'], ['/refuse/private.txt', KEYS.alice, '0600']] as const) {
      const res = await request(`${server.url}/v1/files${path}`, { method: 'PUT', token: key, body: 'content', headers: { 'x-callfs-mode': mode } });
      expect(res.status).to.equal(201);
    }
  });
  after(async () => {
    await server?.stop();
  });

  const generate = (body: string | object, token: string | null = KEYS.alice): Promise<TestResponse> =>
    request(`${server.url}/v1/links/generate`, {
      method: 'POST',
      ...(token === null ? {} : { token }),
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const download = (token: string): Promise<TestResponse> => request(`${server.url}/download/${token}`);
  const expectError = (res: TestResponse, status: number, code: string): void => {
    expect(res.status, res.text).to.equal(status);
    expect(res.json.code).to.equal(code);
  };

  describe('generate', () => {
    for (const [what, body] of [
      ['expiry_seconds 0', { path: '/refuse/a.txt', expiry_seconds: 0 }],
      ['expiry_seconds 86401', { path: '/refuse/a.txt', expiry_seconds: 86401 }],
      ['expiry_seconds "10"', { path: '/refuse/a.txt', expiry_seconds: '10' }],
      ['expiry_seconds 1.5', { path: '/refuse/a.txt', expiry_seconds: 1.5 }],
      ['expiry_seconds null', { path: '/refuse/a.txt', expiry_seconds: null }],
      ['a missing path', { expiry_seconds: 60 }],
      ['a numeric path', { path: 42, expiry_seconds: 60 }],
      ['an empty path', { path: '', expiry_seconds: 60 }],
      ['an unknown field', { path: '/refuse/a.txt', expiry_seconds: 60, expiry: 5 }],
      ['a directory', { path: '/refuse', expiry_seconds: 60 }],
      ['the root', { path: '/', expiry_seconds: 60 }],
      ['malformed JSON', '{"path": "/refuse/a.txt",'],
      ['a JSON array', '["/refuse/a.txt"]'],
    ] as const) {
      it(`refuses ${what} with 400 BAD_REQUEST`, async () => {
        expectError(await generate(body), 400, 'BAD_REQUEST');
      });
    }

    it('accepts the limits 1 and 86400', async () => {
      expect((await generate({ path: '/refuse/a.txt', expiry_seconds: 1 })).status).to.equal(201);
      expect((await generate({ path: '/refuse/a.txt', expiry_seconds: 86400 })).status).to.equal(201);
    });

    it('refuses a path climbing above the root with 400 INVALID_PATH', async () => {
      expectError(await generate({ path: '/../etc/passwd', expiry_seconds: 60 }), 400, 'INVALID_PATH');
    });

    it('answers 404 FILE_NOT_FOUND for a missing file', async () => {
      expectError(await generate({ path: '/refuse/missing.txt', expiry_seconds: 60 }), 404, 'FILE_NOT_FOUND');
    });

    it('answers 403 PERMISSION_DENIED for a file the caller may not read', async () => {
      expectError(await generate({ path: '/refuse/private.txt', expiry_seconds: 60 }, KEYS.bob), 403, 'PERMISSION_DENIED');
      expect((await generate({ path: '/refuse/private.txt', expiry_seconds: 60 }, KEYS.alice)).status).to.equal(201);
    });

    it('needs an API key', async () => {
      expectError(await generate({ path: '/refuse/a.txt', expiry_seconds: 60 }, null), 401, 'AUTHENTICATION_FAILED');
      expectError(await generate({ path: '/refuse/a.txt', expiry_seconds: 60 }, 'not-a-key-0123456789'), 401, 'AUTHENTICATION_FAILED');
    });
  });

  describe('download', () => {
    let genuine: string;
    beforeEach(async () => {
      const res = await generate({ path: '/refuse/a.txt', expiry_seconds: 600 });
      expect(res.status).to.equal(201);
      genuine = res.json.token;
    });

    /** Replace one character in the middle of a part: the last character of a base64url part may carry only padding bits. */
    function tamper(token: string, part: number): string {
      const parts = token.split('.');
      const s = parts[part] ?? '';
      const i = Math.floor(s.length / 2);
      parts[part] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      return parts.join('.');
    }

    for (const [part, name] of [[0, 'header'], [1, 'payload'], [2, 'signature']] as const) {
      it(`answers 404 LINK_NOT_FOUND for a token with one character of its ${name} changed, and the real link still works`, async () => {
        expectError(await download(tamper(genuine, part)), 404, 'LINK_NOT_FOUND');
        expect((await download(genuine)).status).to.equal(200);
      });
    }

    const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

    it('answers 404 LINK_NOT_FOUND for a token with the same claims signed with another secret', async () => {
      const claims = claimsOf(genuine);
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'callfs-link+jwt' }).sign(new TextEncoder().encode('another-secret-0123456789abcdef'));
      expectError(await download(forged), 404, 'LINK_NOT_FOUND');
      expect((await download(genuine)).status).to.equal(200);
    });

    it('answers 404 LINK_NOT_FOUND for alg none and for HS512 with the right secret', async () => {
      const claims = claimsOf(genuine);
      const none = `${b64({ alg: 'none', typ: 'callfs-link+jwt' })}.${b64(claims)}.`;
      expectError(await download(none), 404, 'LINK_NOT_FOUND');
      expectError(await download(`${none}${genuine.split('.')[2]}`), 404, 'LINK_NOT_FOUND');
      const hs512 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS512', typ: 'callfs-link+jwt' }).sign(new TextEncoder().encode(LINK_SECRET));
      expectError(await download(hs512), 404, 'LINK_NOT_FOUND');
      expect((await download(genuine)).status).to.equal(200);
    });

    it('answers 404 LINK_NOT_FOUND for garbage and for a genuine-looking token that was never issued', async () => {
      for (const token of ['abc', 'a.b.c', '%E0%A4%A', 'x'.repeat(10_000), `${genuine}.x`]) {
        expectError(await download(token), 404, 'LINK_NOT_FOUND');
      }
      const unknown = await new SignJWT({ path: '/refuse/a.txt', uid: 1001 })
        .setProtectedHeader({ alg: 'HS256', typ: 'callfs-link+jwt' })
        .setJti(randomBytes(16).toString('base64url'))
        .setSubject('alice')
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(LINK_SECRET));
      expectError(await download(unknown), 404, 'LINK_NOT_FOUND');
    });

    it('answers 410 LINK_EXPIRED for a genuine token past its exp', async () => {
      const claims = claimsOf(genuine);
      const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 5 }).setProtectedHeader({ alg: 'HS256', typ: 'callfs-link+jwt' }).sign(new TextEncoder().encode(LINK_SECRET));
      expectError(await download(expired), 410, 'LINK_EXPIRED');
    });
  });
});

describe('single-use links: rate limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ links: { generate_rate_limit: 3, download_rate_limit: 2 } });
    const res = await request(`${server.url}/v1/files/limits.txt`, { method: 'PUT', token: KEYS.alice, body: 'x' });
    expect(res.status).to.equal(201);
  });
  after(async () => {
    await server?.stop();
  });

  it('answers 429 RATE_LIMIT_EXCEEDED with Retry-After past links.generate_rate_limit per minute', async () => {
    const generate = () => request(`${server.url}/v1/links/generate`, { method: 'POST', token: KEYS.alice, headers: { 'content-type': 'application/json' }, body: '{"path":"/limits.txt"}' });
    for (let i = 0; i < 3; i++) expect((await generate()).status).to.equal(201);
    const limited = await generate();
    expect(limited.status).to.equal(429);
    expect(limited.json.code).to.equal('RATE_LIMIT_EXCEEDED');
    // One request back every 60 s / 3.
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 20);
  });

  it('answers 429 RATE_LIMIT_EXCEEDED with Retry-After past links.download_rate_limit per minute, before looking at the token', async () => {
    for (let i = 0; i < 2; i++) expect((await request(`${server.url}/download/not-a-token`)).status).to.equal(404);
    const limited = await request(`${server.url}/download/not-a-token`);
    expect(limited.status).to.equal(429);
    expect(limited.json.code).to.equal('RATE_LIMIT_EXCEEDED');
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 30);
    const metric = await server.metrics.linkConsumptions.get();
    expect(metric.values.find((v) => v.labels.status === 'rate_limited')?.value).to.equal(1);
  });
});
