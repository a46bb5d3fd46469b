import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { InstanceRecord, InstanceState, MetadataStore } from '../metadata/types.js';

/**
 * Which instances are up, as every instance sees it: each records a
 * heartbeat (its URL, used and free space) in the shared metadata store and
 * reads everyone's back. An instance is down when its heartbeat is older
 * than `downAfterMs` by the store's clock, or for a while after a call to it
 * failed here; lost when down for longer than `lostAfterMs` (its copies stop
 * counting). What an operator decided (draining, forgotten) comes with it.
 */

/** What placement and the repairer ask of the cluster. */
export interface ClusterView {
  /** Copies of every CAS blob (backend.cas.replicas). */
  readonly replicas: number;
  /** Fewest copies a write is acknowledged with (backend.cas.min_replicas, 0 resolved to replicas). */
  readonly minReplicas: number;
  /** Reads and writes may go there now. */
  isUp(id: string): boolean;
  /** Up, and new copies may go there (not draining or forgotten). */
  takesCopies(id: string): boolean;
  /** Free bytes it last reported (0 when unknown). */
  freeBytes(id: string): number;
  /** A call to it failed: treat it as down for a while. */
  suspect(id: string): void;
  /** Instances whose copies do not count towards `replicas`: draining, forgotten, lost. */
  notCounting(): string[];
  /** Instances being drained. */
  draining(): string[];
}

export interface MembershipOptions {
  store: Pick<MetadataStore, 'cluster'>;
  instanceId: string;
  url: string;
  /** Every instance of the configuration (this one and its peers). */
  instanceIds: readonly string[];
  replicas: number;
  minReplicas: number;
  heartbeatMs: number;
  downAfterMs: number;
  /** 0: never lost by silence alone. */
  lostAfterMs: number;
  /** Used and free bytes of this instance's store. */
  space: () => Promise<{ usedBytes: number; freeBytes: number }>;
  logger: Logger;
  metrics?: Pick<Metrics, 'clusterInstances'>;
}

interface Seen {
  record: InstanceRecord;
  /** Date.now() when the record was read: its age grows from there. */
  readAt: number;
}

export class Membership implements ClusterView {
  readonly replicas: number;
  readonly minReplicas: number;
  private seen = new Map<string, Seen>();
  private readonly suspects = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly options: MembershipOptions) {
    this.replicas = options.replicas;
    this.minReplicas = options.minReplicas === 0 ? options.replicas : options.minReplicas;
  }

  /** Record this instance and read the others once, then every heartbeat. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One heartbeat and refresh (also what `start` and tests call). */
  beat(): Promise<void> {
    this.running ??= (async () => {
      try {
        const space = await this.options.space().catch(() => ({ usedBytes: 0, freeBytes: 0 }));
        await this.options.store.cluster.heartbeat({ id: this.options.instanceId, url: this.options.url, ...space });
        await this.refresh();
      } catch (err) {
        this.options.logger.warn({ err }, 'cluster heartbeat failed');
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /** Read every instance's record. */
  async refresh(): Promise<void> {
    const records = await this.options.store.cluster.listInstances();
    const readAt = Date.now();
    this.seen = new Map(records.map((record) => [record.id, { record, readAt }]));
    this.publish();
  }

  private ageOf(id: string): number | null {
    const seen = this.seen.get(id);
    if (seen === undefined || seen.record.seenAgoMs === null) return null;
    return seen.record.seenAgoMs + (Date.now() - seen.readAt);
  }

  state(id: string): InstanceState | null {
    return this.seen.get(id)?.record.state ?? null;
  }

  isUp(id: string): boolean {
    if (id === this.options.instanceId) return true;
    if ((this.suspects.get(id) ?? 0) > Date.now()) return false;
    if (this.state(id) === 'forgotten') return false;
    const age = this.ageOf(id);
    // A configured instance that never reported yet is given the benefit of the doubt: calls to it time out by themselves.
    return age === null ? this.options.instanceIds.includes(id) : age <= this.options.downAfterMs;
  }

  /** Down for longer than lostAfterMs (never for this instance, or with lostAfterMs 0). */
  isLost(id: string): boolean {
    if (id === this.options.instanceId || this.options.lostAfterMs === 0) return false;
    const age = this.ageOf(id);
    return age !== null && age > this.options.lostAfterMs;
  }

  takesCopies(id: string): boolean {
    const state = this.state(id);
    return this.isUp(id) && (state === null || state === 'active');
  }

  freeBytes(id: string): number {
    return this.seen.get(id)?.record.freeBytes ?? 0;
  }

  suspect(id: string): void {
    if (id === this.options.instanceId) return;
    // Until the next heartbeat or two says otherwise.
    this.suspects.set(id, Date.now() + 2 * this.options.heartbeatMs);
  }

  notCounting(): string[] {
    return [...this.seen.values()].map((s) => s.record).filter((r) => r.state !== 'active' || this.isLost(r.id)).map((r) => r.id);
  }

  draining(): string[] {
    return [...this.seen.values()].map((s) => s.record).filter((r) => r.state === 'draining').map((r) => r.id);
  }

  /** Every instance known (configured or reported), with how this one sees it. */
  instances(): { record: InstanceRecord | null; id: string; up: boolean; lost: boolean }[] {
    const ids = [...new Set([...this.options.instanceIds, ...this.seen.keys()])].sort();
    return ids.map((id) => ({ id, record: this.seen.get(id)?.record ?? null, up: this.isUp(id), lost: this.isLost(id) }));
  }

  private publish(): void {
    const gauge = this.options.metrics?.clusterInstances;
    if (gauge === undefined) return;
    const counts: Record<string, number> = { up: 0, down: 0, lost: 0, draining: 0, forgotten: 0 };
    for (const i of this.instances()) {
      const state = i.record?.state;
      if (state === 'forgotten') counts.forgotten = (counts.forgotten ?? 0) + 1;
      else if (i.lost) counts.lost = (counts.lost ?? 0) + 1;
      else if (i.up) counts.up = (counts.up ?? 0) + 1;
      else counts.down = (counts.down ?? 0) + 1;
      if (state === 'draining') counts.draining = (counts.draining ?? 0) + 1;
    }
    for (const [state, n] of Object.entries(counts)) gauge.set({ state }, n);
  }
}

/** The view of a cluster where every configured instance is up and active (no membership running: tests, one instance). */
export function staticClusterView(replicas: number, minReplicas = 0): ClusterView {
  return {
    replicas,
    minReplicas: minReplicas === 0 ? replicas : minReplicas,
    isUp: () => true,
    takesCopies: () => true,
    freeBytes: () => 0,
    suspect: () => undefined,
    notCounting: () => [],
    draining: () => [],
  };
}
