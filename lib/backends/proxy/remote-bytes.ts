import type { Readable } from 'node:stream';
import type { ByteRange } from '../types.js';
import type { Entry } from '../../metadata/types.js';
import { CallfsError, ERROR_CODES, type ErrorCode } from '../../errors.js';
import type { PeerDirectory } from './peers.js';

/** Reads the bytes of files whose CAS blobs live on another instance. */
export interface RemoteBytes {
  /**
   * Stream a file held by `entry.instanceId` from that peer, as `onBehalfOf`
   * (the peer checks permissions again as that user). The peer must still
   * hold exactly the content of `entry` (If-Match on its sha256). Throws
   * BAD_GATEWAY when the peer is down, the peer's error code otherwise.
   */
  open(entry: Entry, options: { onBehalfOf: string; range?: ByteRange; signal?: AbortSignal }): Promise<Readable>;
}

/** "/a b/c" → "/a%20b/c": one encoding per segment, as the peer decodes once. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

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
  if (status >= 500) return new CallfsError('BAD_GATEWAY', `peer instance ${peerId} failed (${status})`, { component: 'peer' });
  if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) return new CallfsError(code as ErrorCode, message ?? code);
  return new CallfsError('BAD_GATEWAY', `peer instance ${peerId} answered ${status}`, { component: 'peer' });
}

export function createRemoteBytes(peers: PeerDirectory): RemoteBytes {
  return {
    async open(entry, options) {
      const peerId = entry.instanceId;
      if (peerId === null) throw new CallfsError('INTERNAL_ERROR', `${entry.path} has no holding instance`);
      const headers: Record<string, string> = {};
      if (entry.etag !== null) headers['if-match'] = `"${entry.etag}"`;
      if (options.range !== undefined) headers.range = `bytes=${options.range.start}-${options.range.end}`;
      const res = await peers.request(peerId, {
        method: 'GET',
        path: `/v1/files${encodePath(entry.path)}`,
        headers,
        onBehalfOf: options.onBehalfOf,
        operation: options.range === undefined ? 'read' : 'read-range',
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      const expected = options.range === undefined ? 200 : 206;
      if (res.statusCode === expected) return res;
      if (res.statusCode === 412) {
        res.destroy();
        throw new CallfsError('SERVICE_UNAVAILABLE', `${entry.path} changed while it was being read; retry`, { retryAfterSeconds: 1, component: 'contention' });
      }
      throw await peerError(peerId, res);
    },
  };
}
