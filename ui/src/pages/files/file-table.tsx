import type { Entry } from '../../api/types.js';
import { FileIcon, FolderIcon, InfoIcon } from '../../components/icons.js';
import { bytes, symbolicMode, when } from '../../format.js';

export type SortKey = 'name' | 'size' | 'mtime';
export interface Sort {
  key: SortKey;
  descending: boolean;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Folders first, then by the chosen column (name breaks ties). */
export function sortEntries(items: readonly Entry[], sort: Sort): Entry[] {
  const sign = sort.descending ? -1 : 1;
  return [...items].sort((a, b) => {
    if (a.type !== b.type) return a.type === 'directory' ? -1 : 1;
    const by = sort.key === 'size' ? a.size - b.size : sort.key === 'mtime' ? Date.parse(a.mtime) - Date.parse(b.mtime) : 0;
    return sign * (by !== 0 ? by : collator.compare(a.name, b.name));
  });
}

export interface FileTableProps {
  dir: string;
  entries: Entry[];
  sort: Sort;
  onSort: (key: SortKey) => void;
  selected: string | null;
  /** Open: a folder is entered, a file's details shown. */
  onOpen: (entry: Entry) => void;
  onDetails: (entry: Entry) => void;
  onKeyAction: (action: 'rename' | 'delete', entry: Entry) => void;
  more: boolean;
}

const COLUMNS: [SortKey, string, string][] = [
  ['name', 'Name', 'col-name'],
  ['size', 'Size', 'col-size'],
  ['mtime', 'Modified', 'col-mtime'],
];

/**
 * The folder's entries as a table. Column headers sort; in the list, ↑ ↓
 * Home End move between entries, Enter opens, F2 renames, Delete deletes.
 */
export function FileTable({ dir, entries, sort, onSort, selected, onOpen, onDetails, onKeyAction, more }: FileTableProps) {
  const onKeyDown = (e: KeyboardEvent): void => {
    const target = e.target as HTMLElement;
    const row = target.closest('tr');
    const buttons = [...(row?.parentElement?.querySelectorAll<HTMLButtonElement>('button.entry') ?? [])];
    const index = buttons.findIndex((b) => row?.contains(b));
    const entry = entries.find((x) => x.path === row?.dataset.path);
    let next: number | null = null;
    if (e.key === 'ArrowDown') next = Math.min(index + 1, buttons.length - 1);
    else if (e.key === 'ArrowUp') next = Math.max(index - 1, 0);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = buttons.length - 1;
    else if (e.key === 'F2' && entry !== undefined) onKeyAction('rename', entry);
    else if (e.key === 'Delete' && entry !== undefined) onKeyAction('delete', entry);
    else return;
    e.preventDefault();
    if (next !== null) buttons[next]?.focus();
  };
  return (
    <table class="files">
      <caption class="sr-only">
        Contents of {dir}: {entries.length} entries{more ? ', more to load' : ''}. Arrow keys move between entries, Enter opens, F2 renames, Delete deletes.
      </caption>
      <thead>
        <tr>
          {COLUMNS.map(([key, label, cls]) => (
            <th key={key} scope="col" class={cls} aria-sort={sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
              <button type="button" class="sort" onClick={() => onSort(key)}>
                {label}
                <span aria-hidden="true" class="sort-mark">
                  {sort.key === key ? (sort.descending ? '▼' : '▲') : ''}
                </span>
              </button>
            </th>
          ))}
          <th scope="col" class="col-mode">
            Permissions
          </th>
          <th scope="col" class="col-actions">
            <span class="sr-only">Details</span>
          </th>
        </tr>
      </thead>
      <tbody onKeyDown={onKeyDown}>
        {entries.map((entry) => {
          const folder = entry.type === 'directory';
          return (
            <tr key={entry.path} data-path={entry.path} class={selected === entry.path ? 'selected' : undefined}>
              <td class="col-name">
                <button type="button" class="entry" onClick={() => onOpen(entry)} aria-label={folder ? `Folder ${entry.name}` : undefined}>
                  {folder ? <FolderIcon /> : <FileIcon />}
                  <span class="entry-name">{entry.name}</span>
                </button>
                <span class="entry-meta" aria-hidden="true">
                  {folder ? 'folder' : bytes(entry.size)} · {when(entry.mtime)}
                </span>
              </td>
              <td class="col-size">{folder ? '—' : bytes(entry.size)}</td>
              <td class="col-mtime">
                <time dateTime={entry.mtime}>{when(entry.mtime)}</time>
              </td>
              <td class="col-mode">
                <code>{symbolicMode(entry.mode, entry.type)}</code>
              </td>
              <td class="col-actions">
                <button type="button" class="icon-button" aria-label={`Details of ${entry.name}`} onClick={() => onDetails(entry)}>
                  <InfoIcon />
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
