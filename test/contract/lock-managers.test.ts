import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { isCallfsError } from '../../lib/errors.js';
import { createLocalLockManager } from '../../lib/locks/local.js';
import { createRedlockLockManager, type RedlockLockManagerOptions } from '../../lib/locks/redlock.js';
import type { LockManager } from '../../lib/locks/types.js';
import { createMetrics } from '../../lib/metrics/index.js';
import { REDIS_URL, ensureRedis, requireComponent } from '../support/services.js';
import { contend, deferred, delay, lockManagerContract, rejectionOf } from './lock-contract.js';
import { freePort } from '../support/ports.js';
import { redisServerAvailable, spareRedis, type SpareRedis } from './lock-redis-servers.js';

const redisUrl = new URL(REDIS_URL);
const mainServer = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), ...(redisUrl.password ? { password: decodeURIComponent(redisUrl.password) } : {}) };

/** A key prefix of its own per suite, so runs never see each other's keys. */
const uniquePrefix = (): string => `callfs:test:lock:${randomBytes(6).toString('hex')}:`;

async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

lockManagerContract('in-process', async () => ({
  create: (options) => createLocalLockManager({ waitMs: 10_000, ...options }),
}));

lockManagerContract('Redlock', async (ctx) => {
  requireComponent(ctx, await ensureRedis());
  const prefix = uniquePrefix();
  const admin = new Redis({ ...mainServer, lazyConnect: true });
  await admin.connect();
  return {
    create: (options) =>
      createRedlockLockManager({ servers: [mainServer], keyPrefix: prefix, ttlMs: 2000, retryDelayMs: 10, retryJitterMs: 10, ...options }),
    async afterEach() {
      // Every lock was released, not left to expire.
      expect(await keysUnder(admin, prefix)).to.deep.equal([]);
    },
    async cleanup() {
      const left = await keysUnder(admin, prefix);
      if (left.length > 0) await admin.del(...left);
      admin.disconnect();
    },
  };
});

describe('Redlock lock manager', function () {
  let admin: Redis | undefined;
  let prefix = '';
  let open: LockManager[] = [];
  const create = (options: Partial<RedlockLockManagerOptions> = {}): LockManager => {
    const manager = createRedlockLockManager({ servers: [mainServer], keyPrefix: prefix, ttlMs: 2000, retryDelayMs: 10, retryJitterMs: 10, ...options });
    open.push(manager);
    return manager;
  };

  before(async function () {
    requireComponent(this, await ensureRedis());
    admin = new Redis({ ...mainServer, lazyConnect: true });
    await admin.connect();
  });
  beforeEach(function () {
    prefix = uniquePrefix();
  });
  afterEach(async function () {
    await Promise.all(open.map((m) => m.close()));
    open = [];
    if (admin === undefined) return;
    const left = await keysUnder(admin, prefix);
    if (left.length > 0) await admin.del(...left);
  });
  after(function () {
    admin?.disconnect();
  });

  it('excludes callers across two managers with their own connections (30 callers)', async function () {
    const { maxInside, counters } = await contend([create(), create()], 30, () => ['shared']);
    expect(maxInside).to.equal(1);
    expect(counters.get('shared')).to.equal(30);
  });

  it('makes another instance wait, then fail with LOCKED', async function () {
    const [a, b] = [create(), create()];
    const release = deferred();
    const holder = a.withLock(['k'], () => release.promise);
    await delay(50);
    const started = performance.now();
    const err = await rejectionOf(b.withLock(['k'], async () => 1, { waitMs: 300 }));
    expect(isCallfsError(err, 'LOCKED'), String(err)).to.equal(true);
    expect(performance.now() - started).to.be.within(280, 1500);
    release.resolve();
    await holder;
  });

  it('stores every key under the prefix while held and removes them on release', async function () {
    const locks = create();
    const held = await locks.withLock(['file:/b', 'dir:/a'], async () => (await keysUnder(admin as Redis, prefix)).sort());
    expect(held).to.deep.equal([`${prefix}dir:/a`, `${prefix}file:/b`]);
    expect(await keysUnder(admin as Redis, prefix)).to.deep.equal([]);
  });

  it('extends the lease while fn runs longer than it', async function () {
    const [a, b] = [create({ ttlMs: 300 }), create()];
    const result = await a.withLock(['k'], async (signal) => {
      await delay(1200);
      const ttl = await (admin as Redis).pttl(`${prefix}k`);
      const other = await rejectionOf(b.withLock(['k'], async () => 1, { waitMs: 200 }));
      return { aborted: signal.aborted, ttl, other };
    });
    expect(result.aborted).to.equal(false);
    expect(result.ttl).to.be.within(1, 300);
    expect(isCallfsError(result.other, 'LOCKED')).to.equal(true);
  });

  it("aborts fn's signal with LOCKED when the lock is lost", async function () {
    const metrics = createMetrics({ defaultMetrics: false });
    const locks = create({ ttlMs: 300, metrics });
    const outcome = await locks.withLock(['k'], async (signal) => {
      // Someone removes the key behind the holder's back: the next extension is refused.
      await (admin as Redis).del(`${prefix}k`);
      const removedAt = performance.now();
      const aborted = await Promise.race([
        new Promise<boolean>((resolve) => signal.addEventListener('abort', () => resolve(true), { once: true })),
        delay(2000).then(() => false),
      ]);
      return { aborted, after: performance.now() - removedAt, reason: signal.reason as unknown };
    });
    expect(outcome.aborted).to.equal(true);
    expect(outcome.after).to.be.below(600);
    expect(isCallfsError(outcome.reason, 'LOCKED'), String(outcome.reason)).to.equal(true);
    const lost = (await metrics.lockAcquisitions.get()).values.find((v) => v.labels.outcome === 'lost');
    expect(lost?.value).to.equal(1);
  });

  it('answers SERVICE_UNAVAILABLE within 2 s when Redis is on a closed port, and check() fails', async function () {
    const locks = create({ servers: [{ host: '127.0.0.1', port: await freePort() }] });
    const started = performance.now();
    const err = await rejectionOf(locks.withLock(['k'], async () => 1, { waitMs: 10_000 }));
    expect(isCallfsError(err, 'SERVICE_UNAVAILABLE'), String(err)).to.equal(true);
    expect(performance.now() - started).to.be.below(2000);
    expect(isCallfsError(await rejectionOf(locks.check()), 'SERVICE_UNAVAILABLE')).to.equal(true);
  });

  describe('with Redis servers of its own', function () {
    const spares: SpareRedis[] = [];

    before(async function () {
      requireComponent(this, redisServerAvailable());
      for (let i = 0; i < 2; i++) spares.push(await spareRedis());
    });
    after(async function () {
      await Promise.all(spares.map((s) => s.dispose()));
    });

    it('fails fast while Redis is down and recovers by itself when it is back', async function () {
      const spare = spares[0] as SpareRedis;
      await spare.start();
      const locks = create({ servers: [{ host: '127.0.0.1', port: spare.port }] });
      expect(await locks.withLock(['k'], async () => 'up')).to.equal('up');

      await spare.stop();
      await delay(100);
      const started = performance.now();
      const err = await rejectionOf(locks.withLock(['k'], async () => 1, { waitMs: 10_000 }));
      expect(isCallfsError(err, 'SERVICE_UNAVAILABLE'), String(err)).to.equal(true);
      expect(performance.now() - started).to.be.below(2000);

      await spare.start();
      const deadline = performance.now() + 5000;
      let result: unknown;
      while (result === undefined && performance.now() < deadline) {
        result = await locks.withLock(['k'], async () => 'back').catch(() => delay(100).then(() => undefined));
      }
      expect(result).to.equal('back');
      await locks.check();
    });

    it('keeps working with a majority of three servers and stops without one', async function () {
      const [one, two] = spares as [SpareRedis, SpareRedis];
      await Promise.all([one.start(), two.start()]);
      const servers = [mainServer, { host: '127.0.0.1', port: one.port }, { host: '127.0.0.1', port: two.port }];
      const [a, b] = [create({ servers }), create({ servers })];
      await a.check();

      await two.stop();
      await delay(100);
      await a.check();
      const { maxInside } = await contend([a, b], 10, () => ['k']);
      expect(maxInside).to.equal(1);

      await one.stop();
      await delay(100);
      const err = await rejectionOf(a.withLock(['k'], async () => 1));
      expect(isCallfsError(err, 'SERVICE_UNAVAILABLE'), String(err)).to.equal(true);
      expect(isCallfsError(await rejectionOf(a.check()), 'SERVICE_UNAVAILABLE')).to.equal(true);
    });
  });
});

describe('in-process lock manager', function () {
  it('grants a key to its waiters in the order they came (FIFO)', async function () {
    const locks = createLocalLockManager();
    const release = deferred();
    const holder = locks.withLock(['k'], () => release.promise);
    const order: number[] = [];
    const waiters = [0, 1, 2, 3, 4].map((i) => locks.withLock(['k'], async () => void order.push(i)));
    release.resolve();
    await Promise.all([holder, ...waiters]);
    expect(order).to.deep.equal([0, 1, 2, 3, 4]);
    await locks.close();
  });

  it('refuses an invalid wait', async function () {
    const locks = createLocalLockManager();
    expect(await rejectionOf(locks.withLock(['k'], async () => 1, { waitMs: -1 }))).to.be.instanceOf(TypeError);
    await locks.close();
  });
});
