import { expect } from 'chai';
import { createSilentLogger } from '../../../lib/log/index.js';
import { TREE_JOB_DEFAULTS, TreeJobRunner } from '../../../lib/engine/tree-jobs.js';
import type { RemovedEntry, TreeJob, TreeJobOps } from '../../../lib/metadata/types.js';

/**
 * lib/engine/tree-jobs.ts over an in-memory TreeJobOps: the worker's
 * batches, its waiters, and what it leaves to other work between batches.
 * (The store's side, with real databases, is test/integration/big-trees.test.ts.)
 */

interface FakeJob {
  job: TreeJob;
  /** Entries still to remove. */
  left: number;
}

function fakeTrees(gate?: () => Promise<void>): TreeJobOps & { jobs: Map<string, FakeJob>; add(id: string, entries: number): void } {
  const jobs = new Map<string, FakeJob>();
  const now = new Date();
  return {
    jobs,
    add(id, entries) {
      jobs.set(id, {
        left: entries,
        job: { id, kind: 'delete', path: `/${id}`, dest: null, options: {}, error: null, uid: 0, state: 'running', total: entries, done: 0, createdAt: now, updatedAt: now, finishedAt: null },
      });
    },
    get: async (id) => (jobs.get(id)?.job === undefined ? null : { ...(jobs.get(id) as FakeJob).job }),
    claim: async () => [...jobs.values()].find((j) => j.job.state === 'running')?.job ?? null,
    async removeBatch(id, limit) {
      await gate?.();
      const j = jobs.get(id) as FakeJob;
      const n = Math.min(limit, j.left);
      j.left -= n;
      j.job = { ...j.job, done: j.job.done + n, ...(n < limit ? { state: 'done' as const, finishedAt: new Date() } : {}) };
      const removed: RemovedEntry[] = Array.from({ length: n }, (_, i) => ({ path: `${j.job.path}/f${i}`, type: 'file', backend: 'cas', blobId: 'b' }));
      return { job: { ...j.job }, removed };
    },
    runMove: async (id) => (jobs.get(id) as FakeJob).job,
    prune: async () => 0,
  };
}

function runner(trees: TreeJobOps, batchEntries = 10): TreeJobRunner {
  return new TreeJobRunner({ trees, owner: 'me', settings: { ...TREE_JOB_DEFAULTS, batchEntries, pollMs: 60_000 }, dropBytes: async () => undefined, logger: createSilentLogger() });
}

describe('tree jobs: the worker', function () {
  it('removes a job in batches until done, and wakes a waiter as soon as it ends', async () => {
    let release: () => void = () => undefined;
    let held = new Promise<void>((r) => (release = r));
    const trees = fakeTrees(() => held);
    trees.add('j1', 25);
    const worker = runner(trees);
    worker.start();
    const started = Date.now();
    const waiting = worker.waitFor('j1', 30_000);
    // Let the batches through only once the waiter is registered: it must still be woken.
    await new Promise((r) => setTimeout(r, 20));
    release();
    held = Promise.resolve();
    const job = await waiting;
    expect(job).to.include({ state: 'done', done: 25 });
    expect(Date.now() - started).to.be.below(5000);
    await worker.stop();
  });

  it('answers with the running job once the wait is over, and null for no such job', async () => {
    const never = new Promise<void>(() => undefined);
    const trees = fakeTrees(() => never);
    trees.add('j2', 100);
    const worker = runner(trees);
    worker.start();
    const job = await worker.waitFor('j2', 50);
    expect(job).to.include({ id: 'j2', state: 'running' });
    expect(await worker.waitFor('nope', 50)).to.equal(null);
  });

  it('lets other work in between its batches, even when the store answers without I/O (an in-process store)', async () => {
    const trees = fakeTrees();
    trees.add('j3', 1000);
    const worker = runner(trees, 10);
    let seen: TreeJob['state'] | undefined;
    // Scheduled before the job starts: it must run while the job is still going, not after its 100 batches.
    setImmediate(() => void trees.get('j3').then((j) => (seen = j?.state)));
    worker.start();
    const job = await worker.waitFor('j3', 30_000);
    expect(job).to.include({ state: 'done', done: 1000 });
    expect(seen).to.equal('running');
    await worker.stop();
  });
});
