import { createHash, timingSafeEqual } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Context } from 'koa';
import type { User } from '../auth/users.js';
import { S3Error } from './errors.js';

/**
 * AWS Signature Version 4 (header and presigned query), checked by signing
 * the request again with the secret of the access key it names: the access
 * key id is a CallFS user name, the secret one of that user's API keys. The
 * canonical request and the signature are @smithy/signature-v4's, the signer
 * of the AWS SDK itself; this file only rebuilds the request as the client
 * signed it.
 */

export interface S3Credentials {
  /** The user an access key id names, with every API key it has; null for an unknown one. */
  lookup(accessKeyId: string): { user: User; secrets: readonly string[] } | null;
}

/** What a verified request proved, and what its body still has to prove (aws-chunked). */
export interface S3Auth {
  user: User;
  /** How the body must be read: as sent, or aws-chunked with (or without) chunk signatures. */
  payload: { kind: 'plain' } | { kind: 'chunked'; verify: ((chunk: Buffer, previous: string) => Promise<string>) | null; seed: string };
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60_000;
const EMPTY_SHA256 = createHash('sha256').digest('hex');

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(value: string): Scope {
  const parts = value.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || parts[3] !== 's3') throw new S3Error('AuthorizationHeaderMalformed', 400, 'the credential is <access key>/<date>/<region>/s3/aws4_request');
  return { accessKeyId: parts[0] as string, date: parts[1] as string, region: parts[2] as string, service: 's3' };
}

/** "20130524T000000Z" → Date. */
function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (m === null) throw new S3Error('AccessDenied', 403, 'X-Amz-Date must be like 20130524T000000Z');
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** The query string as S3 signs it: every parameter, decoded once (no '+' as space). */
export function rawQuery(querystring: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const part of querystring === '' ? [] : querystring.split('&')) {
    const eq = part.indexOf('=');
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new S3Error('InvalidArgument', 400, 'malformed percent-encoding in the query');
      }
    };
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function signerFor(scope: Scope, secret: string): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: scope.accessKeyId, secretAccessKey: secret },
    region: scope.region,
    service: scope.service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
    applyChecksum: false,
  });
}

/** The request as the client signed it: its method, raw path, query and the signed headers only. */
function signedRequest(ctx: Context, signedHeaders: readonly string[], query: Record<string, string | string[]>) {
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = ctx.get(name);
    headers[name] = name === 'host' ? ctx.get('host') : value;
  }
  return { method: ctx.method, protocol: 'https:', hostname: ctx.hostname, path: ctx.path, query, headers };
}

/**
 * The user a request is signed by: 403 AccessDenied when it is not signed,
 * InvalidAccessKeyId for an unknown key, SignatureDoesNotMatch for a wrong
 * signature, RequestTimeTooSkewed or AccessDenied (expired) for a stale one.
 */
export async function authenticate(ctx: Context, credentials: S3Credentials): Promise<S3Auth> {
  const header = ctx.get('authorization');
  const query = rawQuery(ctx.querystring);
  if (header === '' && query['X-Amz-Algorithm'] === undefined) throw new S3Error('AccessDenied', 403, 'anonymous requests are not served: sign with AWS Signature Version 4');
  const presigned = header === '';
  let scope: Scope;
  let signedHeaders: string[];
  let signature: string;
  let amzDate: string;
  if (presigned) {
    if (query['X-Amz-Algorithm'] !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', 400, `X-Amz-Algorithm must be ${ALGORITHM}`);
    scope = parseCredential(String(query['X-Amz-Credential'] ?? ''));
    signedHeaders = String(query['X-Amz-SignedHeaders'] ?? '').split(';');
    signature = String(query['X-Amz-Signature'] ?? '');
    amzDate = String(query['X-Amz-Date'] ?? '');
  } else {
    const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$/.exec(header);
    if (m === null) {
      if (/^AWS /.test(header)) throw new S3Error('AccessDenied', 403, 'Signature Version 2 is not served: sign with AWS Signature Version 4');
      throw new S3Error('AuthorizationHeaderMalformed', 400, 'the Authorization header is not AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    }
    scope = parseCredential(m[1] as string);
    signedHeaders = (m[2] as string).split(';');
    signature = m[3] as string;
    amzDate = ctx.get('x-amz-date');
  }
  const signingDate = parseAmzDate(amzDate);
  if (!amzDate.startsWith(scope.date)) throw new S3Error('AuthorizationHeaderMalformed', 400, 'the credential date is not the day of X-Amz-Date');
  const known = credentials.lookup(scope.accessKeyId);
  if (known === null) throw new S3Error('InvalidAccessKeyId', 403, 'the access key id is not a CallFS user name');
  let expiresIn = 0;
  if (presigned) {
    expiresIn = Number(query['X-Amz-Expires']);
    if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 604_800) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Expires is 1 to 604800 seconds');
    if (Date.now() > signingDate.getTime() + expiresIn * 1000) throw new S3Error('AccessDenied', 403, 'the presigned URL has expired');
  } else if (Math.abs(Date.now() - signingDate.getTime()) > MAX_SKEW_MS) {
    throw new S3Error('RequestTimeTooSkewed', 403, 'the difference between the request time and the server time is too large');
  }
  const payloadHash = presigned ? 'UNSIGNED-PAYLOAD' : ctx.get('x-amz-content-sha256');
  if (!presigned && payloadHash === '') throw new S3Error('InvalidRequest', 400, 'x-amz-content-sha256 is required');
  const signable = new Set(signedHeaders);
  for (const secret of known.secrets) {
    const signer = signerFor(scope, secret);
    let expected: string;
    if (presigned) {
      const { 'X-Amz-Signature': _s, 'X-Amz-Algorithm': _a, 'X-Amz-Credential': _c, 'X-Amz-Date': _d, 'X-Amz-Expires': _e, 'X-Amz-SignedHeaders': _h, ...rest } = query;
      // A presigned URL's payload is UNSIGNED-PAYLOAD: given to the signer as the SDK's presigner does, as an unsigned, unhoisted header.
      const request = signedRequest(ctx, signedHeaders, rest);
      request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      const unsigned = new Set(['x-amz-content-sha256']);
      const signed = await signer.presign(request as never, { signingDate, expiresIn, signableHeaders: signable, unsignableHeaders: unsigned, unhoistableHeaders: unsigned });
      expected = String((signed.query as Record<string, unknown>)['X-Amz-Signature'] ?? '');
    } else {
      const signed = await signer.sign(signedRequest(ctx, signedHeaders, query) as never, { signingDate, signableHeaders: signable });
      expected = /Signature=([0-9a-f]{64})/.exec(String((signed.headers as Record<string, string>).authorization))?.[1] ?? '';
    }
    if (!sameHex(expected, signature)) continue;
    if (payloadHash === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD') {
      const credentialScope = `${scope.date}/${scope.region}/s3/aws4_request`;
      const verify = async (chunk: Buffer, previous: string): Promise<string> => {
        const sts = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, credentialScope, previous, EMPTY_SHA256, createHash('sha256').update(chunk).digest('hex')].join('\n');
        return signer.sign(sts, { signingDate });
      };
      return { user: known.user, payload: { kind: 'chunked', verify, seed: signature } };
    }
    if (payloadHash.startsWith('STREAMING-')) return { user: known.user, payload: { kind: 'chunked', verify: null, seed: signature } };
    return { user: known.user, payload: { kind: 'plain' } };
  }
  throw new S3Error('SignatureDoesNotMatch', 403, 'the request signature does not match the one computed with the secret of the access key');
}

/**
 * The body of an aws-chunked upload, decoded: `<hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n`
 * … a zero-size chunk, then optional trailers. Each chunk's signature chains
 * from the previous one (the seed is the request's); a wrong one fails the stream.
 */
export class AwsChunkedDecoder extends Transform {
  #buf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  #need: number | null = null;
  #sig = '';
  #previous: string;
  #done = false;

  constructor(private readonly verify: ((chunk: Buffer, previous: string) => Promise<string>) | null, seed: string) {
    super();
    this.#previous = seed;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
    this.#drain().then(() => callback(), (err: unknown) => callback(err as Error));
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#done ? null : new S3Error('IncompleteBody', 400, 'the aws-chunked body ended before its last chunk'));
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#done) return;
      if (this.#need === null) {
        const eol = this.#buf.indexOf('\r\n');
        if (eol < 0) {
          if (this.#buf.length > 4096) throw new S3Error('InvalidRequest', 400, 'malformed aws-chunked body');
          return;
        }
        const line = this.#buf.subarray(0, eol).toString('latin1');
        this.#buf = this.#buf.subarray(eol + 2);
        const m = /^([0-9a-fA-F]+)(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(line);
        if (m === null) throw new S3Error('InvalidRequest', 400, 'malformed aws-chunked chunk header');
        this.#need = Number.parseInt(m[1] as string, 16);
        this.#sig = m[2] ?? '';
        if (this.verify !== null && this.#sig === '') throw new S3Error('SignatureDoesNotMatch', 403, 'an aws-chunked chunk has no signature');
      }
      const size = this.#need;
      // The chunk, and the CRLF after it (none after the last, zero-size chunk: trailers follow).
      if (size > 0 && this.#buf.length < size + 2) return;
      const chunk = this.#buf.subarray(0, size);
      if (this.verify !== null) {
        const expected = await this.verify(chunk, this.#previous);
        if (!sameHex(expected, this.#sig)) throw new S3Error('SignatureDoesNotMatch', 403, 'an aws-chunked chunk signature does not match');
        this.#previous = expected;
      }
      if (size === 0) {
        this.#done = true;
        return;
      }
      this.push(Buffer.from(chunk));
      this.#buf = this.#buf.subarray(size + 2);
      this.#need = null;
    }
  }
}
