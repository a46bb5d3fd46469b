import { readdir, readFile } from 'node:fs/promises';
import { errnoCode, writeFileAtomic } from './fs-util.js';
import { imageSequence, imagesDir, manifestPath, volumesDir } from './layout.js';
import type { CasImageState, CasMode } from './types.js';

/**
 * The list of images and their states, kept in <root>/manifest.json so that a
 * restart knows which images are sealed. `creating` marks an image being made
 * in the background, `retired` an empty sealed image being removed: one found
 * in either state at start is a leftover of a crash and is removed.
 */
export type ManifestState = CasImageState | 'creating' | 'retired';

export interface ManifestEntry {
  id: string;
  state: ManifestState;
  createdAt: string;
  changedAt: string;
}

export interface Manifest {
  version: 1;
  mode: CasMode;
  images: ManifestEntry[];
}

const STATES: readonly ManifestState[] = ['creating', 'standby', 'active', 'sealed', 'failed', 'retired'];

function parseManifest(text: string, file: string): Manifest {
  const data = JSON.parse(text) as Partial<Manifest>;
  if (data.version !== 1 || (data.mode !== 'loop' && data.mode !== 'dir') || !Array.isArray(data.images)) {
    throw new Error(`unrecognised CAS manifest ${file}`);
  }
  for (const entry of data.images) {
    if (typeof entry?.id !== 'string' || imageSequence(entry.id) === null || !STATES.includes(entry.state)) {
      throw new Error(`bad image entry in CAS manifest ${file}: ${JSON.stringify(entry)}`);
    }
  }
  return data as Manifest;
}

/**
 * Read the manifest. When it is missing but images exist (lost or deleted by
 * hand), rebuild it from the disk with every image sealed: nothing is lost and
 * nothing is written into an image whose state is unknown.
 */
export async function loadManifest(root: string, mode: CasMode): Promise<{ manifest: Manifest; rebuilt: boolean }> {
  const file = manifestPath(root);
  try {
    return { manifest: parseManifest(await readFile(file, 'utf8'), file), rebuilt: false };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const ids = new Set<string>();
  const scan = async (dir: string, suffix: string): Promise<void> => {
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    for (const name of names) {
      if (!name.endsWith(suffix)) continue;
      const id = name.slice(0, name.length - suffix.length);
      if (imageSequence(id) !== null) ids.add(id);
    }
  };
  if (mode === 'loop') await scan(imagesDir(root), '.img');
  else await scan(volumesDir(root), '');
  const now = new Date().toISOString();
  const images = [...ids].sort().map((id): ManifestEntry => ({ id, state: 'sealed', createdAt: now, changedAt: now }));
  return { manifest: { version: 1, mode, images }, rebuilt: images.length > 0 };
}

export async function saveManifest(root: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(manifestPath(root), `${JSON.stringify(manifest, null, 2)}\n`);
}
