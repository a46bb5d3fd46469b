import { PassThrough, type Readable } from 'node:stream';
import type { PutOptions, PutResult } from '../backends/types.js';
import { CallfsError, isCallfsError } from '../errors.js';
import type { EngineDeps } from './context.js';
import type { Target } from './placement.js';

/**
 * A replicated put: one body streamed to several instances at once (this
 * one's CAS and peers through the peer backend), each storing, flushing and
 * hashing it as a lone put would. The body moves at the pace of the slowest
 * copy (pipe's backpressure over every branch), so a PUT with two copies
 * takes about as long as one; a copy that fails is cut loose and the others
 * go on.
 */

/** What a replicated put stored: the primary (the first target that succeeded) and every instance holding a copy. */
export interface ReplicatedPut {
  target: Target;
  stored: PutResult;
  /** Instances holding a durable, hash-verified copy, the primary first. */
  copies: string[];
}

/**
 * `body` as `n` streams carrying the same bytes. The body waits for the
 * slowest branch (it pauses while any branch is over its buffer); a branch
 * that is destroyed (its put failed) is dropped at once and stops holding
 * the others back. When every branch is gone the rest of the body is read
 * and discarded. Written out rather than pipe()d: pipe() keeps waiting for a
 * 'drain' from a destination destroyed while it was full.
 */
export function fanOut(body: Readable, n: number): PassThrough[] {
  const branches = Array.from({ length: n }, () => new PassThrough({ highWaterMark: 1 << 20 }));
  const live = new Set(branches);
  const full = new Set<PassThrough>();
  let paused = false;
  const release = (): void => {
    if (paused && full.size === 0) {
      paused = false;
      body.resume();
    }
  };
  for (const branch of branches) {
    branch.on('drain', () => {
      full.delete(branch);
      release();
    });
    branch.once('close', () => {
      live.delete(branch);
      full.delete(branch);
      release();
    });
  }
  body.on('data', (chunk: Buffer) => {
    for (const branch of live) {
      if (branch.destroyed) continue;
      if (!branch.write(chunk)) full.add(branch);
    }
    if (full.size > 0 && !paused) {
      paused = true;
      body.pause();
    }
  });
  body.once('end', () => {
    for (const branch of live) branch.end();
  });
  // Each branch must see the body fail, or its put would wait forever.
  const fail = (err: Error): void => {
    for (const branch of live) if (!branch.destroyed) branch.destroy(err);
  };
  body.once('error', fail);
  body.once('close', () => {
    if (!body.readableEnded) fail(body.errored ?? new CallfsError('BAD_REQUEST', 'the upload ended before its last byte'));
  });
  return branches;
}

/** Client mistakes and aborts: what every copy would answer alike, and what the client must hear. */
const fromClient = (err: unknown, signal?: AbortSignal): boolean =>
  (signal?.aborted === true && err === signal.reason) || isCallfsError(err, 'PAYLOAD_TOO_LARGE') || isCallfsError(err, 'BAD_REQUEST');

/**
 * Put `body` into every target at once. Acknowledged once `need` copies are
 * durable with the same sha256; otherwise every stored copy is released (the
 * collectors reclaim them) and the error that explains it is thrown: the
 * client's own (too large, cut off, aborted), else the primary's (507 when
 * this store is full), else 503.
 */
export async function putReplicated(deps: EngineDeps, targets: Target[], body: Readable, options: PutOptions, need: number): Promise<ReplicatedPut> {
  const branches = fanOut(body, targets.length);
  const settled = await Promise.allSettled(
    targets.map(async (target, i) => {
      const branch = branches[i] as PassThrough;
      try {
        return await target.backend.put(branch, options);
      } catch (err) {
        // This copy is cut loose: the body and the other copies go on without it.
        branch.destroy();
        if (target.instanceId !== null && target.instanceId !== deps.instanceId && !fromClient(err, options.signal)) deps.cluster?.suspect(target.instanceId);
        throw err;
      }
    }),
  );
  const ok: { target: Target; stored: PutResult }[] = [];
  const failures: unknown[] = [];
  settled.forEach((r, i) => (r.status === 'fulfilled' ? ok.push({ target: targets[i] as Target, stored: r.value }) : failures.push(r.reason)));
  const sha256 = ok[0]?.stored.sha256;
  const agreeing = ok.filter((c) => c.stored.sha256 === sha256);
  if (agreeing.length < ok.length) deps.logger.error({ copies: ok.map((c) => [c.target.instanceId, c.stored.sha256]) }, 'replicas of one upload disagree on its sha256; only the first one\u2019s are kept');
  const primary = agreeing[0];
  if (primary === undefined || agreeing.length < need) {
    for (const c of ok) c.stored.release?.();
    const clientError = failures.find((f) => fromClient(f, options.signal));
    if (clientError !== undefined) throw clientError;
    if (settled[0]?.status === 'rejected' && isCallfsError(settled[0].reason, 'INSUFFICIENT_STORAGE')) throw settled[0].reason;
    deps.logger.warn({ failures, stored: agreeing.length, need }, 'a replicated put made too few copies');
    throw new CallfsError('SERVICE_UNAVAILABLE', `only ${agreeing.length} of the ${need} copies a write needs could be stored`, { retryAfterSeconds: 5, component: 'replication' });
  }
  const releases = agreeing.map((c) => c.stored.release).filter((r): r is () => void => r !== undefined);
  return {
    target: primary.target,
    stored: { ...primary.stored, release: () => releases.forEach((release) => release()) },
    copies: agreeing.map((c) => c.target.instanceId).filter((id): id is string => id !== null),
  };
}
