import { useEffect, useState } from 'preact/hooks';
import { ApiError, explain } from '../../api/errors.js';
import { bytes, percent } from '../../format.js';
import type { UploadItem, UploadQueue } from '../../uploads.js';

const STATE_WORDS: Record<UploadItem['state'], string> = {
  queued: 'Waiting',
  uploading: 'Uploading',
  done: 'Uploaded',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** Whether trying again may help: a lost connection, a busy or failing server, a conflict, not a refusal. */
function retriable(error: unknown): boolean {
  if (!(error instanceof ApiError)) return true;
  return error.status >= 500 || [408, 409, 423, 429, 460].includes(error.status);
}

/** Every upload of the tab with its progress bar, and Cancel / Retry. Finishing ones are announced politely. */
export function UploadsPanel({ queue }: { queue: UploadQueue }) {
  const [items, setItems] = useState<readonly UploadItem[]>([]);
  useEffect(() => queue.subscribe(setItems), [queue]);
  if (items.length === 0) return null;
  const active = items.filter((i) => i.state === 'queued' || i.state === 'uploading').length;
  const finished = items.filter((i) => i.state === 'done').length;
  return (
    <section class="uploads" aria-labelledby="uploads-title">
      <div class="section-head">
        <h2 id="uploads-title">Uploads</h2>
        <p class="summary" role="status">
          {active > 0 ? `${active} in progress, ${finished} done` : `${finished} of ${items.length} uploaded`}
        </p>
        {active < items.length && (
          <button type="button" class="button small" onClick={() => queue.clearFinished()}>
            Clear finished
          </button>
        )}
      </div>
      <ul>
        {items.map((item) => (
          <li key={item.id} class={`upload upload-${item.state}`} data-upload={item.name}>
            <span class="upload-name" title={item.path}>
              {item.name}
            </span>
            <progress max={Math.max(item.size, 1)} value={item.state === 'done' ? Math.max(item.size, 1) : item.sent} aria-label={`Upload of ${item.name}`} />
            <span class="upload-bytes">
              {bytes(item.state === 'done' ? item.size : item.sent)} of {bytes(item.size)}
            </span>
            <span class="upload-state">
              {STATE_WORDS[item.state]}
              {item.state === 'uploading' && ` ${Math.floor(percent(item.sent, item.size))}%`}
            </span>
            <span class="upload-action">
              {(item.state === 'queued' || item.state === 'uploading') && (
                <button type="button" class="button small" onClick={() => queue.cancel(item.id)} aria-label={`Cancel upload of ${item.name}`}>
                  Cancel
                </button>
              )}
              {item.state === 'failed' && retriable(item.error) && (
                <button type="button" class="button small" onClick={() => queue.retry(item.id)} aria-label={`Retry upload of ${item.name}`}>
                  Retry
                </button>
              )}
            </span>
            {item.state === 'failed' && <p class="error-inline">{explain(item.error).text}</p>}
          </li>
        ))}
      </ul>
    </section>
  );
}
