import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend } from '../backends/types.js';
import { rankInstances } from '../engine/placement.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { MetadataStore } from '../metadata/types.js';
import type { ClusterView } from './membership.js';
import { repeatEvery, type Repeating } from './repeat.js';

/**
 * The repairer brings every referenced CAS blob back to `replicas` good
 * copies on instances that count, and moves copies off draining instances.
 * One instance of the cluster runs it at a time (a lease in the metadata
 * store, renewed while it works, taken over when its owner stops); a pass
 * starts from the store's records, so a restart resumes where the work
 * stands. A copy is made by reading a good copy (verified against its
 * sha256 on the way) and putting it on the target, whose CAS hashes and
 * flushes it and records the new copy; only then does a draining copy stop
 * counting. Nothing is deleted here: unreferenced copies go to each
 * instance's collector as before.
 */

export const REPAIR_LEASE = 'repairer';
/** The standing request `callfs cluster rebalance` makes. */
export const REBALANCE = 'rebalance';
/** An instance within this many bytes (or 5%) of the mean is balanced. */
const REBALANCE_SLACK_BYTES = 1024 * 1024;
/** The name the S3 replica goes by as a source (never an instance id: ids are configured, this is not one). */
const REPLICA_SOURCE = '\u0000s3-replica';
const PAGE = 100;

export interface RepairerOptions {
  store: Pick<MetadataStore, 'cluster'>;
  instanceId: string;
  view: ClusterView & { refresh(): Promise<void> };
  /** The backend through which an instance's blobs are reached from here (this CAS, or the peer backend). */
  backendOf(instanceId: string): Backend | undefined;
  /** Every instance of the configuration. */
  instanceIds: readonly string[];
  intervalMs: number;
  bytesPerSecond: number;
  /** The S3 replica, copied from when no instance that is up holds a good copy. */
  replica?: Pick<Backend, 'open'>;
  logger: Logger;
  metrics?: Pick<Metrics, 'underReplicatedBlobs' | 'repairedBlobs' | 'repairedBytes'>;
}

export interface PassResult {
  /** False when another instance holds the lease. */
  owner: boolean;
  repaired: number;
  drained: number;
  /** Copies moved by a requested rebalance. */
  rebalanced: number;
  /** Under-replicated contents left after the pass. */
  underReplicated: number;
  /** Contents no instance that is up holds a good copy of. */
  unreachable: number;
}

export class Repairer {
  private loop: Repeating | null = null;
  private current: Promise<PassResult> | null = null;
  private readonly stopping = new AbortController();
  /** Bytes copied and when this rate window started. */
  private window = { start: 0, bytes: 0 };

  constructor(private readonly options: RepairerOptions) {}

  /** Renewed every third of it while a pass works: an owner that died is replaced within one lease. */
  private get leaseMs(): number {
    return Math.max(10_000, 3 * this.options.intervalMs);
  }
  private renewedAt = 0;

  /** Renew the lease when a third of it has passed; false once another instance took it. */
  private async stillOwner(): Promise<boolean> {
    if (Date.now() - this.renewedAt < this.leaseMs / 3) return true;
    return this.holdLease();
  }

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.loop = repeatEvery(this.options.intervalMs, () => this.pass(), (err) => this.options.logger.warn({ err }, 'repair pass failed'));
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.loop?.stop();
    await this.current?.catch(() => undefined);
    await this.options.store.cluster.releaseLease(REPAIR_LEASE, this.options.instanceId).catch(() => undefined);
  }

  /** One pass now, unless one is running (then that one's result). */
  pass(): Promise<PassResult> {
    this.current ??= this.run().finally(() => {
      this.current = null;
    });
    return this.current;
  }

  private async holdLease(): Promise<boolean> {
    const held = await this.options.store.cluster.acquireLease(REPAIR_LEASE, this.options.instanceId, this.leaseMs);
    if (held) this.renewedAt = Date.now();
    return held;
  }

  private async run(): Promise<PassResult> {
    const result: PassResult = { owner: false, repaired: 0, drained: 0, rebalanced: 0, underReplicated: 0, unreachable: 0 };
    if (!(await this.holdLease())) return result;
    result.owner = true;
    const { store, view } = this.options;
    await view.refresh();
    const notCounting = view.notCounting();
    let after = '';
    for (;;) {
      if (this.stopping.signal.aborted) return result;
      const page = await store.cluster.listUnderReplicated({ after, replicas: view.replicas, notCounting, limit: PAGE });
      for (const blob of page) {
        if (this.stopping.signal.aborted || !(await this.stillOwner())) return result;
        const counted = blob.holders.filter((id) => !notCounting.includes(id)).length;
        const made = await this.copy(blob.sha256, blob.size, blob.holders, view.replicas - counted, 'repair');
        if (made < 0) result.unreachable++;
        else result.repaired += made;
      }
      if (page.length < PAGE) break;
      after = (page[page.length - 1] as { sha256: string }).sha256;
    }
    for (const id of view.draining()) result.drained += await this.drain(id, notCounting);
    if (await store.cluster.hasRequest(REBALANCE)) {
      const rebalance = await this.rebalance(notCounting);
      result.rebalanced = rebalance.moved;
      if (rebalance.finished) await store.cluster.setRequest(REBALANCE, false);
    }
    result.underReplicated = await store.cluster.countUnderReplicated(view.replicas, view.notCounting());
    this.options.metrics?.underReplicatedBlobs.set(result.underReplicated);
    if (result.repaired + result.drained + result.rebalanced + result.unreachable > 0) this.options.logger.info(result, 'repair pass');
    return result;
  }

  /**
   * Move every copy off a draining instance: each content it holds gets
   * `replicas` good copies elsewhere (made here if needed), and then its copy
   * there stops counting. Unreferenced copies just stop counting.
   */
  private async drain(id: string, notCounting: readonly string[]): Promise<number> {
    const { store, view } = this.options;
    let moved = 0;
    let after = '';
    for (;;) {
      const page = await store.cluster.listCopiesOn(id, after, PAGE);
      for (const { sha256, size } of page) {
        if (this.stopping.signal.aborted || !(await this.stillOwner())) return moved;
        const copies = await store.cluster.listCopies(sha256);
        const holders = copies.filter((c) => !c.quarantined).map((c) => c.instanceId);
        const counted = holders.filter((h) => h !== id && !notCounting.includes(h)).length;
        const referenced = await store.cluster.isReferenced(sha256);
        const missing = referenced ? view.replicas - counted : 0;
        if (missing > 0 && (await this.copy(sha256, size, holders, missing, 'drain')) < missing) continue;
        await store.cluster.dropCopy(id, sha256);
        moved++;
      }
      if (page.length < PAGE) return moved;
      after = (page[page.length - 1] as { sha256: string }).sha256;
    }
  }

  /**
   * Even out the bytes the instances that take copies hold (`callfs cluster
   * rebalance`): from the fullest, copies move to instances below the mean —
   * copy, verify on the target, record, and only then drop the old copy
   * (its record first, then its bytes). Contents with too few copies are the
   * repair's business and stay. Finished when no instance is more than a
   * slack above the mean, or nothing more can move.
   */
  private async rebalance(notCounting: readonly string[]): Promise<{ moved: number; finished: boolean }> {
    const { store, view } = this.options;
    const members = this.options.instanceIds.filter((id) => view.takesCopies(id) && this.options.backendOf(id)?.evict !== undefined);
    if (members.length < 2) return { moved: 0, finished: true };
    const per = await store.cluster.copiesPerInstance();
    const bytes = new Map(members.map((id) => [id, per.get(id)?.bytes ?? 0]));
    const held = (id: string): number => bytes.get(id) ?? 0;
    const mean = members.reduce((sum, id) => sum + held(id), 0) / members.length;
    const slack = Math.max(REBALANCE_SLACK_BYTES, mean * 0.05);
    let moved = 0;
    for (const source of [...members].sort((a, b) => held(b) - held(a))) {
      if (held(source) <= mean + slack) continue;
      let after = '';
      for (;;) {
        const page = await store.cluster.listCopiesOn(source, after, PAGE);
        for (const { sha256, size } of page) {
          if (this.stopping.signal.aborted || !(await this.stillOwner())) return { moved, finished: false };
          if (held(source) - size < mean) break;
          const copies = await store.cluster.listCopies(sha256);
          const good = copies.filter((c) => !c.quarantined).map((c) => c.instanceId);
          if (good.filter((h) => !notCounting.includes(h)).length < view.replicas) continue;
          // The emptiest instance that does not hold it (rendezvous order among equals).
          const eligible = rankInstances(sha256, members.filter((id) => !copies.some((c) => c.instanceId === id) && held(id) + size <= mean + slack));
          const target = eligible.sort((x, y) => held(x) - held(y))[0];
          if (target === undefined || !(await this.copyOne(sha256, size, source, target, 'rebalance'))) continue;
          // The target recorded its copy; only now does the source's go, its record before its bytes.
          if (!(await store.cluster.listCopies(sha256)).some((c) => c.instanceId === target && !c.quarantined)) continue;
          await store.cluster.dropCopy(source, sha256);
          await this.options.backendOf(source)?.evict?.(sha256).catch((err: unknown) => this.options.logger.warn({ err, sha256, source }, 'cannot drop a moved copy; its bytes stay'));
          bytes.set(source, held(source) - size);
          bytes.set(target, held(target) + size);
          moved++;
        }
        if (page.length < PAGE || held(source) <= mean + slack) break;
        after = (page[page.length - 1] as { sha256: string }).sha256;
      }
    }
    return { moved, finished: true };
  }

  /**
   * Make `missing` new copies of a content from one of `holders` onto
   * instances that take copies and do not hold one; the number made, or -1
   * when no holder is up to copy from.
   */
  private async copy(sha256: string, size: number, holders: readonly string[], missing: number, reason: 'repair' | 'drain' | 'rebalance'): Promise<number> {
    if (missing <= 0) return 0;
    const { view, instanceId } = this.options;
    const sources = holders.filter((id) => view.isUp(id) && this.options.backendOf(id) !== undefined).sort((a, b) => (a === instanceId ? -1 : b === instanceId ? 1 : 0));
    if (sources.length === 0 && this.options.replica === undefined) {
      this.options.logger.warn({ sha256, holders }, 'no instance that is up holds a good copy of this blob');
      return -1;
    }
    const candidates = this.options.instanceIds.filter((id) => !holders.includes(id) && view.takesCopies(id) && this.options.backendOf(id) !== undefined);
    const targets = rankInstances(sha256, candidates, (id) => view.freeBytes(id)).slice(0, missing);
    let made = 0;
    for (const target of targets) {
      // With no instance to copy from, the S3 replica (the last source) brings the blob back.
      for (const source of sources.length > 0 ? sources : [REPLICA_SOURCE]) {
        if (await this.copyOne(sha256, size, source, target, reason)) {
          made++;
          break;
        }
      }
    }
    return made;
  }

  private async copyOne(sha256: string, size: number, source: string, target: string, reason: 'repair' | 'drain' | 'rebalance'): Promise<boolean> {
    const from = (source === REPLICA_SOURCE ? this.options.replica : this.options.backendOf(source)) as Pick<Backend, 'open'>;
    const to = this.options.backendOf(target) as Backend;
    await this.throttle(size);
    const signal = this.stopping.signal;
    let opened;
    try {
      opened = await from.open(sha256, { sha256, signal });
    } catch (err) {
      if (!signal.aborted) this.options.logger.warn({ err, sha256, source }, 'cannot read a copy to repair from');
      if (source !== this.options.instanceId && source !== REPLICA_SOURCE) this.options.view.suspect(source);
      return false;
    }
    try {
      const stored = await to.put(opened.stream, { signal });
      stored.release?.();
      if (stored.sha256 !== sha256) {
        this.options.logger.error({ sha256, got: stored.sha256, source, target }, 'a repaired copy does not match its content');
        return false;
      }
      this.options.metrics?.repairedBlobs.inc({ reason });
      this.options.metrics?.repairedBytes.inc({ reason }, stored.size);
      return true;
    } catch (err) {
      opened.stream.destroy();
      if (!signal.aborted) this.options.logger.warn({ err, sha256, source, target }, 'cannot copy a blob');
      return false;
    }
  }

  /** Keep the copying at or under bytesPerSecond (per one-second window). */
  private async throttle(bytes: number): Promise<void> {
    const rate = this.options.bytesPerSecond;
    if (rate <= 0) return;
    const now = Date.now();
    if (now - this.window.start >= 1000) this.window = { start: now, bytes: 0 };
    this.window.bytes += bytes;
    const due = this.window.start + (this.window.bytes / rate) * 1000;
    if (due > now) await sleep(due - now, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }
}
