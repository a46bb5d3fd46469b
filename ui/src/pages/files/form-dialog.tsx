import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ErrorText } from '../../components/error-text.js';
import { Modal } from '../../components/modal.js';

export interface FormDialogProps {
  title: string;
  submitLabel: string;
  /** Run on submit; its error is shown in the dialog, which stays open. The caller closes it on success. */
  action: () => Promise<void>;
  onClose: () => void;
  /** Progress of a long operation (a job), announced politely. */
  progress?: string | null;
  danger?: boolean;
  children?: ComponentChildren;
}

/** A dialog with a form: Cancel and a submit button, busy while the action runs, its error in words. */
export function FormDialog({ title, submitLabel, action, onClose, progress = null, danger = false, children }: FormDialogProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title={title} onClose={onClose} busy={busy}>
      <form onSubmit={submit} class="modal-body">
        {children}
        <p role="status" class="progress-text">
          {progress}
        </p>
        <ErrorText error={error} />
        <div class="modal-actions">
          <button type="button" class="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class={`button ${danger ? 'danger' : 'primary'}`} disabled={busy}>
            {busy ? 'Working…' : submitLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}
