import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import S3rver from 's3rver';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { tempDir } from './tmp.js';

/** Credentials s3rver accepts (its built-in account). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * A real S3-protocol server (s3rver) in this process, on a loopback port the
 * OS picks, storing into a temp directory, with one bucket. It can be stopped
 * and started again on the same port and directory to play an S3 outage.
 */
export interface S3TestServer {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's data directory. */
  dir: string;
  /** Part files of multipart uploads s3rver holds (s3rver cannot abort uploads; real S3 can). */
  uploadedParts(): string[];
  /** A client for inspecting the bucket from the test (not the one the backend uses). */
  client: S3Client;
  /** backend.s3_* config keys for startTestServer. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Every key in the bucket (under `prefix`), sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** An object's bytes, or null when the key does not exist. */
  read(key: string): Promise<Buffer | null>;
  /** Stop answering (connections refused) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop for good and remove the data directory. */
  remove(): Promise<void>;
}

/** An SDK client for s3rver: path-style, its credentials, no checksum extensions it does not know. */
export function s3rverClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startS3rver(bucket = `callfs-${randomBytes(4).toString('hex')}`): Promise<S3TestServer> {
  const tmp = tempDir('callfs-s3rver-');
  let port = 0;
  let server: S3rver | null = null;

  async function start(): Promise<void> {
    if (server !== null) return;
    const next = new S3rver({ address: '127.0.0.1', port, silent: true, directory: tmp.dir, vhostBuckets: false });
    const address = await next.run();
    port = address.port;
    server = next;
  }

  async function stop(): Promise<void> {
    const current = server;
    if (current === null) return;
    server = null;
    const closing = current.close();
    // Keep-alive sockets of the clients would hold the close open.
    current.httpServer?.closeAllConnections();
    await closing;
  }

  try {
    await start();
  } catch (err) {
    tmp.remove();
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const client = s3rverClient(endpoint);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    client.destroy();
    await stop();
    tmp.remove();
    throw err;
  }

  return {
    endpoint,
    port,
    bucket,
    dir: tmp.dir,
    uploadedParts() {
      const uploads = join(tmp.dir, bucket, '._S3rver_uploads');
      if (!existsSync(uploads)) return [];
      return readdirSync(uploads).flatMap((id) => readdirSync(join(uploads, id)).filter((f) => /^\d+$/.test(f)).map((f) => `${id}/${f}`));
    },
    client,
    config: (extra = {}) => ({
      s3_bucket_name: bucket,
      s3_endpoint: endpoint,
      s3_region: 'us-east-1',
      s3_access_key: S3RVER_CREDENTIALS.accessKeyId,
      s3_secret_key: S3RVER_CREDENTIALS.secretAccessKey,
      s3_part_size: '5MiB',
      ...extra,
    }),
    async keys(prefix = '') {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }));
        for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return keys.sort();
    },
    async read(key) {
      try {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await readAll(got.Body as Readable);
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return null;
        throw err;
      }
    },
    stop,
    start,
    async remove() {
      try {
        client.destroy();
        await stop();
      } finally {
        tmp.remove();
      }
    },
  };
}

/**
 * An s3rver and a CallFS server configured for it, started together: when the
 * server fails to start the s3rver is removed, and stop() takes both down.
 */
export async function startWithS3<T extends { stop(): Promise<void> }>(startServer: (s3: S3TestServer) => Promise<T>): Promise<{ s3: S3TestServer; server: T; stop(): Promise<void> }> {
  const s3 = await startS3rver();
  let server: T;
  try {
    server = await startServer(s3);
  } catch (err) {
    await s3.remove();
    throw err;
  }
  return {
    s3,
    server,
    async stop() {
      try {
        await server.stop();
      } finally {
        await s3.remove();
      }
    },
  };
}
