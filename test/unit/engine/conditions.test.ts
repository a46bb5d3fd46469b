import { expect } from 'chai';
import { checkPreconditions, type WritePreconditions } from '../../../lib/engine/conditions.js';
import { parseEntityTags } from '../../../lib/http/preconditions.js';
import type { Entry } from '../../../lib/metadata/types.js';
import { alice, bob, body, createTestEngine, rejectsWith, root, text, type EngineUnderTest } from '../../support/engine.js';

const ETAG = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
// Not on a whole second: HTTP dates are, so comparisons are made in whole seconds.
const MTIME = new Date('2026-03-01T12:00:00.700Z');
const entry = { type: 'file', etag: ETAG, mtime: MTIME } as Entry;
const before = new Date(MTIME.getTime() - 60_000);
const after = new Date(MTIME.getTime() + 60_000);

/** Header values as a request carries them, parsed the way lib/http parses them. */
interface Headers {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifUnmodifiedSince?: Date;
}
function parsed(h: Headers): WritePreconditions {
  return {
    ...(h.ifMatch === undefined ? {} : { ifMatch: parseEntityTags(h.ifMatch) }),
    ...(h.ifNoneMatch === undefined ? {} : { ifNoneMatch: parseEntityTags(h.ifNoneMatch) }),
    ...(h.ifUnmodifiedSince === undefined ? {} : { ifUnmodifiedSince: h.ifUnmodifiedSince }),
  };
}

/** 'proceed', or the code a write is refused with. */
function outcome(current: Entry | null, h: Headers): string {
  try {
    checkPreconditions(current, parsed(h));
    return 'proceed';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

// lib/engine/conditions.ts: how a write evaluates RFC 9110 §13.2.2 (the 304 of a read is lib/http's).
describe('engine: conditional writes', function () {
  describe('evaluation (RFC 9110 §13.2.2)', function () {
    it('If-Match: strong comparison; `*` needs an entry; a weak tag never matches', function () {
      expect(outcome(entry, { ifMatch: `"${ETAG}"` })).to.equal('proceed');
      expect(outcome(entry, { ifMatch: `"${OTHER}", "${ETAG}"` })).to.equal('proceed');
      expect(outcome(entry, { ifMatch: `"${OTHER}"` })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifMatch: `W/"${ETAG}"` })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifMatch: '*' })).to.equal('proceed');
      expect(outcome(null, { ifMatch: '*' })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifMatch: ETAG }), 'an unquoted tag is not a tag').to.equal('PRECONDITION_FAILED');
    });

    it('If-Unmodified-Since counts only without If-Match, in whole seconds', function () {
      expect(outcome(entry, { ifUnmodifiedSince: before })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifUnmodifiedSince: after })).to.equal('proceed');
      expect(outcome(entry, { ifUnmodifiedSince: new Date('2026-03-01T12:00:00.000Z') })).to.equal('proceed');
      expect(outcome(entry, { ifMatch: `"${ETAG}"`, ifUnmodifiedSince: before })).to.equal('proceed');
      expect(outcome(null, { ifUnmodifiedSince: before })).to.equal('proceed');
    });

    it('If-None-Match: weak comparison; a match refuses the write', function () {
      expect(outcome(entry, { ifNoneMatch: `W/"${ETAG}"` })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifNoneMatch: `"${ETAG}"` })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifNoneMatch: `"${OTHER}"` })).to.equal('proceed');
      expect(outcome(entry, { ifNoneMatch: '*' })).to.equal('PRECONDITION_FAILED');
      expect(outcome(null, { ifNoneMatch: '*' })).to.equal('proceed');
    });

    it('checks If-Match before If-None-Match', function () {
      expect(outcome(entry, { ifMatch: `"${OTHER}"`, ifNoneMatch: `"${OTHER}"` })).to.equal('PRECONDITION_FAILED');
      expect(outcome(entry, { ifMatch: `"${ETAG}"`, ifNoneMatch: `"${OTHER}"` })).to.equal('proceed');
    });
  });

  describe('applied by writes', function () {
    let t: EngineUnderTest;

    beforeEach(async function () {
      t = createTestEngine();
      await t.addDirectory('/d', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    });

    afterEach(async function () {
      await t.close();
    });

    const read = async (path: string): Promise<string> => text(await t.engine.openContent(await t.engine.stat(root, path)));

    it('If-None-Match: * makes a PUT create-only', async function () {
      const put = { mustCreate: false, ...parsed({ ifNoneMatch: '*' }) };
      expect((await t.engine.writeFile(alice, '/d/f', body('first'), put)).created).to.equal(true);
      await rejectsWith(t.engine.writeFile(alice, '/d/f', body('second'), put), 'PRECONDITION_FAILED');
      expect(await read('/d/f')).to.equal('first');
    });

    it('If-Match replaces only the version the client saw, and never creates', async function () {
      await rejectsWith(t.engine.writeFile(alice, '/d/f', body('x'), { mustCreate: false, ...parsed({ ifMatch: '*' }) }), 'PRECONDITION_FAILED');
      await rejectsWith(t.engine.stat(alice, '/d/f'), 'FILE_NOT_FOUND');
      const { entry: v1 } = await t.engine.writeFile(alice, '/d/f', body('one'), { mustCreate: false });
      const { entry: v2 } = await t.engine.writeFile(alice, '/d/f', body('two'), { mustCreate: false, ...parsed({ ifMatch: `"${v1.etag}"` }) });
      await rejectsWith(t.engine.writeFile(alice, '/d/f', body('three'), { mustCreate: false, ...parsed({ ifMatch: `"${v1.etag}"` }) }), 'PRECONDITION_FAILED');
      expect(await read('/d/f')).to.equal('two');
      expect((await t.engine.stat(alice, '/d/f')).etag).to.equal(v2.etag);
    });

    it('guard deletes, attribute changes and moves of bytes too', async function () {
      await t.engine.writeFile(alice, '/d/f', body('x'), { mustCreate: false });
      const stale = parsed({ ifMatch: `"${OTHER}"` });
      await rejectsWith(t.engine.remove(alice, '/d/f', stale), 'PRECONDITION_FAILED');
      await rejectsWith(t.engine.setAttributes(alice, '/d/f', { mode: 0o600 }, stale), 'PRECONDITION_FAILED');
      await rejectsWith(t.engine.moveBytes(alice, '/d/f', { instanceId: t.engine.instanceId }, stale), 'PRECONDITION_FAILED');
      expect((await t.engine.stat(alice, '/d/f')).mode).to.equal(0o644);
      await t.engine.remove(alice, '/d/f', { ifUnmodifiedSince: new Date(Date.now() + 60_000) });
      await rejectsWith(t.engine.stat(alice, '/d/f'), 'FILE_NOT_FOUND');
    });
  });
});

describe('engine: permissions come before preconditions (RFC 9110 §13.2.1)', function () {
  let t: EngineUnderTest;

  beforeEach(async function () {
    t = createTestEngine();
    await t.addDirectory('/d', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    await t.addFile('/d/f', 'x', { mode: 0o644, uid: alice.uid, gid: alice.gid });
  });

  afterEach(async function () {
    await t.close();
  });

  it('answers a caller who may not write 403, whatever their preconditions say', async function () {
    const stale = parsed({ ifMatch: `"${OTHER}"` });
    await rejectsWith(t.engine.writeFile(bob, '/d/f', body('y'), { mustCreate: false, ...stale }), 'PERMISSION_DENIED');
    await rejectsWith(t.engine.writeFile(bob, '/d/new', body('y'), { mustCreate: false, ...stale }), 'PERMISSION_DENIED');
    await rejectsWith(t.engine.remove(bob, '/d/f', stale), 'PERMISSION_DENIED');
    await rejectsWith(t.engine.setAttributes(bob, '/d/f', { mode: 0o600 }, stale), 'PERMISSION_DENIED');
    await rejectsWith(t.engine.moveBytes(bob, '/d/f', { instanceId: t.engine.instanceId }, stale), 'PERMISSION_DENIED');
    // The same stale condition from someone allowed is the 412.
    await rejectsWith(t.engine.remove(alice, '/d/f', stale), 'PRECONDITION_FAILED');
  });
});
