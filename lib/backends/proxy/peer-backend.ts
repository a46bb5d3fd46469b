import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { CallfsError, ERROR_CODES, type ErrorCode } from '../../errors.js';
import { capabilitiesOf, type BackendType } from '../registry.js';
import type { Backend, BackendCallOptions, BlobStat, OpenOptions, OpenResult, PutOptions, PutResult } from '../types.js';
import type { PeerDirectory } from './peers.js';

/** The internal routes a peer serves its instance-local blobs on (lib/http/routes/internal.ts). */
export const INTERNAL_BLOBS = '/internal/v1/blobs';

export interface PeerBackendOptions {
  peers: PeerDirectory;
  peerId: string;
  /** The peer's instance-local backend type its blobs are recorded under ('cas'). */
  type: BackendType;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Read a peer's JSON error envelope (small) and turn it into the same CallfsError. */
export async function peerError(peerId: string, res: Readable & { statusCode?: number }): Promise<CallfsError> {
  const status = res.statusCode ?? 0;
  let text = '';
  for await (const chunk of res) {
    text += String(chunk);
    if (text.length > 16_384) break;
  }
  res.destroy();
  let code: string | undefined;
  let message: string | undefined;
  try {
    ({ code, message } = JSON.parse(text) as { code?: string; message?: string });
  } catch {
    /* not our envelope */
  }
  // The peer read its copy and found it corrupted: that is what the client must hear, not "a peer failed".
  if (status === 500 && code === 'INTEGRITY_ERROR') return new CallfsError('INTEGRITY_ERROR', `peer instance ${peerId} holds a corrupted copy`);
  // A peer out of room is what it is; any other failure of the peer is a bad gateway.
  if (status === 507 && code === 'INSUFFICIENT_STORAGE') return new CallfsError('INSUFFICIENT_STORAGE', `peer instance ${peerId} has no room`, { component: 'peer' });
  if (status >= 500) return new CallfsError('BAD_GATEWAY', `peer instance ${peerId} failed (${status})`, { component: 'peer' });
  if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) return new CallfsError(code as ErrorCode, message ?? code);
  return new CallfsError('BAD_GATEWAY', `peer instance ${peerId} answered ${status}`, { component: 'peer' });
}

/** `body` cut off with PAYLOAD_TOO_LARGE once more than `maxBytes` passed (the error also kept on the stream). */
function limited(body: Readable, maxBytes: number): Readable {
  let seen = 0;
  const limiter: Transform & { tooLarge?: CallfsError } = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen <= maxBytes) {
        callback(null, chunk);
        return;
      }
      limiter.tooLarge = new CallfsError('PAYLOAD_TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes`);
      callback(limiter.tooLarge);
    },
  });
  body.once('error', (err) => limiter.destroy(err));
  return body.pipe(limiter);
}

/**
 * Another instance as a Backend: the blobs of its instance-local store,
 * reached over HTTPS through the peer directory (its connection pool, the
 * internal secret, the first-byte and idle timeouts). Ids are sha256 hex, as
 * on the peer; a whole read is verified there against the id, so the bytes
 * that arrive are the ones the entry names. delete() is a no-op: the peer's
 * collector reclaims blobs by their reference counts, as for the local CAS.
 *
 * Bytes put here are pinned on the peer for a lease (PEER_PIN_LEASE_MS in
 * lib/engine/blobs.ts) rather than until release(), which is local and a
 * no-op: the peer cannot hear of our commit.
 */
export function createPeerBackend(options: PeerBackendOptions): Backend {
  const { peers, peerId, type } = options;
  const blobPath = (id: string): string => {
    if (!SHA256.test(id)) throw new CallfsError('FILE_NOT_FOUND', `no such blob: ${id}`);
    return `${INTERNAL_BLOBS}/${id}`;
  };
  const signalOf = (o: BackendCallOptions): { signal?: AbortSignal } => (o.signal === undefined ? {} : { signal: o.signal });
  const drained = (res: IncomingMessage): void => {
    res.resume();
  };

  return {
    type,
    capabilities: capabilitiesOf(type),

    async put(body: Readable, putOptions: PutOptions = {}): Promise<PutResult> {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      // Declared, so that the peer's CAS can compare the bytes with a stored blob of that length.
      if (putOptions.expectedSize !== undefined) headers['content-length'] = String(putOptions.expectedSize);
      const sent = putOptions.maxBytes === undefined ? body : limited(body, putOptions.maxBytes);
      let res: IncomingMessage;
      try {
        res = await peers.request(peerId, { method: 'PUT', path: INTERNAL_BLOBS, headers, body: sent, operation: 'write', kind: 'write', ...signalOf(putOptions) });
      } catch (err) {
        // Past the limit, the limiter's error is the answer, not the broken request it caused.
        const tooLarge = (sent as Readable & { tooLarge?: CallfsError }).tooLarge;
        body.destroy();
        throw tooLarge ?? err;
      }
      if (res.statusCode !== 201) throw await peerError(peerId, res);
      let text = '';
      for await (const chunk of res) text += String(chunk);
      const stored = JSON.parse(text) as { id?: unknown; size?: unknown; sha256?: unknown };
      if (typeof stored.id !== 'string' || typeof stored.sha256 !== 'string' || typeof stored.size !== 'number') {
        throw new CallfsError('BAD_GATEWAY', `peer instance ${peerId} answered a put without its result`, { component: 'peer' });
      }
      return { id: stored.id, size: stored.size, sha256: stored.sha256 };
    },

    async open(id: string, openOptions: OpenOptions = {}): Promise<OpenResult> {
      const headers: Record<string, string> = {};
      const { range } = openOptions;
      if (range !== undefined) headers.range = `bytes=${range.start}-${range.end}`;
      const res = await peers.request(peerId, { method: 'GET', path: blobPath(id), headers, operation: range === undefined ? 'read' : 'read-range', ...signalOf(openOptions) });
      if (res.statusCode !== (range === undefined ? 200 : 206)) throw await peerError(peerId, res);
      const total = range === undefined ? Number(res.headers['content-length']) : Number(/\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1]);
      return { size: Number.isFinite(total) ? total : 0, stream: res };
    },

    async stat(id: string, callOptions: BackendCallOptions = {}): Promise<BlobStat | null> {
      if (!SHA256.test(id)) return null;
      const res = await peers.request(peerId, { method: 'HEAD', path: blobPath(id), operation: 'stat', ...signalOf(callOptions) });
      drained(res);
      if (res.statusCode === 404) return null;
      if (res.statusCode !== 200) throw new CallfsError('BAD_GATEWAY', `peer instance ${peerId} answered ${res.statusCode} to a stat`, { component: 'peer' });
      return { id, size: Number(res.headers['content-length']) };
    },

    async delete(_id: string, callOptions: BackendCallOptions = {}): Promise<void> {
      callOptions.signal?.throwIfAborted();
    },

    async evict(id: string, callOptions: BackendCallOptions = {}): Promise<boolean> {
      const res = await peers.request(peerId, { method: 'DELETE', path: blobPath(id), operation: 'evict', ...signalOf(callOptions) });
      if (res.statusCode !== 200) throw await peerError(peerId, res);
      let text = '';
      for await (const chunk of res) text += String(chunk);
      return (JSON.parse(text) as { evicted?: unknown }).evicted === true;
    },

    check: () => peers.check(peerId),

    async close(): Promise<void> {
      // The directory owns the connections.
    },
  };
}
