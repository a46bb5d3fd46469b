import { CallfsError } from '../../../lib/errors.js';
import type { ConsumeResult, SingleUseLink } from '../../../lib/metadata/types.js';
import { assertDate, assertNonEmptyText, assertOwnerId } from '../../../lib/metadata/validate.js';
import { assertCanonical } from '../../../lib/paths.js';
import type { Table } from './table.js';

/** Single-use links as lib/metadata/blobs-links-sql.ts keeps them, over an in-memory table. */

const copyLink = (link: SingleUseLink): SingleUseLink => ({
  ...link,
  createdAt: new Date(link.createdAt),
  expiresAt: new Date(link.expiresAt),
  usedAt: link.usedAt === null ? null : new Date(link.usedAt),
});

export function createLink(links: Table<SingleUseLink>, link: { id: string; path: string; createdBy: number; expiresAt: Date }, now: Date): SingleUseLink {
  assertNonEmptyText(link.id, 'id');
  assertCanonical(link.path);
  assertOwnerId(link.createdBy, 'createdBy');
  assertDate(link.expiresAt, 'expiresAt');
  // The primary key's unique violation, as db-errors.ts maps it.
  if (links.get(link.id) !== undefined) throw new CallfsError('FILE_ALREADY_EXISTS', 'the entry already exists');
  const row: SingleUseLink = { id: link.id, path: link.path, createdBy: link.createdBy, createdAt: now, expiresAt: new Date(link.expiresAt), usedAt: null };
  links.set(row.id, row);
  return copyLink(row);
}

export function getLink(links: Table<SingleUseLink>, id: string): SingleUseLink | null {
  if (typeof id !== 'string' || id === '') return null;
  const row = links.get(id);
  return row === undefined ? null : copyLink(row);
}

/** Compare-and-set: the caller runs it alone (the store serialises writes), so exactly one consumer wins. */
export function consumeLink(links: Table<SingleUseLink>, id: string, now: Date): ConsumeResult {
  assertDate(now, 'now');
  if (typeof id !== 'string' || id === '') return { status: 'not_found' };
  const row = links.get(id);
  if (row === undefined) return { status: 'not_found' };
  if (row.usedAt !== null) return { status: 'used', link: copyLink(row) };
  if (row.expiresAt.getTime() <= now.getTime()) return { status: 'expired', link: copyLink(row) };
  const used = { ...row, usedAt: new Date(now) };
  links.set(id, used);
  return { status: 'consumed', link: copyLink(used) };
}

/** Delete links that expired or were used before `before`; how many went. */
export function purgeLinks(links: Table<SingleUseLink>, before: Date): number {
  assertDate(before, 'before');
  const cut = before.getTime();
  const gone = [...links.values()].filter((l) => l.expiresAt.getTime() < cut || (l.usedAt !== null && l.usedAt.getTime() < cut));
  for (const link of gone) links.delete(link.id);
  return gone.length;
}
