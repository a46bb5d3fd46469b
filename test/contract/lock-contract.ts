import { expect } from 'chai';
import { isCallfsError } from '../../lib/errors.js';
import type { LockManager } from '../../lib/locks/types.js';
import { createMetrics, type Metrics } from '../../lib/metrics/index.js';

/**
 * The LockManager compliance suite, run against every implementation by
 * lock-managers.test.ts. Each implementation supplies a harness that makes
 * managers over one shared lock space.
 */
export interface LockHarness {
  /** A new manager; the suite closes it after each test. */
  create(options?: { metrics?: Metrics }): LockManager;
  /** After each test, once its managers are closed: e.g. assert no lock is left behind. */
  afterEach?(): Promise<void>;
  /** Once at the end: remove whatever the harness created. */
  cleanup?(): Promise<void>;
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

/**
 * `locks.withLock(keys, work)` held while `work` runs, and a promise that
 * resolves once the lock is really held: under load (a cold Redis connection,
 * a busy core) taking it can take longer than any fixed pause, and a waiter
 * started after such a pause would then win the key instead of waiting.
 */
export async function holding(locks: LockManager, keys: string[], work: () => Promise<unknown>): Promise<{ holder: Promise<unknown> }> {
  const acquired = deferred();
  const holder = locks.withLock(keys, () => {
    acquired.resolve();
    return work();
  });
  await Promise.race([acquired.promise, holder]);
  // Wrapped: an async function returning the promise itself would wait for it.
  return { holder };
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve to the rejection of `p`, failing the test if it resolves instead. */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * Run `count` callers of withLock on `keysOf(i)` concurrently, each doing a
 * read-await-write on a shared counter per key; returns the largest number of
 * callers ever inside at once on one key, and the final counters.
 */
export async function contend(
  managers: LockManager[],
  count: number,
  keysOf: (i: number) => string[],
): Promise<{ maxInside: number; counters: Map<string, number> }> {
  const inside = new Map<string, number>();
  const counters = new Map<string, number>();
  let maxInside = 0;
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      (managers[i % managers.length] as LockManager).withLock(
        keysOf(i),
        async () => {
          const keys = [...new Set(keysOf(i))];
          for (const k of keys) {
            inside.set(k, (inside.get(k) ?? 0) + 1);
            maxInside = Math.max(maxInside, inside.get(k) ?? 0);
          }
          const before = keys.map((k) => counters.get(k) ?? 0);
          await delay(1 + (i % 3));
          keys.forEach((k, j) => counters.set(k, (before[j] as number) + 1));
          for (const k of keys) inside.set(k, (inside.get(k) ?? 0) - 1);
        },
        { waitMs: 20_000 },
      ),
    ),
  );
  return { maxInside, counters };
}

export function lockManagerContract(name: string, setup: (ctx: Mocha.Context) => Promise<LockHarness>): void {
  describe(`LockManager contract: ${name}`, function () {
    let harness: LockHarness | undefined;
    let open: LockManager[] = [];
    const create = (options?: { metrics?: Metrics }): LockManager => {
      const manager = (harness as LockHarness).create(options);
      open.push(manager);
      return manager;
    };

    before(async function () {
      harness = await setup(this);
    });
    afterEach(async function () {
      await Promise.all(open.map((m) => m.close()));
      open = [];
      await harness?.afterEach?.();
    });
    after(async function () {
      await harness?.cleanup?.();
    });

    it('runs fn and returns its result', async function () {
      const locks = create();
      expect(await locks.withLock(['k'], async (signal) => (signal.aborted ? 'aborted' : 'ran'))).to.equal('ran');
      await locks.check();
    });

    it('lets one caller at a time hold a key (30 concurrent callers)', async function () {
      const { maxInside, counters } = await contend([create()], 30, () => ['counter']);
      expect(maxInside).to.equal(1);
      expect(counters.get('counter')).to.equal(30);
    });

    it('lets different keys be held at the same time', async function () {
      const locks = create();
      const yHeld = deferred();
      const x = locks.withLock(['x'], () => yHeld.promise.then(() => 'x'), { waitMs: 2000 });
      // Only possible if 'x' does not block 'y': the holder of 'x' waits for it.
      const y = locks.withLock(['y'], async () => {
        yHeld.resolve();
        return 'y';
      }, { waitMs: 2000 });
      expect(await Promise.all([x, y])).to.deep.equal(['x', 'y']);
    });

    it('excludes overlapping key sets taken in any order, without deadlock', async function () {
      const sets = [['a', 'b'], ['b', 'a'], ['b', 'c'], ['c', 'a'], ['a', 'c', 'b']];
      const { maxInside, counters } = await contend([create()], 40, (i) => sets[i % sets.length] as string[]);
      expect(maxInside).to.equal(1);
      const total = [...counters.values()].reduce((a, b) => a + b, 0);
      // 40 callers, 8 of which take three keys and 32 two.
      expect(total).to.equal(8 * 3 + 32 * 2);
    });

    it('treats a key given twice as one', async function () {
      const locks = create();
      expect(await locks.withLock(['k', 'k', 'j', 'k'], async () => 1, { waitMs: 500 })).to.equal(1);
    });

    it('fails with LOCKED once the deadline passes', async function () {
      const locks = create();
      const release = deferred();
      const { holder } = await holding(locks, ['k'], () => release.promise);
      const started = performance.now();
      let ran = false;
      const err = await rejectionOf(locks.withLock(['k'], async () => (ran = true), { waitMs: 300 }));
      const waited = performance.now() - started;
      expect(isCallfsError(err, 'LOCKED'), String(err)).to.equal(true);
      expect(ran).to.equal(false);
      expect(waited).to.be.within(280, 1500);
      release.resolve();
      await holder;
    });

    it('hands the key to a waiter when the holder releases it', async function () {
      const locks = create();
      let holderDoneAt = 0;
      const { holder } = await holding(locks, ['k'], async () => {
        await delay(200);
        holderDoneAt = performance.now();
      });
      const started = performance.now();
      const startedInside = await locks.withLock(['k'], async () => performance.now(), { waitMs: 5000 });
      await holder;
      expect(startedInside).to.be.at.least(holderDoneAt);
      expect(startedInside - started).to.be.within(100, 2000);
    });

    it('releases keys already taken when a multi-key wait times out', async function () {
      const locks = create();
      const release = deferred();
      const { holder } = await holding(locks, ['b'], () => release.promise);
      const err = await rejectionOf(locks.withLock(['a', 'b'], async () => 1, { waitMs: 200 }));
      expect(isCallfsError(err, 'LOCKED')).to.equal(true);
      expect(await locks.withLock(['a'], async () => 'a free', { waitMs: 500 })).to.equal('a free');
      release.resolve();
      await holder;
    });

    it("stops waiting when the caller's signal aborts, and keeps nothing", async function () {
      const locks = create();
      const release = deferred();
      const { holder } = await holding(locks, ['k'], () => release.promise);
      const caller = new AbortController();
      const reason = new Error('client went away');
      let ran = false;
      const waiting = locks.withLock(['k'], async () => (ran = true), { waitMs: 10_000, signal: caller.signal });
      await delay(100);
      const abortedAt = performance.now();
      caller.abort(reason);
      const err = await rejectionOf(waiting);
      expect(performance.now() - abortedAt).to.be.below(500);
      expect(err).to.equal(reason);
      expect(ran).to.equal(false);
      release.resolve();
      await holder;
      expect(await locks.withLock(['k'], async () => 'free', { waitMs: 500 })).to.equal('free');
    });

    it('does not run fn when the signal is already aborted', async function () {
      const locks = create();
      const caller = new AbortController();
      caller.abort(new Error('gone'));
      let ran = false;
      const err = await rejectionOf(locks.withLock(['k'], async () => (ran = true), { signal: caller.signal }));
      expect((err as Error).message).to.equal('gone');
      expect(ran).to.equal(false);
    });

    it("aborts fn's signal when the caller's signal aborts while fn runs", async function () {
      const locks = create();
      const caller = new AbortController();
      const reason = new Error('client went away');
      const seen = await locks.withLock(['k'], async (signal) => {
        setTimeout(() => caller.abort(reason), 20);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        return signal.reason as unknown;
      }, { signal: caller.signal });
      expect(seen).to.equal(reason);
      expect(await locks.withLock(['k'], async () => 'free', { waitMs: 500 })).to.equal('free');
    });

    it('releases the key when fn throws', async function () {
      const locks = create();
      const boom = new Error('boom');
      expect(await rejectionOf(locks.withLock(['k'], async () => { throw boom; }))).to.equal(boom);
      const started = performance.now();
      expect(await locks.withLock(['k'], async () => 'free', { waitMs: 1000 })).to.equal('free');
      expect(performance.now() - started).to.be.below(500);
    });

    it('records acquisitions, waits and held locks in the metrics', async function () {
      const metrics = createMetrics({ defaultMetrics: false });
      const locks = create({ metrics });
      const release = deferred();
      const inside = deferred();
      const holder = locks.withLock(['k'], async () => {
        inside.resolve();
        await release.promise;
      });
      await inside.promise;
      expect((await metrics.locksHeld.get()).values[0]?.value).to.equal(1);
      await rejectionOf(locks.withLock(['k'], async () => 1, { waitMs: 50 }));
      release.resolve();
      await holder;
      const outcomes = Object.fromEntries((await metrics.lockAcquisitions.get()).values.map((v) => [v.labels.outcome, v.value]));
      expect(outcomes).to.deep.equal({ ok: 1, timeout: 1 });
      const waits = (await metrics.lockWait.get()).values.find((v) => v.metricName === 'callfs_lock_wait_seconds_count');
      expect(waits?.value).to.equal(2);
      expect((await metrics.locksHeld.get()).values[0]?.value).to.equal(0);
    });

    it('after close(), wakes waiters and refuses new work with SERVICE_UNAVAILABLE', async function () {
      const locks = create();
      const release = deferred();
      const acquired = deferred();
      const holder = locks.withLock(['k'], () => {
        acquired.resolve();
        return release.promise;
      });
      // A cold connection can take longer than any fixed pause: wait until the lock is really held.
      await acquired.promise;
      const waiting = locks.withLock(['k'], async () => 1, { waitMs: 10_000 });
      await delay(20);
      const closed = locks.close();
      const err = await rejectionOf(waiting);
      expect(isCallfsError(err, 'SERVICE_UNAVAILABLE'), String(err)).to.equal(true);
      release.resolve();
      await holder;
      await closed;
      expect(isCallfsError(await rejectionOf(locks.withLock(['j'], async () => 1)), 'SERVICE_UNAVAILABLE')).to.equal(true);
      expect(isCallfsError(await rejectionOf(locks.check()), 'SERVICE_UNAVAILABLE')).to.equal(true);
    });
  });
}
