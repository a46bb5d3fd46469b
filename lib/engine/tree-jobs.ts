import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RemovedEntry, TreeJob, TreeJobOps } from '../metadata/types.js';
import { isContentAddressed, type BackendType } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';

/**
 * The worker of long tree operations (metadata migration 006). Every
 * instance runs one: it takes a running job nobody holds (its own first,
 * after a restart) and removes the job's old tree in bounded batches, each
 * its own short transaction that also records the progress, renewing its
 * lease as it goes. A crash or kill at any point loses nothing: the batch in
 * flight rolls back, and once the lease has run out this or another
 * instance goes on from the progress recorded.
 */

export interface TreeJobSettings {
  /** A recursive delete of a directory with more entries than this below it runs as a job. */
  jobEntries: number;
  /** Entries removed per batch (one transaction). */
  batchEntries: number;
  /** How long a claimed job stays with its worker without a renewal. */
  leaseMs: number;
  /** How often idle workers look for jobs nobody holds. */
  pollMs: number;
  /** How long finished jobs stay readable at /v1/jobs/{id}. */
  keepMs: number;
}

/**
 * A lease outlives many batches (each renews it) and lets another instance
 * take a dead one's job over within about 12 s. A move's one transaction
 * may outlast it: another worker that claims the job then waits on the
 * job's row lock and finds it done.
 */
export const TREE_JOB_DEFAULTS: TreeJobSettings = { jobEntries: 10_000, batchEntries: 5_000, leaseMs: 10_000, pollMs: 2_000, keepMs: 7 * 24 * 3600_000 };

/** Finished jobs are forgotten at most this often (the polls come every pollMs). */
const PRUNE_EVERY_MS = 10 * 60_000;

export interface TreeJobRunnerOptions {
  trees: TreeJobOps;
  /** Lease owner: this instance's id. */
  owner: string;
  settings: TreeJobSettings;
  /** Drop the bytes of a removed file that a path-keyed backend (S3) holds; content-addressed bytes are reference-counted. */
  dropBytes: (entry: RemovedEntry) => Promise<void>;
  logger: Logger;
  metrics?: Partial<Pick<Metrics, 'treeJobEntriesRemoved'>>;
}

export class TreeJobRunner {
  readonly settings: TreeJobSettings;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly waiters = new Map<string, Set<(job: TreeJob) => void>>();
  private prunedAt = 0;

  constructor(private readonly options: TreeJobRunnerOptions) {
    this.settings = options.settings;
  }

  /** Look for work now and then every pollMs. */
  start(): void {
    this.kick();
    this.timer = setInterval(() => this.kick(), this.settings.pollMs);
    this.timer.unref();
  }

  /** Look for work now (a job was just created here). */
  kick(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) => this.options.logger.warn({ err }, 'tree jobs: a pass failed; the next one goes on where it stopped'))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * The job once it ended, or as it is after `ms` (null if it does not
   * exist). Resolves early when this worker ends it.
   */
  async waitFor(id: string, ms: number): Promise<TreeJob | null> {
    let wake: (job: TreeJob) => void = () => undefined;
    const finished = new Promise<TreeJob>((resolve) => (wake = resolve));
    // Listening before the first read: a job that ends in between still wakes us.
    const waiting = this.waiters.get(id) ?? new Set();
    this.waiters.set(id, waiting);
    waiting.add(wake);
    let timer: NodeJS.Timeout | undefined;
    try {
      const job = await this.options.trees.get(id);
      if (job === null || job.state !== 'running' || ms <= 0) return job;
      const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
      return (await Promise.race([finished, late])) ?? (await this.options.trees.get(id));
    } finally {
      clearTimeout(timer);
      waiting.delete(wake);
      if (waiting.size === 0) this.waiters.delete(id);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.running;
  }

  private async drain(): Promise<void> {
    const { trees, owner, settings } = this.options;
    if (Date.now() - this.prunedAt >= PRUNE_EVERY_MS) {
      await trees.prune(new Date(Date.now() - settings.keepMs));
      this.prunedAt = Date.now();
    }
    for (;;) {
      if (this.stopped) return;
      const job = await trees.claim(owner, settings.leaseMs);
      if (job === null) return;
      await this.finish(job);
    }
  }

  private async finish(claimed: TreeJob): Promise<void> {
    const { trees, owner, settings, logger, metrics } = this.options;
    if (claimed.kind === 'move') {
      logger.info({ job: claimed.id, from: claimed.path, to: claimed.dest, total: claimed.total }, 'tree job: moving the tree');
      const job = await trees.runMove(claimed.id);
      logger.info({ job: job.id, from: job.path, to: job.dest, state: job.state, error: job.error }, 'tree job: move ended');
      this.wake(job);
      return;
    }
    logger.info({ job: claimed.id, path: claimed.path, total: claimed.total, done: claimed.done }, 'tree job: removing the old tree');
    let job = claimed;
    while (job.state === 'running') {
      if (this.stopped) return;
      const batch = await trees.removeBatch(job.id, settings.batchEntries, owner, settings.leaseMs);
      job = batch.job;
      metrics?.treeJobEntriesRemoved?.inc(batch.removed.length);
      for (const entry of batch.removed) {
        if (entry.type === 'file') await this.options.dropBytes(entry);
      }
      // Let requests in between batches: an in-process store (PGlite) would otherwise run them back to back.
      await new Promise((resolve) => setImmediate(resolve));
    }
    logger.info({ job: job.id, path: job.path, removed: job.done }, 'tree job: done');
    this.wake(job);
  }

  private wake(job: TreeJob): void {
    for (const wake of this.waiters.get(job.id) ?? []) wake(job);
  }
}

/** TreeJobRunnerOptions.dropBytes over this instance's backends: path-keyed bytes are deleted, content-addressed ones left to their collector. */
export async function dropPathKeyedBytes(backends: Partial<Record<BackendType, Backend>>, entry: RemovedEntry, logger: Logger): Promise<void> {
  if (entry.backend === null || entry.blobId === null || isContentAddressed(entry.backend)) return;
  const backend = backends[entry.backend];
  if (backend === undefined) {
    logger.warn({ path: entry.path, backend: entry.backend }, 'tree job: the backend of a removed file is not configured here; its bytes are orphaned');
    return;
  }
  await backend.delete(entry.blobId).catch((err: unknown) => logger.warn({ err, path: entry.path, backend: entry.backend }, 'tree job: could not delete the bytes of a removed file; they are orphaned'));
}
