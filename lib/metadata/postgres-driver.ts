import pg from 'pg';
import pgUtils from 'pg/lib/utils.js';
import type { Logger } from '../log/index.js';
import { describeDsn, isConnectionError } from './db-errors.js';
import type { ListenHandlers, ListenSubscription, Row, SqlDriver, Statement, TransactionOptions, TransactionQueryable } from './driver.js';

export interface PostgresDriverOptions {
  /** postgres:// URL or key=value connection string. */
  dsn: string;
  logger: Logger;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Server-side statement timeout in ms (default 30000; 0 disables). */
  statementTimeoutMs?: number;
  /** How long to wait for a connection, new or from the pool, in ms (default 5000). */
  connectTimeoutMs?: number;
}

const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
const LISTEN_BACKOFF_MIN_MS = 100;
const LISTEN_BACKOFF_MAX_MS = 5000;
// A listener connection that silently died (no RST) is noticed by this heartbeat.
const LISTEN_HEARTBEAT_MS = 10_000;
// A sync slower than this means the listening connection is in trouble: give it up and reconnect.
const LISTEN_SYNC_TIMEOUT_MS = 1000;

/**
 * A driver over a pg Pool. The pool drops broken connections and opens new
 * ones on demand, so it recovers by itself when the database comes back.
 */
/** Most distinct statement texts given a name (their set is fixed by the code; the cap guards against a leak). */
const MAX_NAMED_STATEMENTS = 512;
const statementNames = new Map<string, string>();

/**
 * A parameterised statement as a named one: each connection parses it once
 * (on first use) and then only binds and executes it. Statements without
 * parameters stay unnamed. Every execution is still planned with its values
 * (plan_cache_mode=force_custom_plan, set for the session below): after five
 * runs PostgreSQL may otherwise switch to a generic plan, and one made while
 * the tables were nearly empty (a new install) seq-scans them for as long as
 * the connection lives — measured: 0.34 ms per path lookup at 3,000 rows,
 * growing with the table, instead of an index lookup.
 */
function prepared(text: string, params: readonly unknown[]): pg.QueryConfig {
  const values = params as unknown[];
  if (values.length === 0) return { text, values };
  const name = statementName(text);
  return name === '' ? { text, values } : { name, text, values };
}

/** The name of the statement `text` (the same on every connection), or '' (unnamed) once the cap is reached. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_NAMED_STATEMENTS) return '';
    name = `callfs_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

/** What PipelinedScript uses of pg's connection (pg/lib/connection.js; @types/pg does not describe it). */
interface ProtocolConnection {
  parsedStatements: Record<string, string>;
  stream: { cork?: () => void; uncork?: () => void };
  parse(message: { text: string; name: string; types: unknown[] }): void;
  bind(message: { portal: string; statement: string; values: Array<string | Buffer | null>; valueMapper: (value: unknown) => unknown }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(message: { portal: string; rows: number }): void;
  sync(): void;
}

/** Bind's value mapper for values script() has already converted as pg does. */
const asConverted = (value: unknown): unknown => value;

/**
 * A script as one pipeline of the extended protocol: for each statement a
 * Parse (only the first time its connection sees it: named statements),
 * Bind, Describe and Execute, and one Sync at the end. One round trip, like
 * a simple-protocol script, but PostgreSQL parses and analyses each
 * statement once per connection instead of on every script, and keeps the
 * plans made under the script's force_generic_plan. Measured on scripts of
 * four guarded creates and their blob rows, as small PUTs send them:
 * PostgreSQL's CPU per script went from 1.4 – 2.1 ms to 0.8 – 1.4 ms. The
 * statements up to the Sync are one implicit transaction:
 * committed at the Sync, or rolled back when one fails (PostgreSQL then
 * skips the rest). pg's Query collects one result per statement.
 */
class PipelinedScript extends pg.Query {
  constructor(statements: ReadonlyArray<{ sql: string; values: Array<string | Buffer | null> }>, callback: (err: Error | undefined, results: unknown) => void) {
    // The text pg's Query wants is never sent: submit() below sends the statements.
    super({ text: 'a pipelined script' }, callback);
    this.submit = (connection): void => {
      const c = connection as unknown as ProtocolConnection;
      c.stream.cork?.();
      try {
        for (const { sql, values } of statements) {
          const name = statementName(sql);
          if (name === '' || c.parsedStatements[name] === undefined) {
            c.parse({ text: sql, name, types: [] });
            // Before PostgreSQL confirms it: a failed script's connection is dropped (see script()).
            if (name !== '') c.parsedStatements[name] = sql;
          }
          c.bind({ portal: '', statement: name, values, valueMapper: asConverted });
          c.describe({ type: 'P', name: '' });
          c.execute({ portal: '', rows: 0 });
        }
        c.sync();
      } finally {
        c.stream.uncork?.();
      }
    };
  }
}

/** End a failed transaction and give the connection back; one that cannot roll back is dropped. */
async function rollbackAndRelease(client: pg.PoolClient): Promise<void> {
  try {
    await client.query('ROLLBACK');
    client.release();
  } catch (rollbackErr) {
    client.release(rollbackErr instanceof Error ? rollbackErr : true);
  }
}

export function createPostgresDriver(options: PostgresDriverOptions): SqlDriver {
  const { logger } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const clientConfig: pg.ClientConfig = {
    connectionString: options.dsn,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'callfs',
    options: '-c plan_cache_mode=force_custom_plan',
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    // A transaction left open by a stuck caller would hold row and namespace locks: the server ends it.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
  };
  const pool = new pg.Pool({ ...clientConfig, max: options.poolSize ?? 10, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection emits here; without a listener Node would crash.
  pool.on('error', (err) => logger.warn({ err }, 'metadata store: idle database connection failed'));

  const subscriptions = new Set<ListenSubscription>();

  return {
    kind: 'postgres',
    description: describeDsn(options.dsn),

    async query<R extends Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
      const result = await pool.query(prepared(sql, params));
      return result.rows as R[];
    },

    async transaction<T>(fn: (tx: TransactionQueryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      const client = await pool.connect();
      let open = true;
      const tx: TransactionQueryable = {
        async query<R extends Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
          if (!open) throw new Error('the transaction is already finished');
          return (await client.query(prepared(sql, params))).rows as R[];
        },
        async exec(sql: string): Promise<void> {
          if (!open) throw new Error('the transaction is already finished');
          await client.query(sql);
        },
      };
      try {
        // A simple-protocol script: BEGIN and the opening statements travel together.
        await client.query(options.begin === undefined ? 'BEGIN' : `BEGIN; ${options.begin}`);
      } catch (err) {
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        open = false;
        await rollbackAndRelease(client);
        throw err;
      }
      open = false;
      try {
        const commit = await client.query('COMMIT');
        // COMMIT of a transaction that hit an error (and whose caller swallowed it) rolls back.
        if (commit.command === 'ROLLBACK') throw new Error('the transaction was rolled back because one of its statements failed');
        client.release();
      } catch (err) {
        client.release(isConnectionError(err) && err instanceof Error ? err : undefined);
        throw err;
      }
      return result;
    },

    async script(statements: readonly Statement[]): Promise<Row[][]> {
      if (statements.length === 0) return [];
      // Converted first, as pg converts parameters: nothing is sent when a value cannot be.
      const mapped = statements.map((s) => ({ sql: s.sql, values: s.params.map((v) => pgUtils.prepareValue(v) ?? null) }));
      const client = await pool.connect();
      let results: pg.QueryResult[];
      try {
        results = await new Promise<pg.QueryResult[]>((resolve, reject) => {
          const done = (err: Error | undefined, answer: unknown): void => (err === undefined || err === null ? resolve((Array.isArray(answer) ? answer : [answer]) as pg.QueryResult[]) : reject(err));
          client.query(new PipelinedScript(mapped, done));
        });
      } catch (err) {
        // Rolled back already. The statements this script was to parse may or may not exist on
        // the connection now (PostgreSQL skips what follows a failure): it is not used again.
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      client.release();
      if (results.length !== statements.length) throw new Error(`script: ${results.length} results for ${statements.length} statements`);
      return results.map((r) => r.rows as Row[]);
    },

    async listen(channel: string, handlers: ListenHandlers): Promise<ListenSubscription> {
      const listener = startListener(clientConfig, channel, handlers, logger);
      const subscription: ListenSubscription = {
        sync: listener.sync,
        async stop() {
          subscriptions.delete(subscription);
          await listener.stop();
        },
      };
      subscriptions.add(subscription);
      await listener.firstAttempt;
      return subscription;
    },

    async close(): Promise<void> {
      await Promise.all([...subscriptions].map((s) => s.stop()));
      await pool.end();
    },
  };
}

/**
 * A dedicated connection running LISTEN, re-established with exponential
 * backoff whenever it drops.
 */
function startListener(
  config: pg.ClientConfig,
  channel: string,
  handlers: ListenHandlers,
  logger: Logger,
): { firstAttempt: Promise<void>; sync: () => Promise<void>; stop: () => Promise<void> } {
  let stopped = false;
  let client: pg.Client | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;
  let backoff = LISTEN_BACKOFF_MIN_MS;
  let up = false;
  let resolveFirst: () => void = () => {};
  const firstAttempt = new Promise<void>((resolve) => (resolveFirst = resolve));
  // The statement timeout does not apply to a listener that only waits.
  const { statement_timeout: _ignored, ...listenerConfig } = config;

  const lost = (c: pg.Client, err: unknown): void => {
    if (client !== c) return;
    client = null;
    if (heartbeat !== null) clearInterval(heartbeat);
    heartbeat = null;
    c.removeAllListeners('notification');
    c.on('error', () => {});
    void c.end().catch(() => {});
    if (up) {
      up = false;
      handlers.onDown(err);
    }
    if (stopped) return;
    logger.warn({ err, retryInMs: backoff }, 'metadata store: notification listener lost; metadata cache bypassed until it is back');
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, LISTEN_BACKOFF_MAX_MS);
  };

  const connect = (): void => {
    retryTimer = null;
    if (stopped) return;
    const c = new pg.Client(listenerConfig);
    client = c;
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c, new Error('notification connection ended')));
    c.on('notification', (msg) => {
      if (msg.channel === channel) handlers.onNotify(msg.payload ?? '');
    });
    c.connect()
      .then(() => c.query(`LISTEN ${pg.escapeIdentifier(channel)}`))
      .then(() => {
        if (client !== c || stopped) return;
        backoff = LISTEN_BACKOFF_MIN_MS;
        up = true;
        handlers.onUp();
        heartbeat = setInterval(() => {
          roundTrip(c).catch(() => {});
        }, LISTEN_HEARTBEAT_MS);
        heartbeat.unref();
      })
      .catch((err: unknown) => lost(c, err))
      .finally(resolveFirst);
  };

  /**
   * An empty query on the listening connection (EmptyQueryResponse, then
   * ReadyForQuery: the same round trip as SELECT 1, ~5 µs less of this
   * process's CPU with no row to describe and parse); one that does not
   * answer in time is given up for lost.
   */
  const roundTrip = async (c: pg.Client): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`notification connection did not answer within ${LISTEN_SYNC_TIMEOUT_MS} ms`)), LISTEN_SYNC_TIMEOUT_MS);
    });
    try {
      await Promise.race([c.query(''), timeout]);
    } catch (err) {
      lost(c, err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  connect();
  return {
    firstAttempt,
    sync: async () => {
      const c = client;
      if (c === null || !up) throw new Error('not listening');
      await roundTrip(c);
    },
    stop: async () => {
      stopped = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      if (heartbeat !== null) clearInterval(heartbeat);
      const c = client;
      client = null;
      if (up) {
        up = false;
        handlers.onDown(new Error('listener stopped'));
      }
      resolveFirst();
      if (c !== null) {
        c.removeAllListeners('notification');
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    },
  };
}
