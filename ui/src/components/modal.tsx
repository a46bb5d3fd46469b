import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';

export interface ModalProps {
  title: string;
  /** Called when the dialog is dismissed (Escape, the Close button); the caller unmounts it. */
  onClose: () => void;
  children: ComponentChildren;
  /** While busy, Escape does not close it (the request goes on). */
  busy?: boolean;
}

/**
 * A modal <dialog>: the browser keeps focus inside it and gives it to the
 * first control (or the one marked autofocus); when it goes, focus returns
 * to what had it before.
 */
export function Modal({ title, onClose, children, busy = false }: ModalProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (dialog !== null && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open === true) dialog.close();
      if (before?.isConnected === true) before.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="modal"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      <div class="modal-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-button" aria-label="Close" disabled={busy} onClick={onClose}>
          ×
        </button>
      </div>
      {children}
    </dialog>
  );
}
