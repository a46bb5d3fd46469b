import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../../api/client.js';
import { isAbort } from '../../api/errors.js';
import type { Details } from '../../api/types.js';
import { ErrorText } from '../../components/error-text.js';
import { bytes } from '../../format.js';

type Kind = 'image' | 'text' | 'pdf';

/** Sizes previewed: images and PDFs whole, text from its start. */
const LIMITS: Record<Kind, number> = { image: 25 * 1024 * 1024, pdf: 50 * 1024 * 1024, text: 256 * 1024 };

const TEXT_EXTENSIONS = new Set(['txt', 'md', 'log', 'csv', 'tsv', 'json', 'yaml', 'yml', 'toml', 'ini', 'conf', 'cfg', 'env', 'xml', 'html', 'css', 'js', 'mjs', 'ts', 'tsx', 'jsx', 'py', 'rb', 'go', 'rs', 'c', 'h', 'cpp', 'java', 'kt', 'sh', 'sql', 'diff', 'patch']);
const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml|x-icon|vnd\.microsoft\.icon)$/;

/** What a file can be previewed as, by its type and then its extension (".ts" is text here, not video/mp2t). */
export function previewKind(details: Details): Kind | null {
  const type = (details.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const ext = details.name.includes('.') ? (details.name.split('.').pop() ?? '').toLowerCase() : '';
  if (TEXT_EXTENSIONS.has(ext)) return 'text';
  if (IMAGE_TYPES.test(type)) return 'image';
  if (type === 'application/pdf') return 'pdf';
  if (type.startsWith('text/') || /^application\/(json|xml|yaml|x-yaml|javascript|x-sh|toml)$/.test(type)) return 'text';
  return null;
}

type Shown = { kind: 'image' | 'pdf'; url: string } | { kind: 'text'; text: string; partial: boolean };

/**
 * A preview fetched with the key (Authorization header) into memory and
 * shown from a blob: URL the page made itself, typed as what it is shown
 * as: never a URL with a key, and never the file rendered as a page of
 * this origin. Images in <img>, PDFs in a frame (the browser's viewer),
 * text as text.
 */
export function Preview({ api, details }: { api: Api; details: Details }) {
  const kind = previewKind(details);
  const [shown, setShown] = useState<Shown | null>(null);
  const [error, setError] = useState<unknown>(null);
  const tooBig = kind !== null && kind !== 'text' && details.size > LIMITS[kind];
  useEffect(() => {
    setShown(null);
    setError(null);
    if (kind === null || tooBig) return;
    if (details.size === 0) {
      setShown(kind === 'text' ? { kind, text: '', partial: false } : null);
      return;
    }
    const abort = new AbortController();
    let url: string | null = null;
    const type = kind === 'pdf' ? 'application/pdf' : kind === 'image' ? (details.contentType ?? 'application/octet-stream') : 'text/plain';
    api
      .read(details.path, { ...(kind === 'text' ? { limit: LIMITS.text } : {}), size: details.size, type, signal: abort.signal })
      .then(async ({ blob, partial }) => {
        if (kind === 'text') {
          setShown({ kind, text: new TextDecoder('utf-8').decode(await blob.arrayBuffer()), partial });
        } else {
          url = URL.createObjectURL(blob);
          setShown({ kind, url });
        }
      })
      .catch((err: unknown) => {
        if (!isAbort(err)) setError(err);
      });
    return () => {
      abort.abort();
      if (url !== null) URL.revokeObjectURL(url);
    };
  }, [api, details.path, details.sha256, details.size, kind, tooBig]);

  if (kind === null) return <p class="hint">No preview for this kind of file.</p>;
  if (tooBig) return <p class="hint">Too large to preview here ({bytes(details.size)}); download it instead.</p>;
  if (error !== null) return <ErrorText error={error} />;
  if (shown === null) return <p class="hint">Loading preview…</p>;
  return (
    <figure class="preview">
      {shown.kind === 'image' && <img src={shown.url} alt={`Preview of ${details.name}`} />}
      {shown.kind === 'pdf' && <iframe src={shown.url} title={`Preview of ${details.name}`} />}
      {shown.kind === 'text' && (
        <pre tabIndex={0} aria-label={`Text of ${details.name}`}>
          {shown.text === '' ? '(empty file)' : shown.text}
        </pre>
      )}
      {shown.kind === 'text' && shown.partial && <figcaption class="hint">The first {bytes(LIMITS.text)} of {bytes(details.size)}.</figcaption>}
    </figure>
  );
}
