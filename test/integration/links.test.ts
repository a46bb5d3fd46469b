import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { startLinkPurge } from '../../lib/links/index.js';
import { createSilentLogger } from '../../lib/log/index.js';

const LINK_SECRET = 'link-secret-for-tests-0123456789';
const EXTERNAL_URL = 'https://files.example.test:9443';

/** Single-use links through the real HTTPS server: generate, download once, keep the link when the open fails. */
describe('single-use links', function () {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: { external_url: EXTERNAL_URL },
      auth: { single_use_link_secret: LINK_SECRET },
      // Many downloads from one address below; the limiter has its own suite.
      links: { generate_rate_limit: 0, download_rate_limit: 0 },
    });
  });
  after(async () => {
    await server?.stop();
  });

  const put = async (path: string, body: Buffer | string, token: string = KEYS.alice, mode?: string): Promise<void> => {
    const res = await request(`${server.url}/v1/files${path}`, { method: 'PUT', token, body, headers: mode === undefined ? {} : { 'x-callfs-mode': mode } });
    expect(res.status, res.text).to.be.oneOf([200, 201]);
  };
  const generate = (body: unknown, token: string = KEYS.alice): Promise<TestResponse> =>
    request(`${server.url}/v1/links/generate`, { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const linkTo = async (path: string, expirySeconds = 600, token: string = KEYS.alice): Promise<string> => {
    const res = await generate({ path, expiry_seconds: expirySeconds }, token);
    expect(res.status, res.text).to.equal(201);
    return res.json.token as string;
  };
  const download = (token: string, method = 'GET'): Promise<TestResponse> => request(`${server.url}/download/${token}`, { method });
  const consumptions = async (status: string): Promise<number> => {
    const metric = await server.metrics.linkConsumptions.get();
    return metric.values.find((v) => v.labels.status === status)?.value ?? 0;
  };

  it('generates a link whose first download gets the exact bytes with the right headers, and the second 410 LINK_USED', async () => {
    const bytes = randomBytes(1024 * 1024 + 3);
    await put('/links/data.bin', bytes);
    const generationsBefore = (await server.metrics.linkGenerations.get()).values[0]?.value ?? 0;
    const started = Date.now();
    const res = await generate({ path: '/links//./data.bin', expiry_seconds: 120 });
    expect(res.status).to.equal(201);
    const { url, token, expires, expires_at } = res.json;
    expect(url).to.equal(`${EXTERNAL_URL}/download/${token}`);
    expect(expires).to.equal(expires_at);
    const expiresMs = Date.parse(expires);
    expect(expiresMs).to.be.within(started + 120_000, started + 122_000);
    expect(decodeJwt(token).path).to.equal('/links/data.bin');
    expect((await server.metrics.linkGenerations.get()).values[0]?.value).to.equal(generationsBefore + 1);

    const first = await download(token);
    expect(first.status).to.equal(200);
    expect(first.body.equals(bytes)).to.equal(true);
    expect(first.headers['content-length']).to.equal(String(bytes.length));
    expect(first.headers.etag).to.equal(`"${createHash('sha256').update(bytes).digest('hex')}"`);
    expect(first.headers['content-type']).to.equal('application/octet-stream');
    expect(first.headers['content-disposition']).to.equal('attachment; filename=data.bin');
    expect(first.headers['cache-control']).to.equal('no-store');

    const second = await download(token);
    expect(second.status).to.equal(410);
    expect(second.json.code).to.equal('LINK_USED');
    expect(second.headers['content-disposition']).to.equal(undefined);
  });

  it('names a file with non-ASCII and quote characters in filename* and gives an ASCII fallback', async () => {
    await put('/links/r%C3%A9sum%C3%A9%20%22final%22%20%E2%9C%93.txt', 'hello\n');
    const res = await download(await linkTo('/links/résumé "final" ✓.txt'));
    expect(res.status).to.equal(200);
    expect(res.text).to.equal('hello\n');
    expect(res.headers['content-type']).to.match(/^text\/plain/);
    expect(res.headers['content-disposition']).to.equal(`attachment; filename="r_sum_ _final_ _.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%20%E2%9C%93.txt`);
  });

  it('defaults expiry_seconds to 3600 when it is absent (the README example)', async () => {
    await put('/links/default.txt', 'x');
    const started = Date.now();
    const res = await generate({ path: '/links/default.txt' });
    expect(res.status).to.equal(201);
    expect(Date.parse(res.json.expires)).to.be.within(started + 3_600_000, started + 3_602_000);
  });

  it('refuses HEAD with 405 without burning the link', async () => {
    await put('/links/head.txt', 'head');
    const token = await linkTo('/links/head.txt');
    const head = await download(token, 'HEAD');
    expect(head.status).to.equal(405);
    expect(head.headers.allow).to.equal('GET');
    const get = await download(token);
    expect(get.status).to.equal(200);
    expect(get.text).to.equal('head');
  });

  it('answers 404 FILE_NOT_FOUND for a link whose file was deleted, without burning it', async () => {
    await put('/links/vanish.txt', 'first');
    const token = await linkTo('/links/vanish.txt');
    const del = await request(`${server.url}/v1/files/links/vanish.txt`, { method: 'DELETE', token: KEYS.alice });
    expect(del.status).to.equal(204);
    const gone = await download(token);
    expect(gone.status).to.equal(404);
    expect(gone.json.code).to.equal('FILE_NOT_FOUND');
    await put('/links/vanish.txt', 'second');
    const back = await download(token);
    expect(back.status).to.equal(200);
    expect(back.text).to.equal('second');
    expect((await download(token)).json.code).to.equal('LINK_USED');
  });

  it('reads the file as the link’s creator at download time: a revoked permission is 403 and leaves the link usable', async () => {
    await put('/links/shared.txt', 'shared', KEYS.alice, '0644');
    const token = await linkTo('/links/shared.txt', 600, KEYS.bob);
    const chmod = (mode: string) => request(`${server.url}/v1/files/links/shared.txt`, { method: 'PATCH', token: KEYS.alice, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode }) });
    expect((await chmod('0600')).status).to.equal(200);
    const denied = await download(token);
    expect(denied.status).to.equal(403);
    expect(denied.json.code).to.equal('PERMISSION_DENIED');
    expect((await chmod('0644')).status).to.equal(200);
    const ok = await download(token);
    expect(ok.status).to.equal(200);
    expect(ok.text).to.equal('shared');
  });

  it('gives the bytes to exactly one of 100 concurrent downloads; the 99 others get 410 LINK_USED', async () => {
    const bytes = randomBytes(256 * 1024);
    await put('/links/race.bin', bytes);
    const token = await linkTo('/links/race.bin');
    const [successBefore, invalidBefore] = [await consumptions('success'), await consumptions('invalid')];
    const results = await Promise.all(Array.from({ length: 100 }, () => download(token)));
    const winners = results.filter((r) => r.status === 200);
    const losers = results.filter((r) => r.status !== 200);
    expect(winners).to.have.length(1);
    expect(winners[0]?.body.equals(bytes)).to.equal(true);
    expect(losers.map((r) => `${r.status} ${r.json?.code}`)).to.deep.equal(Array(99).fill('410 LINK_USED'));
    expect(await consumptions('success')).to.equal(successBefore + 1);
    expect(await consumptions('invalid')).to.equal(invalidBefore + 99);
  });

  it('answers 410 LINK_EXPIRED once expiry_seconds have passed', async function () {
    this.timeout(20_000);
    await put('/links/short.txt', 'short');
    const token = await linkTo('/links/short.txt', 1);
    await new Promise((r) => setTimeout(r, 2100));
    const res = await download(token);
    expect(res.status).to.equal(410);
    expect(res.json.code).to.equal('LINK_EXPIRED');
  });

  it('answers 410 LINK_EXPIRED when the stored link has expired even if the token has not', async () => {
    await put('/links/row.txt', 'row');
    const id = randomBytes(16).toString('base64url');
    await server.store.createLink({ id, path: '/links/row.txt', createdBy: 1001, expiresAt: new Date(Date.now() - 1000) });
    const token = await new SignJWT({ path: '/links/row.txt', uid: 1001 })
      .setProtectedHeader({ alg: 'HS256', typ: 'callfs-link+jwt' })
      .setJti(id)
      .setSubject('alice')
      .setExpirationTime(Math.ceil(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(LINK_SECRET));
    const res = await download(token);
    expect(res.status).to.equal(410);
    expect(res.json.code).to.equal('LINK_EXPIRED');
  });

  it('purges used and long-expired links from the store, and keeps live ones', async () => {
    await put('/links/purge.txt', 'purge');
    const used = await linkTo('/links/purge.txt');
    expect((await download(used)).status).to.equal(200);
    const expired = await linkTo('/links/purge.txt', 1);
    const live = await linkTo('/links/purge.txt', 3600);
    // A day and a bit from now, the used and expired rows are past their retention; the live one is not.
    const purge = startLinkPurge({ store: server.store, intervalMs: 0, logger: createSilentLogger(), now: () => new Date(Date.now() + 86_400_000 + 60_000) });
    const removed = await purge.runOnce();
    await purge.stop();
    expect(removed).to.be.at.least(2);
    const idOf = (token: string): string => String(decodeJwt(token).jti);
    expect((await server.store.consumeLink(idOf(used))).status).to.equal('not_found');
    expect((await server.store.consumeLink(idOf(expired))).status).to.equal('not_found');
    const res = await download(live);
    expect(res.status).to.equal(200);
    expect(res.text).to.equal('purge');
  });
});
