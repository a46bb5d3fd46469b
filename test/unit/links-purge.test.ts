import { expect } from 'chai';
import { startLinkPurge } from '../../lib/links/index.js';
import { createSilentLogger } from '../../lib/log/index.js';

/** A link table in memory: rows with expiry and use times, purged as the store contract says. */
function memoryLinks(rows: { expiresAt: number; usedAt: number | null }[]) {
  let failures = 0;
  return {
    rows,
    failNext(n: number) {
      failures = n;
    },
    async purgeLinks(before: Date): Promise<number> {
      if (failures > 0) {
        failures--;
        throw new Error('database is down');
      }
      const keep = rows.filter((r) => !(r.expiresAt < before.getTime() || (r.usedAt !== null && r.usedAt < before.getTime())));
      const removed = rows.length - keep.length;
      rows.splice(0, rows.length, ...keep);
      return removed;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;

describe('link purge job', () => {
  it('keeps rows for a day after expiry or use, so a replay still reads LINK_USED', async () => {
    const t = Date.now();
    const store = memoryLinks([
      { expiresAt: t - 2 * DAY, usedAt: null },
      { expiresAt: t - 1000, usedAt: null },
      { expiresAt: t + 1000, usedAt: t - 2 * DAY },
      { expiresAt: t + DAY, usedAt: t - 1000 },
      { expiresAt: t + DAY, usedAt: null },
    ]);
    const purge = startLinkPurge({ store, intervalMs: 0, logger: createSilentLogger(), now: () => new Date(t) });
    expect(await purge.runOnce()).to.equal(2);
    expect(store.rows).to.have.length(3);
    await purge.stop();
  });

  it('runs every interval, survives failures, and stops for good', async () => {
    const t = Date.now();
    const store = memoryLinks([]);
    store.failNext(2);
    const purge = startLinkPurge({ store, intervalMs: 20, logger: createSilentLogger(), retentionMs: 0 });
    for (let i = 0; i < 5; i++) store.rows.push({ expiresAt: t - 1, usedAt: null });
    await sleep(300);
    // Two runs failed; a later one removed the rows.
    expect(store.rows).to.have.length(0);
    await purge.stop();
    store.rows.push({ expiresAt: t - 1, usedAt: null });
    await sleep(100);
    expect(store.rows).to.have.length(1);
  });

  it('does nothing in the background with an interval of 0', async () => {
    const store = memoryLinks([{ expiresAt: 0, usedAt: null }]);
    const purge = startLinkPurge({ store, intervalMs: 0, logger: createSilentLogger(), retentionMs: 0 });
    await sleep(50);
    expect(store.rows).to.have.length(1);
    await purge.stop();
  });
});
