import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../api/client.js';
import type { CasImages, ClusterStatus, InstanceStatus, Whoami } from '../api/types.js';
import { ErrorText } from '../components/error-text.js';
import { errorNotice, infoNotice, type Notice } from '../components/notices.js';
import { bytes, percent, when } from '../format.js';

/** How often the page reads the status again while it is open. */
const REFRESH_MS = 15_000;

/** A horizontal bar: `value` of `max`, announced as a meter with its words. */
function Bar({ label, value, max, words }: { label: string; value: number; max: number; words: string }) {
  const fill = useRef<HTMLDivElement>(null);
  const share = percent(value, max);
  // Set through the CSSOM: the page's CSP allows no inline style attribute.
  useEffect(() => {
    if (fill.current !== null) fill.current.style.width = `${share}%`;
  }, [share]);
  return (
    <div class="bar" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share)} aria-valuetext={words}>
      <div ref={fill} class={`bar-fill${share > 90 ? ' high' : ''}`} />
    </div>
  );
}

function InstanceCard({ instance }: { instance: InstanceStatus }) {
  const status = instance.state === 'forgotten' ? 'Forgotten' : instance.lost ? 'Lost' : instance.up ? 'Up' : 'Down';
  const total = instance.blob_bytes + instance.free_bytes;
  return (
    <li class="instance" data-instance={instance.id}>
      <div class="instance-head">
        <h3>{instance.id}</h3>
        <span class={`badge ${instance.up ? 'up' : 'down'}`}>{status}</span>
        {instance.state === 'draining' && <span class="badge">Draining</span>}
      </div>
      <Bar
        label={`Space on ${instance.id}`}
        value={instance.blob_bytes}
        max={total}
        words={`${bytes(instance.blob_bytes)} in blobs, ${bytes(instance.free_bytes)} free`}
      />
      <p class="space-words">
        <strong>{bytes(instance.blob_bytes)}</strong> in blobs · <strong>{bytes(instance.free_bytes)}</strong> free
      </p>
      <dl class="facts">
        <dt>Blobs</dt>
        <dd>{instance.blobs.toLocaleString()}</dd>
        <dt>Under-replicated</dt>
        <dd class={instance.under_replicated > 0 ? 'warn' : undefined}>{instance.under_replicated.toLocaleString()}</dd>
        <dt>Disk used</dt>
        <dd>{bytes(instance.used_bytes)}</dd>
        <dt>Last seen</dt>
        <dd>{when(instance.last_seen)}</dd>
        {instance.url !== '' && (
          <>
            <dt>Address</dt>
            <dd>
              <code class="hash">{instance.url}</code>
            </dd>
          </>
        )}
      </dl>
    </li>
  );
}

/** Root only: the CAS images of the instance answering, and scrub and gc on demand. */
function CasSection({ api, notify }: { api: Api; notify: (n: Notice) => void }) {
  const [images, setImages] = useState<CasImages | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<'scrub' | 'gc' | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const load = useCallback(() => {
    api.casImages().then(setImages, setError);
  }, [api]);
  useEffect(load, [load]);
  const run = async (what: 'scrub' | 'gc'): Promise<void> => {
    setBusy(what);
    setResult(null);
    try {
      if (what === 'scrub') {
        const r = await api.scrub();
        setResult(`Scrub checked ${r.checked.toLocaleString()} blobs (${bytes(r.bytes)}): ${r.ok} intact, ${r.corrupted} damaged, ${r.missing} missing.`);
      } else {
        const r = await api.gc();
        setResult(`Garbage collection removed ${r.collected.toLocaleString()} unreferenced blobs and freed ${bytes(r.bytes_freed)}.`);
      }
      load();
    } catch (err) {
      notify(errorNotice(err, what === 'scrub' ? 'The scrub did not finish' : 'Garbage collection did not finish'));
    } finally {
      setBusy(null);
    }
  };
  return (
    <section class="cas" aria-labelledby="cas-title">
      <div class="section-head">
        <h2 id="cas-title">Content store of this instance</h2>
        <div class="toolbar">
          <button type="button" class="button" disabled={busy !== null} onClick={() => void run('scrub')}>
            {busy === 'scrub' ? 'Scrubbing…' : 'Scrub now'}
          </button>
          <button type="button" class="button" disabled={busy !== null} onClick={() => void run('gc')}>
            {busy === 'gc' ? 'Collecting…' : 'Collect garbage now'}
          </button>
        </div>
      </div>
      <p class="hint">Scrub re-reads every blob and checks its SHA-256; garbage collection removes blobs no file uses any more (after a grace period) and gives the space back.</p>
      <p role="status" class="progress-text">
        {result}
      </p>
      <ErrorText error={error} />
      {images !== null && (
        <div class="table-scroll">
          <table class="images">
            <caption>
              {images.images.length} {images.images.length === 1 ? 'image' : 'images'}, {images.mode === 'loop' ? 'ext4 loop images' : 'plain directories'}
            </caption>
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col">State</th>
                <th scope="col">Used</th>
                <th scope="col">Size</th>
                <th scope="col">Free</th>
                <th scope="col">Inodes free</th>
                <th scope="col">Blobs</th>
              </tr>
            </thead>
            <tbody>
              {images.images.map((i) => (
                <tr key={i.id}>
                  <th scope="row">{i.id}</th>
                  <td>{i.state}</td>
                  <td>
                    <Bar label={`Used in image ${i.id}`} value={i.used} max={i.used + i.free} words={`${bytes(i.used)} used, ${bytes(i.free)} free`} />
                  </td>
                  <td>{bytes(i.size)}</td>
                  <td>{bytes(i.free)}</td>
                  <td>{i.inodes_free.toLocaleString()}</td>
                  <td>{i.blob_count.toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Every instance of the cluster as `callfs cluster status` shows it; for root, the content store and its jobs. */
export function ClusterPage({ api, user, notify }: { api: Api; user: Whoami; notify: (n: Notice) => void }) {
  const [status, setStatus] = useState<ClusterStatus | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const load = useCallback(async (): Promise<void> => {
    setLoading(true);
    try {
      setStatus(await api.clusterStatus());
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }, [api]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') void load();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [load]);
  const up = status?.instances.filter((i) => i.up).length ?? 0;
  return (
    <div class="cluster-page">
      <div class="page-head">
        <h1 tabIndex={-1}>Cluster</h1>
        <div class="toolbar">
          <button
            type="button"
            class="button"
            disabled={loading}
            onClick={() => {
              void load().then(() => notify(infoNotice('Cluster status refreshed.')));
            }}
          >
            Refresh
          </button>
        </div>
      </div>
      <ErrorText error={error} />
      {status !== null && (
        <>
          <p class="summary">
            {up} of {status.instances.length} {status.instances.length === 1 ? 'instance' : 'instances'} up · every file kept on {status.replicas}{' '}
            {status.replicas === 1 ? 'instance' : 'instances'} (writes need {status.min_replicas}) ·{' '}
            <span class={status.under_replicated > 0 ? 'warn' : undefined}>{status.under_replicated.toLocaleString()} under-replicated</span>
          </p>
          <ul class="instances" aria-label="Instances">
            {status.instances.map((i) => (
              <InstanceCard key={i.id} instance={i} />
            ))}
          </ul>
        </>
      )}
      {user.root && <CasSection api={api} notify={notify} />}
    </div>
  );
}
