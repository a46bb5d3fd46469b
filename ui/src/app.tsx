import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api } from './api/client.js';
import type { Whoami } from './api/types.js';
import { INFO_MS, Notices, type Notice } from './components/notices.js';
import { ClusterPage } from './pages/cluster-page.js';
import { FilesPage } from './pages/files/files-page.js';
import { SignIn } from './pages/sign-in.js';
import { CLUSTER_HREF, filesHref, useRoute } from './route.js';
import { clearSession, storedKey, storeKey } from './session.js';
import { UploadQueue } from './uploads.js';

interface Session {
  api: Api;
  user: Whoami;
}

const MAX_ERRORS = 3;

/** The signed-in shell (header, notices, the page of the route), or the sign-in form. */
export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => storedKey() !== null);
  const [signedOutBecause, setSignedOutBecause] = useState<unknown>(null);
  const [notices, setNotices] = useState<Notice[]>([]);
  const main = useRef<HTMLElement>(null);

  const signOut = useCallback((because: unknown = null) => {
    clearSession();
    setSession(null);
    setNotices([]);
    setSignedOutBecause(because);
  }, []);

  const begin = useCallback(
    async (key: string): Promise<void> => {
      const api = new Api(key, (err) => signOut(err));
      const user = await new Api(key).whoami();
      storeKey(key);
      setSignedOutBecause(null);
      setSession({ api, user });
    },
    [signOut],
  );

  // A reload keeps the tab signed in: the key is still in sessionStorage.
  useEffect(() => {
    const key = storedKey();
    if (key === null) return;
    begin(key)
      .catch((err: unknown) => signOut(err))
      .finally(() => setRestoring(false));
  }, [begin, signOut]);

  const notify = useCallback((notice: Notice) => {
    // One confirmation at a time (the latest); errors stay, the last few, until dismissed.
    setNotices((all) => {
      const infos = all.filter((n) => n.kind === 'info');
      const errors = all.filter((n) => n.kind === 'error');
      return notice.kind === 'info' ? [...errors, notice] : [...infos, ...errors.slice(-(MAX_ERRORS - 1)), notice];
    });
    if (notice.kind === 'info') setTimeout(() => setNotices((all) => all.filter((n) => n.id !== notice.id)), INFO_MS);
  }, []);
  const dismiss = useCallback((id: number) => setNotices((all) => all.filter((n) => n.id !== id)), []);

  const uploads = useMemo(
    () => (session === null ? null : new UploadQueue(session.api.key, session.user.name, () => {})),
    [session],
  );
  useEffect(() => () => uploads?.cancelAll(), [uploads]);

  const title = route.page === 'cluster' ? 'Cluster' : 'Files';
  useEffect(() => {
    document.title = session === null ? 'Sign in — CallFS' : `${title} — CallFS`;
  }, [title, session]);
  // A new page: screen readers hear its heading, keyboard users start from it.
  useEffect(() => {
    if (session !== null) main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route.page, session]);

  if (restoring) return <p class="loading">Signing in…</p>;
  if (session === null) return <SignIn onKey={begin} reason={signedOutBecause} />;

  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">CallFS</span>
        <nav aria-label="Main">
          <a href={filesHref(route.page === 'files' ? route.path : '/')} aria-current={route.page === 'files' ? 'page' : undefined}>
            Files
          </a>
          <a href={CLUSTER_HREF} aria-current={route.page === 'cluster' ? 'page' : undefined}>
            Cluster
          </a>
        </nav>
        <span class="who">
          <span>
            Signed in as <strong>{session.user.name}</strong>
          </span>
          {session.user.root && <span class="badge">root</span>}
        </span>
        <button type="button" class="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main ref={main} id="main">
        <Notices notices={notices} dismiss={dismiss} />
        {route.page === 'cluster' ? (
          <ClusterPage api={session.api} user={session.user} notify={notify} />
        ) : (
          uploads !== null && <FilesPage api={session.api} path={route.path} uploads={uploads} notify={notify} />
        )}
      </main>
    </div>
  );
}
