import type { BlobCopy, BlobRecord, InstanceRecord, InstanceState, UnderReplicated } from '../../../lib/metadata/types.js';
import { assertCount, assertNonEmptyText, assertSha256 } from '../../../lib/metadata/validate.js';
import { blobKey, isReferenced } from './blobs.js';
import { compareBytes, type Table } from './table.js';

/**
 * The rules of lib/metadata/cluster-sql.ts (copies of blobs, instances,
 * leases) over the in-memory tables.
 */

export interface Lease {
  owner: string;
  expiresAt: number;
}

const isCopy = (r: BlobRecord): boolean => r.imageId !== '';
const good = (r: BlobRecord): boolean => isCopy(r) && !r.quarantined;

export function heartbeat(instances: Table<InstanceRecord>, instance: { id: string; url: string; usedBytes: number; freeBytes: number }, now: Date): InstanceRecord {
  assertNonEmptyText(instance.id, 'id');
  assertCount(instance.usedBytes, 'usedBytes');
  assertCount(instance.freeBytes, 'freeBytes');
  const old = instances.get(instance.id);
  const rejoined = old === undefined || old.state === 'forgotten';
  const row: InstanceRecord = {
    id: instance.id,
    url: instance.url,
    state: rejoined ? 'active' : old.state,
    lastSeen: now,
    seenAgoMs: 0,
    usedBytes: instance.usedBytes,
    freeBytes: instance.freeBytes,
    stateSince: rejoined ? now : old.stateSince,
  };
  instances.set(instance.id, row);
  return { ...row };
}

export function listInstances(instances: Table<InstanceRecord>, now: Date): InstanceRecord[] {
  const ago = (r: InstanceRecord): number | null => (r.lastSeen === null ? null : Math.max(0, now.getTime() - r.lastSeen.getTime()));
  return [...instances.values()].sort((a, b) => compareBytes(a.id, b.id)).map((r) => ({ ...r, seenAgoMs: ago(r) }));
}

export function setInstanceState(instances: Table<InstanceRecord>, blobs: Table<BlobRecord>, id: string, state: InstanceState, now: Date): InstanceRecord {
  assertNonEmptyText(id, 'id');
  if (!['active', 'draining', 'forgotten'].includes(state)) throw new TypeError(`not an instance state: ${String(state)}`);
  if (state === 'forgotten') {
    for (const r of [...blobs.values()]) if (r.instanceId === id && isCopy(r)) blobs.set(blobKey(r.instanceId, r.sha256), { ...r, imageId: '', packed: null });
  }
  const old = instances.get(id);
  const row: InstanceRecord = old === undefined
    ? { id, url: '', state, lastSeen: null, seenAgoMs: null, usedBytes: 0, freeBytes: 0, stateSince: now }
    : { ...old, state, stateSince: old.state === state ? old.stateSince : now };
  instances.set(id, row);
  return { ...row };
}

export function acquireLease(leases: Map<string, Lease>, name: string, owner: string, ttlMs: number, now: Date): boolean {
  const held = leases.get(name);
  if (held !== undefined && held.owner !== owner && held.expiresAt >= now.getTime()) return false;
  leases.set(name, { owner, expiresAt: now.getTime() + ttlMs });
  return true;
}

export function listCopies(blobs: Table<BlobRecord>, sha256: string): BlobCopy[] {
  assertSha256(sha256);
  return [...blobs.values()]
    .filter((r) => r.sha256 === sha256 && isCopy(r))
    .sort((a, b) => compareBytes(a.instanceId, b.instanceId))
    .map((r) => ({ instanceId: r.instanceId, quarantined: r.quarantined, lastVerifiedAt: r.lastVerifiedAt === null ? null : new Date(r.lastVerifiedAt) }));
}

function contents(blobs: Table<BlobRecord>): Map<string, BlobRecord[]> {
  const bySha = new Map<string, BlobRecord[]>();
  for (const r of blobs.values()) bySha.set(r.sha256, [...(bySha.get(r.sha256) ?? []), r]);
  return bySha;
}

function underReplicated(blobs: Table<BlobRecord>, replicas: number, notCounting: readonly string[]): UnderReplicated[] {
  const found: UnderReplicated[] = [];
  for (const [sha256, rows] of contents(blobs)) {
    if (!rows.some((r) => r.refCount > 0)) continue;
    if (rows.filter((r) => good(r) && !notCounting.includes(r.instanceId)).length >= replicas) continue;
    const holders = rows.filter(good).map((r) => r.instanceId).sort(compareBytes);
    found.push({ sha256, size: Math.max(...rows.map((r) => r.size)), holders });
  }
  return found.sort((a, b) => compareBytes(a.sha256, b.sha256));
}

export function listUnderReplicated(blobs: Table<BlobRecord>, options: { after: string; replicas: number; notCounting: readonly string[]; limit: number }): UnderReplicated[] {
  assertCount(options.limit, 'limit');
  return underReplicated(blobs, options.replicas, options.notCounting).filter((u) => compareBytes(u.sha256, options.after) > 0).slice(0, options.limit);
}

export function countUnderReplicated(blobs: Table<BlobRecord>, replicas: number, notCounting: readonly string[]): number {
  return underReplicated(blobs, replicas, notCounting).length;
}

export { isReferenced };

export function dropCopy(blobs: Table<BlobRecord>, instanceId: string, sha256: string): void {
  const row = blobs.get(blobKey(instanceId, sha256));
  if (row !== undefined) blobs.set(blobKey(instanceId, sha256), { ...row, imageId: '', packed: null });
}

export function listCopiesOn(blobs: Table<BlobRecord>, instanceId: string, after: string, limit: number): { sha256: string; size: number }[] {
  return [...blobs.values()]
    .filter((r) => r.instanceId === instanceId && isCopy(r) && compareBytes(r.sha256, after) > 0)
    .sort((a, b) => compareBytes(a.sha256, b.sha256))
    .slice(0, limit)
    .map((r) => ({ sha256: r.sha256, size: r.size }));
}

export function copiesPerInstance(blobs: Table<BlobRecord>): Map<string, { blobs: number; bytes: number }> {
  const per = new Map<string, { blobs: number; bytes: number }>();
  for (const r of blobs.values()) {
    if (!isCopy(r)) continue;
    const c = per.get(r.instanceId) ?? { blobs: 0, bytes: 0 };
    per.set(r.instanceId, { blobs: c.blobs + 1, bytes: c.bytes + r.size });
  }
  return per;
}

export function underReplicatedPerInstance(blobs: Table<BlobRecord>, replicas: number, notCounting: readonly string[]): Map<string, number> {
  const per = new Map<string, number>();
  for (const u of underReplicated(blobs, replicas, notCounting)) for (const id of u.holders) per.set(id, (per.get(id) ?? 0) + 1);
  return per;
}
