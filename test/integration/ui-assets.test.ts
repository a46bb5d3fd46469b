import { expect } from 'chai';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { UI_ROOT } from '../../cmd/compose.js';
import { stringify } from 'yaml';

/** Every file of the built UI, by its path under dist/ui. */
function builtFiles(dir = UI_ROOT): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? builtFiles(path) : [relative(UI_ROOT, path)];
  });
}

/** The XML namespaces Preact names when it makes SVG and MathML elements: identifiers, never fetched. */
const NAMESPACES = new Set(['http://www.w3.org/2000/svg', 'http://www.w3.org/1999/xhtml', 'http://www.w3.org/1998/Math/MathML', 'http://www.w3.org/1999/xlink', 'http://www.w3.org/XML/1998/namespace']);

/** /ui/: the web UI's static files over HTTPS, their headers, and what they must never be. */
describe('web UI assets (embedded server over HTTPS)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let html: string;
  before(async () => {
    server = await startTestServer();
    html = (await request(`${server.url}/ui/`, { ca: server.ca })).text;
  });
  after(async () => {
    await server?.stop();
  });
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => request(`${server.url}${path}`, { method, headers, ca: server.ca });

  it('redirects /ui to /ui/, and serves the page there without a key', async () => {
    const bare = await get('/ui');
    expect(bare.status).to.equal(301);
    expect(bare.headers.location).to.equal('/ui/');
    const page = await get('/ui/');
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(page.text).to.include('<div id="app">');
    expect((await get('/ui/index.html')).text).to.equal(page.text);
  });

  it('sends a strict Content-Security-Policy and the security headers with every file', async () => {
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.some((a) => a.endsWith('.js'))).to.equal(true);
    expect(assets.some((a) => a.endsWith('.css'))).to.equal(true);
    for (const path of ['/ui/', ...assets, '/ui/no-such-file.js']) {
      const res = await get(path);
      const csp = String(res.headers['content-security-policy']);
      const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values.join(' ')]));
      expect(directives.get('default-src'), path).to.equal("'none'");
      expect(directives.get('script-src'), path).to.equal("'self'");
      expect(directives.get('style-src'), path).to.equal("'self'");
      expect(directives.get('frame-ancestors'), path).to.equal("'none'");
      expect(directives.get('base-uri'), path).to.equal("'none'");
      expect(directives.get('form-action'), path).to.equal("'self'");
      expect(directives.get('require-trusted-types-for'), path).to.equal("'script'");
      expect(csp, path).not.to.match(/unsafe-inline|unsafe-eval|unsafe-hashes|\*|https?:/);
      expect(res.headers['x-content-type-options'], path).to.equal('nosniff');
      expect(res.headers['referrer-policy'], path).to.equal('no-referrer');
      expect(res.headers['x-frame-options'], path).to.equal('DENY');
      expect(res.headers['strict-transport-security'], path).to.match(/^max-age=/);
    }
  });

  it('caches hashed assets for good and revalidates the page', async () => {
    const page = await get('/ui/');
    expect(page.headers['cache-control']).to.equal('no-cache');
    const etag = String(page.headers.etag);
    expect((await get('/ui/', { 'if-none-match': etag })).status).to.equal(304);
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1] as string;
    const js = await get(script);
    expect(js.status).to.equal(200);
    expect(js.headers['content-type']).to.equal('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).to.equal('public, max-age=31536000, immutable');
    const css = await get(/href="(\/ui\/assets\/[^"]+\.css)"/.exec(html)?.[1] as string);
    expect(css.headers['content-type']).to.equal('text/css; charset=utf-8');
  });

  it('compresses with brotli or gzip when asked, the same bytes either way', async () => {
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1] as string;
    const plain = await get(script, { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).to.equal(undefined);
    const br = await get(script, { 'accept-encoding': 'gzip, br' });
    expect(br.headers['content-encoding']).to.equal('br');
    expect(br.headers.vary).to.match(/accept-encoding/i);
    expect(brotliDecompressSync(br.body).equals(plain.body)).to.equal(true);
    const gz = await get(script, { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).to.equal('gzip');
    expect(gunzipSync(gz.body).equals(plain.body)).to.equal(true);
    expect(br.body.length).to.be.below(plain.body.length / 2);
  });

  it('serves nothing outside the built UI: traversal in any spelling, unknown files and other methods', async () => {
    const attempts = [
      '/ui/..%2f..%2fpackage.json',
      '/ui/..%2F..%2Fpackage.json',
      '/ui/../package.json',
      '/ui/../../package.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/assets/../../../package.json',
      '/ui/assets/..%5c..%5cpackage.json',
      '/ui//etc/passwd',
      '/ui/%2fetc%2fpasswd',
      '/ui/assets/../index.html',
      '/ui/.%2e/.%2e/package.json',
      '/ui/index.html%00.js',
      '/ui/assets/',
      '/ui/no-such-file.js',
      '/ui/assets/index-00000000.js',
    ];
    for (const rawPath of attempts) {
      const res = await request(`${server.url}/`, { rawPath, ca: server.ca });
      expect(res.status, rawPath).to.equal(404);
      expect(res.json?.code, rawPath).to.equal('FILE_NOT_FOUND');
      expect(res.text, rawPath).not.to.include('"name": "callfs"');
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await get('/ui/', {}, method);
      expect(res.status, method).to.equal(405);
      expect(res.headers.allow).to.equal('GET, HEAD');
    }
    const head = await get('/ui/', {}, 'HEAD');
    expect(head.status).to.equal(200);
    expect(head.body.length).to.equal(0);
  });

  it('serves every built file, and none of them names anything outside this server (no CDN)', async () => {
    const built = builtFiles();
    expect(built).to.include('index.html');
    for (const file of built) {
      const res = await get(`/ui/${file}`, { 'accept-encoding': 'identity' });
      expect(res.status, file).to.equal(200);
      expect(res.body.equals(readFileSync(join(UI_ROOT, file))), file).to.equal(true);
      const urls = [...res.text.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi)].map((m) => m[0]).filter((u) => !NAMESPACES.has(u));
      expect(urls, file).to.deep.equal([]);
    }
  });

  it('has no inline script, no inline handler and no style attribute in the page', () => {
    for (const script of html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)) {
      expect(script[0], 'a script without src').to.match(/\ssrc="\/ui\//);
      expect(script[1]?.trim(), 'inline script').to.equal('');
    }
    expect(html).not.to.match(/\son[a-z]+\s*=/i);
    expect(html).not.to.match(/\sstyle\s*=/i);
    expect(html).not.to.match(/<style\b/i);
  });

  it('ui.enabled: false serves nothing at /ui/; the API is unchanged', async () => {
    const off = await startTestServer({ ui: { enabled: false } });
    try {
      expect((await request(`${off.url}/ui/`, { ca: off.ca })).status).to.equal(401);
      const withKey = await request(`${off.url}/ui/`, { ca: off.ca, token: KEYS.alice });
      expect(withKey.status).to.equal(404);
      expect(withKey.headers['content-security-policy']).to.equal("default-src 'none'; frame-ancestors 'none'");
      expect((await request(`${off.url}/v1/whoami`, { ca: off.ca, token: KEYS.alice })).status).to.equal(200);
    } finally {
      await off.stop();
    }
  });

  it('keeps /ui for itself: a WebDAV prefix there is refused, and config validate says where the UI is', async () => {
    let started: TestServer | undefined;
    try {
      started = await startTestServer({ webdav: { prefix: '/ui' } });
    } catch (err) {
      expect(String(err)).to.include('webdav.prefix');
    }
    await started?.stop();
    expect(started, 'webdav.prefix /ui was accepted').to.equal(undefined);
    const tmp = tempDir('callfs-ui-validate-');
    try {
      for (const [enabled, words] of [[true, 'web_ui: served at https://localhost:8443/ui/'], [false, 'web_ui: off (ui.enabled is false)']] as const) {
        const file = join(tmp.dir, 'config.yaml');
        writeFileSync(file, stringify({ server: { data_dir: join(tmp.dir, 'data') }, ui: { enabled } }));
        const out = await runCli(['config', 'validate', '-c', file], { cwd: tmp.dir });
        expect(out.code, out.stderr).to.equal(0);
        expect(out.stdout).to.include(words);
      }
      const bad = join(tmp.dir, 'bad.yaml');
      writeFileSync(bad, stringify({ ui: { enabled: 'sometimes' } }));
      const refused = await runCli(['config', 'validate', '-c', bad], { cwd: tmp.dir });
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include('ui.enabled');
    } finally {
      tmp.remove();
    }
  });
});
