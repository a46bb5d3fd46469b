import { ERROR_CODES } from '../errors.js';
import { BACKEND_ALIASES } from '../backends/registry.js';

/**
 * The OpenAPI 3.1 document of API.md, served at /openapi.json. A test walks
 * the app's routers and fails when a route is missing here (or documented
 * here but not served), so the two cannot drift.
 */
const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const pathParam = { name: 'path', in: 'path', required: true, description: 'File or directory path, percent-encoded once; canonicalised by the server.', schema: { type: 'string' } };
const common = {
  '400': error('BAD_REQUEST or INVALID_PATH (including invisible characters in a name)'),
  '401': error('AUTHENTICATION_FAILED'),
  '403': error('PERMISSION_DENIED'),
  '404': error('FILE_NOT_FOUND'),
  '503': error('SERVICE_UNAVAILABLE (with Retry-After)'),
};
const entryJson = { description: 'the entry', content: { 'application/json': { schema: { $ref: '#/components/schemas/Entry' } } } };
const bytes = { description: 'the bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
const modeHeader = { name: 'X-CallFS-Mode', in: 'header', required: false, description: 'Octal mode of a new entry (default 0644 files, 0755 directories).', schema: { type: 'string', pattern: '^0?[0-7]{3,4}$' } };

const filesPath = {
  parameters: [pathParam],
  get: {
    summary: 'Download a file (Range, conditional requests) or list a directory',
    parameters: [
      { name: 'Range', in: 'header', required: false, schema: { type: 'string' } },
      { name: 'If-Match', in: 'header', required: false, description: 'Evaluated first (strong comparison): 412 when not met.', schema: { type: 'string' } },
      { name: 'If-Unmodified-Since', in: 'header', required: false, schema: { type: 'string' } },
      { name: 'If-None-Match', in: 'header', required: false, description: 'Weak comparison: 304 when it matches.', schema: { type: 'string' } },
      { name: 'If-Modified-Since', in: 'header', required: false, schema: { type: 'string' } },
    ],
    responses: {
      '200': { description: 'file bytes, or a JSON array of the directory\u2019s children', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } }, 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Entry' } } } } },
      '206': bytes,
      '304': { description: 'not modified' },
      '412': error('PRECONDITION_FAILED (If-Match or If-Unmodified-Since not met)'),
      '416': error('RANGE_NOT_SATISFIABLE'),
      '409': error('NOT_A_DIRECTORY'),
      '500': error('INTEGRITY_ERROR (before any byte for a file of up to 1 MiB; a larger one breaks the transfer instead)'),
      '502': error('BAD_GATEWAY'),
      ...common,
    },
  },
  head: { summary: 'Metadata as X-CallFS-* headers', responses: { '200': { description: 'headers only' }, ...common } },
  post: {
    summary: 'Create a file (raw body) or, with a trailing slash, a directory (mkdir -p of missing ancestors)',
    parameters: [modeHeader],
    requestBody: { required: false, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    responses: { '200': entryJson, '201': entryJson, '409': error('FILE_ALREADY_EXISTS, NOT_A_DIRECTORY or CROSS_SERVER_CONFLICT'), '413': error('PAYLOAD_TOO_LARGE'), '423': error('LOCKED'), '507': error('INSUFFICIENT_STORAGE (nothing of the upload is kept)'), ...common },
  },
  put: {
    summary: 'Create or atomically replace a file\u2019s content',
    parameters: [
      modeHeader,
      { name: 'If-Match', in: 'header', required: false, description: 'Replace only if the current ETag matches (strong comparison: W/"…" never matches); 412 otherwise.', schema: { type: 'string' } },
      { name: 'If-None-Match', in: 'header', required: false, description: '`*`: create only (412 when the file exists). An ETag list: 412 when one matches (weak comparison).', schema: { type: 'string' } },
      { name: 'If-Unmodified-Since', in: 'header', required: false, schema: { type: 'string' } },
    ],
    requestBody: { required: false, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    responses: { '200': entryJson, '201': entryJson, '409': error('NOT_A_DIRECTORY'), '412': error('PRECONDITION_FAILED (If-Match not met; If-None-Match matched)'), '502': error('BAD_GATEWAY (the holding instance did not answer within instance_discovery.peer_timeout)'), '413': error('PAYLOAD_TOO_LARGE'), '423': error('LOCKED'), '507': error('INSUFFICIENT_STORAGE (nothing of the upload is kept)'), ...common },
  },
  patch: {
    summary: 'Rename, move, chmod or chown',
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Patch' } } } },
    responses: {
      '200': { description: 'the new path', content: { 'application/json': { schema: { type: 'object', properties: { path: { type: 'string' } } } } } },
      '202': jobAccepted('a move of a directory with more than metadata_store.tree_job_entries entries below it, alone in the request, that is still running after about two seconds: readers see the whole tree at the old path until it is done, and writes at or below either path answer 423 meanwhile'),
      '409': error('FILE_ALREADY_EXISTS'), '412': error('PRECONDITION_FAILED (If-Match, If-None-Match, If-Unmodified-Since)'), '413': error('PAYLOAD_TOO_LARGE (a JSON body over 64 KiB)'), '423': error('LOCKED'), ...common },
  },
  delete: {
    summary: 'Delete a file or directory',
    parameters: [{ name: 'recursive', in: 'query', required: false, schema: { type: 'boolean' } }],
    responses: {
      '204': { description: 'deleted' },
      '202': jobAccepted('a recursive delete of a directory with more than metadata_store.tree_job_entries entries below it, still removing them after about two seconds: the tree already left the namespace and the path can be used again; creating below it answers 423 until the job is done'),
      '409': error('DIRECTORY_NOT_EMPTY'), '412': error('PRECONDITION_FAILED (If-Match, If-None-Match, If-Unmodified-Since)'), '423': error('LOCKED'), ...common },
  },
};

/** The tus request headers an operation takes, besides Tus-Resumable: 1.0.0 (required on all but OPTIONS). */
function tusHeaders(names: string[]): Record<string, unknown>[] {
  return ['Tus-Resumable', ...names].map((name) => ({ name, in: 'header', required: name !== 'Upload-Checksum' && name !== 'Upload-Metadata', schema: { type: 'string' } }));
}

/** A 202 Accepted with a tree job: Location names it, the body is the job. */
function jobAccepted(description: string): Record<string, unknown> {
  return {
    description,
    headers: { Location: { description: '/v1/jobs/{id}', schema: { type: 'string' } } },
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } },
  };
}

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'CallFS',
    version: '0.1.0',
    description:
      'A TLS REST filesystem. Every route except /health, /ready and /download/{token} needs `Authorization: Bearer <api-key>`; ' +
      'paths under /download that are not one token answer 404 LINK_NOT_FOUND without one. Every response carries X-Request-ID and the ' +
      'security headers (Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, Referrer-Policy, Content-Security-Policy, ' +
      'Cross-Origin-Opener-Policy, Cross-Origin-Embedder-Policy, Permissions-Policy).',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, peer: { type: 'http', scheme: 'bearer', description: 'auth.internal_proxy_secret: the other instances of the cluster only' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['code', 'message', 'request_id'],
        properties: {
          code: { enum: [...ERROR_CODES] },
          message: { type: 'string', description: 'For a 5xx, fixed words naming what failed (never addresses, database names or errno strings).' },
          request_id: { type: 'string' },
        },
      },
      DependencyState: { enum: ['ok', 'full', 'unavailable'], description: '`full`: serves reads, refuses uploads with 507.' },
      Ready: {
        type: 'object',
        required: ['status', 'checks'],
        properties: {
          status: { enum: ['ok', 'degraded', 'unavailable'], description: '`degraded` (200): a backend is full, or fewer instances are up than backend.cas.replicas, but the instance serves; `unavailable` (503): a dependency cannot serve.' },
          checks: {
            type: 'object',
            properties: {
              metadata: { $ref: '#/components/schemas/DependencyState' },
              locks: { $ref: '#/components/schemas/DependencyState' },
              backends: { type: 'object', additionalProperties: { $ref: '#/components/schemas/DependencyState' } },
              peers: { type: 'object', additionalProperties: { $ref: '#/components/schemas/DependencyState' } },
              replication: { enum: ['ok', 'degraded', 'read_only'], description: 'A cluster only: `degraded` when fewer instances take copies than backend.cas.replicas (writes acknowledged with min_replicas), `read_only` when fewer than min_replicas (CAS writes get 503).' },
            },
          },
        },
      },
      Entry: {
        type: 'object',
        properties: {
          name: { type: 'string' }, path: { type: 'string' }, type: { enum: ['file', 'directory'] }, size: { type: 'integer' },
          mode: { type: 'string', examples: ['0644'] }, owner: { type: 'string' }, group: { type: 'string' }, mtime: { type: 'string', format: 'date-time' }, etag: { type: 'string' },
        },
      },
      Patch: {
        type: 'object',
        properties: {
          name: { type: 'string' }, destination: { type: 'string' }, overwrite: { type: 'boolean' }, create_parents: { type: 'boolean' },
          backend: { enum: Object.keys(BACKEND_ALIASES), description: 'A backend type of the registry, or an alias (localfs = cas).' }, instance: { type: 'string' }, mode: { type: 'string' }, owner: { type: 'string' }, group: { type: 'string' },
        },
      },
      Job: {
        type: 'object',
        required: ['id', 'kind', 'path', 'state', 'entries_total', 'entries_done', 'created_at', 'updated_at', 'finished_at'],
        properties: {
          id: { type: 'string' },
          kind: { enum: ['delete', 'move'] },
          path: { type: 'string', description: 'the directory deleted or moved' },
          destination: { type: 'string', description: 'where a move goes' },
          state: { enum: ['running', 'done', 'failed'], description: 'a delete never fails once accepted; a move fails only when the move itself was refused when it ran' },
          entries_total: { type: 'integer', description: 'entries below the directory when the job started' },
          entries_done: { type: 'integer', description: 'entries removed (delete) or moved (move) so far; a move does all of them in one transaction' },
          error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, description: 'why a move failed' },
          created_at: { type: 'string', format: 'date-time' },
          updated_at: { type: 'string', format: 'date-time' },
          finished_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
      ClusterStatus: {
        type: 'object',
        required: ['replicas', 'min_replicas', 'under_replicated', 'instances'],
        description: 'What `callfs cluster status --json` prints.',
        properties: {
          replicas: { type: 'integer', description: 'backend.cas.replicas' },
          min_replicas: { type: 'integer', description: 'copies a write needs (backend.cas.min_replicas, else replicas)' },
          under_replicated: { type: 'integer', description: 'referenced contents with fewer good copies than replicas' },
          instances: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' }, url: { type: 'string' }, state: { enum: ['active', 'draining', 'forgotten'] },
                up: { type: 'boolean', description: 'heartbeat within cluster.down_after; the answering instance without peers: true' },
                lost: { type: 'boolean', description: 'down for longer than cluster.lost_after' },
                last_seen: { type: ['string', 'null'], format: 'date-time' },
                used_bytes: { type: 'integer', description: 'what its CAS images use on their filesystems' },
                free_bytes: { type: 'integer', description: 'free on the host filesystem under its CAS' },
                blobs: { type: 'integer' }, blob_bytes: { type: 'integer' },
                under_replicated: { type: 'integer', description: 'its copies of contents with too few copies' },
              },
            },
          },
        },
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/health': { get: { summary: 'Liveness', security: [], responses: { '200': { description: '{"status":"ok"}' } } } },
    '/ready': {
      get: {
        summary: 'Readiness: the state of every dependency (states only; why a check failed is in the log)',
        security: [],
        responses: {
          '200': { description: 'ok or degraded', content: { 'application/json': { schema: { $ref: '#/components/schemas/Ready' } } } },
          '503': { description: 'a dependency is unavailable (with Retry-After)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Ready' } } } },
        },
      },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format' }, '401': error('AUTHENTICATION_FAILED') } } },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    '/v1/files/{path}': filesPath,
    '/v1/whoami': {
      get: { summary: 'The user the key belongs to', responses: { '200': { description: '{name, uid, gid, groups, root}' }, '401': error('AUTHENTICATION_FAILED') } },
    },
    '/v1/cluster/status': {
      get: {
        summary: 'Every instance of the cluster: up or down, space, copies, under-replicated copies (any user; the same data as `callfs cluster status`)',
        responses: { '200': { description: 'the status', content: { 'application/json': { schema: { $ref: '#/components/schemas/ClusterStatus' } } } }, '401': error('AUTHENTICATION_FAILED'), '503': error('SERVICE_UNAVAILABLE') },
      },
    },
    '/v1/cas/images': {
      get: { summary: 'The CAS loop images: state, size, used, free, inodes, blob count, packed small blobs and their segment files (root only)', responses: { '200': { description: '{mode, images: [{id, state, size, used, free, inodes_total, inodes_free, blob_count, packed_blobs, segments, segment_bytes, segment_live_bytes, allocated}]}' }, '401': error('AUTHENTICATION_FAILED'), '403': error('PERMISSION_DENIED') } },
    },
    '/v1/cas/gc': {
      post: { summary: 'Collect unreferenced blobs past the grace period now, and compact segment files of packed blobs (root only)', responses: { '200': { description: '{collected, bytes_freed, trimmed_images, records_moved, segments_deleted}' }, '401': error('AUTHENTICATION_FAILED'), '403': error('PERMISSION_DENIED') } },
    },
    '/v1/cas/scrub': {
      post: {
        summary: 'Re-verify blobs against their SHA-256 now (root only)',
        parameters: [{ name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } }],
        responses: { '200': { description: '{checked, ok, corrupted, missing, bytes}' }, '401': error('AUTHENTICATION_FAILED'), '403': error('PERMISSION_DENIED') },
      },
    },
    '/v1/blobs/{sha256}': {
      parameters: [{ name: 'sha256', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
      get: { summary: 'A CAS blob’s bytes by hash, verified (root only)', responses: { '200': bytes, '400': error('BAD_REQUEST (not 64 lowercase hex)'), '401': error('AUTHENTICATION_FAILED'), '403': error('PERMISSION_DENIED'), '404': error('FILE_NOT_FOUND') } },
    },
    '/v1/links/generate': {
      post: {
        summary: 'Create a single-use download link to a file the caller may read (rate limited per client IP)',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['path'], properties: { path: { type: 'string' }, expiry_seconds: { type: 'integer', minimum: 1, maximum: 86400, default: 3600 } } } } },
        },
        responses: {
          '201': { description: 'the link', content: { 'application/json': { schema: { type: 'object', properties: { url: { type: 'string' }, token: { type: 'string' }, expires: { type: 'string', format: 'date-time' }, expires_at: { type: 'string', format: 'date-time' } } } } } },
          '413': error('PAYLOAD_TOO_LARGE (a JSON body over 64 KiB)'),
          '429': error('RATE_LIMIT_EXCEEDED (with Retry-After)'),
          ...common,
          '400': error('BAD_REQUEST (bad JSON, expiry_seconds outside 1..86400, a directory) or INVALID_PATH'),
        },
      },
    },
    '/download/{token}': {
      parameters: [{ name: 'token', in: 'path', required: true, description: 'The token of a single-use link.', schema: { type: 'string' } }],
      get: {
        summary: 'Download the file of a single-use link, once (no auth: the token is the credential)',
        security: [],
        responses: {
          '200': { description: 'the bytes, with Content-Disposition: attachment', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          '403': error('PERMISSION_DENIED (the link\u2019s creator may no longer read the file)'),
          '404': error('LINK_NOT_FOUND (unknown, tampered or malformed token, or one not spelled in canonical base64url) or FILE_NOT_FOUND (the file is gone; the link stays usable)'),
          '405': error('METHOD_NOT_ALLOWED (HEAD: it would neither burn the link nor tell whether it is used)'),
          '410': error('LINK_EXPIRED or LINK_USED'),
          '429': error('RATE_LIMIT_EXCEEDED (with Retry-After)'),
          '500': error('INTEGRITY_ERROR (a small file whose stored bytes no longer match; the link stays usable)'),
          '502': error('BAD_GATEWAY'),
          '503': error('SERVICE_UNAVAILABLE (with Retry-After)'),
        },
      },
    },
    '/internal/v1/blobs': {
      put: {
        summary: 'Peers only: store a blob in this instance\u2019s content store (the peer proxy backend); the body is the bytes',
        description: 'Authorization: Bearer <auth.internal_proxy_secret>. No user acts through it: the instance that asks has checked its caller against the shared metadata.',
        security: [{ peer: [] }],
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          '201': { description: '{id, size, sha256}' },
          '401': error('AUTHENTICATION_FAILED (not the internal proxy secret)'),
          '413': error('PAYLOAD_TOO_LARGE'),
          '507': error('INSUFFICIENT_STORAGE'),
          '503': error('SERVICE_UNAVAILABLE'),
        },
      },
    },
    '/internal/v1/blobs/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
      get: {
        summary: 'Peers only: a blob\u2019s bytes by id (its sha256), whole (verified) or one bytes=<start>-<end> range; HEAD gives its size',
        security: [{ peer: [] }],
        parameters: [{ name: 'Range', in: 'header', required: false, schema: { type: 'string', pattern: '^bytes=\\d+-\\d+$' } }],
        responses: { '200': bytes, '206': bytes, '401': error('AUTHENTICATION_FAILED'), '404': error('FILE_NOT_FOUND'), '416': error('RANGE_NOT_SATISFIABLE'), '500': error('INTEGRITY_ERROR') },
      },
      delete: {
        summary: 'Peers only (rebalancing): drop this instance’s copy of a blob, whose other copies the caller made sure of',
        security: [{ peer: [] }],
        responses: { '200': { description: '{"evicted": true} (false while an upload here is using the blob: it stays)' }, '400': error('BAD_REQUEST (not a blob id)'), '401': error('AUTHENTICATION_FAILED') },
      },
    },
    '/v1/uploads': {
      options: {
        summary: 'tus 1.0 discovery: Tus-Version, Tus-Extension (creation, creation-with-upload, termination, expiration, checksum), Tus-Max-Size, Tus-Checksum-Algorithm (sha1, sha256)',
        responses: { '204': { description: 'what the server supports' }, ...common },
      },
      post: {
        summary: 'Create a resumable upload (tus creation, creation-with-upload). Needs Tus-Resumable: 1.0.0, Upload-Length and Upload-Metadata with "path" (and optional "mode", "filename"); the user must be allowed to create or replace the path',
        parameters: tusHeaders(['Upload-Length', 'Upload-Metadata']),
        requestBody: { required: false, content: { 'application/offset+octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          '201': { description: 'created: Location /v1/uploads/{id}, Upload-Offset, Upload-Expires', headers: { Location: { schema: { type: 'string' } }, 'Upload-Expires': { schema: { type: 'string' } } } },
          '412': error('PRECONDITION_FAILED (no Tus-Resumable: 1.0.0)'), '413': error('PAYLOAD_TOO_LARGE (Upload-Length over server.max_upload_bytes)'), '429': error('RATE_LIMIT_EXCEEDED (uploads.max_per_user unfinished uploads)'), ...common,
        },
      },
    },
    '/v1/uploads/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      options: { summary: 'tus 1.0 discovery, as on /v1/uploads', responses: { '204': { description: 'what the server supports' }, ...common } },
      head: {
        summary: 'The upload’s offset (tus core): Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires. Only its creator sees it',
        responses: { '200': { description: 'the offset in Upload-Offset' }, ...common, '404': error('FILE_NOT_FOUND (no such upload, expired, finished, or another user’s)') },
      },
      patch: {
        summary: 'Add bytes at Upload-Offset (tus core, checksum). The last byte writes the file at its path, atomically, with the permissions checked again',
        parameters: tusHeaders(['Upload-Offset', 'Upload-Checksum']),
        requestBody: { required: true, content: { 'application/offset+octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          '204': { description: 'the new offset in Upload-Offset' },
          '409': error('UPLOAD_OFFSET_MISMATCH'), '415': error('UNSUPPORTED_MEDIA_TYPE'), '460': error('CHECKSUM_MISMATCH (the offset did not move)'),
          '502': error('BAD_GATEWAY (the instance holding the upload did not answer)'), ...common, '404': error('FILE_NOT_FOUND (no such upload, or another user’s)'),
        },
      },
      delete: {
        summary: 'End an upload and drop its bytes (tus termination)',
        responses: { '204': { description: 'terminated' }, ...common },
      },
    },
    '/internal/v1/uploads/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      head: { summary: 'Peers only: the offset of an upload this instance holds (completing it when every byte is in)', security: [{ peer: [] }], responses: { '200': { description: 'Upload-Offset' }, '401': error('AUTHENTICATION_FAILED') } },
      patch: { summary: 'Peers only: add bytes to an upload this instance holds; the asking instance checked the user', security: [{ peer: [] }], responses: { '204': { description: 'Upload-Offset' }, '401': error('AUTHENTICATION_FAILED') } },
      delete: { summary: 'Peers only: end an upload this instance holds', security: [{ peer: [] }], responses: { '204': { description: 'terminated' }, '401': error('AUTHENTICATION_FAILED') } },
    },
    '/v1/jobs/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        summary: 'A long tree operation (recursive delete or move of a big directory): its state and progress, for the user who started it and root',
        responses: { '200': { description: 'the job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...common, '404': error('FILE_NOT_FOUND (no such job, or another user\u2019s)') },
      },
    },
    '/v1/directories/{path}': {
      parameters: [pathParam],
      get: {
        summary: 'List a directory (recursive, paginated)',
        parameters: [
          { name: 'recursive', in: 'query', required: false, schema: { type: 'boolean' } },
          { name: 'max_depth', in: 'query', required: false, schema: { type: 'integer', minimum: 0, maximum: 1000 } },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } },
          { name: 'cursor', in: 'query', required: false, schema: { type: 'string' } },
        ],
        responses: { '200': { description: '{path, type, recursive, max_depth, count, items, next_cursor?}' }, ...common },
      },
    },
  },
} as const;
