import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createHttpClient, expectStatus, forEachLimit } from '../load/http.js';
import { SEED } from '../targets/types.js';
import type { CallfsTarget } from '../targets/callfs.js';
import type { Suite } from './context.js';

/**
 * The seeded files. The baselines share one static root written directly to
 * disk; CallFS gets the same bytes through its API. The 2,000 small CallFS
 * files are the first PUTs of put-4k-unique; ensureSmallSeeds fills any gap
 * (or makes them all when that scenario was not run).
 */

/** Write s/0..1999, m/0..63 and big under the static root. */
export async function seedStatic(root: string): Promise<void> {
  mkdirSync(join(root, 's'), { recursive: true });
  mkdirSync(join(root, 'm'), { recursive: true });
  for (let n = 0; n < SEED.smallCount; n++) writeFileSync(join(root, 's', String(n)), randomBytes(SEED.smallSize));
  for (let n = 0; n < SEED.mediumCount; n++) writeFileSync(join(root, 'm', String(n)), randomBytes(SEED.mediumSize));
  const big = await open(join(root, 'big'), 'w');
  try {
    for (let written = 0; written < SEED.bigSize; written += 4 * 1024 * 1024) await big.write(randomBytes(4 * 1024 * 1024));
  } finally {
    await big.close();
  }
}

function callfsClient(suite: Suite, target: CallfsTarget): ReturnType<typeof createHttpClient> {
  return createHttpClient({ port: target.port, tls: suite.tls.client, authorization: target.authorization ?? '' });
}

/** mkdir /bench/s and /bench/m, then PUT the 1 MiB files and the 256 MiB one from the static root. */
export async function seedCallfs(suite: Suite): Promise<void> {
  const { staticRoot } = suite;
  const target = suite.callfs;
  const client = callfsClient(suite, target);
  try {
    for (const dir of ['s/', 'm/', 'warm/']) expectStatus(await client.request('POST', `${target.writePrefix}${dir}`), `mkdir ${dir}`, 200, 201);
    await forEachLimit(Array.from({ length: SEED.mediumCount }, (_, n) => n), 4, async (n) => {
      expectStatus(await client.request('PUT', `${target.writePrefix}m/${n}`, { body: readFileSync(join(staticRoot, 'm', String(n))) }), `PUT m/${n}`, 200, 201);
    });
    const big = createReadStream(join(staticRoot, 'big'), { highWaterMark: 1024 * 1024 });
    expectStatus(
      await client.request('PUT', `${target.writePrefix}big`, { body: big, headers: { 'content-length': String(SEED.bigSize) }, timeoutMs: 300_000 }),
      'PUT big',
      200,
      201,
    );
  } finally {
    client.close();
  }
}

/** Make sure CallFS has s/0..1999; returns how many had to be written. */
export async function ensureSmallSeeds(suite: Suite): Promise<number> {
  const { staticRoot } = suite;
  const target = suite.callfs;
  const client = callfsClient(suite, target);
  let filled = 0;
  try {
    await forEachLimit(Array.from({ length: SEED.smallCount }, (_, n) => n), 8, async (n) => {
      const path = `${target.writePrefix}s/${n}`;
      const head = await client.request('HEAD', path);
      if (head.status === 200) return;
      expectStatus(head, `HEAD ${path}`, 404);
      expectStatus(await client.request('PUT', path, { body: readFileSync(join(staticRoot, 's', String(n))) }), `PUT ${path}`, 200, 201);
      filled++;
    });
  } finally {
    client.close();
  }
  suite.smallSeeded = true;
  return filled;
}
