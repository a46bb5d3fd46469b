import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { DAV, basic, child, clark, davClient, descendants, encodeSegments, parseMultistatus, parseXml, propText, propfindBody, type DavResponse, davSession } from '../support/webdav.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const NS = 'urn:callfs-tests:props';
const OTHER_NS = 'http://example.com/other/';

/** Run `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('WebDAV protocol (embedded server over HTTPS)', function () {
  this.timeout(120_000);
  let server: TestServer;
  const { dav, v1, propfind, mkcol, put, url } = davSession(() => server);
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  describe('configuration', () => {
    it('webdav.enabled: false serves nothing under the prefix; the /v1 API is unchanged', async () => {
      const off = await startTestServer({ webdav: { enabled: false } });
      try {
        // Bearer: without WebDAV nothing accepts Basic, and a 401 would not say whether the route exists.
        const res = await davClient(off.url, off.ca).dav('PROPFIND', '/', { as: null, headers: { depth: '0', authorization: `Bearer ${KEYS.alice}` } });
        expect(res.status).to.equal(404);
        expect((await request(`${off.url}/v1/files/`, { method: 'HEAD', token: KEYS.alice, ca: off.ca })).status).to.equal(200);
      } finally {
        await off.stop();
      }
    });

    it('webdav.prefix moves it; a prefix overlapping the API is refused at start', async () => {
      const moved = await startTestServer({ webdav: { prefix: '/dav' } });
      try {
        expect((await davClient(moved.url, moved.ca, '/dav').dav('PROPFIND', '/', { headers: { depth: '0' } })).status).to.equal(207);
        expect((await davClient(moved.url, moved.ca).dav('PROPFIND', '/', { as: null, headers: { depth: '0', authorization: `Bearer ${KEYS.alice}` } })).status).to.equal(404);
      } finally {
        await moved.stop();
      }
      for (const prefix of ['/v1', '/v1/dav', '/', '/dav/', 'dav', '/health', '/download']) {
        let started: TestServer | undefined;
        try {
          started = await startTestServer({ webdav: { prefix } });
        } catch {
          continue;
        }
        await started.stop();
        expect.fail(`webdav.prefix ${JSON.stringify(prefix)} was accepted`);
      }
    });
  });

  describe('authentication', () => {
    it('no credentials: 401 with a Basic challenge, for every method including OPTIONS', async () => {
      for (const method of ['OPTIONS', 'PROPFIND', 'GET', 'PUT', 'MKCOL', 'DELETE', 'LOCK']) {
        const res = await dav(method, '/', { as: null, headers: { depth: '0' } });
        expect(res.status, method).to.equal(401);
        expect(String(res.headers['www-authenticate']), method).to.match(/^Basic realm="CallFS"/);
      }
    });

    it('wrong credentials: a wrong password, an unknown user, another user’s key, a malformed header are 401', async () => {
      const attempts: Record<string, string> = {
        'wrong password': basic('alice', 'not-the-key'),
        'unknown user': basic('mallory', KEYS.alice),
        'bob’s key as alice': basic('alice', KEYS.bob),
        'empty password': basic('alice', ''),
        'not base64': 'Basic %%%not-base64%%%',
        'no colon': `Basic ${Buffer.from('alice').toString('base64')}`,
        'wrong bearer': 'Bearer not-a-key',
      };
      for (const [what, authorization] of Object.entries(attempts)) {
        const res = await dav('PROPFIND', '/', { as: null, headers: { authorization, depth: '0' } });
        expect(res.status, what).to.equal(401);
        expect(String(res.headers['www-authenticate']), what).to.match(/^Basic realm="CallFS"/);
      }
    });

    it('Basic (name + API key) and Bearer (API key) both work, and act as that user', async () => {
      expect((await dav('PROPFIND', '/', { headers: { depth: '0' } })).status).to.equal(207);
      const bearer = await dav('PROPFIND', '/', { as: null, headers: { depth: '0', authorization: `Bearer ${KEYS.bob}` } });
      expect(bearer.status).to.equal(207);
      await put('/auth-basic.txt', 'from alice');
      expect((await dav('PUT', '/auth-bearer.txt', { as: null, headers: { authorization: `Bearer ${KEYS.bob}` }, body: 'from bob' })).status).to.equal(201);
      expect((await v1('HEAD', '/v1/files/auth-basic.txt')).headers['x-callfs-owner']).to.equal('alice');
      expect((await v1('HEAD', '/v1/files/auth-bearer.txt')).headers['x-callfs-owner']).to.equal('bob');
    });
  });

  it('OPTIONS: 200 with DAV: 1, 2, MS-Author-Via: DAV and every method in Allow', async () => {
    await put('/options.txt', 'x');
    for (const path of ['/', '/options.txt']) {
      const res = await dav('OPTIONS', path);
      expect(res.status, path).to.equal(200);
      const classes = String(res.headers.dav).split(',').map((s) => s.trim());
      expect(classes, path).to.include.members(['1', '2']);
      expect(res.headers['ms-author-via'], path).to.equal('DAV');
      const allow = String(res.headers.allow).split(',').map((s) => s.trim());
      expect(allow, path).to.include.members(['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK']);
    }
  });

  it('the prefix without a trailing slash is the root too', async () => {
    const res = await request(`${server.url}/webdav`, { method: 'PROPFIND', headers: { authorization: basic('alice'), depth: '0' }, ca: server.ca });
    expect(res.status).to.equal(207);
    const [root] = parseMultistatus(res.text);
    expect(root?.path).to.equal('/webdav/');
  });

  describe('PROPFIND', () => {
    const names = ['a file.txt', 'ünï cødé 🎉.txt', 'per%cent & amp.txt'];
    const bodies = names.map((n) => `content of ${n}\n`);
    before(async () => {
      await mkcol('/pf');
      for (const [i, name] of names.entries()) await put(`/pf/${name}`, bodies[i] as string);
      await mkcol('/pf/sub dir');
    });

    it('Depth 0 on a file: one response with its href and every live property', async () => {
      const [r, ...rest] = await propfind('/pf/a file.txt', '0');
      expect(rest).to.have.length(0);
      expect(r?.href).to.match(/^(https:\/\/[^/]+)?\/webdav\/pf\/a%20file\.txt$/);
      expect(propText(r, 'getcontentlength')).to.equal(String(Buffer.byteLength(bodies[0] as string)));
      expect(propText(r, 'getetag')).to.equal(`"${sha256(bodies[0] as string)}"`);
      expect(propText(r, 'getcontenttype')).to.match(/^text\/plain/);
      expect(propText(r, 'displayname')).to.equal('a file.txt');
      const modified = propText(r, 'getlastmodified') as string;
      expect(new Date(modified).toUTCString(), 'RFC 1123 date').to.equal(modified);
      expect(Date.now() - Date.parse(modified)).to.be.within(-5_000, 120_000);
      expect(propText(r, 'creationdate')).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
      const type = r?.props.get(clark(DAV, 'resourcetype'));
      expect(type?.status).to.equal(200);
      expect(type?.el.children, 'a file has an empty resourcetype').to.have.length(0);
      const supported = r?.props.get(clark(DAV, 'supportedlock'));
      expect(supported?.status).to.equal(200);
      const scopes = supported === undefined ? [] : descendants(supported.el, DAV, 'lockscope').flatMap((s) => s.children.map((c) => c.local));
      expect(scopes).to.include.members(['exclusive', 'shared']);
    });

    it('Depth 1 on a collection: itself and each child, hrefs percent-encoded, collections ending in /', async () => {
      const responses = await propfind('/pf', '1');
      const hrefPaths = responses.map((r) => r.href.replace(/^https:\/\/[^/]+/, ''));
      for (const href of hrefPaths) expect(href, 'percent-encoded: no spaces, no raw non-ASCII').to.match(/^[\x21-\x7e]+$/);
      expect(responses.map((r) => r.path).sort()).to.deep.equal(['/webdav/pf/', ...names.map((n) => `/webdav/pf/${n}`), '/webdav/pf/sub dir/'].sort());
      expect(hrefPaths).to.include(`/webdav/pf/${encodeSegments('ünï cødé 🎉.txt')}`);
      const self = responses.find((r) => r.path === '/webdav/pf/');
      const sub = responses.find((r) => r.path === '/webdav/pf/sub dir/');
      for (const coll of [self, sub]) {
        const type = coll?.props.get(clark(DAV, 'resourcetype'));
        expect(type?.status).to.equal(200);
        expect(child(type?.el, DAV, 'collection'), 'a collection says so').to.not.equal(undefined);
        expect(propText(coll, 'getetag'), 'no etag on a collection').to.equal(undefined);
      }
      expect(propText(sub, 'displayname')).to.equal('sub dir');
      const percent = responses.find((r) => r.path === '/webdav/pf/per%cent & amp.txt');
      expect(propText(percent, 'getetag')).to.equal(`"${sha256(bodies[2] as string)}"`);
    });

    it('an empty body, allprop, prop and propname', async () => {
      const empty = await propfind('/pf/a file.txt', '0');
      const allprop = await propfind('/pf/a file.txt', '0', '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>');
      for (const rs of [empty, allprop]) for (const p of ['getcontentlength', 'getlastmodified', 'getetag', 'resourcetype']) expect(propText(rs[0], p), p).to.not.equal(undefined);

      const [some] = await propfind('/pf/a file.txt', '0', propfindBody(['getcontentlength', 'displayname'], [{ ns: NS, local: 'never-set' }]));
      expect(propText(some, 'getcontentlength')).to.equal(String(Buffer.byteLength(bodies[0] as string)));
      expect(some?.props.get(clark(NS, 'never-set'))?.status, 'an unknown property is 404 in its own propstat').to.equal(404);
      expect(some?.props.has(clark(DAV, 'getetag')), 'only what was asked for').to.equal(false);

      const [names_] = await propfind('/pf/a file.txt', '0', '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>');
      for (const p of ['getcontentlength', 'getlastmodified', 'getetag', 'resourcetype', 'displayname']) {
        const found = names_?.props.get(clark(DAV, p));
        expect(found?.status, p).to.equal(200);
        expect(found?.el.text.trim(), `${p}: names only, no values`).to.equal('');
        expect(found?.el.children, p).to.have.length(0);
      }
    });

    it('a body in the default namespace (as Windows sends it) is read the same', async () => {
      const body = '<?xml version="1.0" encoding="utf-8" ?><propfind xmlns="DAV:"><prop><getcontentlength/><resourcetype/><x:unknown xmlns:x="urn:x"/></prop></propfind>';
      const [r] = await propfind('/pf/a file.txt', '0', body);
      expect(propText(r, 'getcontentlength')).to.equal(String(Buffer.byteLength(bodies[0] as string)));
      expect(r?.props.get(clark('urn:x', 'unknown'))?.status).to.equal(404);
    });

    it('quota-available-bytes and quota-used-bytes (RFC 4331) are numbers', async () => {
      const [r] = await propfind('/pf', '0', propfindBody(['quota-available-bytes', 'quota-used-bytes']));
      expect(propText(r, 'quota-available-bytes')).to.match(/^\d+$/);
      expect(propText(r, 'quota-used-bytes')).to.match(/^\d+$/);
    });

    it('Depth infinity and a missing Depth are refused with 403 propfind-finite-depth', async () => {
      for (const headers of [{ depth: 'infinity' }, {}] as Record<string, string>[]) {
        const res = await dav('PROPFIND', '/pf', { headers });
        expect(res.status, JSON.stringify(headers)).to.equal(403);
        const err = parseXml(res.text);
        expect(err.ns === DAV && err.local === 'error').to.equal(true);
        expect(child(err, DAV, 'propfind-finite-depth')).to.not.equal(undefined);
      }
    });

    it('malformed XML is 400; a missing resource is 404; a bad Depth is 400', async () => {
      expect((await dav('PROPFIND', '/pf', { headers: { depth: '0' }, body: '<D:propfind xmlns:D="DAV:"><D:prop>' })).status).to.equal(400);
      expect((await dav('PROPFIND', '/pf', { headers: { depth: '0' }, body: 'not xml at all' })).status).to.equal(400);
      expect((await dav('PROPFIND', '/pf/missing', { headers: { depth: '0' } })).status).to.equal(404);
      expect((await dav('PROPFIND', '/pf', { headers: { depth: '2' } })).status).to.equal(400);
    });

    it('a directory of 3000 entries lists every one of them', async () => {
      const count = 3000;
      await mkcol('/big');
      const items = Array.from({ length: count }, (_, i) => i);
      await inParallel(items, 32, async (i) => {
        const res = i % 10 === 0 ? await v1('POST', `/v1/files/big/d${i}/`) : await v1('PUT', `/v1/files/big/f${i}.txt`, { body: String(i) });
        expect(res.status, `entry ${i}`).to.equal(201);
      });
      const responses = await propfind('/big', '1', propfindBody(['resourcetype', 'getcontentlength']));
      expect(responses).to.have.length(count + 1);
      const seen = new Set(responses.map((r) => r.path));
      expect(seen.size).to.equal(count + 1);
      for (const i of items) expect(seen.has(i % 10 === 0 ? `/webdav/big/d${i}/` : `/webdav/big/f${i}.txt`), `entry ${i}`).to.equal(true);
      const f7 = responses.find((r) => r.path === '/webdav/big/f7.txt');
      expect(propText(f7, 'getcontentlength')).to.equal('1');
    });
  });

  describe('PROPPATCH', () => {
    const setBody = (props: string, remove = ''): string =>
      `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:t="${NS}" xmlns:o="${OTHER_NS}">` +
      (props === '' ? '' : `<D:set><D:prop>${props}</D:prop></D:set>`) +
      (remove === '' ? '' : `<D:remove><D:prop>${remove}</D:prop></D:remove>`) +
      '</D:propertyupdate>';
    const proppatch = async (path: string, body: string): Promise<DavResponse> => {
      const res = await dav('PROPPATCH', path, { body, headers: { 'content-type': 'application/xml' } });
      expect(res.status, res.text.slice(0, 300)).to.equal(207);
      const [r] = parseMultistatus(res.text);
      return r as DavResponse;
    };

    before(async () => {
      await mkcol('/pp');
      await put('/pp/doc.txt', 'document');
    });

    it('sets dead properties in any namespace, reads them back, lists them in propname and allprop, removes them', async () => {
      const set = await proppatch('/pp/doc.txt', setBody('<t:color>blue &amp; green</t:color><o:author>Zoë</o:author><t:empty/>'));
      for (const name of [clark(NS, 'color'), clark(OTHER_NS, 'author'), clark(NS, 'empty')]) expect(set.props.get(name)?.status, name).to.equal(200);

      const [r] = await propfind('/pp/doc.txt', '0', propfindBody([], [{ ns: NS, local: 'color' }, { ns: OTHER_NS, local: 'author' }, { ns: NS, local: 'empty' }]));
      expect(propText(r, 'color', NS)).to.equal('blue & green');
      expect(propText(r, 'author', OTHER_NS)).to.equal('Zoë');
      expect(r?.props.get(clark(NS, 'empty'))?.status).to.equal(200);

      const [names] = await propfind('/pp/doc.txt', '0', '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>');
      expect(names?.props.get(clark(NS, 'color'))?.status).to.equal(200);
      expect(names?.props.get(clark(OTHER_NS, 'author'))?.status).to.equal(200);
      const [all] = await propfind('/pp/doc.txt', '0', '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>');
      expect(propText(all, 'color', NS), 'allprop includes dead properties').to.equal('blue & green');

      const replaced = await proppatch('/pp/doc.txt', setBody('<t:color>red</t:color>', '<o:author/>'));
      expect(replaced.props.get(clark(NS, 'color'))?.status).to.equal(200);
      expect(replaced.props.get(clark(OTHER_NS, 'author'))?.status).to.equal(200);
      const [after_] = await propfind('/pp/doc.txt', '0', propfindBody([], [{ ns: NS, local: 'color' }, { ns: OTHER_NS, local: 'author' }]));
      expect(propText(after_, 'color', NS)).to.equal('red');
      expect(after_?.props.get(clark(OTHER_NS, 'author'))?.status).to.equal(404);
    });

    it('keeps XML values (child elements, their namespaces) of a dead property', async () => {
      await proppatch('/pp/doc.txt', setBody('<t:structured><o:inner attr="1">x</o:inner><t:more/></t:structured>'));
      const [r] = await propfind('/pp/doc.txt', '0', propfindBody([], [{ ns: NS, local: 'structured' }]));
      const prop = r?.props.get(clark(NS, 'structured'));
      expect(prop?.status).to.equal(200);
      const inner = child(prop?.el, OTHER_NS, 'inner');
      expect(inner?.text).to.equal('x');
      expect(inner?.attrs.attr).to.equal('1');
      expect(child(prop?.el, NS, 'more')).to.not.equal(undefined);
    });

    it('a live property is protected: 403 for it, 424 for the rest, nothing applied', async () => {
      const r = await proppatch('/pp/doc.txt', setBody('<t:should-not-stick>1</t:should-not-stick><D:getetag>"forged"</D:getetag>'));
      expect(r.props.get(clark(DAV, 'getetag'))?.status).to.equal(403);
      expect(r.props.get(clark(NS, 'should-not-stick'))?.status).to.equal(424);
      const [after_] = await propfind('/pp/doc.txt', '0', propfindBody(['getetag'], [{ ns: NS, local: 'should-not-stick' }]));
      expect(after_?.props.get(clark(NS, 'should-not-stick'))?.status).to.equal(404);
      expect(propText(after_, 'getetag')).to.equal(`"${sha256('document')}"`);
    });

    it('dead properties live on collections too, and follow a MOVE; a missing resource is 404', async () => {
      await mkcol('/pp/coll');
      await proppatch('/pp/coll', setBody('<t:tag>on a collection</t:tag>'));
      expect((await dav('MOVE', '/pp/coll', { headers: { destination: url('/pp/moved') } })).status).to.equal(201);
      const [r] = await propfind('/pp/moved', '0', propfindBody([], [{ ns: NS, local: 'tag' }]));
      expect(propText(r, 'tag', NS)).to.equal('on a collection');
      expect((await dav('PROPPATCH', '/pp/missing', { body: setBody('<t:x>1</t:x>') })).status).to.equal(404);
    });
  });

  describe('MKCOL, PUT, GET, HEAD, DELETE', () => {
    it('MKCOL: 201, then 405 when it exists, 409 without a parent, 415 with a body', async () => {
      expect((await dav('MKCOL', '/mk')).status).to.equal(201);
      const made = await v1('HEAD', '/v1/files/mk');
      expect(made.status).to.equal(200);
      expect(made.headers['x-callfs-owner']).to.equal('alice');
      expect((await dav('MKCOL', '/mk')).status).to.equal(405);
      await put('/mk/file', 'x');
      expect((await dav('MKCOL', '/mk/file')).status, 'onto a file').to.equal(405);
      expect((await dav('MKCOL', '/mk/no/parent')).status).to.equal(409);
      expect((await v1('HEAD', '/v1/files/mk/no')).status, 'no mkdir -p').to.equal(404);
      const withBody = await dav('MKCOL', '/mk/body', { body: '<x/>', headers: { 'content-type': 'application/xml' } });
      expect(withBody.status).to.equal(415);
      expect((await v1('HEAD', '/v1/files/mk/body')).status).to.equal(404);
    });

    it('PUT: 201 created, 204 replaced, 409 without a parent, 405 onto a collection; GET and HEAD as /v1', async () => {
      const body = randomBytes(200_000);
      const created = await dav('PUT', '/rw.bin', { body });
      expect(created.status).to.equal(201);
      const replacement = randomBytes(1234);
      expect((await dav('PUT', '/rw.bin', { body: replacement })).status).to.equal(204);
      expect((await dav('PUT', '/no/parent/x.bin', { body: 'x' })).status).to.equal(409);
      await mkcol('/rwdir');
      expect((await dav('PUT', '/rwdir', { body: 'x' })).status).to.equal(405);

      const got = await dav('GET', '/rw.bin');
      expect(got.status).to.equal(200);
      expect(got.body.equals(replacement)).to.equal(true);
      expect(got.headers.etag).to.equal(`"${sha256(replacement)}"`);
      expect(got.headers['last-modified']).to.be.a('string');
      expect((await v1('GET', '/v1/files/rw.bin')).body.equals(replacement)).to.equal(true);
      const head = await dav('HEAD', '/rw.bin');
      expect(head.status).to.equal(200);
      expect(head.headers['content-length']).to.equal(String(replacement.length));
      expect(head.body.length).to.equal(0);
      expect((await dav('GET', '/rw.bin', { headers: { 'if-none-match': `"${sha256(replacement)}"` } })).status).to.equal(304);
    });

    it('GET with Range: 206 with the bytes asked for', async () => {
      const body = randomBytes(100_000);
      await put('/range.bin', body);
      const part = await dav('GET', '/range.bin', { headers: { range: 'bytes=1000-1999' } });
      expect(part.status).to.equal(206);
      expect(part.headers['content-range']).to.equal(`bytes 1000-1999/${body.length}`);
      expect(part.body.equals(body.subarray(1000, 2000))).to.equal(true);
      const suffix = await dav('GET', '/range.bin', { headers: { range: 'bytes=-10' } });
      expect(suffix.status).to.equal(206);
      expect(suffix.body.equals(body.subarray(body.length - 10))).to.equal(true);
      expect((await dav('GET', '/range.bin', { headers: { range: `bytes=${body.length}-` } })).status).to.equal(416);
    });

    it('GET of a collection is a small HTML listing naming its children', async () => {
      await mkcol('/listing');
      await put('/listing/shown <b>.txt', 'x');
      const res = await dav('GET', '/listing');
      expect(res.status).to.equal(200);
      expect(String(res.headers['content-type'])).to.match(/^text\/html/);
      expect(res.text).to.include('shown &lt;b&gt;.txt');
      expect(res.text).to.not.include('shown <b>.txt');
    });

    it('streams a 24 MiB file both ways, byte-exact', async () => {
      const body = randomBytes(24 * 1024 * 1024);
      const chunks = Array.from({ length: 24 }, (_, i) => body.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
      const res = await dav('PUT', '/large.bin', { body: Readable.from(chunks), headers: { 'transfer-encoding': 'chunked' } });
      expect(res.status).to.equal(201);
      const got = await dav('GET', '/large.bin');
      expect(got.body.length).to.equal(body.length);
      expect(sha256(got.body)).to.equal(sha256(body));
    });

    it('DELETE: 204 for a file and (recursively) a collection, 404 when missing', async () => {
      await mkcol('/del');
      await mkcol('/del/inner');
      await put('/del/inner/a', 'a');
      await put('/del/b', 'b');
      expect((await dav('DELETE', '/del/b')).status).to.equal(204);
      expect((await v1('HEAD', '/v1/files/del/b')).status).to.equal(404);
      expect((await dav('DELETE', '/del')).status).to.equal(204);
      expect((await v1('HEAD', '/v1/files/del')).status).to.equal(404);
      expect((await dav('DELETE', '/del')).status).to.equal(404);
    });

    it('other CallFS errors keep their API status and JSON code (an invalid path)', async () => {
      const res = await request(`${server.url}/webdav/bad%01name`, { method: 'PUT', headers: { authorization: basic('alice') }, body: 'x', ca: server.ca });
      expect(res.status).to.equal(400);
      expect(res.json?.code).to.equal('INVALID_PATH');
    });
  });
});
