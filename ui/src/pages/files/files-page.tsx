import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../api/client.js';
import type { Entry } from '../../api/types.js';
import { ErrorText } from '../../components/error-text.js';
import { errorNotice, infoNotice, type Notice } from '../../components/notices.js';
import { baseName, join, parentOf } from '../../paths.js';
import { filesHref } from '../../route.js';
import type { UploadQueue } from '../../uploads.js';
import { Breadcrumbs } from './breadcrumbs.js';
import { ChmodDialog } from './chmod-dialog.js';
import { DetailsPanel, type EntryAction } from './details.js';
import { DeleteDialog, MoveDialog, NewFolderDialog, RenameDialog, ReplaceDialog } from './dialogs.js';
import { FileTable, sortEntries, type Sort, type SortKey } from './file-table.js';
import { linkUrl, ShareDialog } from './share-dialog.js';
import { UploadsPanel } from './uploads-panel.js';

/** Entries read per request: a huge directory arrives a page at a time ("Load more"). */
const PAGE = 200;
/** How long a download link made for the Download button lives (it is used at once, and only once). */
const DOWNLOAD_LINK_SECONDS = 60;

type Planned = { file: File; path: string };
type DialogState =
  | { kind: 'mkdir' }
  | { kind: Exclude<EntryAction, 'download'>; entry: Entry }
  | { kind: 'replace'; planned: Planned[]; names: string[] };

export interface FilesPageProps {
  api: Api;
  path: string;
  uploads: UploadQueue;
  notify: (notice: Notice) => void;
}

/** A folder: its entries, uploads into it, an entry's details, and the dialogs that change things. */
export function FilesPage({ api, path, uploads, notify }: FilesPageProps) {
  const [items, setItems] = useState<Entry[]>([]);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [more, setMore] = useState(false);
  const [sort, setSort] = useState<Sort>({ key: 'name', descending: false });
  const [selected, setSelected] = useState<Entry | null>(null);
  const [version, setVersion] = useState(0);
  const [focusDetails, setFocusDetails] = useState(0);
  const [dialog, setDialog] = useState<DialogState | null>(null);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const cursor = useRef<string | undefined>(undefined);
  /** Answers to an older load (another folder, an earlier refresh) are dropped. */
  const generation = useRef(0);

  const load = useCallback(
    async (next: boolean): Promise<void> => {
      const gen = next ? generation.current : ++generation.current;
      setLoading(true);
      try {
        const page = await api.list(path, { limit: PAGE, ...(next && cursor.current !== undefined ? { cursor: cursor.current } : {}) });
        if (gen !== generation.current) return;
        cursor.current = page.next_cursor;
        setMore(page.next_cursor !== undefined);
        setItems((before) => (next ? [...before, ...page.items] : page.items));
        setLoadError(null);
      } catch (err) {
        if (gen === generation.current) setLoadError(err);
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [api, path],
  );

  useEffect(() => {
    setItems([]);
    setSelected(null);
    cursor.current = undefined;
    void load(false);
  }, [load]);

  // An upload into this folder that finishes shows up in the list.
  useEffect(() => {
    const seen = new Set<number>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = uploads.subscribe((all) => {
      for (const item of all) {
        if (item.state !== 'done' || seen.has(item.id)) continue;
        seen.add(item.id);
        if (parentOf(item.path) !== path) continue;
        clearTimeout(timer);
        timer = setTimeout(() => void load(false), 250);
      }
    });
    return () => {
      clearTimeout(timer);
      unsubscribe();
    };
  }, [uploads, path, load]);

  const plan = (files: File[]): void => {
    if (files.length === 0) return;
    const here = new Map(items.map((e) => [e.name, e]));
    const folders = files.filter((f) => here.get(f.name)?.type === 'directory');
    if (folders.length > 0) notify(infoNotice(`Not uploaded: a folder here already has the name ${folders.map((f) => f.name).join(', ')}.`));
    const planned = files.filter((f) => !folders.includes(f)).map((file) => ({ file, path: join(path, file.name) }));
    const names = planned.filter((p) => here.get(p.file.name)?.type === 'file').map((p) => p.file.name);
    if (names.length > 0) setDialog({ kind: 'replace', planned, names });
    else uploads.add(planned);
  };

  const onDrop = (e: DragEvent): void => {
    e.preventDefault();
    setDragging(false);
    const files: File[] = [];
    let skipped = 0;
    for (const item of [...(e.dataTransfer?.items ?? [])]) {
      if (item.kind !== 'file') continue;
      if (item.webkitGetAsEntry()?.isDirectory === true) {
        skipped++;
        continue;
      }
      const file = item.getAsFile();
      if (file !== null) files.push(file);
    }
    if (skipped > 0) notify(infoNotice('Folders cannot be dropped here: drop the files in them, or make the folder first.'));
    plan(files);
  };
  const onDragOver = (e: DragEvent): void => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };

  const download = async (entry: Entry): Promise<void> => {
    // A single-use link, fetched at once by the browser itself: the bytes stream to disk (no
    // size limit, nothing held in memory) and no key goes into the URL.
    try {
      const link = await api.link(entry.path, DOWNLOAD_LINK_SECONDS);
      const a = document.createElement('a');
      a.href = linkUrl(link);
      a.download = entry.name;
      a.rel = 'noopener';
      document.body.append(a);
      a.click();
      a.remove();
      notify(infoNotice(`Downloading ${entry.name}.`));
    } catch (err) {
      notify(errorNotice(err, `${entry.name} could not be downloaded`));
    }
  };

  const act = (action: EntryAction, entry: Entry): void => {
    if (action === 'download') void download(entry);
    else setDialog({ kind: action, entry });
  };
  const open = (entry: Entry): void => {
    if (entry.type === 'directory') location.hash = filesHref(entry.path);
    else setSelected(entry);
  };
  const replace = (path: string, change: Partial<Entry> | null): void => {
    setItems((all) => (change === null ? all.filter((e) => e.path !== path) : all.map((e) => (e.path === path ? { ...e, ...change } : e))));
    setSelected((s) => (s?.path !== path ? s : change === null ? null : { ...s, ...change }));
    setVersion((v) => v + 1);
  };
  const close = (): void => setDialog(null);
  const sortBy = (key: SortKey): void => setSort((s) => ({ key, descending: s.key === key ? !s.descending : key !== 'name' }));

  return (
    <div class="files-page">
      <div class="page-head">
        <h1 ref={heading} tabIndex={-1}>
          {path === '/' ? 'Files' : baseName(path)}
        </h1>
        <Breadcrumbs path={path} />
        <div class="toolbar">
          <button type="button" class="button primary" onClick={() => picker.current?.click()}>
            Upload files
          </button>
          <input
            ref={picker}
            type="file"
            multiple
            class="sr-only"
            tabIndex={-1}
            aria-hidden="true"
            data-role="upload-picker"
            onChange={(e) => {
              plan([...(e.currentTarget.files ?? [])]);
              e.currentTarget.value = '';
            }}
          />
          <button type="button" class="button" onClick={() => setDialog({ kind: 'mkdir' })}>
            New folder
          </button>
          <button type="button" class="button" onClick={() => void load(false)}>
            Refresh
          </button>
        </div>
      </div>
      <UploadsPanel queue={uploads} />
      <div class={`browser${selected !== null ? ' with-details' : ''}`}>
        <section
          class={`listing${dragging ? ' dragging' : ''}`}
          aria-label="Folder contents"
          onDragEnter={onDragOver}
          onDragOver={onDragOver}
          onDragLeave={(e) => {
            if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node | null)) setDragging(false);
          }}
          onDrop={onDrop}
        >
          <ErrorText error={loadError} />
          {items.length > 0 && (
            <FileTable
              dir={path}
              entries={sortEntries(items, sort)}
              sort={sort}
              onSort={sortBy}
              selected={selected?.path ?? null}
              onOpen={open}
              onDetails={(entry) => {
                setSelected(entry);
                setFocusDetails((n) => n + 1);
              }}
              onKeyAction={act}
              more={more}
            />
          )}
          {items.length === 0 && !loading && loadError === null && <p class="empty">This folder is empty. Drop files here, or use Upload files.</p>}
          <div class="list-foot">
            <span role="status">{loading ? 'Loading…' : `${items.length} ${items.length === 1 ? 'entry' : 'entries'}${more ? ' shown, more in this folder' : ''}`}</span>
            {more && !loading && (
              <button type="button" class="button small" onClick={() => void load(true)}>
                Load {PAGE} more
              </button>
            )}
          </div>
          <p class="drop-hint" aria-hidden="true">
            Drop files to upload them into {path === '/' ? 'Home' : baseName(path)}
          </p>
        </section>
        {selected !== null && (
          <DetailsPanel
            api={api}
            entry={selected}
            version={version}
            focusRequest={focusDetails}
            onAction={act}
            onClose={() => {
              const path = selected.path;
              setSelected(null);
              setFocusDetails(0);
              // Back to the entry the details were of.
              requestAnimationFrame(() => document.querySelector<HTMLElement>(`tr[data-path="${CSS.escape(path)}"] button.entry`)?.focus());
            }}
          />
        )}
      </div>

      {dialog?.kind === 'mkdir' && (
        <NewFolderDialog
          api={api}
          dir={path}
          onClose={close}
          onDone={(made) => {
            close();
            notify(infoNotice(`Folder ${baseName(made)} created.`));
            void load(false);
          }}
        />
      )}
      {dialog?.kind === 'rename' && (
        <RenameDialog
          api={api}
          entry={dialog.entry}
          onClose={close}
          onDone={(renamed) => {
            close();
            notify(infoNotice(`${dialog.entry.name} renamed to ${baseName(renamed)}.`));
            replace(dialog.entry.path, { path: renamed, name: baseName(renamed) });
          }}
        />
      )}
      {dialog?.kind === 'move' && (
        <MoveDialog
          api={api}
          entry={dialog.entry}
          dir={path}
          onClose={close}
          onDone={(moved) => {
            close();
            notify(infoNotice(`${dialog.entry.name} moved to ${parentOf(moved)}.`));
            replace(dialog.entry.path, null);
          }}
        />
      )}
      {dialog?.kind === 'chmod' && (
        <ChmodDialog
          api={api}
          entry={dialog.entry}
          onClose={close}
          onDone={(mode) => {
            close();
            notify(infoNotice(`Permissions of ${dialog.entry.name} set to ${mode}.`));
            replace(dialog.entry.path, { mode });
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <DeleteDialog
          api={api}
          entry={dialog.entry}
          onClose={close}
          onDone={() => {
            close();
            notify(infoNotice(`${dialog.entry.name} deleted.`));
            replace(dialog.entry.path, null);
            heading.current?.focus();
          }}
        />
      )}
      {dialog?.kind === 'share' && <ShareDialog api={api} entry={dialog.entry} onClose={close} />}
      {dialog?.kind === 'replace' && (
        <ReplaceDialog
          names={dialog.names}
          onClose={close}
          onReplace={() => {
            close();
            uploads.add(dialog.planned);
          }}
          onSkip={() => {
            close();
            uploads.add(dialog.planned.filter((p) => !dialog.names.includes(p.file.name)));
          }}
        />
      )}
    </div>
  );
}
