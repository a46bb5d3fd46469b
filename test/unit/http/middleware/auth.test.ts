import { Readable } from 'node:stream';
import { expect } from 'chai';
import { API_KEYS, startTestApp, type AppUnderTest } from '../../../support/app.js';
import { alice } from '../../../support/engine.js';
import { request } from '../../../support/http.js';

const PEER_SECRET = 'peer-secret-0123456789abcdef';

// lib/http/middleware/auth.ts: Bearer keys of users, and the internal secret of peers.
describe('http: authentication', function () {
  let app: AppUnderTest;

  before(async function () {
    app = await startTestApp({ peerSecret: PEER_SECRET });
    await app.addDirectory('/home/alice', { mode: 0o700, uid: alice.uid, gid: alice.gid });
  });

  after(async function () {
    await app.close();
  });

  const status = async (headers: Record<string, string>, path = '/v1/directories/home/alice'): Promise<[number, string | undefined]> => {
    const res = await request(`${app.url}${path}`, { headers });
    return [res.status, res.json?.code];
  };

  it('accepts exactly `Bearer <key>`, the scheme in any case', async function () {
    expect(await status({ authorization: `Bearer ${API_KEYS.alice}` })).to.deep.equal([200, undefined]);
    expect(await status({ authorization: `bearer ${API_KEYS.alice}` })).to.deep.equal([200, undefined]);
    expect(await status({ authorization: `BEARER ${API_KEYS.alice}` })).to.deep.equal([200, undefined]);
  });

  it('refuses anything else with 401 AUTHENTICATION_FAILED', async function () {
    const refused: Array<Record<string, string>> = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: `Bearer  ${API_KEYS.alice}` },
      { authorization: `Bearer ${API_KEYS.alice} extra` },
      { authorization: `Basic ${Buffer.from(`alice:${API_KEYS.alice}`).toString('base64')}` },
      { authorization: API_KEYS.alice },
      { authorization: `Bearer ${API_KEYS.alice}x` },
      { authorization: `Bearer ${API_KEYS.alice.slice(0, -1)}` },
    ];
    for (const headers of refused) expect(await status(headers), JSON.stringify(headers)).to.deep.equal([401, 'AUTHENTICATION_FAILED']);
  });

  it('acts as the key\'s user', async function () {
    expect(await status({ authorization: `Bearer ${API_KEYS.bob}` })).to.deep.equal([403, 'PERMISSION_DENIED']);
  });

  it('refuses the internal secret on /v1, whatever user it names: no one acts through it', async function () {
    const peer = { authorization: `Bearer ${PEER_SECRET}` };
    for (const name of ['alice', 'root', '']) {
      expect(await status({ ...peer, ...(name === '' ? {} : { 'x-callfs-on-behalf-of': name }) }), name).to.deep.equal([401, 'AUTHENTICATION_FAILED']);
    }
  });

  it('opens the internal blob routes with the internal secret only', async function () {
    const { id } = await app.backend.put(Readable.from([Buffer.from('a blob')]));
    const blob = `/internal/v1/blobs/${id}`;
    expect(await status({ authorization: `Bearer ${PEER_SECRET}` }, blob)).to.deep.equal([200, undefined]);
    for (const key of [API_KEYS.root, API_KEYS.alice]) expect(await status({ authorization: `Bearer ${key}` }, blob)).to.deep.equal([401, 'AUTHENTICATION_FAILED']);
    expect(await status({ authorization: `Bearer ${PEER_SECRET}x` }, blob)).to.deep.equal([401, 'AUTHENTICATION_FAILED']);
  });

  it('ignores X-CallFS-On-Behalf-Of without the internal secret', async function () {
    expect(await status({ authorization: `Bearer ${API_KEYS.bob}`, 'x-callfs-on-behalf-of': 'alice' })).to.deep.equal([403, 'PERMISSION_DENIED']);
    expect(await status({ authorization: `Bearer ${API_KEYS.bob}`, 'x-callfs-on-behalf-of': 'root' })).to.deep.equal([403, 'PERMISSION_DENIED']);
  });

  it('needs no key for /health and /ready', async function () {
    expect((await request(`${app.url}/health`)).status).to.equal(200);
    expect((await request(`${app.url}/ready`)).status).to.equal(200);
    expect((await request(`${app.url}/metrics`)).status).to.equal(401);
  });
});
