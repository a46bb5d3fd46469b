import { setTimeout as sleep } from 'node:timers/promises';
import type { Settings } from '../lib/config/index.js';
import { CallfsError } from '../lib/errors.js';
import { createSilentLogger } from '../lib/log/index.js';
import type { InstanceRecord, MetadataStore } from '../lib/metadata/index.js';
import { isUp, readClusterStatus, type ClusterStatus } from '../lib/cluster/status.js';
import { openMetadataStore } from './stores.js';
import { REBALANCE } from '../lib/cluster/repairer.js';

/**
 * `callfs cluster status|forget|drain|activate`: the cluster as the shared
 * metadata store records it (heartbeats, copies), and what an operator
 * decides about an instance. Run with the same -c configuration as the
 * servers, from any machine that reaches the store; the running servers do
 * the work (the repairer), the command records the decision and follows it.
 * The status is computed in lib/cluster/status.ts, which GET
 * /v1/cluster/status answers with too.
 */

async function withStore<T>(settings: Settings, fn: (store: MetadataStore) => Promise<T>): Promise<T> {
  if (settings.metadataType !== 'postgres') {
    throw new CallfsError('BAD_REQUEST', 'cluster commands need the shared Postgres metadata store (metadata_store.dsn); the embedded store serves one instance');
  }
  const store = await openMetadataStore(settings, { logger: createSilentLogger() });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${UNITS[u]}`;
}

/** `[#####-----]`: the used share of used + free. */
function bar(used: number, free: number, width = 20): string {
  const total = used + free;
  const filled = total === 0 ? 0 : Math.round((used / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export function renderStatus(status: ClusterStatus): string {
  const rows = status.instances.map((i) => [
    i.id,
    i.state,
    i.state === 'forgotten' ? '-' : i.lost ? 'lost' : i.up ? 'up' : 'down',
    `${bar(i.blob_bytes, i.free_bytes)} ${humanBytes(i.blob_bytes)} in blobs, ${humanBytes(i.free_bytes)} free`,
    String(i.blobs),
    String(i.under_replicated),
    i.url,
  ]);
  const head = ['INSTANCE', 'STATE', 'UP', 'SPACE', 'BLOBS', 'UNDER', 'URL'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return [
    line(head),
    ...rows.map(line),
    '',
    `replicas: ${status.replicas} (writes need ${status.min_replicas})   under-replicated blobs: ${status.under_replicated}`,
  ].join('\n');
}

export async function clusterStatus(settings: Settings, json: boolean): Promise<string> {
  const status = await withStore(settings, (store) => readClusterStatus(settings, store));
  return json ? JSON.stringify(status, null, 2) : renderStatus(status);
}

function known(settings: Settings, id: string, records: InstanceRecord[]): void {
  const configured = id === settings.config.instance_discovery.instance_id || id in settings.config.instance_discovery.peer_endpoints;
  if (!configured && !records.some((r) => r.id === id)) throw new CallfsError('BAD_REQUEST', `no instance ${id} in this cluster`);
}

/** Declare an instance lost: its copies stop counting and the repairer copies its blobs again from the others. */
export async function clusterForget(settings: Settings, id: string, force: boolean): Promise<string> {
  return withStore(settings, async (store) => {
    const records = await store.cluster.listInstances();
    known(settings, id, records);
    const record = records.find((r) => r.id === id);
    if (record !== undefined && isUp(settings, record) && !force) {
      throw new CallfsError('BAD_REQUEST', `instance ${id} is up (it reported ${Math.round((record.seenAgoMs ?? 0) / 1000)} s ago): switch it off first, or drain it; --force forgets it anyway`);
    }
    await store.cluster.setInstanceState(id, 'forgotten');
    return `instance ${id} is forgotten: its copies no longer count, and the repairer brings every blob back to ${settings.config.backend.cas.replicas} copies on the others.\nIt may rejoin later with an empty store.`;
  });
}

/** Cancel a drain (or take a forgotten id back by hand): the instance takes copies again. */
export async function clusterActivate(settings: Settings, id: string): Promise<string> {
  return withStore(settings, async (store) => {
    known(settings, id, await store.cluster.listInstances());
    await store.cluster.setInstanceState(id, 'active');
    return `instance ${id} is active: it takes new copies`;
  });
}

/**
 * Drain an instance: it takes no new copies, and the repairer moves every
 * copy it holds to the others (copy, verify, record, then drop). Follows the
 * progress until the instance holds nothing that exists nowhere else.
 */
export async function clusterDrain(settings: Settings, id: string, options: { wait: boolean; timeoutMs: number; write: (line: string) => void }): Promise<void> {
  await withStore(settings, async (store) => {
    known(settings, id, await store.cluster.listInstances());
    await store.cluster.setInstanceState(id, 'draining');
    options.write(`instance ${id} is draining: it takes no new copies, and the repairer moves its copies to the others`);
    if (!options.wait) return;
    const started = Date.now();
    let last = '';
    for (;;) {
      const left = (await store.cluster.copiesPerInstance()).get(id) ?? { blobs: 0, bytes: 0 };
      if (left.blobs === 0) {
        options.write(`instance ${id} is drained: every blob it held has its copies elsewhere; it can be switched off`);
        return;
      }
      const line = `${id}: ${left.blobs} copies (${humanBytes(left.bytes)}) left to move`;
      if (line !== last) options.write(line);
      last = line;
      if (options.timeoutMs > 0 && Date.now() - started > options.timeoutMs) {
        throw new CallfsError('SERVICE_UNAVAILABLE', `instance ${id} still holds ${left.blobs} copies after ${Math.round(options.timeoutMs / 1000)} s (it stays draining; is a repairer running?)`, { component: 'peer' });
      }
      await sleep(1000);
    }
  });
}

/**
 * Even out the space the instances use: a standing request the repairer
 * works through (same rule as a drain: copy, verify, record, then drop the
 * old copy). Follows the copies per instance until the request is done.
 */
export async function clusterRebalance(settings: Settings, options: { wait: boolean; timeoutMs: number; write: (line: string) => void }): Promise<void> {
  await withStore(settings, async (store) => {
    await store.cluster.setRequest(REBALANCE, true);
    options.write('rebalance requested: the repairer moves copies from the fullest instances to the emptiest');
    if (!options.wait) return;
    const started = Date.now();
    let last = '';
    for (;;) {
      const per = await store.cluster.copiesPerInstance();
      const line = [...per.entries()].sort().map(([id, c]) => `${id} ${humanBytes(c.bytes)} (${c.blobs})`).join(', ');
      const pending = await store.cluster.hasRequest(REBALANCE);
      if (line !== last || !pending) options.write(line);
      last = line;
      if (!pending) {
        options.write('rebalanced');
        return;
      }
      if (options.timeoutMs > 0 && Date.now() - started > options.timeoutMs) {
        throw new CallfsError('SERVICE_UNAVAILABLE', `the rebalance is not done after ${Math.round(options.timeoutMs / 1000)} s (it goes on; is a repairer running?)`, { component: 'peer' });
      }
      await sleep(1000);
    }
  });
}
