/**
 * Child process of the compaction crash test. argv: <root> <mode> <index-log> <seed|compact> [<step> <n>].
 * seed: stores PACKED_UPLOADS small blobs (content #i, size packedSize(i)), gives every third
 * one a reference, closes and prints "done". compact: collects with no grace (so compaction
 * follows at once) and SIGKILLs itself the n-th time the compaction reaches <step>; prints
 * "done" if it got through.
 */
import type { CompactionStep } from '../../../lib/backends/cas/context.js';
import { createCasBackend } from '../../../lib/backends/cas/index.js';
import { createSilentLogger } from '../../../lib/log/index.js';
import { createMetrics } from '../../../lib/metrics/index.js';
import { INSTANCE_ID, MiB, contentFor, sha256Hex } from '../../support/cas.js';
import { streamOf } from '../../contract/backend-contract.js';
import { DurableBlobIndex } from './durable-blob-index.js';
import { PACKED_SEGMENT_BYTES, PACKED_UPLOADS, isKept, packedSize } from './packed-fixtures.js';

async function main(): Promise<void> {
  const [root, mode, indexLog, verb, step, nth] = process.argv.slice(2);
  if (root === undefined || (mode !== 'loop' && mode !== 'dir') || indexLog === undefined || (verb !== 'seed' && verb !== 'compact')) {
    throw new Error('usage: compaction-child <root> <loop|dir> <index-log> <seed|compact> [<step> <n>]');
  }
  const index = new DurableBlobIndex(indexLog);
  let seen = 0;
  const backend = await createCasBackend({
    rootDir: root,
    mode,
    instanceId: INSTANCE_ID,
    index,
    logger: createSilentLogger(),
    metrics: createMetrics({ defaultMetrics: false }),
    imageSizeBytes: 64 * MiB,
    minFreeBytes: 8 * MiB,
    minFreeInodes: 64,
    gcIntervalMs: 0,
    scrubIntervalMs: 0,
    gcGraceMs: 0,
    segmentBytes: PACKED_SEGMENT_BYTES,
    compactionProbe: (at: CompactionStep) => {
      if (at === step && ++seen === Number(nth)) process.kill(process.pid, 'SIGKILL');
    },
  });
  if (verb === 'seed') {
    for (let i = 0; i < PACKED_UPLOADS; i += 8) {
      await Promise.all(
        Array.from({ length: Math.min(8, PACKED_UPLOADS - i) }, async (_, k) => {
          const data = contentFor(i + k, packedSize(i + k));
          const { id, release } = await backend.put(streamOf(data));
          release?.();
          if (id !== sha256Hex(data)) throw new Error(`blob ${i + k} stored as ${id}`);
          if (isKept(i + k)) index.setRefCount(INSTANCE_ID, id, 1);
        }),
      );
    }
  } else {
    await backend.gc();
  }
  await backend.close();
  process.stdout.write('done\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
