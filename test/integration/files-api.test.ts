import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack, type Stack } from '../support/stacks.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A GET that hangs up after its first chunk of body; resolves with how many bytes it saw. */
function hangUpAfterFirstChunk(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.once('data', (chunk: Buffer) => {
        req.destroy();
        resolve(chunk.length);
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
  });
}

for (const stack of [embeddedStack, clusterStack]) {
  describe(`files API — ${stack.name}`, function () {
    this.timeout(120_000);
    let server: TestServer;
    const call = (method: string, path: string, options: Parameters<typeof request>[1] = {}): Promise<TestResponse> =>
      request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });

    before(async function () {
      await stack.require(this);
      server = await (stack as Stack).start();
    });
    after(async () => {
      await server?.stop();
    });

    describe('create, read, replace', () => {
      it('PUT creates (201) with the entry as JSON, then replaces (200); GET streams the bytes back', async () => {
        const body = randomBytes(100_000);
        const created = await call('PUT', '/v1/files/put/a.bin', { body });
        expect(created.status).to.equal(201);
        expect(created.json).to.include({ name: 'a.bin', path: '/put/a.bin', type: 'file', size: body.length, mode: '0644', owner: 'alice', etag: sha256(body) });
        expect(new Date(created.json.mtime).toISOString()).to.equal(created.json.mtime);
        const replacement = Buffer.from('new content');
        const replaced = await call('PUT', '/v1/files/put/a.bin', { body: replacement });
        expect(replaced.status).to.equal(200);
        const got = await call('GET', '/v1/files/put/a.bin');
        expect(got.status).to.equal(200);
        expect(got.body.equals(replacement)).to.equal(true);
        expect(got.headers['content-length']).to.equal(String(replacement.length));
        expect(got.headers.etag).to.equal(`"${sha256(replacement)}"`);
        expect(got.headers['accept-ranges']).to.equal('bytes');
        expect(got.headers['last-modified']).to.be.a('string');
        expect(got.headers['content-type']).to.equal('application/octet-stream');
      });

      it('serves many multi-MiB files at once byte-exact, while other clients hang up mid-transfer', async () => {
        const files = [randomBytes(3 * 1024 * 1024 + 101), randomBytes(2 * 1024 * 1024), randomBytes(1024 * 1024 - 1), randomBytes(5000)];
        for (const [i, body] of files.entries()) expect((await call('PUT', `/v1/files/many/${i}.bin`, { body })).status).to.equal(201);
        for (let round = 0; round < 2; round++) {
          const gets = files.flatMap((_, i) => [0, 1, 2].map(() => call('GET', `/v1/files/many/${i}.bin`).then((res) => ({ i, res }))));
          const ranged = call('GET', '/v1/files/many/0.bin', { headers: { range: 'bytes=1048570-2097160' } });
          const hangUps = [0, 1].map((i) => hangUpAfterFirstChunk(`${server.url}/v1/files/many/${i}.bin`, KEYS.alice));
          for (const { i, res } of await Promise.all(gets)) {
            expect(res.status).to.equal(200);
            expect(sha256(res.body), `file ${i}, round ${round}`).to.equal(sha256(files[i]!));
          }
          const part = await ranged;
          expect(part.status).to.equal(206);
          expect(part.body.equals(files[0]!.subarray(1048570, 2097161))).to.equal(true);
          for (const seen of await Promise.all(hangUps)) expect(seen).to.be.greaterThan(0);
        }
      });

      it('stores 0-byte and 1-byte files', async () => {
        for (const body of [Buffer.alloc(0), Buffer.from('x')]) {
          const path = `/v1/files/tiny/${body.length}.dat`;
          expect((await call('PUT', path, { body })).status).to.equal(201);
          const got = await call('GET', path);
          expect(got.status).to.equal(200);
          expect(got.body.equals(body)).to.equal(true);
          expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
        }
      });

      it('sets Content-Type from the extension', async () => {
        await call('PUT', '/v1/files/types/page.html', { body: '<p>hi</p>' });
        await call('PUT', '/v1/files/types/data.json', { body: '{}' });
        expect((await call('GET', '/v1/files/types/page.html')).headers['content-type']).to.match(/^text\/html/);
        expect((await call('GET', '/v1/files/types/data.json')).headers['content-type']).to.match(/^application\/json/);
      });

      it('POST creates a file with mkdir -p of missing ancestors; an existing file or directory is 409', async () => {
        const res = await call('POST', '/v1/files/post/deep/er/new.txt', { body: 'hello', headers: { 'content-type': 'text/plain' } });
        expect(res.status).to.equal(201);
        expect(res.json.path).to.equal('/post/deep/er/new.txt');
        const again = await call('POST', '/v1/files/post/deep/er/new.txt', { body: 'other' });
        expect(again.status).to.equal(409);
        expect(again.json.code).to.equal('FILE_ALREADY_EXISTS');
        expect((await call('GET', '/v1/files/post/deep/er/new.txt')).text).to.equal('hello');
        const ontoDir = await call('POST', '/v1/files/post/deep', { body: 'x' });
        expect(ontoDir.status).to.equal(409);
        expect(ontoDir.json.code).to.equal('FILE_ALREADY_EXISTS');
      });

      it('POST with a trailing slash creates a directory (201), idempotently (200); onto a file 409', async () => {
        const res = await call('POST', '/v1/files/dirs/one/two/');
        expect(res.status).to.equal(201);
        expect(res.json).to.include({ type: 'directory', path: '/dirs/one/two', mode: '0755' });
        expect((await call('POST', '/v1/files/dirs/one/two/')).status).to.equal(200);
        await call('PUT', '/v1/files/dirs/file', { body: 'f' });
        const onto = await call('POST', '/v1/files/dirs/file/');
        expect(onto.status).to.equal(409);
        expect(onto.json.code).to.equal('FILE_ALREADY_EXISTS');
      });

      it('an ancestor that is a file is 409 NOT_A_DIRECTORY', async () => {
        await call('PUT', '/v1/files/nd/file', { body: 'f' });
        for (const method of ['POST', 'PUT']) {
          const res = await call(method, '/v1/files/nd/file/child.txt', { body: 'x' });
          expect(res.status, method).to.equal(409);
          expect(res.json.code).to.equal('NOT_A_DIRECTORY');
        }
      });

      it('PUT onto a directory or a path ending in "/" is 400 IS_A_DIRECTORY', async () => {
        await call('POST', '/v1/files/isdir/');
        for (const path of ['/v1/files/isdir', '/v1/files/isdir/x/']) {
          const res = await call('PUT', path, { body: 'x' });
          expect(res.status, path).to.equal(400);
          expect(res.json.code).to.equal('IS_A_DIRECTORY');
        }
      });

      it('X-CallFS-Mode sets the mode of a new file and directory; a bad mode is 400', async () => {
        expect((await call('PUT', '/v1/files/modes/f', { body: 'x', headers: { 'x-callfs-mode': '0640' } })).json.mode).to.equal('0640');
        expect((await call('POST', '/v1/files/modes/d/', { headers: { 'x-callfs-mode': '700' } })).json.mode).to.equal('0700');
        const bad = await call('PUT', '/v1/files/modes/g', { body: 'x', headers: { 'x-callfs-mode': 'rwxr-xr-x' } });
        expect(bad.status).to.equal(400);
        expect(bad.json.code).to.equal('BAD_REQUEST');
        expect((await call('HEAD', '/v1/files/modes/g')).status).to.equal(404);
      });

      it('a missing file is 404 FILE_NOT_FOUND', async () => {
        const res = await call('GET', '/v1/files/no/such/file');
        expect(res.status).to.equal(404);
        expect(res.json.code).to.equal('FILE_NOT_FOUND');
      });
    });

    describe('HEAD', () => {
      it('answers the X-CallFS-* headers, ETag, Content-Length and Last-Modified, with no body', async () => {
        const body = Buffer.from('head me');
        await call('PUT', '/v1/files/head/f.txt', { body, headers: { 'x-callfs-mode': '0600' } });
        const res = await call('HEAD', '/v1/files/head/f.txt');
        expect(res.status).to.equal(200);
        expect(res.body.length).to.equal(0);
        expect(res.headers['x-callfs-type']).to.equal('file');
        expect(res.headers['x-callfs-size']).to.equal(String(body.length));
        expect(res.headers['x-callfs-mode']).to.equal('0600');
        expect(res.headers['x-callfs-owner']).to.equal('alice');
        expect(res.headers['x-callfs-group']).to.equal('1001');
        expect(new Date(String(res.headers['x-callfs-mtime'])).getTime()).to.be.greaterThan(0);
        expect(res.headers['x-callfs-instance-id']).to.equal('callfs-instance-1');
        expect(res.headers.etag).to.equal(`"${sha256(body)}"`);
        expect(res.headers['content-length']).to.equal(String(body.length));
        expect(res.headers['last-modified']).to.be.a('string');
        const dir = await call('HEAD', '/v1/files/head');
        expect(dir.status).to.equal(200);
        expect(dir.headers['x-callfs-type']).to.equal('directory');
      });
    });

    describe('Range and conditional requests', () => {
      const body = Buffer.from('0123456789abcdefghij');
      before(async () => {
        await call('PUT', '/v1/files/range/r.txt', { body });
      });
      const cases: [string, number, string, string][] = [
        ['bytes=0-0', 206, '0', 'bytes 0-0/20'],
        ['bytes=5-9', 206, '56789', 'bytes 5-9/20'],
        ['bytes=15-', 206, 'fghij', 'bytes 15-19/20'],
        ['bytes=-3', 206, 'hij', 'bytes 17-19/20'],
        ['bytes=18-100', 206, 'ij', 'bytes 18-19/20'],
        ['bytes=19-', 206, 'j', 'bytes 19-19/20'],
        ['bytes=-50', 206, '0123456789abcdefghij', 'bytes 0-19/20'],
      ];
      for (const [range, status, bytes, contentRange] of cases) {
        it(`${range} → ${status} ${contentRange}`, async () => {
          const res = await call('GET', '/v1/files/range/r.txt', { headers: { range } });
          expect(res.status).to.equal(status);
          expect(res.text).to.equal(bytes);
          expect(res.headers['content-range']).to.equal(contentRange);
          expect(res.headers['content-length']).to.equal(String(bytes.length));
        });
      }
      it('an unsatisfiable range is 416 with Content-Range: bytes */size', async () => {
        const res = await call('GET', '/v1/files/range/r.txt', { headers: { range: 'bytes=20-' } });
        expect(res.status).to.equal(416);
        expect(res.json.code).to.equal('RANGE_NOT_SATISFIABLE');
        expect(res.headers['content-range']).to.equal('bytes */20');
        const zeroSuffix = await call('GET', '/v1/files/range/r.txt', { headers: { range: 'bytes=-0' } });
        expect([zeroSuffix.status, zeroSuffix.json.code]).to.deep.equal([416, 'RANGE_NOT_SATISFIABLE']);
      });
      it('a 0-byte file: a range from its first byte is 416, a suffix gets the (empty) whole file', async () => {
        expect((await call('PUT', '/v1/files/range/empty.txt', { body: '' })).status).to.equal(201);
        const from = await call('GET', '/v1/files/range/empty.txt', { headers: { range: 'bytes=0-' } });
        expect([from.status, from.json.code]).to.deep.equal([416, 'RANGE_NOT_SATISFIABLE']);
        expect(from.headers['content-range']).to.equal('bytes */0');
        const suffix = await call('GET', '/v1/files/range/empty.txt', { headers: { range: 'bytes=-1' } });
        expect(suffix.status).to.equal(200);
        expect(suffix.body.length).to.equal(0);
        expect(suffix.headers['content-range']).to.equal(undefined);
      });
      it('several ranges or a malformed one get the whole file (200)', async () => {
        for (const range of ['bytes=0-1,4-5', 'bytes=0-1,50-60', 'bytes=50-60,70-80', 'lines=1-2', 'bytes=9-3', 'bytes=1-2x']) {
          const res = await call('GET', '/v1/files/range/r.txt', { headers: { range } });
          expect(res.status, range).to.equal(200);
          expect(res.body.equals(body)).to.equal(true);
        }
      });
      it('If-None-Match with the ETag, or If-Modified-Since after mtime, is 304', async () => {
        const etag = `"${sha256(body)}"`;
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-none-match': etag } })).status).to.equal(304);
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-none-match': '"other"' } })).status).to.equal(200);
        const later = new Date(Date.now() + 60_000).toUTCString();
        const earlier = new Date(Date.now() - 3_600_000).toUTCString();
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-modified-since': later } })).status).to.equal(304);
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-modified-since': earlier } })).status).to.equal(200);
      });
      it('If-None-Match decides over If-Modified-Since, and Cache-Control: no-cache does not turn a 304 into a 200', async () => {
        const tag = `"${sha256(body)}"`;
        const earlier = new Date(Date.now() - 3_600_000).toUTCString();
        const later = new Date(Date.now() + 60_000).toUTCString();
        const get = (headers: Record<string, string>) => call('GET', '/v1/files/range/r.txt', { headers });
        expect((await get({ 'if-none-match': tag, 'if-modified-since': earlier })).status, 'If-Modified-Since ignored').to.equal(304);
        expect((await get({ 'if-none-match': tag, 'cache-control': 'no-cache' })).status, 'If-None-Match, no-cache').to.equal(304);
        expect((await get({ 'if-modified-since': later, 'cache-control': 'no-cache' })).status, 'If-Modified-Since, no-cache').to.equal(304);
        expect((await call('HEAD', '/v1/files/range/r.txt', { headers: { 'if-none-match': `"other", ${tag}` } })).status, 'HEAD').to.equal(304);
      });
      it('GET evaluates If-Unmodified-Since before If-None-Match: 412 when modified since, whatever the ETag says', async () => {
        const tag = `"${sha256(body)}"`;
        const earlier = new Date(Date.now() - 3_600_000).toUTCString();
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-unmodified-since': earlier, 'if-none-match': tag } })).status).to.equal(412);
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-match': tag, 'if-unmodified-since': earlier, 'if-none-match': tag } })).status, 'If-Match given: If-Unmodified-Since ignored').to.equal(304);
      });
      it('PUT with a stale If-Match is 412 and changes nothing; a current one replaces', async () => {
        const stale = await call('PUT', '/v1/files/range/r.txt', { body: 'nope', headers: { 'if-match': `"${sha256('something else')}"` } });
        expect(stale.status).to.equal(412);
        expect(stale.json.code).to.equal('PRECONDITION_FAILED');
        expect((await call('GET', '/v1/files/range/r.txt')).body.equals(body)).to.equal(true);
        const fresh = await call('PUT', '/v1/files/range/r2.txt', { body: 'v1' });
        const ok = await call('PUT', '/v1/files/range/r2.txt', { body: 'v2', headers: { 'if-match': `"${fresh.json.etag}"` } });
        expect(ok.status).to.equal(200);
        expect((await call('GET', '/v1/files/range/r2.txt')).text).to.equal('v2');
      });
      it('PUT with If-None-Match: * creates only: 412 onto an existing file, which keeps its content', async () => {
        const created = await call('PUT', '/v1/files/cond/once.txt', { body: 'first', headers: { 'if-none-match': '*' } });
        expect(created.status).to.equal(201);
        const again = await call('PUT', '/v1/files/cond/once.txt', { body: 'second', headers: { 'if-none-match': '*' } });
        expect(again.status).to.equal(412);
        expect(again.json.code).to.equal('PRECONDITION_FAILED');
        expect((await call('GET', '/v1/files/cond/once.txt')).text).to.equal('first');
      });
      it('PUT, PATCH and DELETE with an If-None-Match that matches are 412; one that does not goes ahead', async () => {
        const put = await call('PUT', '/v1/files/cond/inm.txt', { body: 'v1' });
        const tag = `"${put.json.etag}"`;
        for (const value of [tag, `W/${tag}`, `"other", ${tag}`]) {
          const res = await call('PUT', '/v1/files/cond/inm.txt', { body: 'v2', headers: { 'if-none-match': value } });
          expect(res.status, value).to.equal(412);
        }
        expect((await call('PATCH', '/v1/files/cond/inm.txt', { body: JSON.stringify({ mode: '0600' }), headers: { 'if-none-match': tag } })).status).to.equal(412);
        expect((await call('DELETE', '/v1/files/cond/inm.txt', { headers: { 'if-none-match': '*' } })).status).to.equal(412);
        expect((await call('GET', '/v1/files/cond/inm.txt')).text).to.equal('v1');
        expect((await call('PUT', '/v1/files/cond/inm.txt', { body: 'v2', headers: { 'if-none-match': '"other"' } })).status).to.equal(200);
        expect((await call('GET', '/v1/files/cond/inm.txt')).text).to.equal('v2');
      });
      it('If-Match uses the strong comparison: a weak W/"…" tag never matches', async () => {
        const put = await call('PUT', '/v1/files/cond/strong.txt', { body: 'v1' });
        const weak = await call('PUT', '/v1/files/cond/strong.txt', { body: 'v2', headers: { 'if-match': `W/"${put.json.etag}"` } });
        expect(weak.status).to.equal(412);
        const unquoted = await call('PUT', '/v1/files/cond/strong.txt', { body: 'v2', headers: { 'if-match': put.json.etag } });
        expect(unquoted.status, 'not an entity-tag').to.equal(412);
        expect((await call('GET', '/v1/files/cond/strong.txt')).text).to.equal('v1');
        expect((await call('GET', '/v1/files/cond/strong.txt', { headers: { 'if-match': `W/"${put.json.etag}"` } })).status).to.equal(412);
        expect((await call('PUT', '/v1/files/cond/strong.txt', { body: 'v2', headers: { 'if-match': `"x", "${put.json.etag}"` } })).status).to.equal(200);
      });
      it('GET evaluates If-Match before If-None-Match (412 wins over 304), and If-None-Match before If-Modified-Since', async () => {
        const tag = `"${sha256(body)}"`;
        const later = new Date(Date.now() + 60_000).toUTCString();
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-match': '"stale"', 'if-none-match': tag } })).status).to.equal(412);
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-none-match': '"other"', 'if-modified-since': later } })).status).to.equal(200);
        expect((await call('GET', '/v1/files/range/r.txt', { headers: { 'if-none-match': `W/${tag}` } })).status, 'weak comparison').to.equal(304);
      });
    });

    describe('listings', () => {
      before(async () => {
        for (const name of ['b.txt', 'a.txt', 'c.txt']) await call('PUT', `/v1/files/list/${name}`, { body: name });
        for (const name of ['zdir', 'adir']) await call('POST', `/v1/files/list/${name}/`);
        await call('PUT', '/v1/files/list/adir/inner/deep.txt', { body: 'deep' });
      });

      it('GET of a directory on /v1/files is a JSON array: files first, then directories, each by name', async () => {
        const res = await call('GET', '/v1/files/list');
        expect(res.status).to.equal(200);
        expect(res.json.map((e: { name: string }) => e.name)).to.deep.equal(['a.txt', 'b.txt', 'c.txt', 'adir', 'zdir']);
        expect(res.json[0]).to.have.all.keys('name', 'path', 'type', 'size', 'mode', 'owner', 'group', 'mtime', 'etag');
        expect(res.json[3]).to.have.all.keys('name', 'path', 'type', 'size', 'mode', 'owner', 'group', 'mtime');
      });

      it('/v1/directories lists with path, count and X-CallFS-Count', async () => {
        const res = await call('GET', '/v1/directories/list/');
        expect(res.status).to.equal(200);
        expect(res.json).to.include({ path: '/list', type: 'directory', recursive: false, count: 5 });
        expect(res.headers['x-callfs-count']).to.equal('5');
        expect(res.json.items).to.have.length(5);
        expect(res.json).not.to.have.property('next_cursor');
      });

      it('recursive listing honours max_depth', async () => {
        const all = await call('GET', '/v1/directories/list?recursive=true');
        expect(all.json.items.map((e: { path: string }) => e.path)).to.include.members(['/list/adir/inner', '/list/adir/inner/deep.txt']);
        expect(all.json.count).to.equal(7);
        const shallow = await call('GET', '/v1/directories/list?recursive=true&max_depth=1');
        const paths = shallow.json.items.map((e: { path: string }) => e.path);
        expect(paths).to.include('/list/adir/inner');
        expect(paths).not.to.include('/list/adir/inner/deep.txt');
        expect(shallow.json.max_depth).to.equal(1);
      });

      it('pages with limit and cursor without gaps or duplicates', async () => {
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 10; i++) {
          const res = await call('GET', `/v1/directories/list?limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
          expect(res.status).to.equal(200);
          seen.push(...res.json.items.map((e: { name: string }) => e.name));
          cursor = res.json.next_cursor;
          if (cursor === undefined) break;
        }
        expect(seen).to.deep.equal(['a.txt', 'b.txt', 'c.txt', 'adir', 'zdir']);
      });

      it('listing a file is 400, a bad query value is 400, a missing directory 404', async () => {
        expect((await call('GET', '/v1/directories/list/a.txt')).json.code).to.equal('BAD_REQUEST');
        expect((await call('GET', '/v1/directories/list?max_depth=-1')).status).to.equal(400);
        expect((await call('GET', '/v1/directories/list?recursive=yes')).status).to.equal(400);
        expect((await call('GET', '/v1/directories/list?cursor=garbage')).status).to.equal(400);
        expect((await call('GET', '/v1/directories/nope')).status).to.equal(404);
      });
    });

    describe('PATCH: rename, move, chmod', () => {
      it('renames in place with {"name"}', async () => {
        await call('PUT', '/v1/files/ren/old.txt', { body: 'r' });
        const res = await call('PATCH', '/v1/files/ren/old.txt', { body: JSON.stringify({ name: 'new.txt' }), headers: { 'content-type': 'application/json' } });
        expect(res.status).to.equal(200);
        expect(res.json).to.deep.equal({ path: '/ren/new.txt' });
        expect((await call('GET', '/v1/files/ren/new.txt')).text).to.equal('r');
        expect((await call('GET', '/v1/files/ren/old.txt')).status).to.equal(404);
      });

      it('moves a directory with its contents; onto an existing path 409 unless overwrite', async () => {
        await call('PUT', '/v1/files/mv/src/a/b.txt', { body: 'b' });
        await call('PUT', '/v1/files/mv/taken', { body: 't' });
        const refused = await call('PATCH', '/v1/files/mv/src', { body: JSON.stringify({ destination: '/mv/taken' }) });
        expect(refused.status).to.equal(409);
        expect(refused.json.code).to.equal('FILE_ALREADY_EXISTS');
        const moved = await call('PATCH', '/v1/files/mv/src', { body: JSON.stringify({ destination: '/mv/dst/inner', create_parents: true }) });
        expect(moved.status).to.equal(200);
        expect((await call('GET', '/v1/files/mv/dst/inner/a/b.txt')).text).to.equal('b');
        await call('PUT', '/v1/files/mv/f1', { body: 'one' });
        const over = await call('PATCH', '/v1/files/mv/f1', { body: JSON.stringify({ destination: '/mv/taken', overwrite: true }) });
        expect(over.status).to.equal(200);
        expect((await call('GET', '/v1/files/mv/taken')).text).to.equal('one');
      });

      it('refuses moves into itself or onto "/", and malformed bodies, with 400', async () => {
        await call('POST', '/v1/files/self/sub/');
        for (const body of [{ destination: '/self/sub/x' }, { destination: '/' }, { name: 'a/b' }, { name: '..' }, { bogus: 1 }, {}]) {
          const res = await call('PATCH', '/v1/files/self', { body: JSON.stringify(body) });
          expect(res.status, JSON.stringify(body)).to.equal(400);
        }
        for (const raw of ['{not json', '[1,2]', '"x"']) {
          const res = await call('PATCH', '/v1/files/self', { body: raw });
          expect(res.status, raw).to.equal(400);
          expect(res.json.code).to.equal('BAD_REQUEST');
        }
      });

      it('chmod by the owner with {"mode"}; chown is root only', async () => {
        await call('PUT', '/v1/files/perm/f', { body: 'x' });
        const res = await call('PATCH', '/v1/files/perm/f', { body: JSON.stringify({ mode: '0600' }) });
        expect(res.status).to.equal(200);
        expect((await call('HEAD', '/v1/files/perm/f')).headers['x-callfs-mode']).to.equal('0600');
        const chown = await call('PATCH', '/v1/files/perm/f', { body: JSON.stringify({ owner: 'bob' }) });
        expect(chown.status).to.equal(403);
        expect(chown.json.code).to.equal('PERMISSION_DENIED');
        const asRoot = await call('PATCH', '/v1/files/perm/f', { token: KEYS.root, body: JSON.stringify({ owner: 'bob', group: 100 }) });
        expect(asRoot.status).to.equal(200);
        const head = await call('HEAD', '/v1/files/perm/f', { token: KEYS.root });
        expect(head.headers['x-callfs-owner']).to.equal('bob');
        expect(head.headers['x-callfs-group']).to.equal('100');
      });
    });

    describe('DELETE', () => {
      it('deletes a file (204); a non-empty directory is 409 unless recursive=true', async () => {
        await call('PUT', '/v1/files/del/f', { body: 'x' });
        expect((await call('DELETE', '/v1/files/del/f')).status).to.equal(204);
        expect((await call('GET', '/v1/files/del/f')).status).to.equal(404);
        await call('PUT', '/v1/files/del/tree/a/b/c.txt', { body: 'x' });
        const refused = await call('DELETE', '/v1/files/del/tree');
        expect(refused.status).to.equal(409);
        expect(refused.json.code).to.equal('DIRECTORY_NOT_EMPTY');
        expect((await call('DELETE', '/v1/files/del/tree?recursive=true')).status).to.equal(204);
        expect((await call('GET', '/v1/directories/del')).json.count).to.equal(0);
        expect((await call('DELETE', '/v1/files/del/nothing')).status).to.equal(404);
        expect((await call('DELETE', '/v1/files/', { token: KEYS.root })).status).to.equal(400);
      });
    });

    describe('upload limits', () => {
      it('a Content-Length over server.max_upload_bytes is 413 before any byte is read, and nothing is stored', async () => {
        const res = await call('PUT', '/v1/files/limits/huge', { headers: { 'content-length': String(20 * 1024 ** 4) }, body: Buffer.alloc(0) }).catch((err: Error) => err);
        if (res instanceof Error) expect.fail(`the client saw ${res.message} instead of a 413`);
        expect(res.status).to.equal(413);
        expect(res.json.code).to.equal('PAYLOAD_TOO_LARGE');
        expect((await call('HEAD', '/v1/files/limits/huge')).status).to.equal(404);
      });
    });
  });
}
