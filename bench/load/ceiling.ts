import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from '../harness/cleanup.js';
import { startServer, type ServerProcess } from '../harness/processes.js';
import type { BenchTls } from '../harness/tls.js';
import { runWrk } from './wrk.js';

/**
 * B-ceil: the single-core ceilings, measured with bench/baselines/ceiling.ts
 * on the server core and this process on the load core.
 *   tlsSend     — server encrypts 256 MiB responses from memory, wrk reads (c=2): the most a Node GET can move.
 *   tlsRecv     — client encrypts, server decrypts: a PUT without hashing.
 *   sha256      — createHash('sha256') over 1 MiB buffers.
 *   tlsRecvSha  — server decrypts and hashes on one core: the PUT ceiling.
 * Figures are MB/s (10^6 bytes per second).
 */
export interface Ceilings {
  tlsSend: number;
  tlsRecv: number;
  sha256: number;
  tlsRecvSha: number;
}

const WORKER = fileURLToPath(new URL('../baselines/ceiling.js', import.meta.url));
const MiB = 1024 * 1024;

interface Figure {
  bytes: number;
  seconds: number;
}

const parse = (line: string): Figure | undefined => {
  try {
    const v = JSON.parse(line) as Partial<Figure>;
    return typeof v.bytes === 'number' && typeof v.seconds === 'number' ? (v as Figure) : undefined;
  } catch {
    return undefined;
  }
};
const mbps = (f: Figure): number => f.bytes / f.seconds / 1e6;

async function startWorker(args: string[], cleanup: Cleanup): Promise<{ proc: ServerProcess; port: number }> {
  let spawned: ServerProcess | null = null;
  cleanup.add(`stop B-ceil ${args[0] ?? ''}`, async () => void (await spawned?.stop('SIGTERM', 5000)));
  const { proc, ready: port } = await startServer({
    name: `B-ceil ${args[0] ?? ''}`,
    file: process.execPath,
    args: [WORKER, ...args],
    timeoutMs: 15_000,
    onSpawn: (p) => (spawned = p),
    ready: (line) => {
      try {
        return (JSON.parse(line) as { port?: number }).port;
      } catch {
        return undefined;
      }
    },
  });
  return { proc, port };
}

function connect(port: number, bench: BenchTls): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...bench.client, host: '127.0.0.1', port }, () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('B-ceil: TLS connect timed out')));
    socket.on('error', reject);
  });
}

/** wrk (C, like the scenarios' client) reads; only the server side is Node. */
async function tlsSend(seconds: number, bench: BenchTls, wrk: string, cleanup: Cleanup): Promise<number> {
  const { proc, port } = await startWorker(['tls-send', bench.certFile, bench.keyFile], cleanup);
  try {
    const common = { wrk, port, script: 'read.lua' as const, args: ['GET', '/', '0', '-'], connections: 2, opensslConf: bench.opensslConf };
    await runWrk({ ...common, seconds: 1 });
    const r = await runWrk({ ...common, seconds });
    return r.bytes / r.seconds / 1e6;
  } finally {
    await proc.stop('SIGTERM', 5000);
  }
}

async function tlsRecv(seconds: number, hash: boolean, bench: BenchTls, cleanup: Cleanup): Promise<number> {
  const { proc, port } = await startWorker(['tls-recv', bench.certFile, bench.keyFile, hash ? '1' : '0'], cleanup);
  try {
    const result = proc.nextLine((line) => parse(line) !== undefined, (seconds + 20) * 1000);
    const socket = await connect(port, bench);
    const chunk = randomBytes(MiB);
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      // A server that stops reading must fail the measurement, not hang it.
      if (!socket.write(chunk)) await once(socket, 'drain', { signal: AbortSignal.timeout(10_000) });
    }
    socket.end();
    return mbps(parse(await result) as Figure);
  } finally {
    await proc.stop('SIGTERM', 5000);
  }
}

async function sha256(seconds: number, cleanup: Cleanup): Promise<number> {
  let spawned: ServerProcess | null = null;
  cleanup.add('stop B-ceil sha256', async () => void (await spawned?.stop('SIGTERM', 5000)));
  const { proc, ready } = await startServer({
    name: 'B-ceil sha256',
    file: process.execPath,
    args: [WORKER, 'sha256', String(seconds)],
    timeoutMs: (seconds + 20) * 1000,
    onSpawn: (p) => (spawned = p),
    ready: parse,
  });
  await proc.exited;
  return mbps(ready);
}

/** The four ceilings, `seconds` each, one after the other. */
export async function measureCeilings(seconds: number, bench: BenchTls, wrk: string, cleanup: Cleanup, log: (line: string) => void = () => undefined): Promise<Ceilings> {
  const step = async (name: string, run: () => Promise<number>): Promise<number> => {
    const value = await run();
    log(`  B-ceil  ${name}: ${value.toFixed(0)} MB/s`);
    return value;
  };
  return {
    tlsSend: await step('TLS send (wrk reads)', () => tlsSend(seconds, bench, wrk, cleanup)),
    tlsRecv: await step('TLS receive', () => tlsRecv(seconds, false, bench, cleanup)),
    sha256: await step('SHA-256', () => sha256(seconds, cleanup)),
    tlsRecvSha: await step('TLS receive + SHA-256', () => tlsRecv(seconds, true, bench, cleanup)),
  };
}
