import { useEffect, useState } from 'preact/hooks';
import { decodePath, encodePath } from './paths.js';

/** Where the UI is: in the hash (#/files/<path>, #/cluster), so the server serves one page and no key or path goes to it. */
export type Route = { page: 'files'; path: string } | { page: 'cluster' };

export function parseRoute(hash: string): Route {
  if (hash === '#/cluster') return { page: 'cluster' };
  if (hash.startsWith('#/files')) return { page: 'files', path: decodePath(hash.slice('#/files'.length)) ?? '/' };
  return { page: 'files', path: '/' };
}

export function filesHref(path: string): string {
  return `#/files${path === '/' ? '/' : encodePath(path)}`;
}

export const CLUSTER_HREF = '#/cluster';

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
