/**
 * Metadata store throughput, PGlite and Postgres side by side. Not a test:
 * it prints figures and never fails on a time.
 *
 *   node dist/bench/metadata.js [admin-dsn]
 *
 * The admin DSN (default postgres://postgres@127.0.0.1:5432/test) is used to
 * create and afterwards drop a scratch database; without Postgres only PGlite
 * is measured.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createEmbeddedMetadataStore, createPostgresMetadataStore } from '../lib/metadata/index.js';
import type { MetadataStore } from '../lib/metadata/types.js';

const FILES = 2000;
const LIST_DIR_SIZE = 1000;
const CONCURRENCY = 16;

interface Row {
  store: string;
  operation: string;
  ops: number;
  unit: string;
}

async function timed(count: number, fn: (i: number) => Promise<unknown>, concurrency = 1): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

const attrs = { mode: 0o644, uid: 1000, gid: 1000 };

async function measure(name: string, open: (cache: boolean) => Promise<MetadataStore>, rows: Row[]): Promise<void> {
  const store = await open(true);
  try {
    await store.create({ path: '/bench', type: 'directory', ...attrs, mode: 0o755 });
    await store.create({ path: '/bench/seq', type: 'directory', ...attrs, mode: 0o755 });
    await store.create({ path: '/bench/par', type: 'directory', ...attrs, mode: 0o755 });
    const add = (row: Omit<Row, 'store'>): void => {
      rows.push({ store: name, ...row });
    };
    add({ operation: 'create (sequential)', unit: 'creates/s', ops: await timed(FILES, (i) => store.create({ path: `/bench/seq/f${i}`, type: 'file', ...attrs, size: i })) });
    add({
      operation: `create (${CONCURRENCY} concurrent)`,
      unit: 'creates/s',
      ops: await timed(FILES, (i) => store.create({ path: `/bench/par/f${i}`, type: 'file', ...attrs }), CONCURRENCY),
    });
    const path = (i: number): string => `/bench/seq/f${i % FILES}`;
    for (let i = 0; i < FILES; i++) await store.get(path(i)); // warm the cache
    add({ operation: 'get by path (cache hit)', unit: 'gets/s', ops: await timed(10_000, (i) => store.get(path(i))) });
    add({ operation: `get by path (cache hit, ${CONCURRENCY} concurrent)`, unit: 'gets/s', ops: await timed(10_000, (i) => store.get(path(i)), CONCURRENCY) });
    const listings = 50;
    const listRate = await timed(listings, async () => {
      let n = 0;
      for await (const _ of store.listChildren('/bench/seq', { limit: LIST_DIR_SIZE })) n++;
      if (n !== LIST_DIR_SIZE) throw new Error(`listed ${n} entries`);
    });
    add({ operation: `list children (${LIST_DIR_SIZE} entries)`, unit: 'entries/s', ops: listRate * LIST_DIR_SIZE });
  } finally {
    await store.close();
  }
  // Reopened without a cache (PGlite allows one opener of its directory at a time).
  const uncached = await open(false);
  try {
    const path = (i: number): string => `/bench/seq/f${i % FILES}`;
    rows.push({ store: name, operation: 'get by path (no cache)', unit: 'gets/s', ops: await timed(10_000, (i) => uncached.get(path(i))) });
    rows.push({
      store: name,
      operation: `get by path (no cache, ${CONCURRENCY} concurrent)`,
      unit: 'gets/s',
      ops: await timed(10_000, (i) => uncached.get(path(i)), CONCURRENCY),
    });
  } finally {
    await uncached.close();
  }
}

async function main(): Promise<void> {
  const adminDsn = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const cpus = os.cpus();
  console.log(`CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores; Node ${process.version}`);
  const rows: Row[] = [];

  const dataDir = await mkdtemp(join(os.tmpdir(), 'callfs-bench-'));
  try {
    await measure('PGlite', (cache) => createEmbeddedMetadataStore({ dataDir, cacheMaxEntries: cache ? 10_000 : 0 }), rows);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  const dbName = `callfs_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminDsn, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  } catch (err) {
    console.log(`Postgres skipped: ${(err as Error).message}`);
    await admin.end().catch(() => {});
    print(rows);
    return;
  }
  try {
    const url = new URL(adminDsn);
    url.pathname = `/${dbName}`;
    await measure('Postgres', (cache) => createPostgresMetadataStore({ dsn: url.toString(), poolSize: CONCURRENCY, cacheMaxEntries: cache ? 10_000 : 0 }), rows);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
    await admin.end();
  }
  print(rows);
}

function print(rows: Row[]): void {
  const width = Math.max(...rows.map((r) => r.operation.length));
  for (const r of rows) console.log(`${r.store.padEnd(9)} ${r.operation.padEnd(width)} ${Math.round(r.ops).toLocaleString('en-US').padStart(10)} ${r.unit}`);
  for (const store of ['PGlite', 'Postgres']) {
    const hit = rows.find((r) => r.store === store && r.operation === 'get by path (cache hit)');
    const miss = rows.find((r) => r.store === store && r.operation === 'get by path (no cache)');
    if (hit && miss) console.log(`${store} get, cache hit / no cache: ${(hit.ops / miss.ops).toFixed(1)}×`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
