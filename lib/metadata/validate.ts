import { CallfsError } from '../errors.js';
import type { BackendType, EntryPatch, EntryType, NewEntry } from './types.js';
import { BACKEND_TYPES, isBackendType } from '../backends/registry.js';

/** Input checks shared by every store operation: bad values are BAD_REQUEST, never a database error. */

const bad = (message: string): CallfsError => new CallfsError('BAD_REQUEST', message);

export function assertEntryType(value: unknown, what = 'type'): asserts value is EntryType {
  if (value !== 'file' && value !== 'directory') throw bad(`${what} must be 'file' or 'directory'`);
}

export function assertMode(value: unknown): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0o7777) throw bad('mode must be an integer between 0 and 0o7777');
}

/** uid/gid: POSIX ids are unsigned 32-bit. */
export function assertOwnerId(value: unknown, what: string): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffffffff) throw bad(`${what} must be an integer between 0 and 2^32-1`);
}

export function assertCount(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw bad(`${what} must be a non-negative integer`);
}

export function assertDate(value: unknown, what: string): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw bad(`${what} must be a valid Date`);
}

function assertBackend(value: unknown): asserts value is BackendType | null {
  if (value !== null && !isBackendType(value)) throw bad(`backend must be one of ${BACKEND_TYPES.join(', ')} or null`);
}

function assertOptionalText(value: unknown, what: string): asserts value is string | null {
  if (value !== null && (typeof value !== 'string' || value === '' || value.length > 1024)) throw bad(`${what} must be a non-empty string or null`);
}

export function assertNonEmptyText(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value === '' || value.length > 1024) throw bad(`${what} must be a non-empty string`);
}

export function assertSha256(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw bad('sha256 must be 64 lowercase hex characters');
}

export function assertAttributes(attrs: { mode: number; uid: number; gid: number }): void {
  assertMode(attrs.mode);
  assertOwnerId(attrs.uid, 'uid');
  assertOwnerId(attrs.gid, 'gid');
}

export function assertNewEntry(entry: NewEntry): void {
  assertEntryType(entry.type);
  assertAttributes(entry);
  if (entry.size !== undefined) assertCount(entry.size, 'size');
  if (entry.backend !== undefined) assertBackend(entry.backend);
  if (entry.instanceId !== undefined) assertOptionalText(entry.instanceId, 'instanceId');
  if (entry.blobId !== undefined) assertOptionalText(entry.blobId, 'blobId');
  if (entry.etag !== undefined) assertOptionalText(entry.etag, 'etag');
  if (entry.mtime !== undefined) assertDate(entry.mtime, 'mtime');
}

export function assertPatch(patch: EntryPatch): void {
  if (patch.size !== undefined) assertCount(patch.size, 'size');
  if (patch.mode !== undefined) assertMode(patch.mode);
  if (patch.uid !== undefined) assertOwnerId(patch.uid, 'uid');
  if (patch.gid !== undefined) assertOwnerId(patch.gid, 'gid');
  if (patch.mtime !== undefined) assertDate(patch.mtime, 'mtime');
  if (patch.atime !== undefined) assertDate(patch.atime, 'atime');
  if (patch.backend !== undefined) assertBackend(patch.backend);
  if (patch.instanceId !== undefined) assertOptionalText(patch.instanceId, 'instanceId');
  if (patch.blobId !== undefined) assertOptionalText(patch.blobId, 'blobId');
  if (patch.etag !== undefined) assertOptionalText(patch.etag, 'etag');
}
