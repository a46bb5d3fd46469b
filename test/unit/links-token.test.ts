import { expect } from 'chai';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createLinkTokens, type LinkClaims } from '../../lib/links/index.js';
import { isCallfsError } from '../../lib/errors.js';

const SECRET = 'unit-link-secret-0123456789abcdef';
const tokens = createLinkTokens({ secret: SECRET });
const claims = (over: Partial<LinkClaims> = {}): LinkClaims => ({ id: 'link-id-1', path: '/docs/a.txt', user: 'alice', uid: 1001, exp: Math.floor(Date.now() / 1000) + 600, ...over });

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The same bytes, spelled with the lowest (unused) bit of the last character flipped. */
function respellLast(part: string): string {
  const last = BASE64URL.indexOf(part.slice(-1));
  return part.slice(0, -1) + BASE64URL.charAt(last ^ 1);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isCallfsError(err)) return err.code;
    throw err;
  }
  return 'resolved';
}

describe('link tokens', () => {
  it('round-trips the claims', async () => {
    const c = claims();
    expect(await tokens.verify(await tokens.sign(c))).to.deep.equal(c);
  });

  it('is LINK_EXPIRED at exp and after, valid just before', async () => {
    const c = claims();
    const token = await tokens.sign(c);
    expect((await tokens.verify(token, new Date(c.exp * 1000 - 1))).id).to.equal(c.id);
    expect(await codeOf(tokens.verify(token, new Date(c.exp * 1000)))).to.equal('LINK_EXPIRED');
  });

  it('is LINK_NOT_FOUND for another secret, another algorithm, no algorithm, no type, or a wrong type', async () => {
    const key = new TextEncoder().encode(SECRET);
    const payload = { path: '/docs/a.txt', uid: 1001 };
    const base = (header: { alg: string; typ?: string }, secret = key) => new SignJWT(payload).setProtectedHeader(header).setJti('x').setSubject('alice').setExpirationTime('10m').sign(secret);
    expect(await codeOf(tokens.verify(await base({ alg: 'HS256', typ: 'callfs-link+jwt' }, new TextEncoder().encode('other-secret-0123456789abcdef'))))).to.equal('LINK_NOT_FOUND');
    expect(await codeOf(tokens.verify(await base({ alg: 'HS384', typ: 'callfs-link+jwt' })))).to.equal('LINK_NOT_FOUND');
    expect(await codeOf(tokens.verify(await base({ alg: 'HS256' })))).to.equal('LINK_NOT_FOUND');
    expect(await codeOf(tokens.verify(await base({ alg: 'HS256', typ: 'JWT' })))).to.equal('LINK_NOT_FOUND');
    const unsecured = new UnsecuredJWT(payload).setJti('x').setSubject('alice').setExpirationTime('10m').encode();
    expect(await codeOf(tokens.verify(unsecured))).to.equal('LINK_NOT_FOUND');
    // The one well-formed token of this set verifies: the refusals above are not an accident of the builder.
    expect((await tokens.verify(await base({ alg: 'HS256', typ: 'callfs-link+jwt' }))).path).to.equal('/docs/a.txt');
  });

  it('is LINK_NOT_FOUND for signed tokens with missing or ill-typed claims', async () => {
    const key = new TextEncoder().encode(SECRET);
    const sign = (payload: Record<string, unknown>) => new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'callfs-link+jwt' }).sign(key);
    const exp = Math.floor(Date.now() / 1000) + 600;
    const good = { jti: 'x', sub: 'alice', exp, path: '/a', uid: 1 };
    for (const bad of [
      { ...good, jti: undefined },
      { ...good, sub: '' },
      { ...good, exp: undefined },
      { ...good, path: 'a/../b' },
      { ...good, path: '/' },
      { ...good, path: 7 },
      { ...good, uid: -1 },
      { ...good, uid: '1' },
    ]) {
      expect(await codeOf(tokens.verify(await sign(bad))), JSON.stringify(bad)).to.equal('LINK_NOT_FOUND');
    }
    expect(await codeOf(tokens.verify(await sign(good)))).to.equal('resolved');
  });

  it('is LINK_NOT_FOUND for a signature re-spelled in non-canonical base64url (the same bytes)', async () => {
    const c = claims();
    const token = await tokens.sign(c);
    const signature = token.split('.')[2] as string;
    // 32 bytes take 43 characters; the last one carries 2 unused low bits.
    expect(signature).to.have.length(43);
    const respelled = respellLast(signature);
    expect(respelled).not.to.equal(signature);
    expect(Buffer.from(respelled, 'base64url')).to.deep.equal(Buffer.from(signature, 'base64url'));
    expect(await codeOf(tokens.verify(token.replace(/[^.]+$/, respelled)))).to.equal('LINK_NOT_FOUND');
    expect(await tokens.verify(token)).to.deep.equal(c);
  });

  it('is LINK_NOT_FOUND for garbage', async () => {
    for (const t of ['', 'a', 'a.b', 'a.b.c', 'a.b.c.d', '..', 'é.é.é', 'x'.repeat(20_000)]) expect(await codeOf(tokens.verify(t)), t.slice(0, 20)).to.equal('LINK_NOT_FOUND');
  });

  it('refuses a secret shorter than 16 characters', () => {
    expect(() => createLinkTokens({ secret: 'short' })).to.throw();
  });
});
