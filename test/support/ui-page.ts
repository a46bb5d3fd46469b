import { deflateSync, crc32 } from 'node:zlib';
import type { Page, SerializedAXNode } from 'puppeteer-core';

/** Driving the web UI in a page as a person would: by the names buttons and fields announce. */

/** A control by its role and accessible name (what a screen reader says), so a test fails when a name goes missing. */
export const byName = (role: string, name: string): string => `::-p-aria([name=${JSON.stringify(name)}][role=${JSON.stringify(role)}])`;

export async function click(page: Page, role: string, name: string): Promise<void> {
  await page.locator(byName(role, name)).setTimeout(15_000).click();
}

/** Wait until the page shows `text` somewhere (in its text, not in attributes). */
export async function waitForText(page: Page, text: string, timeout = 15_000): Promise<void> {
  await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout }, text);
}

/** Sign in through the form with `key`; waits for the signed-in header. */
export async function signIn(page: Page, key: string, user: string): Promise<void> {
  await page.locator('#api-key').fill(key);
  await click(page, 'button', 'Sign in');
  await waitForText(page, `Signed in as ${user}`);
}

/** The entry buttons of the file table, in the order shown. */
export function entryNames(page: Page): Promise<string[]> {
  return page.$$eval('table.files .entry-name', (els) => els.map((e) => e.textContent ?? ''));
}

/** Fill a dialog's text field: select what is there, type over it. */
export async function retype(page: Page, selector: string, text: string): Promise<void> {
  const field = await page.waitForSelector(selector, { visible: true });
  await field?.click({ count: 3 });
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.type(text);
}

/** Controls in the accessibility tree that a screen reader could not name. */
export function unnamedControls(tree: SerializedAXNode | null): string[] {
  const out: string[] = [];
  const roles = new Set(['button', 'link', 'textbox', 'checkbox', 'combobox', 'searchbox', 'slider', 'spinbutton', 'meter', 'progressbar']);
  const walk = (node: SerializedAXNode): void => {
    if (roles.has(node.role) && (node.name ?? '').trim() === '') out.push(`${node.role} without a name`);
    for (const child of node.children ?? []) walk(child);
  };
  if (tree !== null) walk(tree);
  return out;
}

/** A small PNG (an RGB gradient), for the image preview. */
export function pngImage(width = 96, height = 64): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = Math.round((x / width) * 255);
      row[2 + x * 3] = Math.round((y / height) * 255);
      row[3 + x * 3] = 200;
    }
    rows.push(row);
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
