import type { Context } from 'koa';
import type { PeerDirectory } from '../backends/proxy/peers.js';
import type { RequestState } from './state.js';

/** Request headers that carry meaning to the peer; everything else (auth, hop-by-hop) is ours. */
const FORWARDED_REQUEST = ['content-type', 'content-length', 'transfer-encoding', 'if-match', 'if-unmodified-since', 'if-none-match', 'if-modified-since', 'range', 'x-callfs-mode', 'x-request-id'];
/** Response headers that are the peer's answer; security headers and the request id stay ours. */
const KEPT_RESPONSE = /^(content-|etag$|last-modified$|accept-ranges$|retry-after$|x-callfs-(?!on-behalf-of))/;

/**
 * Send the request to the peer that holds the bytes, body streamed as it
 * arrives, and relay the peer's answer (status, headers, body) as it streams
 * back. The peer checks permissions again as the caller.
 */
export async function forwardToPeer(ctx: Context & { state: RequestState }, peers: PeerDirectory, peerId: string, kind: 'write' | 'relocate', body?: Buffer): Promise<void> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST) {
    const value = ctx.get(name);
    if (value !== '') headers[name] = value;
  }
  headers['x-request-id'] = ctx.state.requestId;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
    delete headers['transfer-encoding'];
  }
  const res = await peers.request(peerId, {
    method: ctx.method,
    path: ctx.url,
    headers,
    onBehalfOf: (ctx.state.user as NonNullable<RequestState['user']>).name,
    body: body ?? ctx.req,
    signal: ctx.state.signal,
    operation: kind === 'relocate' ? 'patch' : 'write',
    kind,
  });
  ctx.status = res.statusCode ?? 502;
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined && KEPT_RESPONSE.test(name)) ctx.set(name, value as string | string[]);
  }
  ctx.set('X-CallFS-Proxied-To', peerId);
  if (ctx.method === 'HEAD' || ctx.status === 204 || ctx.status === 304) {
    res.resume();
    return;
  }
  const length = res.headers['content-length'];
  ctx.body = res;
  if (length !== undefined) ctx.length = Number(length);
}
