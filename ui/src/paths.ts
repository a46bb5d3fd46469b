/** CallFS paths as the UI handles them: absolute, '/'-separated, no trailing '/' (except the root). */

export function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The path percent-encoded segment by segment, for a URL (a '%' or '#' in a name stays that name). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/** Decode what encodePath made; null when it is not well-formed. */
export function decodePath(encoded: string): string | null {
  try {
    const segments = encoded.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    return `/${segments.join('/')}`;
  } catch {
    return null;
  }
}

/** Each ancestor of a path with its name, root first: the breadcrumbs. */
export function crumbs(path: string): { name: string; path: string }[] {
  const out = [{ name: 'Home', path: '/' }];
  let at = '';
  for (const segment of path.split('/').filter((s) => s !== '')) {
    at += `/${segment}`;
    out.push({ name: segment, path: at });
  }
  return out;
}
