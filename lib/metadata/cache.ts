import { LRUCache } from 'lru-cache';
import { isWithin } from '../paths.js';
import type { Entry } from './types.js';

/**
 * A bounded LRU of entries by path, for reads outside transactions only.
 *
 * Staleness has two guards. A generation number moves on every invalidation,
 * and a value read from the database is cached only if no invalidation
 * happened while it was being read (so a read racing a write never parks the
 * old value in the cache). And the cache can be switched off (`usable`
 * false) while cross-instance invalidations might be missed.
 */
export interface EntryCache {
  /** False while invalidations may be missed: get() then always misses. */
  readonly usable: boolean;
  setUsable(usable: boolean): void;
  /** True when `path` is cached (and the cache usable); does not count as a use. */
  has(path: string): boolean;
  /** A copy of the cached entry, or undefined. */
  get(path: string): Entry | undefined;
  /** The current generation: pass it to set() for a value read after this call. */
  generation(): number;
  /** Cache `entry` unless an invalidation happened since `generation`. */
  set(entry: Entry, generation: number): void;
  invalidate(path: string): void;
  /** `path` and everything below it. */
  invalidateSubtree(path: string): void;
  clear(): void;
}

function copy(entry: Entry): Entry {
  return {
    ...entry,
    atime: new Date(entry.atime),
    mtime: new Date(entry.mtime),
    ctime: new Date(entry.ctime),
    createdAt: new Date(entry.createdAt),
    updatedAt: new Date(entry.updatedAt),
  };
}

/** A cache of at most `maxEntries` entries; 0 disables caching. */
export function createEntryCache(maxEntries: number): EntryCache {
  const lru = maxEntries > 0 ? new LRUCache<string, Entry>({ max: maxEntries }) : null;
  let gen = 0;
  let usable = lru !== null;
  return {
    get usable() {
      return usable;
    },
    setUsable(value: boolean) {
      gen++;
      lru?.clear();
      usable = value && lru !== null;
    },
    has(path) {
      return usable && lru !== null && lru.has(path);
    },
    get(path) {
      if (!usable || lru === null) return undefined;
      const hit = lru.get(path);
      return hit === undefined ? undefined : copy(hit);
    },
    generation: () => gen,
    set(entry, generation) {
      if (!usable || lru === null || generation !== gen) return;
      lru.set(entry.path, copy(entry));
    },
    invalidate(path) {
      gen++;
      lru?.delete(path);
    },
    invalidateSubtree(path) {
      gen++;
      if (lru === null) return;
      if (path === '/') {
        lru.clear();
        return;
      }
      const stale = [...lru.keys()].filter((k) => isWithin(k, path));
      for (const k of stale) lru.delete(k);
    },
    clear() {
      gen++;
      lru?.clear();
    },
  };
}
