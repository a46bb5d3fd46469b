import { expect } from 'chai';
import { createHash } from 'node:crypto';
import https from 'node:https';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { TestServer } from './callfs.js';

/**
 * The S3-compatible listener of a test server (issue 25) as clients see it:
 * its port and endpoint, SDK clients signing as a CallFS user, the ETags S3
 * clients check, and an assertion on S3 error codes.
 */

/** The bound port of the S3 listener; fails the test when the server has none. */
export function s3PortOf(server: TestServer): number {
  const port = (server as TestServer & { s3Port?: number | null }).s3Port;
  if (typeof port !== 'number' || port <= 0) throw new Error(`the test server has no S3 listener (s3Port is ${String(port)}): was it started with s3.listen_addr?`);
  return port;
}

/** https://127.0.0.1:<port> of the S3 listener (the certificate names 127.0.0.1). */
export const s3Endpoint = (server: TestServer): string => `https://127.0.0.1:${s3PortOf(server)}`;

export const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

/** The ETag S3 gives an object put in one piece: the quoted MD5 of its bytes. */
export const singlePartEtag = (body: Buffer | string): string => `"${md5(body)}"`;

/** The ETag S3 gives a multipart object: the MD5 of the parts' binary MD5s, a dash and the part count, quoted. */
export function multipartEtag(parts: Buffer[]): string {
  const digests = parts.map((p) => createHash('md5').update(p).digest());
  return `"${md5(Buffer.concat(digests))}-${parts.length}"`;
}

/** Cut `body` into parts of `partSize` bytes (the last one shorter), the way multipart uploaders do. */
export function splitParts(body: Buffer, partSize: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += partSize) parts.push(body.subarray(at, Math.min(at + partSize, body.length)));
  return parts;
}

/**
 * An SDK client for the S3 listener signing as `accessKeyId`/`secretAccessKey`: path-style, the
 * server's certificate as the only trusted CA, no retries (a server error must not be retried away).
 * Checksum settings are the SDK's defaults: what every application using it sends.
 */
export function s3ApiClient(server: TestServer, accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    endpoint: s3Endpoint(server),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    requestHandler: { httpsAgent: new https.Agent({ ca: server.ca, keepAlive: true }) },
  });
}

/**
 * Await `operation`, which must fail with the S3 error `code` and HTTP `status`; returns the error.
 * (For HEAD requests, which have no body, the SDK names the error after the status: NotFound, Forbidden.)
 */
export async function expectS3Error(operation: Promise<unknown>, code: string, status: number, what = code): Promise<S3ServiceException> {
  let result: unknown;
  try {
    result = await operation;
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw new Error(`${what}: expected the S3 error ${code} (${status}), got a non-S3 error: ${(err as Error).message}`, { cause: err });
    expect({ code: err.name, status: err.$metadata.httpStatusCode }, `${what}: ${err.message}`).to.deep.equal({ code, status });
    return err;
  }
  expect.fail(`${what}: expected the S3 error ${code} (${status}), the request succeeded: ${JSON.stringify((result as { $metadata?: unknown })?.$metadata ?? result)}`);
}
