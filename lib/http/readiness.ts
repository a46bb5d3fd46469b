import type { Logger } from '../log/index.js';

/** What a healthy dependency can still report about itself: serving, or serving reads only (out of space). */
export type CheckState = 'ok' | 'full';

/** One dependency check: resolves with its state (void: ok), throws when the dependency cannot serve. */
export type Check = () => Promise<CheckState | void>;

/** A dependency's state as /ready reports it. Why a check failed goes to the log, never into the report. */
export type ReportedState = CheckState | 'unavailable';

export interface ReadinessChecks {
  metadata?: Check;
  locks?: Check;
  backends?: Record<string, Check>;
  peers?: Record<string, Check>;
  /** Replication (a cluster with backend.cas.replicas): whether enough instances are up to take every copy. */
  replication?: () => ReplicationState;
}

/**
 * `ok`: as many instances take copies as backend.cas.replicas; `degraded`:
 * fewer, writes are acknowledged with min_replicas copies and the repairer
 * makes the rest later; `read_only`: fewer than min_replicas, writes to the
 * CAS get 503.
 */
export type ReplicationState = 'ok' | 'degraded' | 'read_only';

/**
 * The instance's state: `ok`; `degraded` when it serves but a backend is
 * full (reads, deletes and writes to other backends still work; uploads to
 * the full one get 507); `unavailable` when the metadata store, the lock
 * service or a backend cannot serve at all.
 */
export type ReadyStatus = 'ok' | 'degraded' | 'unavailable';

export interface ReadyReport {
  status: ReadyStatus;
  checks: {
    metadata?: ReportedState;
    locks?: ReportedState;
    backends?: Record<string, ReportedState>;
    peers?: Record<string, ReportedState>;
    replication?: ReplicationState;
  };
}

const CHECK_TIMEOUT_MS = 2000;

async function run(name: string, check: Check, log: Logger): Promise<ReportedState> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const state = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return state ?? 'ok';
  } catch (err) {
    log.warn({ err, check: name }, 'readiness check failed');
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

async function runAll(prefix: string, checks: Record<string, Check>, log: Logger): Promise<Record<string, ReportedState>> {
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await run(`${prefix}.${name}`, check, log)] as const));
  return Object.fromEntries(entries);
}

/**
 * Run every check concurrently, each bounded in time. Peers are reported but
 * do not change the instance's status: a peer that is down is not this
 * instance's failure.
 */
export async function checkReadiness(checks: ReadinessChecks, log: Logger): Promise<ReadyReport> {
  const report: ReadyReport = { status: 'ok', checks: {} };
  const [metadata, locks, backends, peers] = await Promise.all([
    checks.metadata === undefined ? undefined : run('metadata', checks.metadata, log),
    checks.locks === undefined ? undefined : run('locks', checks.locks, log),
    checks.backends === undefined ? undefined : runAll('backends', checks.backends, log),
    checks.peers === undefined ? undefined : runAll('peers', checks.peers, log),
  ]);
  if (metadata !== undefined) report.checks.metadata = metadata;
  if (locks !== undefined) report.checks.locks = locks;
  if (backends !== undefined) report.checks.backends = backends;
  if (peers !== undefined) report.checks.peers = peers;
  const essential = [metadata, locks, ...Object.values(backends ?? {})].filter((v) => v !== undefined);
  if (checks.replication !== undefined) report.checks.replication = checks.replication();
  if (essential.includes('unavailable')) report.status = 'unavailable';
  else if (essential.includes('full') || (report.checks.replication ?? 'ok') !== 'ok') report.status = 'degraded';
  return report;
}
