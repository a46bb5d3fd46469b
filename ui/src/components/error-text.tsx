import { explain } from '../api/errors.js';

/** An error in words, with the server's detail below; announced at once (role=alert). */
export function ErrorText({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const { text, detail } = explain(error);
  return (
    <div class="error" role="alert">
      <p>{text}</p>
      {detail !== null && <p class="detail">{detail}</p>}
    </div>
  );
}
