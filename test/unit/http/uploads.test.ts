import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { CallfsError } from '../../../lib/errors.js';
import { parseChecksum, parseUploadMetadata } from '../../../lib/http/routes/uploads.js';

// lib/http/routes/uploads.ts: the two tus headers a client writes by hand.

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** The CallfsError code `fn` throws (fails the test when it throws nothing or something else). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CallfsError);
    return (err as CallfsError).code;
  }
  expect.fail('expected a CallfsError');
}

describe('http: tus Upload-Metadata', () => {
  it('decodes "key base64" pairs, comma-separated, as UTF-8', () => {
    const parsed = parseUploadMetadata(`path ${b64('/docs/résumé 2026.pdf')},mode ${b64('0640')},filename ${b64('a,b c.txt')}`);
    expect([...parsed.entries()]).to.deep.equal([
      ['path', '/docs/résumé 2026.pdf'],
      ['mode', '0640'],
      ['filename', 'a,b c.txt'],
    ]);
  });

  it('takes a key without a value as the empty string, and tolerates blanks around pairs', () => {
    const parsed = parseUploadMetadata(` is_confidential , path ${b64('/x')} `);
    expect(parsed.get('is_confidential')).to.equal('');
    expect(parsed.get('path')).to.equal('/x');
    expect(parsed.size).to.equal(2);
  });

  it('an empty or blank header is no metadata', () => {
    expect(parseUploadMetadata('').size).to.equal(0);
    expect(parseUploadMetadata('   ').size).to.equal(0);
  });

  it('refuses a malformed header with BAD_REQUEST', () => {
    for (const header of [
      `path ${b64('/a')},,mode ${b64('0600')}`, // an empty pair
      'path not*base64',
      `path ${b64('/a')} extra`,
      `pa(th ${b64('/a')}`, // not a token
      `path ${b64('/a')},path ${b64('/b')}`, // the same key twice
    ]) {
      expect(codeOf(() => parseUploadMetadata(header)), header).to.equal('BAD_REQUEST');
    }
  });
});

describe('http: tus Upload-Checksum', () => {
  const body = Buffer.from('the bytes of one chunk');
  const sha1 = createHash('sha1').update(body).digest();
  const sha256 = createHash('sha256').update(body).digest();

  it('no header is no checksum', () => {
    expect(parseChecksum('')).to.equal(null);
  });

  it('reads sha1 and sha256 with their base64 digests', () => {
    const one = parseChecksum(`sha1 ${b64(sha1)}`);
    expect(one?.algorithm).to.equal('sha1');
    expect(one?.digest.equals(sha1)).to.equal(true);
    const two = parseChecksum(`sha256 ${b64(sha256)}`);
    expect(two?.algorithm).to.equal('sha256');
    expect(two?.digest.equals(sha256)).to.equal(true);
  });

  it('refuses another algorithm, a digest of the wrong length, or a malformed header with BAD_REQUEST', () => {
    const md5 = createHash('md5').update(body).digest();
    for (const header of [
      `md5 ${b64(md5)}`,
      `crc32 ${b64(Buffer.alloc(4))}`,
      `sha256 ${b64(sha1)}`, // 20 bytes where 32 are due
      `sha1 ${b64(sha256)}`,
      'sha256',
      `sha256:${b64(sha256)}`,
      `sha256 ${b64(sha256)} extra`,
      'sha256 ***',
    ]) {
      expect(codeOf(() => parseChecksum(header)), header).to.equal('BAD_REQUEST');
    }
  });
});
