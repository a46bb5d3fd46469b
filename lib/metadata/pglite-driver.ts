import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { CallfsError } from '../errors.js';
import type { Row, SqlDriver, Statement, TransactionOptions, TransactionQueryable } from './driver.js';

export interface PgliteDriverOptions {
  /** Directory owned by the store: the database lives in `pgdata/` below it. */
  dataDir: string;
}

/**
 * A driver over PGlite: one in-process Postgres with a single connection.
 *
 * PGlite serialises by itself: `transaction()` holds its transaction mutex
 * from BEGIN to COMMIT, and plain `query()` takes the same mutex, so callers
 * running at the same time wait for each other and never interleave their
 * statements. The one trap is a caller that, from inside a transaction,
 * queries the database instead of the transaction: it would wait for itself
 * forever. That is detected (AsyncLocalStorage) and thrown instead.
 *
 * PGlite does not lock its data directory, and two processes opening it would
 * corrupt it, so the driver keeps a pid lock file beside the data.
 */
export async function createPgliteDriver(options: PgliteDriverOptions): Promise<SqlDriver> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const lockPath = join(options.dataDir, 'callfs.lock');
  await acquireLock(lockPath);
  let db: PGlite;
  try {
    db = await PGlite.create(join(options.dataDir, 'pgdata'));
  } catch (err) {
    await unlink(lockPath).catch(() => {});
    throw new CallfsError('SERVICE_UNAVAILABLE', `embedded metadata store in ${options.dataDir} could not be opened: ${(err as Error).message}`, { cause: err, component: 'metadata' });
  }
  const inTransaction = new AsyncLocalStorage<boolean>();
  const assertOutsideTransaction = (): void => {
    if (inTransaction.getStore() === true) {
      throw new CallfsError('INTERNAL_ERROR', 'embedded metadata store: a query was issued on the store from inside one of its transactions; use the transaction object');
    }
  };
  let closed = false;

  return {
    kind: 'pglite',
    description: `embedded (${options.dataDir})`,

    async query<R extends Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
      assertOutsideTransaction();
      return (await db.query<R>(sql, params as unknown[])).rows;
    },

    async transaction<T>(fn: (tx: TransactionQueryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      assertOutsideTransaction();
      return db.transaction((pgTx) =>
        inTransaction.run(true, async () => {
          if (options.begin !== undefined) await pgTx.exec(options.begin);
          return fn({
            async query<R extends Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
              return (await pgTx.query<R>(sql, params as unknown[])).rows;
            },
            async exec(sql: string): Promise<void> {
              await pgTx.exec(sql);
            },
          });
        }),
      );
    },

    async script(statements: readonly Statement[]): Promise<Row[][]> {
      assertOutsideTransaction();
      // In-process: no round trips to save, so the statements simply run in order.
      return db.transaction(async (pgTx) => {
        const results: Row[][] = [];
        for (const s of statements) results.push((await pgTx.query<Row>(s.sql, s.params as unknown[])).rows);
        return results;
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        await unlink(lockPath).catch(() => {});
      }
    },
  };
}

/** Create the lock file, taking it over only when the process that wrote it is gone. */
async function acquireLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
      throw new CallfsError('SERVICE_UNAVAILABLE', `embedded metadata store ${lockPath} is in use by process ${owner}`, { component: 'metadata' });
    }
    await unlink(lockPath).catch(() => {});
  }
  throw new CallfsError('SERVICE_UNAVAILABLE', `embedded metadata store: could not take the lock ${lockPath}`, { component: 'metadata' });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
