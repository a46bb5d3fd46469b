/** The JSON shapes of the CallFS API the UI reads (docs_markdown/03-api-reference.md). */

export interface Entry {
  name: string;
  path: string;
  type: 'file' | 'directory';
  size: number;
  /** Octal, like "0644". */
  mode: string;
  owner: string;
  group: string;
  mtime: string;
  /** A file's SHA-256 (hex). */
  etag?: string;
}

export interface Listing {
  path: string;
  count: number;
  items: Entry[];
  next_cursor?: string;
}

/** What HEAD says of an entry. */
export interface Details {
  path: string;
  name: string;
  type: 'file' | 'directory';
  size: number;
  mode: string;
  owner: string;
  group: string;
  mtime: string;
  contentType: string | null;
  sha256: string | null;
  /** The instance holding the bytes (CAS), where that matters. */
  instance: string | null;
  /** The instances keeping a copy (backend.cas.replicas > 1). */
  replicas: string[];
}

export interface Whoami {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  root: boolean;
}

export interface Job {
  id: string;
  kind: 'delete' | 'move';
  path: string;
  destination?: string;
  state: 'running' | 'done' | 'failed';
  entries_total: number;
  entries_done: number;
  error?: { code: string; message: string };
}

export interface Link {
  url: string;
  token: string;
  expires_at: string;
}

export interface InstanceStatus {
  id: string;
  url: string;
  state: 'active' | 'draining' | 'forgotten';
  up: boolean;
  lost: boolean;
  last_seen: string | null;
  used_bytes: number;
  free_bytes: number;
  blobs: number;
  blob_bytes: number;
  under_replicated: number;
}

export interface ClusterStatus {
  replicas: number;
  min_replicas: number;
  under_replicated: number;
  instances: InstanceStatus[];
}

export interface CasImage {
  id: string;
  state: string;
  size: number;
  used: number;
  free: number;
  inodes_total: number;
  inodes_free: number;
  blob_count: number;
}

export interface CasImages {
  mode: string;
  images: CasImage[];
}

export interface GcResult {
  collected: number;
  bytes_freed: number;
  trimmed_images: number;
}

export interface ScrubResult {
  checked: number;
  ok: number;
  corrupted: number;
  missing: number;
  bytes: number;
}
