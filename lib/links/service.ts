import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import type { Engine } from '../engine/index.js';
import type { ConsumeResult, Entry, MetadataStore } from '../metadata/types.js';
import type { Metrics } from '../metrics/index.js';
import { CallfsError, isCallfsError } from '../errors.js';
import { canonicalize } from '../paths.js';
import { createLinkTokens } from './token.js';

/** Longest link lifetime: one day. */
export const MAX_EXPIRY_SECONDS = 86_400;
/** Lifetime of a link when the request does not say. */
export const DEFAULT_EXPIRY_SECONDS = 3_600;

/** A generated link, as POST /v1/links/generate answers it. */
export interface GeneratedLink {
  url: string;
  token: string;
  id: string;
  path: string;
  expiresAt: Date;
}

/** A redeemed link: the file and its opened bytes. The caller consumes or destroys the stream. */
export interface RedeemedLink {
  entry: Entry;
  stream: Readable;
}

/**
 * What a link download ended as, for callfs_single_use_link_consumptions_total{status}.
 * The first four are the original CallFS's values, which its dashboards query:
 * `success` (this download got the bytes), `invalid` (the link was already used),
 * `expired`, `not_found`; the rest say what the original did not tell apart.
 */
export type ConsumptionStatus = 'success' | 'invalid' | 'expired' | 'not_found' | 'file_not_found' | 'denied' | 'aborted' | 'rate_limited' | 'error';

/** The status label of what consumeLink decided. */
const CONSUMED: Readonly<Record<ConsumeResult['status'], ConsumptionStatus>> = { consumed: 'success', used: 'invalid', expired: 'expired', not_found: 'not_found' };

export interface LinkService {
  /**
   * Create a link to a file `user` may read. Throws INVALID_PATH, FILE_NOT_FOUND,
   * PERMISSION_DENIED, BAD_REQUEST (a directory, or an expiry outside 1..86400).
   */
  generate(user: User, request: { path: string; expirySeconds: number }): Promise<GeneratedLink>;
  /**
   * Verify a token, open its file as the link's creator, then burn the link
   * with one compare-and-set; only the winner gets the stream. Throws
   * LINK_NOT_FOUND, LINK_EXPIRED, LINK_USED; FILE_NOT_FOUND / PERMISSION_DENIED
   * (or a backend's error) when the file cannot be opened, and then the link
   * is left unused.
   */
  redeem(token: string, options?: { signal?: AbortSignal }): Promise<RedeemedLink>;
  /** Count a download refused before redeem (the rate limiter). */
  countConsumption(status: ConsumptionStatus): void;
}

export interface LinkServiceOptions {
  store: Pick<MetadataStore, 'createLink' | 'getLink' | 'consumeLink'>;
  engine: Pick<Engine, 'statForRead' | 'openContent'>;
  /** The configured user of a name (the link's creator must still exist with the same uid). */
  userByName: (name: string) => User | undefined;
  /** auth.single_use_link_secret (at least 16 characters). */
  secret: string;
  /** Settings.externalUrl: scheme://host[:port], no trailing slash. */
  externalUrl: string;
  metrics: Pick<Metrics, 'linkGenerations' | 'linkConsumptions'>;
  /** Clock (tests). */
  now?: () => Date;
}

const FILE_GONE: ReadonlySet<string> = new Set(['FILE_NOT_FOUND', 'NOT_A_DIRECTORY']);

export function createLinkService(options: LinkServiceOptions): LinkService {
  const { store, engine, metrics } = options;
  const now = options.now ?? (() => new Date());
  const tokens = createLinkTokens({ secret: options.secret });
  const count = (status: ConsumptionStatus): void => {
    metrics.linkConsumptions.inc({ status });
  };

  async function generate(user: User, request: { path: string; expirySeconds: number }): Promise<GeneratedLink> {
    const { expirySeconds } = request;
    if (!Number.isInteger(expirySeconds) || expirySeconds < 1 || expirySeconds > MAX_EXPIRY_SECONDS) {
      throw new CallfsError('BAD_REQUEST', `"expiry_seconds" must be an integer from 1 to ${MAX_EXPIRY_SECONDS}`);
    }
    const path = canonicalize(request.path);
    const entry = await engine.statForRead(user, path);
    if (entry.type !== 'file') throw new CallfsError('BAD_REQUEST', `a link can only point to a file: ${path} is a directory`);
    // Rounded up so that a link lives at least the seconds asked for (JWT expiry is in whole seconds).
    const exp = Math.ceil(now().getTime() / 1000) + expirySeconds;
    const expiresAt = new Date(exp * 1000);
    const id = randomBytes(16).toString('base64url');
    const token = await tokens.sign({ id, path, user: user.name, uid: user.uid, exp });
    await store.createLink({ id, path, createdBy: user.uid, expiresAt });
    metrics.linkGenerations.inc();
    return { url: `${options.externalUrl}/download/${token}`, token, id, path, expiresAt };
  }

  async function redeem(token: string, redeemOptions: { signal?: AbortSignal } = {}): Promise<RedeemedLink> {
    const { signal } = redeemOptions;
    let status: ConsumptionStatus = 'error';
    try {
      const claims = await tokens.verify(token, now()).catch((err: unknown) => {
        status = isCallfsError(err, 'LINK_EXPIRED') ? 'expired' : 'not_found';
        throw err;
      });
      // A cheap look first: a used or expired link is refused without touching the file.
      const row = await store.getLink(claims.id);
      if (row === null) {
        status = 'not_found';
        throw new CallfsError('LINK_NOT_FOUND', 'no such link');
      }
      if (row.usedAt !== null) {
        status = 'invalid';
        throw new CallfsError('LINK_USED', 'this link has already been used');
      }
      if (row.expiresAt.getTime() <= now().getTime()) {
        status = 'expired';
        throw new CallfsError('LINK_EXPIRED', 'this link has expired');
      }
      const creator = options.userByName(claims.user);
      if (creator === undefined || creator.uid !== claims.uid) {
        status = 'denied';
        throw new CallfsError('PERMISSION_DENIED', 'the user who created this link no longer exists');
      }
      // Open before burning: a link whose file is gone (or unreadable) stays usable.
      const entry = await engine.statForRead(creator, claims.path).catch((err: unknown) => {
        if (isCallfsError(err) && FILE_GONE.has(err.code)) status = 'file_not_found';
        else if (isCallfsError(err, 'PERMISSION_DENIED')) status = 'denied';
        throw err;
      });
      if (entry.type !== 'file') {
        status = 'file_not_found';
        throw new CallfsError('FILE_NOT_FOUND', `the link's file no longer exists: ${claims.path}`);
      }
      // Bytes held by another instance are read through the peer proxy; the creator's right to read was checked above.
      const stream = await engine.openContent(entry, signal === undefined ? {} : { signal });
      // Until the caller takes the stream over, an early error must not become an uncaught exception.
      stream.on('error', () => {});
      try {
        if (signal?.aborted === true) {
          status = 'aborted';
          throw signal.reason;
        }
        if (stream.errored !== null) throw stream.errored;
        const result = await store.consumeLink(claims.id, now());
        status = CONSUMED[result.status];
        if (result.status === 'used') throw new CallfsError('LINK_USED', 'the link has already been used');
        if (result.status === 'expired') throw new CallfsError('LINK_EXPIRED', 'the link has expired');
        if (result.status === 'not_found') throw new CallfsError('LINK_NOT_FOUND', 'no such link');
        return { entry, stream };
      } catch (err) {
        stream.destroy();
        throw err;
      }
    } finally {
      count(status);
    }
  }

  return { generate, redeem, countConsumption: count };
}
