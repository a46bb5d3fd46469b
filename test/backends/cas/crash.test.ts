import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { loopMountsAvailable, requireComponent } from '../../support/services.js';
import { readLogLines } from './file-logged-blob-index.js';
import {
  CRASH_UPLOADS,
  MiB,
  blobFiles,
  contentFor,
  crashUploadSize,
  eventually,
  fileSha256,
  forceCleanRoot,
  loopDevicesUnder,
  makeTempRoot,
  mountsUnder,
  openCas,
  sha256Hex,
  tmpFiles,
  type CasUnderTest,
} from '../../support/cas.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const CRASH_OPTIONS = { imageSizeBytes: 32 * MiB, minFreeBytes: 6 * MiB, minFreeInodes: 64 };

/** Run the crash child until it has acknowledged `acks` puts, then SIGKILL it mid-upload. */
async function runAndKill(root: string, mode: string, ackFile: string, indexLog: string, acks: number): Promise<void> {
  const child = spawn(process.execPath, [CHILD, root, mode, ackFile, indexLog], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child too slow: ${stderr}`)), 45_000);
      let buffered = '';
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const seen = buffered.split('\n').filter((l) => l.startsWith('ack ')).length;
        if (seen >= acks) {
          clearTimeout(timer);
          // Land somewhere inside the next uploads rather than right after an ack.
          setTimeout(resolve, Math.floor(Math.random() * 40));
        }
        if (buffered.includes('done')) reject(new Error('child finished before it was killed'));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`child exited by itself (${code}): ${stderr}`));
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

for (const mode of ['loop', 'dir'] as const) {
  describe(`CAS crash recovery (${mode} mode)`, function () {
    let root = '';
    let logs = '';
    let cas: CasUnderTest | undefined;

    before(function () {
      if (mode === 'loop') requireComponent(this, loopMountsAvailable());
    });

    beforeEach(function () {
      root = makeTempRoot(`crash-${mode}`);
      logs = makeTempRoot(`crash-logs-${mode}`);
    });

    afterEach(async function () {
      try {
        await cas?.backend.close();
      } finally {
        cas = undefined;
        forceCleanRoot(root);
        rmSync(logs, { recursive: true, force: true });
      }
    });

    it('keeps every acknowledged upload and shows no partial blob after a SIGKILL mid-upload', async function () {
      const ackFile = join(logs, 'acks.jsonl');
      const indexLog = join(logs, 'index.jsonl');
      await runAndKill(root, mode, ackFile, indexLog, 8);
      if (mode === 'loop') expect(mountsUnder(join(root, 'volumes')).length, 'mounts left by the killed child').to.be.greaterThan(0);
      // Killed mid-upload: interrupted temp files are there for start-up to clear.
      expect(tmpFiles(root).length, 'uploads in flight at the kill').to.be.greaterThan(0);

      cas = await openCas(root, { mode, ...CRASH_OPTIONS });
      const { backend } = cas;
      // A standby the child was still making is removed at start and made again in the background: until
      // it is listed, its mount and loop device are there without it.
      if (mode === 'loop') await eventually(async () => (await backend.images()).some((i) => i.state === 'standby'), 10_000, 'a standby image');
      const images = await cas.backend.images();
      if (mode === 'loop') {
        // Adopted, not mounted a second time: one mount and one loop device per image.
        expect(mountsUnder(join(root, 'volumes'))).to.have.length(images.length);
        expect(loopDevicesUnder(root)).to.have.length(images.length);
      }

      const acks = readLogLines<{ seed: number; id: string; size: number }>(ackFile);
      expect(acks.length).to.be.within(8, CRASH_UPLOADS - 1);
      for (const ack of acks) {
        const data = contentFor(ack.seed, crashUploadSize(ack.seed));
        expect(ack.id).to.equal(sha256Hex(data));
        const back = await readAll((await cas.backend.open(ack.id)).stream);
        expect(back.equals(data), `upload ${ack.seed}`).to.equal(true);
      }

      // Nothing partial under a final name, interrupted uploads gone, every file indexed.
      const indexed = new Set(readLogLines<{ sha256: string }>(indexLog).map((r) => r.sha256));
      const files = blobFiles(root);
      expect(files.length).to.be.at.least(acks.length);
      for (const file of files) {
        expect(fileSha256(file), file).to.equal(basename(file));
        expect(indexed.has(basename(file)), `${file} indexed`).to.equal(true);
      }
      expect(tmpFiles(root)).to.deep.equal([]);

      const more = randomBytes(MiB);
      const { id } = await cas.backend.put(streamOf(more));
      expect((await readAll((await cas.backend.open(id)).stream)).equals(more)).to.equal(true);
    });
  });
}

describe('CAS start-up with stale loop state', function () {
  let root = '';
  let elsewhere = '';
  let cas: CasUnderTest | undefined;

  before(function () {
    requireComponent(this, loopMountsAvailable());
  });

  beforeEach(function () {
    root = makeTempRoot('stale');
    elsewhere = '';
  });

  afterEach(async function () {
    try {
      await cas?.backend.close();
    } finally {
      cas = undefined;
      if (elsewhere !== '') forceCleanRoot(elsewhere);
      forceCleanRoot(root);
    }
  });

  /** A closed CAS holding one blob; returns the blob and the image files. */
  async function closedCasWithBlob(): Promise<{ data: Buffer; id: string; imageIds: string[] }> {
    const opened = await openCas(root, { mode: 'loop', ...CRASH_OPTIONS });
    const data = randomBytes(300_000);
    const { id } = await opened.backend.put(streamOf(data));
    await opened.backend.close();
    // From the manifest: a standby still being created when images() ran is there too.
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as { images: { id: string }[] };
    return { data, id, imageIds: manifest.images.map((i) => i.id) };
  }

  it('detaches a loop device left attached to an image that is not mounted', async function () {
    const { data, id, imageIds } = await closedCasWithBlob();
    const stale = execFileSync('losetup', ['-f', '--show', join(root, 'images', `${imageIds[0]}.img`)], { encoding: 'utf8' }).trim();
    expect(loopDevicesUnder(root)).to.deep.equal([stale]);

    cas = await openCas(root, { mode: 'loop', ...CRASH_OPTIONS });
    expect(loopDevicesUnder(root)).to.have.length(imageIds.length);
    expect(mountsUnder(join(root, 'volumes'))).to.have.length(imageIds.length);
    expect((await readAll((await cas.backend.open(id)).stream)).equals(data)).to.equal(true);
  });

  it('refuses to start while an image is mounted somewhere else', async function () {
    const { imageIds } = await closedCasWithBlob();
    elsewhere = makeTempRoot('elsewhere');
    const target = join(elsewhere, 'mnt');
    mkdirSync(target);
    execFileSync('mount', ['-o', 'loop,ro', join(root, 'images', `${imageIds[0]}.img`), target]);

    const err = await rejectionOf(openCas(root, { mode: 'loop', ...CRASH_OPTIONS }));
    expect(String((err as Error).message)).to.contain(imageIds[0]);
    expect(mountsUnder(root)).to.deep.equal([]);
  });

  it('refuses to start, naming the image, when an image cannot be mounted', async function () {
    const { imageIds } = await closedCasWithBlob();
    const broken = imageIds[0]!;
    // Zero the primary superblock.
    const fd = openSync(join(root, 'images', `${broken}.img`), 'r+');
    writeSync(fd, Buffer.alloc(1024), 0, 1024, 1024);
    closeSync(fd);

    const err = await rejectionOf(openCas(root, { mode: 'loop', ...CRASH_OPTIONS }));
    expect(String((err as Error).message)).to.contain(broken);
    expect(mountsUnder(root)).to.deep.equal([]);
    expect(loopDevicesUnder(root)).to.deep.equal([]);
  });

  it('refuses a second server on the same root', async function () {
    cas = await openCas(root, { mode: 'loop', ...CRASH_OPTIONS });
    const err = await rejectionOf(openCas(root, { mode: 'loop', ...CRASH_OPTIONS }));
    expect((err as { code?: string }).code).to.equal('SERVICE_UNAVAILABLE');
  });
});
