import { encodePath } from '../paths.js';
import { ApiError } from './errors.js';
import type { CasImages, ClusterStatus, Details, GcResult, Job, Link, Listing, ScrubResult, Whoami } from './types.js';

export interface RequestOptions {
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Progress of a long tree operation that the server runs as a job (202 + Location). */
export type JobProgress = (job: Job) => void;

const files = (path: string): string => `/v1/files${encodePath(path)}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The CallFS API, as the signed-in user: every request carries the key as
 * a Bearer header (never in the URL), errors become ApiError, and a 401
 * after sign-in (the key was revoked) signs the tab out.
 */
export class Api {
  constructor(
    readonly key: string,
    private readonly onAuthLost: (err: ApiError) => void = () => {},
  ) {}

  async request(method: string, url: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.key}`, ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const res = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      referrerPolicy: 'no-referrer',
    });
    if (!res.ok) {
      const err = await ApiError.from(res);
      if (err.status === 401) this.onAuthLost(err);
      throw err;
    }
    return res;
  }

  async json<T>(method: string, url: string, options: RequestOptions = {}): Promise<T> {
    return (await (await this.request(method, url, options)).json()) as T;
  }

  whoami(): Promise<Whoami> {
    return this.json('GET', '/v1/whoami');
  }

  /** One page of a directory (limit entries from `cursor`), in the server's order. */
  list(dir: string, options: { limit: number; cursor?: string; signal?: AbortSignal }): Promise<Listing> {
    const query = new URLSearchParams({ limit: String(options.limit) });
    if (options.cursor !== undefined) query.set('cursor', options.cursor);
    return this.json('GET', `/v1/directories${encodePath(dir)}?${query}`, options.signal === undefined ? {} : { signal: options.signal });
  }

  /** An entry's metadata, from HEAD (X-CallFS-* headers, ETag = SHA-256, replicas). */
  async details(path: string, signal?: AbortSignal): Promise<Details> {
    const res = await this.request('HEAD', files(path), signal === undefined ? {} : { signal });
    const h = (name: string): string | null => res.headers.get(name);
    const type = h('x-callfs-type') === 'directory' ? 'directory' : 'file';
    const etag = h('etag');
    return {
      path,
      name: path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1),
      type,
      size: Number(h('x-callfs-size') ?? 0),
      mode: h('x-callfs-mode') ?? '',
      owner: h('x-callfs-owner') ?? '',
      group: h('x-callfs-group') ?? '',
      mtime: h('x-callfs-mtime') ?? '',
      contentType: type === 'file' ? h('content-type') : null,
      sha256: etag === null ? null : etag.replace(/^W\//, '').replace(/"/g, ''),
      instance: h('x-callfs-instance-id'),
      replicas: (h('x-callfs-replicas') ?? '').split(',').filter((s) => s !== ''),
    };
  }

  /** A file's bytes (the first `limit` only, when given and smaller than the file). */
  async read(path: string, options: { limit?: number; size: number; type: string; signal?: AbortSignal }): Promise<{ blob: Blob; partial: boolean }> {
    const partial = options.limit !== undefined && options.size > options.limit;
    const res = await this.request('GET', files(path), {
      ...(partial ? { headers: { Range: `bytes=0-${(options.limit as number) - 1}` } } : {}),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { blob: new Blob([await res.arrayBuffer()], { type: options.type }), partial };
  }

  /** Create a directory (201), or find it already there (200: created false). */
  async makeDirectory(path: string): Promise<{ created: boolean }> {
    const res = await this.request('POST', `${files(path)}/`);
    return { created: res.status === 201 };
  }

  async rename(path: string, name: string): Promise<string> {
    const res = await this.request('PATCH', files(path), { json: { name } });
    return this.finished(res, undefined, path);
  }

  async move(path: string, destination: string, options: { createParents: boolean; onProgress?: JobProgress }): Promise<string> {
    const res = await this.request('PATCH', files(path), { json: { destination, create_parents: options.createParents } });
    return this.finished(res, options.onProgress, destination);
  }

  async chmod(path: string, mode: string): Promise<void> {
    await this.request('PATCH', files(path), { json: { mode } });
  }

  async remove(path: string, options: { recursive: boolean; onProgress?: JobProgress }): Promise<void> {
    const res = await this.request('DELETE', `${files(path)}${options.recursive ? '?recursive=true' : ''}`);
    await this.finished(res, options.onProgress, path);
  }

  link(path: string, expirySeconds: number): Promise<Link> {
    return this.json('POST', '/v1/links/generate', { json: { path, expiry_seconds: expirySeconds } });
  }

  clusterStatus(): Promise<ClusterStatus> {
    return this.json('GET', '/v1/cluster/status');
  }

  casImages(): Promise<CasImages> {
    return this.json('GET', '/v1/cas/images');
  }

  gc(): Promise<GcResult> {
    return this.json('POST', '/v1/cas/gc');
  }

  scrub(): Promise<ScrubResult> {
    return this.json('POST', '/v1/cas/scrub');
  }

  /**
   * The new path once a rename, move or delete is done: at once, or, when
   * the server took it on as a job (202, a big directory), once the job
   * reports done (its progress on the way); a failed job throws its error.
   */
  private async finished(res: Response, onProgress: JobProgress | undefined, fallback: string): Promise<string> {
    if (res.status !== 202) {
      if (res.status === 204) return fallback;
      const body = (await res.json()) as { path?: string };
      return body.path ?? fallback;
    }
    let job = (await res.json()) as Job;
    const location = res.headers.get('location') ?? `/v1/jobs/${encodeURIComponent(job.id)}`;
    while (job.state === 'running') {
      onProgress?.(job);
      await sleep(750);
      job = await this.json<Job>('GET', location);
    }
    onProgress?.(job);
    if (job.state === 'failed') throw new ApiError(job.error?.code ?? 'INTERNAL_ERROR', job.error?.message ?? 'the operation failed', 200);
    return job.destination ?? fallback;
  }
}
