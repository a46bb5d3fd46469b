import { explain } from '../api/errors.js';

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
  detail?: string | null;
}

let nextId = 1;

export function infoNotice(text: string): Notice {
  return { id: nextId++, kind: 'info', text };
}

export function errorNotice(err: unknown, what?: string): Notice {
  const { text, detail } = explain(err);
  return { id: nextId++, kind: 'error', text: what === undefined ? text : `${what}: ${text}`, detail };
}

/** How long a confirmation stays; an error stays until dismissed. */
export const INFO_MS = 8000;

/**
 * What just happened, for everyone, at the top of the page (in the flow, so
 * it never covers a control): confirmations in a polite live region, errors
 * in an assertive one, each dismissible.
 */
export function Notices({ notices, dismiss }: { notices: Notice[]; dismiss: (id: number) => void }) {
  const list = (kind: Notice['kind']) =>
    notices
      .filter((n) => n.kind === kind)
      .map((n) => (
        <div key={n.id} class={`notice notice-${n.kind}`}>
          <div>
            <p>{n.text}</p>
            {n.detail !== undefined && n.detail !== null && <p class="detail">{n.detail}</p>}
          </div>
          <button type="button" class="icon-button" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ));
  return (
    <div class="notices">
      <div role="status" aria-live="polite">
        {list('info')}
      </div>
      <div role="alert" aria-live="assertive">
        {list('error')}
      </div>
    </div>
  );
}
