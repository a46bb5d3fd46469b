import { expect } from 'chai';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

describe('paths: canonicalisation and INVALID_PATH', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });
  const raw = (method: string, rawPath: string, body?: string) => request(`${server.url}/`, { method, rawPath, token: KEYS.alice, ...(body === undefined ? {} : { body }) });

  const invalid: [string, string][] = [
    ['".." above the root', '/v1/files/../etc/passwd'],
    ['".." above the root after a segment', '/v1/files/a/../../etc'],
    ['percent-encoded "%2e%2e"', '/v1/files/%2e%2e/secret'],
    ['mixed-case "%2E%2e"', '/v1/files/x/%2E%2e/%2e%2E/y'],
    ['an encoded backslash', '/v1/files/a%5cb'],
    ['NUL', '/v1/files/a%00b'],
    ['a newline', '/v1/files/a%0Ab'],
    ['another control character', '/v1/files/a%1fb'],
    ['DEL', '/v1/files/a%7Fb'],
    ['a C1 control', '/v1/files/a%C2%85b'],
    ['the right-to-left override', '/v1/files/invoice%E2%80%AEfdp.exe'],
    ['a bidi isolate', '/v1/files/a%E2%81%A6b'],
    ['a zero-width space', '/v1/files/pay%E2%80%8Broll.txt'],
    ['a word joiner', '/v1/files/a%E2%81%A0b'],
    ['a byte order mark', '/v1/files/%EF%BB%BFreport'],
    ['a soft hyphen', '/v1/files/a%C2%ADb'],
    ['a Hangul filler', '/v1/files/%E3%85%A4'],
    ['a combining grapheme joiner', '/v1/files/a%CD%8Fb'],
    ['an interlinear annotation anchor', '/v1/files/a%EF%BF%B9b'],
    ['a noncharacter', '/v1/files/a%EF%B7%90b'],
    ['a plane-1 noncharacter', '/v1/files/a%F0%9F%BF%BEb'],
    ['a tag character outside an emoji sequence', '/v1/files/a%F3%A0%81%A7b'],
    ['an encoded slash inside a segment', '/v1/files/a%2Fb'],
    ['malformed percent-encoding', '/v1/files/a%zzb'],
    ['a segment over 255 bytes', `/v1/files/${'a'.repeat(256)}`],
    ['a segment over 255 bytes in UTF-8', `/v1/files/${'%C3%A9'.repeat(128)}`],
    ['a path over 4096 bytes', `/v1/files/${('b'.repeat(200) + '/').repeat(21)}`],
  ];
  for (const [what, path] of invalid) {
    it(`refuses ${what} with 400 INVALID_PATH, for reads and writes`, async () => {
      for (const method of ['GET', 'PUT']) {
        const res = await raw(method, path, method === 'PUT' ? 'x' : undefined);
        expect(res.status, `${method} ${path}`).to.equal(400);
        expect(res.json.code).to.equal('INVALID_PATH');
      }
    });
  }

  it('keeps the joiners and selectors scripts and emoji need: ZWJ, ZWNJ, variation selectors, emoji tag sequences', async () => {
    const names = [
      '%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7', // family: man ZWJ woman ZWJ girl
      '%D9%85%DB%8C%E2%80%8C%D8%AE%D9%88%D8%A7%D9%87%D9%85', // Persian with ZWNJ
      '%E0%A4%95%E0%A5%8D%E2%80%8D%E0%A4%B7', // Devanagari with ZWJ
      '%E2%9D%A4%EF%B8%8F', // heart with VS16
      '%F0%9F%8F%B4%F3%A0%81%A7%F3%A0%81%A2%F3%A0%81%B3%F3%A0%81%A3%F3%A0%81%B4%F3%A0%81%BF', // flag of Scotland
    ];
    for (const name of names) {
      const put = await raw('PUT', `/v1/files/kept/${name}`, 'x');
      expect(put.status, decodeURIComponent(name)).to.equal(201);
      expect(put.json.path).to.equal(`/kept/${decodeURIComponent(name)}`);
    }
  });

  it('refuses invisible characters in names given in JSON too (rename, move, link)', async () => {
    expect((await raw('PUT', '/v1/files/json/a.txt', 'x')).status).to.equal(201);
    const rename = await request(`${server.url}/v1/files/json/a.txt`, { method: 'PATCH', token: KEYS.alice, body: JSON.stringify({ name: 'a\u200b.txt' }) });
    expect(rename.status).to.equal(400);
    expect(rename.json.code).to.equal('INVALID_PATH');
    const move = await request(`${server.url}/v1/files/json/a.txt`, { method: 'PATCH', token: KEYS.alice, body: JSON.stringify({ destination: '/json/\ufeffa.txt' }) });
    expect(move.status).to.equal(400);
    expect(move.json.code).to.equal('INVALID_PATH');
    const link = await request(`${server.url}/v1/links/generate`, { method: 'POST', token: KEYS.alice, body: JSON.stringify({ path: '/json/a\u2060.txt' }) });
    expect(link.status).to.equal(400);
    expect(link.json.code).to.equal('INVALID_PATH');
    expect((await raw('GET', '/v1/files/json/a.txt')).text).to.equal('x');
  });

  it('accepts a 255-byte segment', async () => {
    expect((await raw('PUT', `/v1/files/${'a'.repeat(255)}`, 'x')).status).to.equal(201);
  });

  it('canonicalises "a//b", "./x" and "dir/../x" to one key', async () => {
    const put = await raw('PUT', '/v1/files/canon//dir/./sub/../file.txt', 'canonical');
    expect(put.status).to.equal(201);
    expect(put.json.path).to.equal('/canon/dir/file.txt');
    expect((await raw('GET', '/v1/files/canon/dir/file.txt')).text).to.equal('canonical');
    expect((await raw('GET', '/v1/files/canon/x/%2e%2e/dir//file.txt')).text).to.equal('canonical');
    expect((await raw('GET', '/v1/directories//canon/./dir/')).json.path).to.equal('/canon/dir');
  });

  it('decodes percent-encoding exactly once', async () => {
    const put = await raw('PUT', '/v1/files/enc/a%2520b', 'once');
    expect(put.status).to.equal(201);
    expect(put.json.path).to.equal('/enc/a%20b');
    const spaced = await raw('PUT', '/v1/files/enc/with%20space%20%C3%A9', 'sp');
    expect(spaced.json.path).to.equal('/enc/with space é');
  });
});
