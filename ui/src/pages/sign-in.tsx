import { useState } from 'preact/hooks';
import { ErrorText } from '../components/error-text.js';

export interface SignInProps {
  /** Check the key with the server and start the session; rejects when it is not accepted. */
  onKey: (key: string) => Promise<void>;
  /** Why the tab was signed out (a key no longer accepted), or null. */
  reason: unknown;
}

export function SignIn({ onKey, reason }: SignInProps) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(reason);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const trimmed = key.trim();
    if (trimmed === '') return;
    setBusy(true);
    setError(null);
    try {
      await onKey(trimmed);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-describedby="signin-about">
        <h1>Sign in to CallFS</h1>
        <p id="signin-about">Paste the API key you were given. Your key decides what you may see and change, as it does for curl and WebDAV.</p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          autofocus
        />
        <ErrorText error={error} />
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="hint">
          The key stays in this browser tab only and goes to the server in a request header. It is never put in a link or a
          cookie. Closing the tab or signing out forgets it.
        </p>
      </form>
    </main>
  );
}
