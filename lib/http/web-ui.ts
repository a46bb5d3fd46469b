import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';
import fresh from 'fresh';
import type { Middleware } from 'koa';
import mime from 'mime-types';
import { CallfsError } from '../errors.js';
import type { RequestState } from './state.js';

/** Where the web UI is served: `/ui/` (and `/ui`, redirected there). */
export const UI_PREFIX = '/ui';

/**
 * The web UI's Content-Security-Policy: scripts and styles from its own
 * files only (no inline script or style, no eval), API calls to this origin,
 * previews from blob: URLs the page made itself (images, and PDFs in a frame
 * or object), nothing may frame the UI, and no <base> or foreign form target.
 * Trusted Types with no policy: no string reaches a script-executing DOM sink.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  'frame-src blob:',
  'object-src blob:',
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

/** Names Vite writes: path segments of letters, digits, '.', '_' and '-', none starting with a dot. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
const COMPRESSIBLE = /^(text\/|application\/(javascript|json|manifest\+json)|image\/svg\+xml)/;

interface Asset {
  file: string;
  type: string;
  /** Hashed build output (assets/…): cached for a year; the rest (index.html) revalidated each time. */
  immutable: boolean;
  /** Read, hashed and compressed on first request, then kept (the build is a few hundred KiB). */
  loaded?: { body: Buffer; etag: string; br: Buffer | null; gzip: Buffer | null };
}

/** The files of the built UI by URL path below the prefix; empty when it was not built. */
function listAssets(root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      const path = rel === '' ? name : `${rel}/${name}`;
      if (!SAFE_NAME.test(path)) continue;
      const stat = statSync(file);
      if (stat.isDirectory()) walk(file, path);
      else if (stat.isFile()) assets.set(path, { file, type: mime.contentType(name) || 'application/octet-stream', immutable: path.startsWith('assets/') });
    }
  };
  try {
    walk(root, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return assets.has('index.html') ? assets : new Map();
}

function load(asset: Asset): NonNullable<Asset['loaded']> {
  if (asset.loaded !== undefined) return asset.loaded;
  const body = readFileSync(asset.file);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  let br: Buffer | null = null;
  let gzip: Buffer | null = null;
  if (COMPRESSIBLE.test(asset.type) && body.length > 512) {
    br = brotliCompressSync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } });
    gzip = gzipSync(body, { level: 9 });
  }
  asset.loaded = { body, etag, br: br !== null && br.length < body.length ? br : null, gzip: gzip !== null && gzip.length < body.length ? gzip : null };
  return asset.loaded;
}

export interface WebUiOptions {
  /** The directory `npm run build` writes the UI to (dist/ui). */
  root: string;
}

export interface WebUi {
  middleware: Middleware<RequestState>;
  /** False when the UI was not built (no index.html under root): /ui/ then answers 404 saying so. */
  built: boolean;
}

/**
 * The web file manager's static files at /ui/, without authentication (the
 * page asks for a key and sends it as Bearer on its API calls; no file here
 * holds anything secret). Only the files found under `root` at start are
 * served, looked up by exact name: a path that is not one of them, encoded
 * or dotted, finds nothing. Every answer carries UI_CSP.
 */
export function webUi(options: WebUiOptions): WebUi {
  const assets = listAssets(options.root);
  const middleware: Middleware<RequestState> = async (ctx, next) => {
    if (ctx.path !== UI_PREFIX && !ctx.path.startsWith(`${UI_PREFIX}/`)) return next();
    ctx.state.route = UI_PREFIX;
    ctx.set('Content-Security-Policy', UI_CSP);
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new CallfsError('METHOD_NOT_ALLOWED', 'the web UI is read with GET');
    }
    if (ctx.path === UI_PREFIX) {
      ctx.status = 301;
      ctx.set('Location', `${UI_PREFIX}/`);
      ctx.set('Cache-Control', 'no-cache');
      return;
    }
    if (assets.size === 0) throw new CallfsError('FILE_NOT_FOUND', 'the web UI is not built on this server (npm run build writes it to dist/ui)');
    const asset = assets.get(ctx.path.slice(UI_PREFIX.length + 1) || 'index.html');
    if (asset === undefined) throw new CallfsError('FILE_NOT_FOUND', 'no such file in the web UI');
    const { body, etag, br, gzip } = load(asset);
    ctx.set('Cache-Control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    ctx.set('ETag', etag);
    if (br !== null || gzip !== null) ctx.vary('Accept-Encoding');
    if (fresh(ctx.headers, { etag })) {
      ctx.status = 304;
      return;
    }
    // Ours in order of preference (brotli is the smaller), each only if the client takes it.
    const encoding = br !== null && ctx.acceptsEncodings('br') === 'br' ? 'br' : gzip !== null && ctx.acceptsEncodings('gzip') === 'gzip' ? 'gzip' : 'identity';
    ctx.status = 200;
    ctx.type = asset.type;
    if (encoding === 'br' && br !== null) {
      ctx.set('Content-Encoding', 'br');
      ctx.body = br;
    } else if (encoding === 'gzip' && gzip !== null) {
      ctx.set('Content-Encoding', 'gzip');
      ctx.body = gzip;
    } else {
      ctx.body = body;
    }
  };
  return { middleware, built: assets.size > 0 };
}
