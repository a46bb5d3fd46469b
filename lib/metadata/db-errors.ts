import { CallfsError, unavailable } from '../errors.js';

/**
 * Turning database and connection errors into CallfsErrors, in one place for
 * both drivers (pg and PGlite raise errors with the same SQLSTATE `code`).
 */

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

// Messages of pg / pg-pool errors that carry no code.
const CONNECTION_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'connection timeout',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end',
];

/** SQLSTATEs that mean "try again": deadlock and serialization failures. */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** True when `err` (or the database error inside a mapped CallfsError) is a deadlock or serialization failure. */
export function isRetryableDbError(err: unknown): boolean {
  const raw = err instanceof CallfsError ? err.cause : err;
  const code = codeOf(raw);
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

/** True when `err` says the database cannot be reached or went away. */
export function isConnectionError(err: unknown): boolean {
  const code = codeOf(err);
  if (code !== undefined) {
    if (CONNECTION_CODES.has(code)) return true;
    // 08xxx connection exceptions; 57P01-57P03 shutdown / cannot connect now; 53300 too many connections.
    if (/^08...$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  }
  const message = err instanceof Error ? err.message : '';
  if (CONNECTION_MESSAGES.some((m) => message.includes(m))) return true;
  // AggregateError from net.connect when every address of a host refused.
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  return false;
}

/**
 * Map any error thrown while talking to the database to a CallfsError.
 * CallfsErrors pass through unchanged; `database` names the store (host,
 * port and database, never a password) for SERVICE_UNAVAILABLE messages.
 */
export function mapDbError(err: unknown, database: string): CallfsError {
  if (err instanceof CallfsError) return err;
  const code = codeOf(err);
  if (isConnectionError(err)) {
    const reason = err instanceof Error && err.message !== '' ? err.message : String(code ?? err);
    return unavailable('metadata', `metadata store ${database} is unavailable: ${reason}`, err);
  }
  switch (code) {
    case '23505':
      return new CallfsError('FILE_ALREADY_EXISTS', 'the entry already exists', { cause: err });
    case '23503':
      // A parent vanished under an insert, or a directory gained a child under a delete.
      return new CallfsError('FILE_NOT_FOUND', 'a parent directory no longer exists, or a directory is no longer empty', { cause: err });
    case '23514':
    case '22P02':
    case '22003':
      return new CallfsError('BAD_REQUEST', 'the entry is not valid', { cause: err });
    case '40P01':
    case '40001':
      return new CallfsError('SERVICE_UNAVAILABLE', 'the metadata transaction conflicted with another one; retry', { cause: err, retryAfterSeconds: 1, component: 'contention' });
    case '57014':
      return unavailable('metadata', `metadata store ${database} did not answer in time (statement timeout)`, err);
    case '3D000':
    case '28000':
    case '28P01':
      return unavailable('metadata', `metadata store ${database} refused the connection: ${(err as Error).message}`, err);
    default:
      return new CallfsError('INTERNAL_ERROR', 'metadata store error', { cause: err });
  }
}

/**
 * Describe a DSN for messages: "host:port/database" without user or password.
 * Accepts URLs (postgres://…) and key=value strings.
 */
export function describeDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
      const host = url.hostname === '' ? (url.searchParams.get('host') ?? 'localhost') : url.hostname;
      const port = url.port === '' ? '5432' : url.port;
      return `${host}:${port}${url.pathname === '' ? '' : url.pathname}`;
    }
  } catch {
    // Not a URL: fall through to key=value parsing.
  }
  const fields = new Map<string, string>();
  for (const m of dsn.matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g)) {
    const key = m[1];
    const value = m[2];
    if (key !== undefined && value !== undefined) fields.set(key, value.replace(/^'|'$/g, ''));
  }
  return `${fields.get('host') ?? 'localhost'}:${fields.get('port') ?? '5432'}/${fields.get('dbname') ?? ''}`;
}
