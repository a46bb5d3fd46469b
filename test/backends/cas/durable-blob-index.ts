import type { BlobPlacement } from '../../../lib/metadata/blobs-links-sql.js';
import type { BlobRecord } from '../../../lib/metadata/types.js';
import { MemoryBlobIndex } from '../../fakes/memory-blob-index.js';
import { appendDurably, readLogLines } from './file-logged-blob-index.js';

type Op = { op: 'record'; blob: BlobPlacement } | { op: 'forget'; instanceId: string; sha256: string } | { op: 'refs'; instanceId: string; sha256: string; n: number } | { op: 'verified'; instanceId: string; sha256: string; ok: boolean };

/**
 * A MemoryBlobIndex that survives a SIGKILL as a database would: every
 * change is appended to a log file and fsynced before it is answered, and a
 * new index on the same file replays it. For the compaction crash test.
 */
export class DurableBlobIndex extends MemoryBlobIndex {
  private replaying = false;

  constructor(private readonly logFile: string) {
    super();
    this.replaying = true;
    for (const op of readLogLines<Op>(logFile)) {
      if (op.op === 'record') void super.recordBlob(op.blob);
      else if (op.op === 'forget') void super.forgetBlob(op.instanceId, op.sha256, new Date(8.64e15));
      else if (op.op === 'refs') super.setRefCount(op.instanceId, op.sha256, op.n);
      else void super.markBlobVerified(op.instanceId, op.sha256, op.ok);
    }
    this.replaying = false;
  }

  private log(op: Op): void {
    if (!this.replaying) appendDurably(this.logFile, `${JSON.stringify(op)}\n`);
  }

  override async recordBlob(blob: BlobPlacement): Promise<BlobRecord> {
    const row = await super.recordBlob(blob);
    const packed = blob.packed === undefined || blob.packed === null ? null : { segment: blob.packed.segment, offset: blob.packed.offset };
    this.log({ op: 'record', blob: { sha256: blob.sha256, instanceId: blob.instanceId, imageId: blob.imageId, size: blob.size, packed } });
    return row;
  }

  override async forgetBlob(instanceId: string, sha256: string, olderThan: Date): Promise<boolean> {
    const gone = await super.forgetBlob(instanceId, sha256, olderThan);
    if (gone) this.log({ op: 'forget', instanceId, sha256 });
    return gone;
  }

  override setRefCount(instanceId: string, sha256: string, n: number): void {
    super.setRefCount(instanceId, sha256, n);
    this.log({ op: 'refs', instanceId, sha256, n });
  }

  override async markBlobVerified(instanceId: string, sha256: string, ok: boolean): Promise<void> {
    await super.markBlobVerified(instanceId, sha256, ok);
    this.log({ op: 'verified', instanceId, sha256, ok });
  }
}
