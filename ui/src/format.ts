/** Numbers, times and modes as a person reads them. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function when(iso: string | null): string {
  if (iso === null) return 'never';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

/** "0644" → "rw-r--r--" (with s/S, t/T for the set-id and sticky bits). */
export function symbolicMode(octal: string, type: 'file' | 'directory'): string {
  const m = Number.parseInt(octal, 8);
  if (Number.isNaN(m)) return octal;
  const triad = (bits: number, special: boolean, letter: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? letter : letter.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (
    (type === 'directory' ? 'd' : '-') +
    triad((m >> 6) & 7, (m & 0o4000) !== 0, 's') +
    triad((m >> 3) & 7, (m & 0o2000) !== 0, 's') +
    triad(m & 7, (m & 0o1000) !== 0, 't')
  );
}

export function percent(part: number, whole: number): number {
  return whole <= 0 ? 0 : Math.min(100, Math.max(0, (part / whole) * 100));
}
