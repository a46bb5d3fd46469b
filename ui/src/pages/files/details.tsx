import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../api/client.js';
import { isAbort } from '../../api/errors.js';
import type { Details, Entry } from '../../api/types.js';
import { ErrorText } from '../../components/error-text.js';
import { bytes, symbolicMode, when } from '../../format.js';
import { Preview } from './preview.js';

export type EntryAction = 'download' | 'share' | 'rename' | 'move' | 'chmod' | 'delete';

export interface DetailsPanelProps {
  api: Api;
  entry: Entry;
  /** Bumped by the page after a change to the entry, to read it again. */
  version: number;
  /** Bumped when the user asked for the details (the Details button): focus moves to them. */
  focusRequest: number;
  onAction: (action: EntryAction, entry: Entry) => void;
  onClose: () => void;
}

/** An entry's metadata (HEAD: size, mode, owner, group, mtime, SHA-256, where its copies are), its actions and a preview. */
export function DetailsPanel({ api, entry, version, focusRequest, onAction, onClose }: DetailsPanelProps) {
  const [details, setDetails] = useState<Details | null>(null);
  const [error, setError] = useState<unknown>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  // Opening a file from the list keeps focus there (the arrow keys go on working); the Details button moves it here.
  useEffect(() => {
    if (focusRequest > 0) heading.current?.focus();
  }, [focusRequest]);
  useEffect(() => {
    const abort = new AbortController();
    setError(null);
    api
      .details(entry.path, abort.signal)
      .then(setDetails)
      .catch((err: unknown) => {
        if (!isAbort(err)) setError(err);
      });
    return () => abort.abort();
  }, [api, entry.path, version]);

  const d = details !== null && details.path === entry.path ? details : null;
  const file = entry.type === 'file';
  const action = (name: EntryAction, words: string, danger = false) => (
    <button type="button" class={`button small${danger ? ' danger' : ''}`} onClick={() => onAction(name, entry)}>
      {words}
    </button>
  );
  return (
    <aside class="details" aria-labelledby="details-title">
      <div class="section-head">
        <h2 id="details-title" ref={heading} tabIndex={-1}>
          {entry.name}
        </h2>
        <button type="button" class="icon-button" aria-label="Close details" onClick={onClose}>
          ×
        </button>
      </div>
      <div class="actions" role="group" aria-label={`Actions for ${entry.name}`}>
        {file && action('download', 'Download')}
        {file && action('share', 'Share link')}
        {action('rename', 'Rename')}
        {action('move', 'Move')}
        {action('chmod', 'Permissions')}
        {action('delete', 'Delete', true)}
      </div>
      <ErrorText error={error} />
      {d !== null && (
        <dl class="facts">
          <dt>Type</dt>
          <dd>{file ? (d.contentType ?? 'file') : 'folder'}</dd>
          {file && (
            <>
              <dt>Size</dt>
              <dd>
                {bytes(d.size)}
                {d.size >= 1024 && <span class="hint"> ({d.size.toLocaleString()} bytes)</span>}
              </dd>
            </>
          )}
          <dt>Permissions</dt>
          <dd>
            <code>{symbolicMode(d.mode, d.type)}</code> ({d.mode})
          </dd>
          <dt>Owner</dt>
          <dd>{d.owner}</dd>
          <dt>Group</dt>
          <dd>{d.group}</dd>
          <dt>Modified</dt>
          <dd>
            <time dateTime={d.mtime}>{when(d.mtime)}</time>
          </dd>
          {d.sha256 !== null && (
            <>
              <dt>SHA-256</dt>
              <dd>
                <code class="hash">{d.sha256}</code>
              </dd>
            </>
          )}
          {d.replicas.length > 0 ? (
            <>
              <dt>Copies on</dt>
              <dd>{d.replicas.join(', ')}</dd>
            </>
          ) : (
            d.instance !== null && (
              <>
                <dt>Stored on</dt>
                <dd>{d.instance}</dd>
              </>
            )
          )}
          <dt>Path</dt>
          <dd>
            <code class="hash">{d.path}</code>
          </dd>
        </dl>
      )}
      {file && d !== null && (
        <section aria-label="Preview" class="preview-box">
          <Preview api={api} details={d} />
        </section>
      )}
    </aside>
  );
}
