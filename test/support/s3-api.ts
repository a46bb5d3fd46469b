import { expect } from 'chai';
import { createHash, createHmac } from 'node:crypto';
import https from 'node:https';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import type { TestServer } from './callfs.js';

/**
 * The S3-compatible listener of a test server (issue 25) as clients see it:
 * its port and endpoint, SDK clients signing as a CallFS user, the ETags S3
 * clients check, and an assertion on S3 error codes.
 */

/** The bound port of the S3 listener; fails the test when the server has none. */
export function s3PortOf(server: TestServer): number {
  if (server.s3Port === null) throw new Error('the test server has no S3 listener: start it with s3.listen_addr');
  return server.s3Port;
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

/** A GetObject answer's body, read whole. */
export async function bodyOf(res: GetObjectCommandOutput): Promise<Buffer> {
  expect(res.Body, 'a GetObject body').to.not.equal(undefined);
  return Buffer.from(await (res.Body as NonNullable<GetObjectCommandOutput['Body']>).transformToByteArray());
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
  return s3ClientAt(s3Endpoint(server), server.ca, accessKeyId, secretAccessKey);
}

/** s3ApiClient for an endpoint and certificate of a server not started in this process (a cluster instance). */
export function s3ClientAt(endpoint: string, ca: Buffer, accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    requestHandler: { httpsAgent: new https.Agent({ ca, keepAlive: true }) },
  });
}

/**
 * Await `operation`, which must fail with the S3 error `code` and HTTP `status`; returns the error.
 * `code` null: a response without a body to carry one (HEAD, 304), where only the status counts.
 */
export async function expectS3Error(operation: Promise<unknown>, code: string | null, status: number, what = code ?? String(status)): Promise<S3ServiceException> {
  let result: unknown;
  try {
    result = await operation;
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw new Error(`${what}: expected the S3 error ${code} (${status}), got a non-S3 error: ${(err as Error).message}`, { cause: err });
    expect({ code: code === null ? null : err.name, status: err.$metadata.httpStatusCode }, `${what}: ${err.name} ${err.message}`).to.deep.equal({ code, status });
    return err;
  }
  expect.fail(`${what}: expected the S3 error ${code} (${status}), the request succeeded: ${JSON.stringify((result as { $metadata?: unknown })?.$metadata ?? result)}`);
}

/*
 * A Signature V4 signer written from the AWS documentation, independent of the SDK and of the
 * server's signer, for what no client here sends over TLS: aws-chunked bodies with chunk
 * signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), UNSIGNED-PAYLOAD and a skewed clock.
 */

const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding of one path segment, as SigV4 wants it ('!*'()' too). */
const uriEncode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export interface SignV4Options {
  method: string;
  /** Bucket and key, unencoded: "/bucket/a key". */
  path: string;
  host: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The x-amz-content-sha256 value: a hex digest, UNSIGNED-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD. */
  payloadHash: string;
  /** Extra headers to sign (lower-case names). */
  headers?: Record<string, string>;
  /** Query parameters (unencoded; "" for a bare ?delete). */
  query?: Record<string, string>;
  date?: Date;
  region?: string;
}

export interface SignedRequest {
  /** The encoded path (and query) to send. */
  path: string;
  headers: Record<string, string>;
  /** For chunk signatures: the seed signature, the signing key, the date and the scope. */
  signature: string;
  signingKey: Buffer;
  amzDate: string;
  scope: string;
}

/** Sign a request with an Authorization header. */
export function signV4(o: SignV4Options): SignedRequest {
  const region = o.region ?? 'us-east-1';
  const amzDate = (o.date ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const path = o.path.split('/').map(uriEncode).join('/');
  const headers: Record<string, string> = { ...o.headers, host: o.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': o.payloadHash };
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join('');
  const signedHeaders = names.join(';');
  const query = Object.entries(o.query ?? {})
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .sort()
    .join('&');
  const canonicalRequest = [o.method, path, query, canonicalHeaders, signedHeaders, o.payloadHash].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${o.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${o.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { path: query === '' ? path : `${path}?${query}`, headers, signature, signingKey, amzDate, scope };
}

/**
 * A PUT with an aws-chunked body, each chunk signed after the one before (the seed signature
 * first), ending with the signed empty chunk. `tamperChunk` flips a byte of that chunk's data
 * after signing.
 */
export function streamingPut(o: Omit<SignV4Options, 'method' | 'payloadHash'> & { chunks: Buffer[]; tamperChunk?: number }): SignedRequest & { body: Buffer } {
  const decoded = o.chunks.reduce((n, c) => n + c.length, 0);
  const sigLen = 64;
  const framed = [...o.chunks, Buffer.alloc(0)].reduce((n, c) => n + c.length.toString(16).length + ';chunk-signature='.length + sigLen + 2 + c.length + 2, 0);
  const seed = signV4({
    ...o,
    method: 'PUT',
    payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    headers: { ...o.headers, 'content-encoding': 'aws-chunked', 'content-length': String(framed), 'x-amz-decoded-content-length': String(decoded) },
  });
  let previous = seed.signature;
  const parts: Buffer[] = [];
  for (const [i, chunk] of [...o.chunks, Buffer.alloc(0)].entries()) {
    const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', seed.amzDate, seed.scope, previous, sha256hex(''), sha256hex(chunk)].join('\n');
    const signature = createHmac('sha256', seed.signingKey).update(stringToSign).digest('hex');
    previous = signature;
    const data = Buffer.from(chunk);
    if (i === o.tamperChunk && data.length > 0) data[0] = (data[0] as number) ^ 0xff;
    parts.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signature}\r\n`), data, Buffer.from('\r\n'));
  }
  const body = Buffer.concat(parts);
  if (body.length !== framed) throw new Error(`aws-chunked framing: computed ${framed}, built ${body.length}`);
  return { ...seed, body };
}

/** A presigned URL's path and query (Signature V4 in the query string, only `host` signed, UNSIGNED-PAYLOAD). */
export function presignV4(o: Omit<SignV4Options, 'payloadHash' | 'headers'> & { expiresSeconds: number }): string {
  const region = o.region ?? 'us-east-1';
  const amzDate = (o.date ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const path = o.path.split('/').map(uriEncode).join('/');
  const params: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${o.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(o.expiresSeconds),
    'X-Amz-SignedHeaders': 'host',
  };
  const query = Object.keys(params)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(params[k] as string)}`)
    .join('&');
  const canonicalRequest = [o.method, path, query, `host:${o.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${o.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  return `${path}?${query}&X-Amz-Signature=${createHmac('sha256', signingKey).update(stringToSign).digest('hex')}`;
}

/** PutObject through the SDK, with optional user metadata and Content-Type. */
export function putObject(client: S3Client, Bucket: string, Key: string, Body: Buffer | string, extra: { Metadata?: Record<string, string>; ContentType?: string } = {}) {
  return client.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }));
}

/** The bytes of an object, through GetObject. */
export async function getObjectBytes(client: S3Client, Bucket: string, Key: string): Promise<Buffer> {
  return bodyOf(await client.send(new GetObjectCommand({ Bucket, Key })));
}
