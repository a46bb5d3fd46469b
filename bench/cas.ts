/**
 * CAS throughput, in process (no HTTP, no TLS): what the backend itself costs.
 *   node dist/bench/cas.js [loop|dir]
 * Prints figures; never fails on a time. Files are hot in the page cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createCasBackend, resolveCasMode, type CasBackend } from '../lib/backends/cas/index.js';
import { createSilentLogger } from '../lib/log/index.js';
import { createMetrics } from '../lib/metrics/index.js';
import { MemoryBlobIndex } from '../test/fakes/memory-blob-index.js';

const MiB = 1024 * 1024;

function bodyOf(data: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) this.push(null);
      else {
        this.push(data.subarray(offset, offset + chunk));
        offset += chunk;
      }
    },
  });
}

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += (chunk as Buffer).length;
  return n;
}

async function withConcurrency<T>(items: T[], c: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: c }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

async function open(mode: 'loop' | 'dir', groupCommit: boolean): Promise<{ cas: CasBackend; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'callfs-bench-cas-'));
  const cas = await createCasBackend({
    rootDir: root,
    mode,
    instanceId: 'bench',
    index: new MemoryBlobIndex(),
    logger: createSilentLogger(),
    metrics: createMetrics({ defaultMetrics: false }),
    imageSizeBytes: 8 * 1024 * MiB,
    minFreeBytes: 256 * MiB,
    gcIntervalMs: 0,
    scrubIntervalMs: 0,
    groupCommit,
  });
  return { cas, root };
}

async function timed(label: string, bytes: number, ops: number, fn: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await fn();
  const s = (performance.now() - started) / 1000;
  console.log(`${label.padEnd(40)} ${(ops / s).toFixed(0).padStart(7)} ops/s ${(bytes / MiB / s).toFixed(0).padStart(6)} MiB/s  (${s.toFixed(2)} s)`);
}

/**
 * Unique 4 KiB puts with and without group commit, interleaved over several
 * rounds (fsync latency on a shared VM disk swings by 2-4x): median ops/s.
 */
async function smallPuts(mode: 'loop' | 'dir', concurrency: number, rounds = 5, perRound = 1000): Promise<void> {
  const a = await open(mode, false);
  const b = await open(mode, true);
  const rates: Record<string, number[]> = { false: [], true: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [groupCommit, { cas }] of (round % 2 === 0 ? [[false, a], [true, b]] : [[true, b], [false, a]]) as [boolean, { cas: CasBackend }][]) {
        const bodies = Array.from({ length: perRound }, () => randomBytes(4096));
        const started = performance.now();
        await withConcurrency(bodies, concurrency, async (body) => void (await cas.put(bodyOf(body))));
        rates[String(groupCommit)]!.push(perRound / ((performance.now() - started) / 1000));
      }
    }
  } finally {
    for (const { cas, root } of [a, b]) {
      await cas.close();
      rmSync(root, { recursive: true, force: true });
    }
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const off = median(rates.false!);
  const on = median(rates.true!);
  console.log(`put 4 KiB c=${concurrency}: groupCommit off ${off.toFixed(0)} ops/s, on ${on.toFixed(0)} ops/s (x${(on / off).toFixed(2)}; medians of ${rounds} interleaved rounds)`);
}

async function main(): Promise<void> {
  const requested = (process.argv[2] ?? 'auto') as 'loop' | 'dir' | 'auto';
  const { mode, reason } = await resolveCasMode(requested);
  console.log(`CAS bench, mode ${mode} (${reason}); node ${process.version}`);

  const hashBuf = randomBytes(64 * MiB);
  await timed('sha256 ceiling (one core)', 4 * 64 * MiB, 4, async () => {
    for (let i = 0; i < 4; i++) createHash('sha256').update(hashBuf).digest();
  });

  for (const c of [1, 16, 64]) await smallPuts(mode, c);

  const { cas, root } = await open(mode, true);
  try {
    const big = randomBytes(64 * MiB);
    const unique = Array.from({ length: 6 }, (_, i) => {
      const copy = Buffer.from(big);
      copy.writeUInt32BE(i + 1, 0);
      return copy;
    });
    await timed('put 64 MiB unique c=2', 6 * 64 * MiB, 6, () => withConcurrency(unique, 2, async (b) => void (await cas.put(bodyOf(b)))));
    await timed('put 64 MiB dedup c=2', 6 * 64 * MiB, 6, () => withConcurrency(unique, 2, async (b) => void (await cas.put(bodyOf(b)))));

    const ids: string[] = [];
    for (let i = 0; i < 64; i++) ids.push((await cas.put(bodyOf(randomBytes(MiB)))).id);
    const reads = Array.from({ length: 4 }, () => ids).flat();
    await timed('get 1 MiB (verified) c=16', reads.length * MiB, reads.length, () => withConcurrency(reads, 16, async (id) => void (await drain((await cas.open(id)).stream))));
    await timed('get 1 MiB range (unverified) c=16', reads.length * (MiB - 1), reads.length, () =>
      withConcurrency(reads, 16, async (id) => void (await drain((await cas.open(id, { range: { start: 1, end: MiB - 1 } })).stream))),
    );

    const huge = (await cas.put(bodyOf(randomBytes(256 * MiB), MiB))).id;
    await timed('get 256 MiB stream (verified) x3', 3 * 256 * MiB, 3, async () => {
      for (let i = 0; i < 3; i++) await drain((await cas.open(huge)).stream);
    });
  } finally {
    await cas.close();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
