import convict from 'convict';
import { cipherListProblems, parseCipherList } from './tls.js';

/**
 * Formats shared by the schema. Each coerces a string (from a file or a
 * CALLFS_* variable) and validates with a message that names what is wrong.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse a Go-style duration ("30s", "1m30s", "500ms", "2h") or plain milliseconds into ms. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') return Number.NaN;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] ?? Number.NaN);
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : Number.NaN;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

/** Parse a byte size ("64MiB", "1GB", "4096") into bytes. */
export function parseSize(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value !== 'string') return Number.NaN;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()];
  return m === null || unit === undefined ? Number.NaN : Math.floor(Number(m[1]) * unit);
}

/** Parse "host:port", ":port" or "[v6]:port". Returns null when malformed. */
export function parseListenAddr(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (m === null) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

let registered = false;

/** Register the custom formats with convict (idempotent). */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormats({
    duration: {
      coerce: (v: unknown) => parseDuration(v),
      validate(v: unknown) {
        if (typeof v !== 'number' || Number.isNaN(v)) throw new Error('must be a duration such as "30s", "1m30s" or "500ms"');
      },
    },
    size: {
      coerce: (v: unknown) => parseSize(v),
      validate(v: unknown) {
        if (typeof v !== 'number' || Number.isNaN(v)) throw new Error('must be a size such as "64MiB", "1GiB" or a number of bytes');
      },
    },
    'listen-addr': {
      validate(v: unknown) {
        if (typeof v !== 'string') throw new Error('must be a string');
        if (v !== '' && parseListenAddr(v) === null) throw new Error('must be "host:port", ":port" or "[ipv6]:port"');
      },
    },
    bool: {
      coerce(v: unknown) {
        if (typeof v !== 'string') return v;
        const t = v.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(t)) return true;
        if (['false', '0', 'no', 'off', ''].includes(t)) return false;
        return v;
      },
      validate(v: unknown) {
        if (typeof v !== 'boolean') throw new Error('must be true or false');
      },
    },
    'string-list': {
      coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v),
      validate(v: unknown) {
        if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new Error('must be a list of strings');
      },
    },
    'tls-ciphers': {
      coerce: (v: unknown) => parseCipherList(v),
      validate(v: unknown) {
        const problems = cipherListProblems(parseCipherList(v));
        if (problems.length > 0) throw new Error(problems.join('; '));
      },
    },
    'object': {
      coerce(v: unknown) {
        if (typeof v !== 'string') return v;
        try {
          return JSON.parse(v) as unknown;
        } catch {
          return { __invalid_json__: v };
        }
      },
      validate(v: unknown) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('must be an object (a map, or JSON text in an environment variable)');
        if ('__invalid_json__' in v) throw new Error('is not valid JSON');
      },
    },
  });
}
