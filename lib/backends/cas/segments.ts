import { crc32c } from '@node-rs/crc32';
import { createHash } from 'node:crypto';
import { close, closeSync, fdatasync, open, writev } from 'node:fs';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { GroupCommit } from '../../group-commit.js';
import type { Logger } from '../../log/index.js';
import type { PackedAt } from '../../metadata/types.js';
import { errnoCode, fsyncDir, readFully } from './fs-util.js';
import type { Image, ImageSet } from './images.js';
import { BlobPins } from './pins.js';
import { segmentPath, segmentsDir, segmentIdOf } from './layout.js';
import type { BlobIndex } from './types.js';

/**
 * Small blobs packed into append-only segment files (issue 22).
 *
 * A blob below the packing threshold is not a file of its own: it is a
 * record appended to the open segment of the active image,
 * `segments/<id>.seg`, and its index row names (segment, offset). Writers
 * share the flush: appends that arrive while one batch is being written and
 * fdatasync'ed form the next batch, written with one writev and flushed with
 * one fdatasync (group commit). A record is acknowledged only once flushed,
 * and indexed only after that: a crash leaves at worst bytes nobody names,
 * which compaction drops.
 *
 * Record: a 48-byte header, then the bytes.
 *
 *   0  u32 magic "CFS1"   4  u32 length   8  u32 CRC32C of the bytes
 *   12 32 bytes: the sha256               44 u32 CRC32C of bytes 0-43
 *
 * A read takes header and bytes in one read, and checks that the header is
 * whole and names the wanted blob, and the bytes' CRC32C (what Btrfs and
 * Ceph BlueStore check on reads; hardware-assisted, several GB/s). SHA-256
 * stays the identity: dedup, the ETag and the scrubber use it.
 *
 * Where each packed blob is lives in memory (loaded from the index when the
 * CAS opens; ~150 bytes a blob), so that reads and dedup need no database
 * round trip. Live bytes are counted per segment: the collector compacts a
 * sealed segment that is mostly dead by copying its live records to the open
 * segment (flushed), switching their index rows, and deleting the old file
 * once nothing names it, in a later pass (see compactSegments).
 */

export const RECORD_HEADER_BYTES = 48;
const MAGIC = 0x31534643; // "CFS1" little-endian

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fdatasyncAsync = promisify(fdatasync);
const writevAsync = promisify(writev);

/** Where a packed blob is. */
export interface PackedLocation extends PackedAt {
  image: Image;
  size: number;
}

export function encodeHeader(sha256: string, data: Uint8Array, dataCrc: number): Buffer {
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(data.length, 4);
  header.writeUInt32LE(dataCrc, 8);
  header.write(sha256, 12, 32, 'hex');
  header.writeUInt32LE(crc32c(header.subarray(0, 44)), 44);
  return header;
}

export interface RecordHeader {
  length: number;
  crc32c: number;
  sha256: string;
}

/** The header at the start of `buf`, or null when it is not a whole, valid one. */
export function decodeHeader(buf: Buffer): RecordHeader | null {
  if (buf.length < RECORD_HEADER_BYTES || buf.readUInt32LE(0) !== MAGIC) return null;
  if (crc32c(buf.subarray(0, 44)) !== buf.readUInt32LE(44)) return null;
  return { length: buf.readUInt32LE(4), crc32c: buf.readUInt32LE(8), sha256: buf.toString('hex', 12, 44) };
}

/** What reading a packed record gave. */
export type PackedRead =
  | { kind: 'ok'; data: Buffer }
  /** The record there is another blob's, or gone: the blob moved meanwhile (compaction). */
  | { kind: 'moved' }
  /** The header names the blob but the bytes fail their CRC32C, or are cut short. */
  | { kind: 'corrupt'; detail: string; data: Buffer | null };

/** Read and check a packed record (header and bytes in one read). */
export async function readPacked(location: PackedLocation, sha256: string): Promise<PackedRead> {
  let fd: number;
  try {
    fd = await openAsync(segmentPath(location.image.volume, location.segment), 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { kind: 'moved' };
    throw err;
  }
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + location.size);
  let filled: number;
  try {
    filled = await readFully(fd, buf, buf.length, location.offset - RECORD_HEADER_BYTES);
  } finally {
    closeSync(fd);
  }
  const header = decodeHeader(buf.subarray(0, Math.min(filled, RECORD_HEADER_BYTES)));
  if (header === null || header.sha256 !== sha256) {
    return header === null && filled >= RECORD_HEADER_BYTES ? { kind: 'corrupt', detail: 'segment record header damaged', data: null } : { kind: 'moved' };
  }
  if (header.length !== location.size) return { kind: 'corrupt', detail: `segment record of ${header.length} bytes instead of ${location.size}`, data: null };
  const data = buf.subarray(RECORD_HEADER_BYTES, filled);
  if (data.length < location.size) return { kind: 'corrupt', detail: 'segment record cut short', data };
  const actual = crc32c(data);
  if (actual !== header.crc32c) return { kind: 'corrupt', detail: `CRC32C ${actual.toString(16)} instead of ${header.crc32c.toString(16)}`, data };
  return { kind: 'ok', data };
}

/** What checking a packed record against its sha256 gave: its bytes, or why not and what was read of them. */
export type HashedRead = { detail: null; data: Buffer } | { detail: string; data: Buffer | null };

/** readPacked, then the bytes hashed (SHA-256, not only their CRC32C): what the scrubber and compaction check. */
export async function readPackedHashed(location: PackedLocation, sha256: string): Promise<HashedRead> {
  const got = await readPacked(location, sha256);
  if (got.kind === 'moved') return { detail: 'the segment record is not this blob', data: null };
  if (got.kind === 'corrupt') return { detail: got.detail, data: got.data };
  const actual = createHash('sha256').update(got.data).digest('hex');
  return actual === sha256 ? { detail: null, data: got.data } : { detail: `read ${actual}`, data: got.data };
}

/** One open segment file taking appends. */
interface OpenSegment {
  id: number;
  fd: number;
  size: number;
}

interface Append {
  sha256: string;
  data: Buffer;
  crc: number;
}

/**
 * Appends to one image's open segment, a batch at a time (GroupCommit): the
 * records of a batch go out in one positioned writev and one fdatasync. A
 * failed batch abandons its segment (its tail is unknown): the next batch
 * starts a new one. A segment at `segmentBytes` or more is closed and the
 * next batch starts a new one.
 */
class SegmentWriter {
  private current: OpenSegment | null = null;
  private nextId = 0;
  private readonly group: GroupCommit<Append, PackedAt>;

  constructor(
    private readonly image: Image,
    private readonly segmentBytes: number,
    /** Told of each record placed (before it is written), so that its segment is not deleted before it is indexed. */
    private readonly placing: (segment: number, records: number) => void,
  ) {
    this.group = new GroupCommit((items) => this.writeBatch(items), 256);
  }

  append(item: Append): Promise<PackedAt> {
    return this.group.submit(item);
  }

  /** The segment taking appends now (never compacted or deleted). */
  get openSegmentId(): number | null {
    return this.current?.id ?? null;
  }

  private async writeBatch(items: Append[]): Promise<PackedAt[]> {
    const segment = this.current ?? (await this.start());
    const buffers: Buffer[] = [];
    const placed: PackedAt[] = [];
    let end = segment.size;
    for (const item of items) {
      buffers.push(encodeHeader(item.sha256, item.data, item.crc), item.data);
      placed.push({ segment: segment.id, offset: end + RECORD_HEADER_BYTES });
      end += RECORD_HEADER_BYTES + item.data.length;
    }
    this.placing(segment.id, items.length);
    try {
      await writeAllAt(segment.fd, buffers, segment.size);
      await fdatasyncAsync(segment.fd);
    } catch (err) {
      this.placing(segment.id, -items.length);
      this.finish(segment);
      throw err;
    }
    segment.size = end;
    if (end >= this.segmentBytes) this.finish(segment);
    return placed;
  }

  /** A new segment file, its name flushed before any record in it is acknowledged. */
  private async start(): Promise<OpenSegment> {
    const dir = segmentsDir(this.image.volume);
    if (this.nextId === 0) {
      // Ids only grow (never reused, so a stale location can never name a newer file): past every
      // segment there, and past the clock, so that a segment deleted before a restart stays unused.
      await mkdir(dir, { recursive: true, mode: 0o750 });
      const existing = (await readdir(dir)).map(segmentIdOf).filter((id): id is number => id !== null);
      this.nextId = Math.max(Date.now(), ...existing.map((id) => id + 1));
    }
    const id = Math.max(this.nextId, Date.now());
    this.nextId = id + 1;
    const fd = await openAsync(segmentPath(this.image.volume, id), 'wx', 0o440);
    try {
      await fsyncDir(dir);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.current = { id, fd, size: 0 };
    return this.current;
  }

  private finish(segment: OpenSegment): void {
    if (this.current === segment) this.current = null;
    void closeAsync(segment.fd).catch(() => undefined);
  }

  /** Close the open segment if no append is running or waiting; true when none is open now. */
  closeIfIdle(): boolean {
    if (this.group.busy) return false;
    if (this.current !== null) this.finish(this.current);
    return true;
  }

  /** Close the open segment (the CAS is closing; no batch runs). */
  close(): void {
    if (this.current !== null) this.finish(this.current);
  }
}

/** writev every buffer at `position`, continuing after short writes. */
async function writeAllAt(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    // IOV_MAX is 1024 on Linux.
    const chunk = pending.slice(0, 1024);
    const { bytesWritten } = await writevAsync(fd, chunk, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buf of pending) {
      if (skip >= buf.length) {
        skip -= buf.length;
        continue;
      }
      rest.push(skip > 0 ? buf.subarray(skip) : buf);
      skip = 0;
    }
    if (bytesWritten === 0 && rest.length > 0) throw Object.assign(new Error('segment write made no progress'), { code: 'EIO' });
    pending = rest;
  }
}

/** Live records of one segment: how many, how many bytes. */
export interface SegmentLive {
  count: number;
  bytes: number;
}

/** The key of a segment in PackedBlobs' maps (and emptySince). */
export const segmentKey = (imageId: string, segment: number): string => `${imageId}/${segment}`;

/**
 * Every packed blob's location, live bytes per segment, and the writers of
 * the images' open segments.
 */
export class PackedBlobs {
  private readonly locations = new Map<string, PackedLocation>();
  private readonly members = new Map<string, Set<string>>();
  private readonly writers = new Map<string, SegmentWriter>();
  /** Records appended (or being appended) and not yet indexed or given up, per segment. */
  private readonly unsettled = new Map<string, number>();
  /** Index rows of packed blobs left to a put's caller and not yet written or given up (see awaitRow), per blob. */
  private readonly rowsAwaited = new BlobPins();
  /** Segments seen with no live record, and when: deleted by a later collection. */
  readonly emptySince = new Map<string, number>();
  /**
   * Whether the index named, at load, a blob under the packing threshold
   * stored as a file of its own (put before packing, or with a lower
   * threshold). While it did not, a small put has no file to deduplicate
   * against and skips looking for one (a stat per image, 5 % of a 4 KiB
   * PUT's time): every small blob put since is packed, so this map knows it.
   */
  smallFilesIndexed = true;

  constructor(
    private readonly images: ImageSet,
    /** Blobs of fewer bytes are packed; 0 packs nothing. */
    readonly packBelowBytes: number,
    /** A segment this big takes no more appends. */
    readonly segmentBytes: number,
  ) {}

  /** Load every packed copy of `instanceId` from the index. */
  async load(index: BlobIndex, instanceId: string, logger: Logger): Promise<void> {
    let unknownImage = 0;
    let smallFiles = 0;
    for await (const row of index.listBlobs(instanceId, { packedOnly: true, filesBelow: this.packBelowBytes })) {
      if (row.packed === null) {
        smallFiles++;
        continue;
      }
      const image = this.images.get(row.imageId);
      if (image === undefined) {
        unknownImage++;
        continue;
      }
      this.set(row.sha256, { image, segment: row.packed.segment, offset: row.packed.offset, size: row.size });
    }
    if (unknownImage > 0) logger.warn({ rows: unknownImage }, 'packed CAS blobs indexed in images this CAS does not have');
    this.smallFilesIndexed = smallFiles > 0;
  }

  get size(): number {
    return this.locations.size;
  }

  get(sha256: string): PackedLocation | undefined {
    return this.locations.get(sha256);
  }

  set(sha256: string, location: PackedLocation): void {
    this.delete(sha256);
    this.locations.set(sha256, location);
    const key = segmentKey(location.image.id, location.segment);
    let set = this.members.get(key);
    if (set === undefined) this.members.set(key, (set = new Set()));
    set.add(sha256);
    this.emptySince.delete(key);
  }

  /** Forget where a blob is (collected, evicted, quarantined): its bytes become dead. */
  delete(sha256: string): void {
    const old = this.locations.get(sha256);
    if (old === undefined) return;
    this.locations.delete(sha256);
    const key = segmentKey(old.image.id, old.segment);
    const set = this.members.get(key);
    set?.delete(sha256);
    if (set?.size === 0) this.members.delete(key);
  }

  /** The blobs whose records are in a segment. */
  blobsIn(image: Image, segment: number): string[] {
    return [...(this.members.get(segmentKey(image.id, segment)) ?? [])];
  }

  live(image: Image, segment: number): SegmentLive {
    let bytes = 0;
    const shas = this.members.get(segmentKey(image.id, segment));
    if (shas === undefined) return { count: 0, bytes: 0 };
    for (const sha of shas) bytes += (this.locations.get(sha)?.size ?? 0) + RECORD_HEADER_BYTES;
    return { count: shas.size, bytes };
  }

  /** Packed blobs in an image. */
  countIn(image: Image): number {
    let n = 0;
    for (const location of this.locations.values()) if (location.image === image) n++;
    return n;
  }

  /** Records of the segment that are being appended or indexed: it must not be deleted. */
  unsettledIn(image: Image, segment: number): number {
    return this.unsettled.get(segmentKey(image.id, segment)) ?? 0;
  }

  /**
   * An appended record is indexed (and set here) or given up: call once per
   * append, whatever happened, with what append resolved to; nothing when
   * the append failed.
   */
  settled(image: Image, at: PackedAt): void {
    this.countUnsettled(image, at.segment, -1);
  }

  /**
   * A put left the index row of `sha256`, packed in `segment` of `image`, to
   * its caller's commit (PutOptions.deferIndex). Until the returned function
   * is called (once the row is written, or given up), the record counts as
   * unsettled, so its segment is not deleted, and compaction does not move
   * the blob: the row, written later, names this place. `appended`: the put
   * appended the record itself, and its append counts it already.
   */
  awaitRow(sha256: string, image: Image, segment: number, appended: boolean): () => void {
    if (!appended) this.countUnsettled(image, segment, 1);
    const release = this.rowsAwaited.pin(sha256);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
      this.countUnsettled(image, segment, -1);
    };
  }

  /** Whether a put's caller is still to write an index row naming where the blob is packed now (see awaitRow). */
  rowAwaited(sha256: string): boolean {
    return this.rowsAwaited.has(sha256);
  }

  private countUnsettled(image: Image, segment: number, records: number): void {
    const key = segmentKey(image.id, segment);
    const n = (this.unsettled.get(key) ?? 0) + records;
    if (n > 0) this.unsettled.set(key, n);
    else this.unsettled.delete(key);
  }

  /**
   * The segment of `image` taking appends now, if any. The writer of an image
   * that no longer takes writes (sealed, failed) is let go once idle, so that
   * its last segment can be compacted too.
   */
  openSegment(image: Image): number | null {
    const writer = this.writers.get(image.id);
    if (writer === undefined) return null;
    if (image.state !== 'active' && writer.closeIfIdle()) {
      this.writers.delete(image.id);
      return null;
    }
    return writer.openSegmentId;
  }

  /** Append a record to `image`'s open segment; resolves once it is flushed. */
  append(image: Image, sha256: string, data: Buffer): Promise<PackedAt> {
    let writer = this.writers.get(image.id);
    if (writer === undefined) {
      const placing = (segment: number, records: number): void => this.countUnsettled(image, segment, records);
      this.writers.set(image.id, (writer = new SegmentWriter(image, this.segmentBytes, placing)));
    }
    return writer.append({ sha256, data, crc: crc32c(data) });
  }

  close(): void {
    for (const writer of this.writers.values()) writer.close();
    this.writers.clear();
  }
}

/** A segment file of an image, with its size on disk. */
export interface SegmentFile {
  id: number;
  bytes: number;
}

/** The segment files of an image (none when it has no segments/ directory). */
export async function listSegments(image: Image): Promise<SegmentFile[]> {
  let names: string[];
  try {
    names = await readdir(segmentsDir(image.volume));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: SegmentFile[] = [];
  for (const name of names) {
    const id = segmentIdOf(name);
    if (id === null) continue;
    try {
      out.push({ id, bytes: (await stat(segmentPath(image.volume, id))).size });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return out.sort((a, b) => a.id - b.id);
}

/** Delete a segment file; true when it was there. */
export async function deleteSegment(image: Image, id: number): Promise<boolean> {
  try {
    await unlink(segmentPath(image.volume, id));
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
