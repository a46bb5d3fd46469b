/**
 * The API key of this tab: kept in sessionStorage only (gone when the tab
 * closes), sent as a Bearer header, never put in a URL or a cookie.
 * Signing out removes it and everything else this UI kept for the tab.
 */

const KEY = 'callfs.api-key';
/** Prefix of everything else the UI keeps in sessionStorage (tus upload URLs). */
export const SESSION_PREFIX = 'callfs.';

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

/** Forget the key and the tab's upload records. */
export function clearSession(): void {
  for (let i = sessionStorage.length - 1; i >= 0; i--) {
    const name = sessionStorage.key(i);
    if (name !== null && name.startsWith(SESSION_PREFIX)) sessionStorage.removeItem(name);
  }
}
