import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Context } from 'koa';
import { authenticate, AwsChunkedDecoder, rawQuery, type S3Credentials } from '../../../lib/s3/auth.js';
import { S3Error } from '../../../lib/s3/errors.js';

const alice = { name: 'alice', uid: 1001, gid: 1001, groups: [] };
const SECRET = 'alice-key-0123456789abcdef';
const credentials: S3Credentials = { lookup: (name) => (name === 'alice' ? { user: alice, secrets: ['other-key-0123456789abcdef', SECRET] } : null) };
const HOST = '127.0.0.1:9000';

function signer(secret = SECRET, accessKeyId = 'alice'): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId, secretAccessKey: secret }, region: 'eu-west-3', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
}

/** The parts of a Koa context authenticate() reads, from a signed request. */
function contextOf(req: { method: string; path: string; query?: Record<string, string>; headers: Record<string, string> }): Context {
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const querystring = Object.entries(req.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return { method: req.method, path: req.path, querystring, hostname: '127.0.0.1', get: (name: string) => headers[name.toLowerCase()] ?? '' } as unknown as Context;
}

async function signed(options: { secret?: string; accessKeyId?: string; date?: Date; payload?: string; query?: Record<string, string> } = {}): Promise<Context> {
  const request = {
    method: 'GET',
    protocol: 'https:',
    hostname: '127.0.0.1',
    port: 9000,
    path: '/bucket/a%20key',
    query: options.query ?? { 'list-type': '2', prefix: 'x y' },
    headers: { host: HOST, 'x-amz-content-sha256': options.payload ?? createHash('sha256').digest('hex') },
  };
  const out = await signer(options.secret, options.accessKeyId).sign(request, { signingDate: options.date ?? new Date() });
  return contextOf({ method: 'GET', path: request.path, query: request.query, headers: out.headers as Record<string, string> });
}

async function refusal(work: Promise<unknown>): Promise<S3Error> {
  try {
    await work;
  } catch (err) {
    expect(err).to.be.instanceOf(S3Error);
    return err as S3Error;
  }
  throw new Error('expected a refusal');
}

describe('S3 API: Signature Version 4', () => {
  it('accepts a request the AWS signer signed with any of the user\u2019s keys, in any region', async () => {
    const auth = await authenticate(await signed(), credentials);
    expect(auth.user).to.equal(alice);
    expect(auth.payload.kind).to.equal('plain');
  });

  it('refuses a wrong secret, an unknown access key, a stale date and an unsigned request', async () => {
    expect((await refusal(authenticate(await signed({ secret: 'wrong-key-0123456789abcdef' }), credentials))).code).to.equal('SignatureDoesNotMatch');
    expect((await refusal(authenticate(await signed({ accessKeyId: 'mallory' }), credentials))).code).to.equal('InvalidAccessKeyId');
    expect((await refusal(authenticate(await signed({ date: new Date(Date.now() - 3600_000) }), credentials))).code).to.equal('RequestTimeTooSkewed');
    expect((await refusal(authenticate(contextOf({ method: 'GET', path: '/', headers: { host: HOST } }), credentials))).code).to.equal('AccessDenied');
  });

  it('refuses a request changed after it was signed (query, path)', async () => {
    const ctx = await signed();
    const tampered = { ...ctx, querystring: ctx.querystring.replace('x%20y', 'x%20z') } as unknown as Context;
    expect((await refusal(authenticate(tampered, credentials))).code).to.equal('SignatureDoesNotMatch');
    const moved = { ...ctx, path: '/bucket/other' } as unknown as Context;
    expect((await refusal(authenticate(moved, credentials))).code).to.equal('SignatureDoesNotMatch');
  });

  it('accepts a presigned URL until it expires', async () => {
    const request = { method: 'GET', protocol: 'https:', hostname: '127.0.0.1', port: 9000, path: '/bucket/k', query: {}, headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } };
    const unsigned = new Set(['x-amz-content-sha256']);
    const fresh = await signer().presign(request, { expiresIn: 60, unsignableHeaders: unsigned, unhoistableHeaders: unsigned });
    const ctx = contextOf({ method: 'GET', path: '/bucket/k', query: fresh.query as Record<string, string>, headers: { host: HOST } });
    expect((await authenticate(ctx, credentials)).user).to.equal(alice);
    const old = await signer().presign(request, { expiresIn: 60, signingDate: new Date(Date.now() - 120_000), unsignableHeaders: unsigned, unhoistableHeaders: unsigned });
    const stale = contextOf({ method: 'GET', path: '/bucket/k', query: old.query as Record<string, string>, headers: { host: HOST } });
    expect((await refusal(authenticate(stale, credentials))).message).to.match(/expired/);
  });

  it('decodes the query once, without taking + for a space', () => {
    expect(rawQuery('a=1+2&b=%2B&c&d=x&d=y')).to.deep.equal({ a: '1+2', b: '+', c: '', d: ['x', 'y'] });
  });
});

describe('S3 API: aws-chunked bodies', () => {
  const date = new Date();
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const s = new SignatureV4({ credentials: { accessKeyId: 'alice', secretAccessKey: SECRET }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256') });
  const sign = (chunk: Buffer, previous: string): Promise<string> =>
    s.sign(['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, createHash('sha256').digest('hex'), createHash('sha256').update(chunk).digest('hex')].join('\n'), { signingDate: date });

  async function encode(chunks: Buffer[], seed: string): Promise<Buffer> {
    const out: Buffer[] = [];
    let previous = seed;
    for (const chunk of [...chunks, Buffer.alloc(0)]) {
      previous = await sign(chunk, previous);
      out.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previous}\r\n`), chunk, Buffer.from('\r\n'));
    }
    return Buffer.concat(out);
  }

  async function decode(body: Buffer, verify: typeof sign | null, seed: string, pieces = 7): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let i = 0; i < body.length; i += pieces) parts.push(body.subarray(i, i + pieces));
    const out: Buffer[] = [];
    for await (const chunk of Readable.from(parts).pipe(new AwsChunkedDecoder(verify, seed))) out.push(chunk as Buffer);
    return Buffer.concat(out);
  }

  const seed = 'a'.repeat(64);
  const data = [Buffer.from('hello, '), Buffer.alloc(70_000, 7), Buffer.from('world')];

  it('gives back the bytes, however the stream is cut, when every chunk signature chains from the seed', async () => {
    const body = await encode(data, seed);
    expect((await decode(body, sign, seed)).equals(Buffer.concat(data))).to.equal(true);
    expect((await decode(body, sign, seed, 65_536)).equals(Buffer.concat(data))).to.equal(true);
  });

  it('fails on a changed byte, a wrong seed and a body cut before its last chunk', async () => {
    const body = await encode(data, seed);
    const flipped = Buffer.from(body);
    const at = flipped.indexOf('hello') + 1;
    flipped.writeUInt8((flipped.readUInt8(at) ^ 1) & 0xff, at);
    await refusal(decode(flipped, sign, seed));
    await refusal(decode(body, sign, 'b'.repeat(64)));
    await refusal(decode(body.subarray(0, body.length - 90), sign, seed));
  });

  it('reads unsigned chunks with trailers (STREAMING-UNSIGNED-PAYLOAD-TRAILER)', async () => {
    const body = Buffer.from('5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n');
    expect((await decode(body, null, '')).toString()).to.equal('hello world');
  });
});
