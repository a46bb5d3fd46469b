import { mkdir, readdir, readFile, rm, statfs } from 'node:fs/promises';
import type { Logger } from '../../log/index.js';
import { forEachLimit, fsyncDir, writeFileAtomic } from './fs-util.js';
import { MARKER_FILE, blobsDir, quarantineDir, segmentsDir, tmpDir } from './layout.js';

/** What is inside one image's volume: its layout, marker, capacity and leftovers. */

export interface Capacity {
  sizeBytes: number;
  usedBytes: number;
  freeBytes: number;
  inodesTotal: number;
  inodesFree: number;
}

/** Space and inodes of the filesystem holding `dir`. */
export async function capacityOf(dir: string): Promise<Capacity> {
  const s = await statfs(dir);
  return {
    sizeBytes: s.blocks * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    freeBytes: s.bavail * s.bsize,
    inodesTotal: s.files,
    inodesFree: s.ffree,
  };
}

/** Lay out a new, empty image: blobs/, tmp/, quarantine/ and the marker. */
export async function initLayout(volume: string, id: string): Promise<void> {
  for (const dir of [blobsDir(volume), tmpDir(volume), quarantineDir(volume)]) await mkdir(dir, { mode: 0o750 });
  await writeFileAtomic(`${volume}/${MARKER_FILE}`, `${JSON.stringify({ id, format: 1, createdAt: new Date().toISOString() })}\n`);
  await fsyncDir(volume);
}

/** The marker proves that what is at volumes/<id> is image <id> (not an empty mount point). */
export async function verifyMarker(volume: string, id: string): Promise<void> {
  let marker: { id?: unknown };
  try {
    marker = JSON.parse(await readFile(`${volume}/${MARKER_FILE}`, 'utf8')) as { id?: unknown };
  } catch (err) {
    throw new Error(`CAS image ${id}: no readable ${MARKER_FILE} in ${volume}`, { cause: err });
  }
  if (marker.id !== id) throw new Error(`CAS image ${id}: ${volume} holds image ${String(marker.id)}`);
  for (const dir of [blobsDir(volume), tmpDir(volume), quarantineDir(volume)]) await mkdir(dir, { recursive: true, mode: 0o750 });
}

/** No blob, no segment, no temp file, nothing quarantined. */
export async function isEmptyImage(volume: string): Promise<boolean> {
  if ((await readdir(tmpDir(volume))).length > 0 || (await readdir(quarantineDir(volume))).length > 0) return false;
  if ((await readdir(segmentsDir(volume)).catch(() => [] as string[])).length > 0) return false;
  for (const a of await readdir(blobsDir(volume))) {
    for (const b of await readdir(`${blobsDir(volume)}/${a}`)) {
      if ((await readdir(`${blobsDir(volume)}/${a}/${b}`)).length > 0) return false;
    }
  }
  return true;
}

/** Uploads interrupted by a crash: never renamed, never acknowledged. */
export async function clearTmp(volume: string, log: Logger): Promise<void> {
  const names = await readdir(tmpDir(volume));
  for (const name of names) await rm(`${tmpDir(volume)}/${name}`, { recursive: true, force: true });
  if (names.length > 0) log.info({ volume, removed: names.length }, 'removed interrupted uploads');
}

/** Files under blobs/ab/cd/. */
export async function countBlobs(volume: string): Promise<number> {
  let count = 0;
  const top = await readdir(blobsDir(volume));
  await forEachLimit(top, 4, async (a) => {
    const mid = await readdir(`${blobsDir(volume)}/${a}`).catch(() => [] as string[]);
    for (const b of mid) {
      const names = await readdir(`${blobsDir(volume)}/${a}/${b}`).catch(() => [] as string[]);
      count += names.length;
    }
  });
  return count;
}
