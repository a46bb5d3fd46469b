import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../api/client.js';
import type { Entry, Link } from '../../api/types.js';
import { Modal } from '../../components/modal.js';
import { when } from '../../format.js';
import { FormDialog } from './form-dialog.js';

const EXPIRIES: [number, string][] = [
  [600, '10 minutes'],
  [3600, '1 hour'],
  [6 * 3600, '6 hours'],
  [86400, '1 day'],
];

/**
 * The address of a link on this server as the browser reaches it: the
 * signed-in user opened the UI at this origin, so the link works from here
 * whatever server.external_url says.
 */
export function linkUrl(link: Link): string {
  return new URL(`/download/${encodeURIComponent(link.token)}`, location.origin).href;
}

/** Make a single-use link to a file, with an expiry, and copy it. */
export function ShareDialog({ api, entry, onClose }: { api: Api; entry: Entry; onClose: () => void }) {
  const [expiry, setExpiry] = useState(3600);
  const [link, setLink] = useState<Link | null>(null);
  if (link === null) {
    return (
      <FormDialog title={`Share ${entry.name}`} submitLabel="Create link" onClose={onClose} action={async () => setLink(await api.link(entry.path, expiry))}>
        <p>Anyone with the link can download this file once, without a key, until it expires.</p>
        <label class="field">
          <span>Link expires after</span>
          <select value={String(expiry)} onChange={(e) => setExpiry(Number(e.currentTarget.value))} autofocus>
            {EXPIRIES.map(([seconds, words]) => (
              <option key={seconds} value={String(seconds)}>
                {words}
              </option>
            ))}
          </select>
        </label>
      </FormDialog>
    );
  }
  return <LinkCreated link={link} name={entry.name} onClose={onClose} />;
}

function LinkCreated({ link, name, onClose }: { link: Link; name: string; onClose: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const url = linkUrl(link);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied('Link copied.');
    } catch {
      input.current?.select();
      setCopied('Copying was not allowed here: the link is selected, press Ctrl+C (⌘C) to copy it.');
    }
  };
  return (
    <Modal title={`Link to ${name}`} onClose={onClose}>
      <div class="modal-body">
        <label class="field">
          <span>Single-use link</span>
          <input ref={input} type="text" readOnly value={url} class="link-url" spellcheck={false} onFocus={(e) => e.currentTarget.select()} />
        </label>
        <p>
          It works for one download, until <time dateTime={link.expires_at}>{when(link.expires_at)}</time>.
        </p>
        <p role="status" class="progress-text">
          {copied}
        </p>
        <div class="modal-actions">
          <button type="button" class="button primary" onClick={copy}>
            Copy link
          </button>
          <button type="button" class="button" onClick={onClose}>
            Done
          </button>
        </div>
      </div>
    </Modal>
  );
}
