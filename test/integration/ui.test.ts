import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HTTPResponse, Page } from 'puppeteer-core';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { requireComponent } from '../support/services.js';
import { tempDir } from '../support/tmp.js';
import { SCREENSHOTS, ensureChromium, launchChromium, screenshot, watchPage, type PageWatch, type TestBrowser } from '../support/browser.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { byName, click, entryNames, pngImage, retype, signIn, unnamedControls, waitForText } from '../support/ui-page.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * The web file manager in a real headless Chromium against a real server
 * over HTTPS, as a person uses it: sign in, make and open a folder, upload
 * three files and watch them finish, preview, rename, share a link that an
 * HTTP client then fetches, download, delete, the cluster page, sign out;
 * then root's cluster page and the errors a person meets. Any console
 * error, uncaught exception or CSP violation fails the step it happened in;
 * each page is photographed into test-output/ui/.
 */
describe('web UI in Chromium', function () {
  this.timeout(180_000);
  let server: TestServer;
  let chromium: TestBrowser;
  let page: Page;
  let watch: PageWatch;
  const files = tempDir('callfs-ui-files-');
  const notes = Buffer.from('Meeting notes\n\n- ship the web UI\n- write its docs\n');
  const photo = pngImage();
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const upload = { 'notes.txt': notes, 'photo.png': photo, 'data.bin': data };

  const api = (method: string, path: string, key: string = KEYS.alice, body?: Buffer | string) =>
    request(`${server.url}${path}`, { method, token: key, ca: server.ca, ...(body === undefined ? {} : { body }) });

  before(async function () {
    requireComponent(this, await ensureChromium());
    rmSync(SCREENSHOTS, { recursive: true, force: true });
    // Links are made quickly one after another here; their limiter has its own tests.
    server = await startTestServer({
      links: { generate_rate_limit: 0 },
      // A folder of more than 100 entries is deleted by a tree job (202), which the UI follows.
      metadata_store: { tree_job_entries: 100, tree_batch_entries: 1 },
    });
    for (const [name, bytes] of Object.entries(upload)) writeFileSync(join(files.dir, name), bytes);
    chromium = await launchChromium();
    page = await chromium.browser.newPage();
    await page.setViewport({ width: 1100, height: 720 });
    watch = await watchPage(page);
  });
  afterEach(async function () {
    const problems = watch?.problems.splice(0) ?? [];
    if (this.currentTest?.state === 'passed') expect(problems, 'console errors, page errors or CSP violations').to.deep.equal([]);
    else if (page !== undefined) {
      await screenshot(page, `failed-${this.currentTest?.title.replace(/\W+/g, '-').slice(0, 60)}`);
      if (problems.length > 0) console.error(problems.join('\n'));
    }
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
    files.remove();
  });

  it('signs in with a pasted key, kept in sessionStorage only', async () => {
    await page.goto(`${server.url}/ui/`, { waitUntil: 'networkidle0' });
    await page.locator('#api-key').wait();
    expect(await page.title()).to.equal('Sign in — CallFS');
    await screenshot(page, 'sign-in');
    await signIn(page, KEYS.alice, 'alice');
    expect(await page.evaluate(() => sessionStorage.getItem('callfs.api-key'))).to.equal(KEYS.alice);
    expect(await page.evaluate(() => localStorage.length)).to.equal(0);
    expect(page.url()).not.to.include(KEYS.alice);
    expect(await chromium.browser.cookies()).to.deep.equal([]);
  });

  it('makes a folder and opens it', async () => {
    await click(page, 'button', 'New folder');
    await page.locator('dialog[open] input[type="text"]').fill('album');
    await click(page, 'button', 'Create');
    await click(page, 'button', 'Folder album');
    await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'album');
    expect(await page.evaluate(() => location.hash)).to.equal('#/files/album');
    expect(await page.$eval('.crumbs [aria-current="page"]', (a) => a.textContent)).to.equal('album');
    expect((await api('HEAD', '/v1/files/album')).headers['x-callfs-type']).to.equal('directory');
  });

  it('uploads three files from the picker, each with a progress bar that finishes', async () => {
    const picker = await page.$('input[data-role="upload-picker"]');
    await picker?.uploadFile(...Object.keys(upload).map((name) => join(files.dir, name)));
    await page.waitForFunction(() => document.querySelectorAll('.uploads li.upload-done').length === 3, { timeout: 60_000 });
    const bars = await page.$$eval('.uploads li', (items) =>
      items.map((li) => {
        const bar = li.querySelector('progress') as HTMLProgressElement;
        return { name: li.getAttribute('data-upload'), value: bar.value, max: bar.max, label: bar.getAttribute('aria-label'), state: li.querySelector('.upload-state')?.textContent };
      }),
    );
    expect(bars.map((b) => b.name).sort()).to.deep.equal(['data.bin', 'notes.txt', 'photo.png']);
    for (const bar of bars) {
      expect(bar.value, bar.name ?? '').to.equal(bar.max);
      expect(bar.state).to.equal('Uploaded');
      expect(bar.label).to.equal(`Upload of ${bar.name}`);
    }
    await page.waitForFunction(() => document.querySelectorAll('table.files .entry').length === 3);
    expect(await entryNames(page)).to.deep.equal(['data.bin', 'notes.txt', 'photo.png']);
    await screenshot(page, 'files-uploaded');
    for (const [name, bytes] of Object.entries(upload)) {
      const res = await api('GET', `/v1/files/album/${name}`);
      expect(res.status, name).to.equal(200);
      expect(sha256(res.body), name).to.equal(sha256(bytes));
    }
    await click(page, 'button', 'Clear finished');
    await page.waitForFunction(() => document.querySelector('.uploads') === null);
  });

  it('shows an entry’s details with its SHA-256, and previews text and images', async () => {
    await click(page, 'button', 'notes.txt');
    await waitForText(page, sha256(notes));
    await page.waitForFunction(() => document.querySelector('.preview pre')?.textContent?.includes('ship the web UI') === true);
    const facts = await page.$eval('.details .facts', (dl) => dl.textContent ?? '');
    expect(facts).to.include('rw-r--r--').and.include('alice').and.include('1001');
    await click(page, 'button', 'photo.png');
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('.preview img');
      return img !== null && img.complete && img.naturalWidth === 96;
    });
    expect(await page.$eval('.preview img', (img) => img.getAttribute('src')?.startsWith('blob:'))).to.equal(true);
    await screenshot(page, 'details-preview', { fullPage: true });
  });

  it('moves between entries with the arrow keys and renames with F2', async () => {
    await page.locator('table.files button.entry').click();
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.textContent)).to.equal('notes.txt');
    await page.keyboard.press('F2');
    await page.waitForSelector('dialog[open]');
    // The name without its extension is selected, ready to type over.
    expect(await page.evaluate(() => {
      const input = document.querySelector<HTMLInputElement>('dialog[open] input');
      return input?.value.slice(input.selectionStart ?? 0, input.selectionEnd ?? 0);
    })).to.equal('notes');
    await retype(page, 'dialog[open] input[type="text"]', 'notes-2026.txt');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => [...document.querySelectorAll('.entry-name')].some((e) => e.textContent === 'notes-2026.txt'));
    expect(await entryNames(page)).to.deep.equal(['data.bin', 'notes-2026.txt', 'photo.png']);
    expect((await api('HEAD', '/v1/files/album/notes.txt')).status).to.equal(404);
    expect((await api('HEAD', '/v1/files/album/notes-2026.txt')).status).to.equal(200);
  });

  it('makes a single-use link that an HTTP client fetches once', async () => {
    await click(page, 'button', 'notes-2026.txt');
    await click(page, 'button', 'Share link');
    await click(page, 'button', 'Create link');
    const field = await page.waitForSelector('dialog[open] input.link-url', { visible: true });
    const url = String(await field?.evaluate((input) => (input as HTMLInputElement).value));
    expect(url).to.match(new RegExp(`^${server.url.replace(/\./g, '\\.')}/download/[^/]+$`));
    expect(url).not.to.include(KEYS.alice);
    await screenshot(page, 'share-link');
    const first = await request(url, { ca: server.ca });
    expect(first.status).to.equal(200);
    expect(first.body.equals(notes)).to.equal(true);
    expect(String(first.headers['content-disposition'])).to.include('notes-2026.txt');
    expect((await request(url, { ca: server.ca })).json.code).to.equal('LINK_USED');
    await click(page, 'button', 'Done');
  });

  it('downloads a file through a one-time link, no key in any URL', async () => {
    await click(page, 'button', 'photo.png');
    await click(page, 'button', 'Download');
    const saved = join(chromium.downloads, 'photo.png');
    const deadline = Date.now() + 30_000;
    while (!existsSync(saved) && Date.now() < deadline) await sleep(100);
    expect(readdirSync(chromium.downloads)).to.include('photo.png');
    expect(sha256(readFileSync(saved))).to.equal(sha256(photo));
  });

  it('deletes a file after asking', async () => {
    await click(page, 'button', 'data.bin');
    await page.locator('.details').wait();
    await page.locator(`.details ${byName('button', 'Delete')}`).click();
    await page.waitForSelector('dialog[open]');
    expect(await page.$eval('dialog[open] h2', (h) => h.textContent)).to.equal('Delete data.bin?');
    await page.locator(`dialog[open] ${byName('button', 'Delete')}`).click();
    await page.waitForFunction(() => ![...document.querySelectorAll('.entry-name')].some((e) => e.textContent === 'data.bin'));
    expect((await api('HEAD', '/v1/files/album/data.bin')).status).to.equal(404);
  });

  it('cancels an upload on its way: the server drops it, nothing appears', async () => {
    const requests: string[] = [];
    const onRequest = (r: { method(): string; url(): string }) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    page.on('request', onRequest);
    try {
      // Slowed down, so that there is time to cancel it on its way.
      await page.emulateNetworkConditions({ upload: 200 * 1024, download: -1, latency: 0 });
      const picker = await page.$('input[data-role="upload-picker"]');
      await picker?.uploadFile(join(files.dir, 'data.bin'));
      await page.waitForFunction(() => (document.querySelector<HTMLProgressElement>('.uploads li progress')?.value ?? 0) > 0, { timeout: 30_000 });
      await click(page, 'button', 'Cancel upload of data.bin');
      await page.locator('.uploads li.upload-cancelled').wait();
      expect(await page.$eval('.uploads li .upload-state', (s) => s.textContent)).to.equal('Cancelled');
      // tus termination: the upload resource is deleted on the server, bytes and all.
      await page.waitForFunction(() => true);
      const deadline = Date.now() + 10_000;
      while (!requests.some((r) => /^DELETE \/v1\/uploads\/[0-9a-f]{32}$/.test(r)) && Date.now() < deadline) await sleep(50);
      expect(requests.filter((r) => r.startsWith('DELETE /v1/uploads/'))).to.have.length(1);
    } finally {
      page.off('request', onRequest);
      await page.emulateNetworkConditions(null);
    }
    expect((await api('HEAD', '/v1/files/album/data.bin')).status).to.equal(404);
    await click(page, 'button', 'Clear finished');
  });

  it('resumes an upload whose connection broke, from where the server got to', async () => {
    // A second tab that reaches the server through a relay which drops every connection once
    // 1.5 MiB have gone up: the PATCH breaks off in the middle, and tus-js-client goes on by itself.
    const relay = await startTcpProxy({ host: '127.0.0.1', port: server.port }, { cutUpAt: [1536 * 1024] });
    const tab = await chromium.browser.newPage();
    const tabWatch = await watchPage(tab);
    const patches: number[] = [];
    tab.on('request', (r) => {
      if (r.method() === 'PATCH') patches.push(Number(r.headers()['upload-offset']));
    });
    try {
      await tab.goto(`https://127.0.0.1:${relay.port}/ui/#/files/album`, { waitUntil: 'networkidle0' });
      await signIn(tab, KEYS.alice, 'alice');
      await tab.waitForFunction(() => document.querySelector('h1')?.textContent === 'album');
      const picker = await tab.$('input[data-role="upload-picker"]');
      await picker?.uploadFile(join(files.dir, 'data.bin'));
      await tab.locator('.uploads li.upload-done').setTimeout(60_000).wait();
      expect(relay.cuts).to.equal(1);
      // The first PATCH started at 0; the one after the break at what the server had kept (HEAD).
      expect(patches[0]).to.equal(0);
      expect(patches.length).to.be.at.least(2);
      expect(patches[patches.length - 1]).to.be.greaterThan(0);
      const stored = await api('GET', '/v1/files/album/data.bin');
      expect(sha256(stored.body)).to.equal(sha256(data));
      // Only what the browser logs for the request the relay cut off, and for a PATCH that may
      // come before the server has recorded the broken one (409 offset mismatch: tus asks again).
      tabWatch.accept(/net::ERR_|status of 409 \(Conflict\) \(https:\/\/127\.0\.0\.1:\d+\/v1\/uploads\//);
      expect(tabWatch.problems).to.deep.equal([]);
    } finally {
      await tab.close();
      await relay.close();
    }
  });

  it('fits a phone-sized window, and every control has a name for screen readers', async () => {
    expect(unnamedControls(await page.accessibility.snapshot())).to.deep.equal([]);
    await page.setViewport({ width: 375, height: 740 });
    await page.locator('table.files').wait();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(375);
    await screenshot(page, 'files-phone');
    await page.setViewport({ width: 1100, height: 720 });
  });

  it('deletes a folder with everything in it, after a confirmation', async () => {
    await click(page, 'link', 'Home');
    await click(page, 'button', 'Details of album');
    await page.locator(`.details ${byName('button', 'Delete')}`).click();
    await waitForText(page, 'The folder /album and everything in it will be deleted');
    await click(page, 'button', 'Delete folder and contents');
    await waitForText(page, 'album deleted.');
    expect((await api('HEAD', '/v1/files/album')).status).to.equal(404);
  });

  it('pages through a big folder, and deletes it as a server job followed to its end', async () => {
    // 250 files and a chain of 2000 folders: two pages of the UI's 200, and a tree that takes
    // its job (one entry per batch) longer than the server waits before answering 202.
    const names = Array.from({ length: 250 }, (_, i) => `f-${String(i).padStart(3, '0')}.txt`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map(async (n) => expect((await api('PUT', `/v1/files/big/${n}`, KEYS.alice, n)).status).to.equal(201)));
    }
    expect((await api('POST', `/v1/files/big${'/d'.repeat(2000)}/`)).status).to.equal(201);
    await click(page, 'button', 'Refresh');
    await click(page, 'button', 'Folder big');
    await waitForText(page, '200 entries shown, more in this folder');
    await click(page, 'button', 'Load 200 more');
    await waitForText(page, '251 entries');
    expect(await entryNames(page)).to.deep.equal(['d', ...names]);
    const seen: string[] = [];
    const onResponse = (r: HTTPResponse) => seen.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
    page.on('response', onResponse);
    try {
      await click(page, 'link', 'Home');
      await click(page, 'button', 'Details of big');
      await page.locator(`.details ${byName('button', 'Delete')}`).click();
      await click(page, 'button', 'Delete folder and contents');
      await page.waitForFunction(() => /Deleting: \d+ of \d+ entries/.test(document.querySelector('dialog[open] .progress-text')?.textContent ?? ''), { timeout: 30_000 });
      await waitForText(page, 'big deleted.', 60_000);
    } finally {
      page.off('response', onResponse);
    }
    expect(seen).to.include('DELETE /v1/files/big 202');
    expect(seen.filter((s) => /^GET \/v1\/jobs\/\S+ 200$/.test(s)).length).to.be.at.least(1);
    expect((await api('HEAD', '/v1/files/big')).status).to.equal(404);
  });

  it('shows the cluster: the instance up, its space as a bar, its blobs', async () => {
    await click(page, 'link', 'Cluster');
    await page.locator('li.instance[data-instance="callfs-instance-1"] .badge.up').wait();
    expect(await page.$eval('li.instance .badge.up', (b) => b.textContent)).to.equal('Up');
    const meter = await page.$eval('li.instance [role="meter"]', (m) => ({ label: m.getAttribute('aria-label'), text: m.getAttribute('aria-valuetext') }));
    expect(meter.label).to.equal('Space on callfs-instance-1');
    expect(meter.text).to.match(/in blobs, .* free$/);
    expect(await page.$('.cas')).to.equal(null);
    expect(unnamedControls(await page.accessibility.snapshot())).to.deep.equal([]);
    await screenshot(page, 'cluster');
  });

  it('signs out: the key is gone from the tab', async () => {
    await click(page, 'button', 'Sign out');
    await page.locator('#api-key').wait();
    expect(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('callfs.')))).to.deep.equal([]);
    await page.reload({ waitUntil: 'networkidle0' });
    await page.locator('#api-key').wait();
  });

  it('shows root the content store, and runs a scrub and a collection', async () => {
    await signIn(page, KEYS.root, 'root');
    await click(page, 'link', 'Cluster');
    await page.locator('table.images tbody tr').wait();
    await click(page, 'button', 'Scrub now');
    await waitForText(page, 'Scrub checked');
    await click(page, 'button', 'Collect garbage now');
    await waitForText(page, 'Garbage collection removed');
    await screenshot(page, 'cluster-root', { fullPage: true });
    await click(page, 'button', 'Sign out');
    await page.locator('#api-key').wait();
  });

  it('says in words that a wrong key was not accepted', async () => {
    await page.locator('#api-key').fill('not-the-key-0123456789');
    await click(page, 'button', 'Sign in');
    await waitForText(page, 'That API key was not accepted');
    await screenshot(page, 'sign-in-refused');
    expect(await page.evaluate(() => sessionStorage.length)).to.equal(0);
    // The browser reports the refused request itself; nothing else may appear.
    expect(watch.accept(/status of 401/)).to.equal(1);
  });

  it('says in words that an upload into a folder one may not write was refused', async () => {
    expect((await api('POST', '/v1/files/private/')).status).to.equal(201);
    await signIn(page, KEYS.bob, 'bob');
    await page.evaluate(() => {
      location.hash = '#/files/private';
    });
    await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'private');
    const picker = await page.$('input[data-role="upload-picker"]');
    await picker?.uploadFile(join(files.dir, 'notes.txt'));
    await page.locator('.uploads li.upload-failed').wait();
    expect(await page.$eval('.uploads li.upload-failed .error-inline', (p) => p.textContent)).to.equal('You do not have permission to do that here.');
    // Trying again would not help: no Retry for a refusal.
    expect(await page.$('.uploads li.upload-failed .upload-action button')).to.equal(null);
    await screenshot(page, 'upload-refused');
    expect(watch.accept(/status of 403/)).to.equal(1);
    await click(page, 'button', 'Sign out');
  });

  it('would catch a CSP violation (the guard of every step above works)', async () => {
    await page.evaluate(() => {
      const img = document.createElement('img');
      img.src = 'https://cdn.example.invalid/pixel.png';
      document.body.append(img);
    });
    await page.waitForFunction(() => true);
    const deadline = Date.now() + 5000;
    while (!watch.problems.some((p) => p.includes('CSP violation: img-src')) && Date.now() < deadline) await sleep(50);
    expect(watch.accept(/img-src|cdn\.example\.invalid/)).to.be.at.least(1);
  });
});
