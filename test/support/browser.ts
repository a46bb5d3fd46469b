/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type ConsoleMessage, type Page } from 'puppeteer-core';
import { ensureDebianPackage, findProgram } from './debian.js';
import { tempDir } from './tmp.js';

/**
 * A real headless Chromium for the web UI's tests: the Debian package
 * `chromium`, installed when missing and the tests run as root, driven by
 * puppeteer-core (which downloads no browser of its own).
 */

const CANDIDATES = ['chromium', 'chromium-browser', '/usr/lib/chromium/chromium', 'google-chrome'];

function chromiumPath(): string | null {
  for (const name of CANDIDATES) {
    const found = findProgram(name);
    if (found !== null) return found;
  }
  return null;
}

/** Null when Chromium is usable (installing it if need be), else why not (for requireComponent). */
export async function ensureChromium(): Promise<string | null> {
  if (chromiumPath() !== null) return null;
  return ensureDebianPackage('chromium', 'chromium');
}

/** Where the UI tests write their screenshots (gitignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../../test-output/ui/', import.meta.url));

export interface TestBrowser {
  browser: Browser;
  /** The browser's download directory (Browser.setDownloadBehavior). */
  downloads: string;
  close(): Promise<void>;
}

/**
 * Chromium headless with a fresh profile, as root needs it (no sandbox),
 * with nothing that talks to Google, accepting the test server's
 * self-signed certificate.
 */
export async function launchChromium(): Promise<TestBrowser> {
  const executablePath = chromiumPath();
  if (executablePath === null) throw new Error('chromium is not installed');
  const profile = tempDir('callfs-chromium-');
  const downloads = join(profile.dir, 'downloads');
  mkdirSync(downloads);
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    userDataDir: join(profile.dir, 'profile'),
    acceptInsecureCerts: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--ignore-certificate-errors',
      '--lang=en-US',
    ],
  });
  try {
    const session = await browser.target().createCDPSession();
    await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  } catch (err) {
    await browser.close();
    profile.remove();
    throw err;
  }
  return {
    browser,
    downloads,
    async close() {
      try {
        await browser.close();
      } finally {
        profile.remove();
      }
    },
  };
}

export interface PageWatch {
  /** Console errors, uncaught exceptions and CSP violations seen so far, not yet accepted. */
  problems: string[];
  /** Accept (and remove) problems matching `pattern`: an error a test provokes on purpose; returns how many. */
  accept(pattern: RegExp): number;
}

/**
 * Record everything on a page that a UI must never cause: a console error,
 * an uncaught exception, a CSP violation (the securitypolicyviolation
 * event, reported to the console by a listener set before any script of the
 * page runs, and Chromium's own "Refused to …" messages).
 */
export async function watchPage(page: Page): Promise<PageWatch> {
  const watch: PageWatch = {
    problems: [],
    accept(pattern) {
      const before = watch.problems.length;
      watch.problems = watch.problems.filter((p) => !pattern.test(p));
      return before - watch.problems.length;
    },
  };
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  page.on('console', (msg: ConsoleMessage) => {
    const text = msg.text();
    if (msg.type() === 'error' || msg.type() === 'assert' || /Content Security Policy|Refused to/i.test(text)) {
      const at = msg.location().url ?? '';
      watch.problems.push(`console ${msg.type()}: ${text}${at === '' ? '' : ` (${at})`}`);
    }
  });
  page.on('pageerror', (err) => watch.problems.push(`page error: ${err instanceof Error ? err.message : String(err)}`));
  return watch;
}

/** A screenshot under SCREENSHOTS: the viewport, or the whole page. */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, type: 'png', fullPage: options.fullPage === true });
  return path;
}
