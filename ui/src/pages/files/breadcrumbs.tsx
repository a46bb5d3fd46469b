import { crumbs } from '../../paths.js';
import { filesHref } from '../../route.js';

/** Where you are, each ancestor a link; the last is the current folder. */
export function Breadcrumbs({ path }: { path: string }) {
  const all = crumbs(path);
  return (
    <nav aria-label="Folder path" class="crumbs">
      <ol>
        {all.map((c, i) =>
          i === all.length - 1 ? (
            <li key={c.path}>
              <a href={filesHref(c.path)} aria-current="page">
                {c.name}
              </a>
            </li>
          ) : (
            <li key={c.path}>
              <a href={filesHref(c.path)}>{c.name}</a>
            </li>
          ),
        )}
      </ol>
    </nav>
  );
}
