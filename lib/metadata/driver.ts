/**
 * The small seam between the store's SQL and the two ways of running it: a pg
 * pool on a Postgres server, or PGlite in-process. Everything above this file
 * is shared; everything below it is driver-specific.
 */

/** A row as returned by a driver: column name → value (bigints may be strings or numbers). */
export type Row = Record<string, unknown>;

/** Something that runs one parameterised statement: the driver itself or an open transaction. */
export interface Queryable {
  /** Run one statement with $1… parameters and return its rows. Throws the raw database error. */
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A connection inside BEGIN … COMMIT. */
export interface TransactionQueryable extends Queryable {
  /** Run a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** One parameterised statement of a script. */
export interface Statement {
  sql: string;
  params: readonly unknown[];
}

export interface TransactionOptions {
  /** SQL without parameters run right after BEGIN (one round trip with it on Postgres). */
  begin?: string;
}

/** Callbacks of a LISTEN subscription. */
export interface ListenHandlers {
  /** One notification payload on the channel. */
  onNotify(payload: string): void;
  /** The subscription is (again) established; notifications from now on are delivered. */
  onUp(): void;
  /** The subscription was lost; notifications may be missed until onUp. */
  onDown(err: unknown): void;
}

export interface ListenSubscription {
  /**
   * One round trip on the listening connection. When it resolves, every
   * notification committed before it was sent has been handed to onNotify
   * (the server sends pending notifications before a query's answer, on the
   * same connection). Rejects when not listening.
   */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

export interface SqlDriver extends Queryable {
  /** 'postgres' or 'pglite' (for logs and error messages). */
  readonly kind: 'postgres' | 'pglite';
  /** Human description of the database, never containing a password. */
  readonly description: string;
  /**
   * Run `fn` inside one transaction on one connection: COMMIT when it resolves,
   * ROLLBACK when it throws. Transactions never interleave their statements.
   * `options.begin`: statements without parameters to run first, in the same
   * round trip as BEGIN where the driver can (a lock every caller takes).
   */
  transaction<T>(fn: (tx: TransactionQueryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Run `statements` as one transaction, in one round trip where the driver
   * can, and return each statement's rows. A failing statement rolls back the
   * whole script. For writes decided before the transaction, whose statements
   * carry their own guards.
   */
  script(statements: readonly Statement[]): Promise<Row[][]>;
  /**
   * Subscribe to a notification channel on a dedicated connection that
   * reconnects by itself. Absent when notifications cannot reach other
   * processes (PGlite). Resolves once the first subscription attempt ended,
   * successfully or not.
   */
  listen?(channel: string, handlers: ListenHandlers): Promise<ListenSubscription>;
  /** Close every connection. */
  close(): Promise<void>;
}
