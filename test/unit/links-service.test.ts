import { expect } from 'chai';
import { Readable } from 'node:stream';
import type { User } from '../../lib/auth/users.js';
import { CallfsError, isCallfsError, notFound } from '../../lib/errors.js';
import type { ConsumeResult, Entry, SingleUseLink } from '../../lib/metadata/types.js';
import { createMetrics } from '../../lib/metrics/index.js';
import { createLinkService, type LinkServiceOptions } from '../../lib/links/index.js';

const alice: User = { name: 'alice', uid: 1001, gid: 1001, groups: [] };

/** The link table with the store's compare-and-set semantics. */
function memoryLinkStore(): LinkServiceOptions['store'] {
  const rows = new Map<string, SingleUseLink>();
  return {
    async createLink(link) {
      const row = { ...link, createdAt: new Date(), usedAt: null };
      rows.set(link.id, row);
      return row;
    },
    async getLink(id) {
      const link = rows.get(id);
      return link === undefined ? null : { ...link };
    },
    async consumeLink(id, now = new Date()): Promise<ConsumeResult> {
      const link = rows.get(id);
      if (link === undefined) return { status: 'not_found' };
      if (link.usedAt !== null) return { status: 'used', link };
      if (link.expiresAt <= now) return { status: 'expired', link };
      link.usedAt = now;
      return { status: 'consumed', link };
    },
  };
}

/** Files in memory; every stream handed out is remembered so the test can see it was destroyed. */
function memoryFiles() {
  const files = new Map<string, Buffer>();
  const opened: Readable[] = [];
  const entry = (path: string, size: number): Entry => {
    const t = new Date();
    return { id: '1', path, parentId: '0', name: path.slice(path.lastIndexOf('/') + 1), type: 'file', size, mode: 0o644, uid: 1001, gid: 1001, atime: t, mtime: t, ctime: t, backend: 'cas', instanceId: 'i', blobId: 'b', etag: 'e', version: 1, createdAt: t, updatedAt: t };
  };
  const engine: LinkServiceOptions['engine'] = {
    async statForRead(_user, path) {
      const bytes = files.get(path);
      if (bytes === undefined) throw notFound(path);
      return entry(path, bytes.length);
    },
    async openContent(e) {
      const bytes = files.get(e.path);
      if (bytes === undefined) throw notFound(e.path);
      const stream = Readable.from([bytes]);
      opened.push(stream);
      return stream;
    },
  };
  return { files, opened, engine };
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

describe('link service', () => {
  const setup = () => {
    const users = new Map<string, User>([['alice', alice]]);
    const fs = memoryFiles();
    const metrics = createMetrics({ defaultMetrics: false });
    const service = createLinkService({ store: memoryLinkStore(), engine: fs.engine, userByName: (n) => users.get(n), secret: 'unit-secret-0123456789abcdef', externalUrl: 'https://x.test', metrics });
    const count = async (status: string) => (await metrics.linkConsumptions.get()).values.find((v) => v.labels.status === status)?.value ?? 0;
    return { users, fs, service, count };
  };

  it('refuses a link whose creator is no longer configured, without burning it', async () => {
    const { users, fs, service, count } = setup();
    fs.files.set('/a.txt', Buffer.from('a'));
    const { token } = await service.generate(alice, { path: '/a.txt', expirySeconds: 60 });
    users.delete('alice');
    expect(await codeOf(service.redeem(token))).to.equal('PERMISSION_DENIED');
    users.set('alice', { ...alice, uid: 2000 });
    expect(await codeOf(service.redeem(token))).to.equal('PERMISSION_DENIED');
    expect(await count('denied')).to.equal(2);
    users.set('alice', alice);
    const { stream } = await service.redeem(token);
    expect(Buffer.concat(await stream.toArray()).toString()).to.equal('a');
  });

  it('does not burn the link for a client that went away before it was consumed', async () => {
    const { fs, service, count } = setup();
    fs.files.set('/a.txt', Buffer.from('a'));
    const { token } = await service.generate(alice, { path: '/a.txt', expirySeconds: 60 });
    const gone = new AbortController();
    gone.abort(new CallfsError('BAD_REQUEST', 'client went away'));
    await codeOf(service.redeem(token, { signal: gone.signal }));
    expect(fs.opened[0]?.destroyed).to.equal(true);
    expect(await count('aborted')).to.equal(1);
    expect(await codeOf(service.redeem(token))).to.equal('resolved');
  });

  it('destroys the stream of every loser and counts each outcome', async () => {
    const { fs, service, count } = setup();
    fs.files.set('/a.txt', Buffer.from('a'));
    const { token } = await service.generate(alice, { path: '/a.txt', expirySeconds: 60 });
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => service.redeem(token)));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).to.have.length(1);
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o.reason as CallfsError).code)).to.deep.equal(Array(9).fill('LINK_USED'));
    const winner = (won[0] as PromiseFulfilledResult<{ stream: Readable }>).value.stream;
    expect(fs.opened.filter((s) => s !== winner).every((s) => s.destroyed)).to.equal(true);
    // Losers that looked after the winner burned the link never opened the file at all.
    expect(fs.opened.length).to.be.within(1, 10);
    expect([await count('success'), await count('invalid')]).to.deep.equal([1, 9]);
  });

  it('answers FILE_NOT_FOUND while the file is missing and serves it once it is back', async () => {
    const { fs, service, count } = setup();
    fs.files.set('/a.txt', Buffer.from('a'));
    const { token } = await service.generate(alice, { path: '/a.txt', expirySeconds: 60 });
    fs.files.delete('/a.txt');
    expect(await codeOf(service.redeem(token))).to.equal('FILE_NOT_FOUND');
    expect(await count('file_not_found')).to.equal(1);
    fs.files.set('/a.txt', Buffer.from('b'));
    const { stream } = await service.redeem(token);
    expect(Buffer.concat(await stream.toArray()).toString()).to.equal('b');
  });

  it('validates expiry in the service too', async () => {
    const { fs, service } = setup();
    fs.files.set('/a.txt', Buffer.from('a'));
    for (const expirySeconds of [0, -1, 86_401, 1.5, Number.NaN]) {
      expect(await codeOf(service.generate(alice, { path: '/a.txt', expirySeconds }))).to.equal('BAD_REQUEST');
    }
  });
});
