import convict from 'convict';
import { registerFormats } from './formats.js';
import { CAS_DEFAULTS } from '../backends/cas/defaults.js';
import { DEFAULT_TLS12_CIPHERS, TLS_MIN_VERSIONS, type TlsMinVersion } from './tls.js';

/**
 * The configuration schema. Keys and CALLFS_* variables of the original CallFS
 * are kept exactly (shared/seeds/callfs-README.md); new keys follow the same
 * pattern. Durations are milliseconds and sizes bytes once loaded.
 */
export interface UserConfig {
  api_key: string;
  uid: number;
  gid: number;
  groups?: number[];
}

export interface Config {
  server: {
    listen_addr: string;
    external_url: string;
    protocol: 'https' | 'http';
    cert_file: string;
    key_file: string;
    tls_min_version: TlsMinVersion;
    tls_ciphers: string[];
    data_dir: string;
    read_timeout: number;
    write_timeout: number;
    file_op_timeout: number;
    metadata_op_timeout: number;
    shutdown_timeout: number;
    max_upload_bytes: number;
  };
  auth: {
    api_keys: string[];
    api_key_users: Record<string, string>;
    users: Record<string, UserConfig>;
    internal_proxy_secret: string;
    single_use_link_secret: string;
  };
  log: { level: string; format: 'json' | 'console' };
  metrics: { listen_addr: string };
  backend: {
    default_backend: string;
    localfs_root_path: string;
    cas: {
      mode: 'auto' | 'loop' | 'dir';
      image_size: number;
      min_free_bytes: number;
      min_free_inodes: number;
      bytes_per_inode: number;
      gc_grace: number;
      gc_interval: number;
      scrub_bytes_per_second: number;
      scrub_interval: number;
      pack_below: number;
      segment_size: number;
      replicas: number;
      min_replicas: number;
    };
    s3_access_key: string;
    s3_secret_key: string;
    s3_region: string;
    s3_bucket_name: string;
    s3_endpoint: string;
    s3_prefix: string;
    s3_force_path_style: boolean;
    s3_server_side_encryption: string;
    s3_kms_key_id: string;
    s3_acl: string;
    s3_part_size: number;
    s3_queue_size: number;
    internal_proxy_skip_tls_verify: boolean;
    internal_proxy_ca_file: string;
  };
  metadata_store: { type: string; dsn: string; pool_size: number; cache_size: number; tree_job_entries: number; tree_batch_entries: number };
  dlm: { type: string; redis_addr: string; redis_addrs: string[]; redis_password: string; lock_ttl: number };
  locks: { wait_timeout: number };
  links: { generate_rate_limit: number; download_rate_limit: number; purge_interval: number };
  instance_discovery: { instance_id: string; peer_endpoints: Record<string, string>; peer_timeout: number };
  cluster: { heartbeat_interval: number; down_after: number; lost_after: number; repair_interval: number; repair_bytes_per_second: number };
  ha: { replication_enabled: boolean; replica_backend: string; require_replica_success: boolean; outbox_interval: number };
  webdav: { enabled: boolean; prefix: string };
  ui: { enabled: boolean };
  uploads: { expire_after: number; max_per_user: number; sweep_interval: number };
  s3: { listen_addr: string; region: string };
}

const duration = (doc: string, def: string, env?: string) => ({ doc, format: 'duration', default: def as unknown as number, ...(env === undefined ? {} : { env }) });
const size = (doc: string, def: string, env?: string) => ({ doc, format: 'size', default: def as unknown as number, ...(env === undefined ? {} : { env }) });
const secret = (doc: string, env: string) => ({ doc, format: String, default: '', env, sensitive: true });

/** A fresh convict instance of the schema (formats registered). */
export function createSchema(env: NodeJS.ProcessEnv = process.env): convict.Config<Config> {
  registerFormats();
  return convict<Config>(SCHEMA, { env, args: [] });
}

const SCHEMA: convict.Schema<Config> = {
    server: {
      listen_addr: { doc: 'Address the HTTPS server listens on ("host:port" or ":port").', format: 'listen-addr', default: ':8443', env: 'CALLFS_SERVER_LISTEN_ADDR' },
      external_url: { doc: 'Base URL clients reach this server at; used in single-use link URLs.', format: String, default: 'localhost:8443', env: 'CALLFS_SERVER_EXTERNAL_URL' },
      protocol: { doc: '"https" (default). "http" only behind a TLS-terminating proxy; a warning is logged.', format: ['https', 'http'], default: 'https', env: 'CALLFS_SERVER_PROTOCOL' },
      cert_file: { doc: 'TLS certificate (PEM). On the embedded default a self-signed one is generated under data_dir when the file is missing.', format: String, default: 'server.crt', env: 'CALLFS_SERVER_CERT_FILE' },
      key_file: { doc: 'TLS private key (PEM).', format: String, default: 'server.key', env: 'CALLFS_SERVER_KEY_FILE' },
      tls_min_version: { doc: 'Lowest TLS version accepted: "TLSv1.2" or "TLSv1.3".', format: [...TLS_MIN_VERSIONS], default: 'TLSv1.2', env: 'CALLFS_SERVER_TLS_MIN_VERSION' },
      tls_ciphers: { doc: 'TLS 1.2 cipher suites (OpenSSL names; a list, or colon-separated): ECDHE with AES-GCM or ChaCha20-Poly1305 only. TLS 1.3 suites are Node\u2019s defaults.', format: 'tls-ciphers', default: [...DEFAULT_TLS12_CIPHERS], env: 'CALLFS_SERVER_TLS_CIPHERS' },
      data_dir: { doc: 'Directory for embedded metadata, generated secrets and certificate, and the CAS (unless backend.localfs_root_path is set).', format: String, default: './data', env: 'CALLFS_SERVER_DATA_DIR' },
      read_timeout: duration('Idle timeout while reading a request: a transfer that keeps moving is never cut.', '30s', 'CALLFS_SERVER_READ_TIMEOUT'),
      write_timeout: duration('Idle timeout while writing a response: a transfer that keeps moving is never cut.', '30s', 'CALLFS_SERVER_WRITE_TIMEOUT'),
      file_op_timeout: duration('Deadline for a backend operation to start answering.', '10s', 'CALLFS_SERVER_FILE_OP_TIMEOUT'),
      metadata_op_timeout: duration('Deadline for one metadata statement.', '5s', 'CALLFS_SERVER_METADATA_OP_TIMEOUT'),
      shutdown_timeout: duration('How long a graceful shutdown waits for in-flight requests.', '30s', 'CALLFS_SERVER_SHUTDOWN_TIMEOUT'),
      max_upload_bytes: size('Largest accepted request body; larger uploads get 413.', '10GiB', 'CALLFS_SERVER_MAX_UPLOAD_BYTES'),
    },
    auth: {
      api_keys: { doc: 'API keys (users api-user-1, api-user-2, … with uids 1001, 1002, … and gid 1000). Comma-separated in the environment.', format: 'string-list', default: [], env: 'CALLFS_AUTH_API_KEYS', sensitive: true },
      api_key_users: { doc: 'Map of user name → API key (uids 2001, 2002, … in name order, gid 1000).', format: 'object', default: {}, env: 'CALLFS_AUTH_API_KEY_USERS', sensitive: true },
      users: { doc: 'Map of user name → { api_key, uid, gid, groups }. uid 0 is root.', format: 'object', default: {}, env: 'CALLFS_AUTH_USERS', sensitive: true },
      internal_proxy_secret: secret('Bearer secret peers use to proxy requests to each other.', 'CALLFS_AUTH_INTERNAL_PROXY_SECRET'),
      single_use_link_secret: secret('HMAC (HS256) secret that signs single-use download links.', 'CALLFS_AUTH_SINGLE_USE_LINK_SECRET'),
    },
    log: {
      level: { doc: 'Log level.', format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', env: 'CALLFS_LOG_LEVEL' },
      format: { doc: '"json" lines or human-readable "console".', format: ['json', 'console'], default: 'json', env: 'CALLFS_LOG_FORMAT' },
    },
    metrics: {
      listen_addr: { doc: 'Unauthenticated Prometheus listener; empty disables it. /metrics on the main port always needs auth.', format: 'listen-addr', default: '127.0.0.1:9090', env: 'CALLFS_METRICS_LISTEN_ADDR' },
    },
    backend: {
      default_backend: { doc: 'Backend for new files: "cas" (alias "localfs") or "s3".', format: String, default: 'localfs', env: 'CALLFS_BACKEND_DEFAULT_BACKEND' },
      localfs_root_path: { doc: 'Where the CAS keeps its images. Empty: <server.data_dir>/cas.', format: String, default: '', env: 'CALLFS_BACKEND_LOCALFS_ROOT_PATH' },
      cas: {
        mode: { doc: '"loop" (ext4 loop images, needs root), "dir" (plain directories) or "auto" (loop when possible).', format: ['auto', 'loop', 'dir'], default: 'auto', env: 'CALLFS_BACKEND_CAS_MODE' },
        image_size: size('Size of each sparse loop image.', CAS_DEFAULTS.image_size, 'CALLFS_BACKEND_CAS_IMAGE_SIZE'),
        min_free_bytes: size('The active image is sealed when its free space falls below this; no upload starts (507) while the host filesystem under the CAS root has less than this free.', CAS_DEFAULTS.min_free_bytes, 'CALLFS_BACKEND_CAS_MIN_FREE_BYTES'),
        min_free_inodes: { doc: 'The active image is sealed when its free inodes fall below this.', format: 'nat', default: CAS_DEFAULTS.min_free_inodes, env: 'CALLFS_BACKEND_CAS_MIN_FREE_INODES' },
        bytes_per_inode: size('mkfs.ext4 -i: one inode per this many bytes (small files need many inodes).', CAS_DEFAULTS.bytes_per_inode, 'CALLFS_BACKEND_CAS_BYTES_PER_INODE'),
        gc_grace: duration('Unreferenced blobs are kept this long before the collector deletes them (not while the host is below min_free_bytes).', CAS_DEFAULTS.gc_grace, 'CALLFS_BACKEND_CAS_GC_GRACE'),
        gc_interval: duration('How often the collector runs (0 disables it).', CAS_DEFAULTS.gc_interval, 'CALLFS_BACKEND_CAS_GC_INTERVAL'),
        scrub_bytes_per_second: size('Byte rate of the background scrubber.', CAS_DEFAULTS.scrub_bytes_per_second, 'CALLFS_BACKEND_CAS_SCRUB_BYTES_PER_SECOND'),
        scrub_interval: duration('Pause between scrub passes (0 disables scrubbing).', CAS_DEFAULTS.scrub_interval, 'CALLFS_BACKEND_CAS_SCRUB_INTERVAL'),
        pack_below: size('Blobs smaller than this are packed into append-only segment files, many writers sharing one fdatasync, instead of being files of their own (at most 1MiB; 0 packs nothing).', CAS_DEFAULTS.pack_below, 'CALLFS_BACKEND_CAS_PACK_BELOW'),
        segment_size: size('A segment file of packed blobs takes no more appends once this big; compaction rewrites segments that are mostly dead.', CAS_DEFAULTS.segment_size, 'CALLFS_BACKEND_CAS_SEGMENT_SIZE'),
        replicas: { doc: 'Copies of every CAS blob, each on a different instance. A PUT is acknowledged once that many are durable (streamed to all at once); the repairer brings blobs back to this many.', format: 'nat', default: 1, env: 'CALLFS_BACKEND_CAS_REPLICAS' },
        min_replicas: { doc: 'Fewest durable copies a PUT is acknowledged with when fewer than `replicas` instances are up (or a replica fails during the upload); the repairer makes the rest. Fewer: 503. 0: the same as replicas.', format: 'nat', default: 0, env: 'CALLFS_BACKEND_CAS_MIN_REPLICAS' },
      },
      s3_access_key: secret('S3 access key id.', 'CALLFS_BACKEND_S3_ACCESS_KEY'),
      s3_secret_key: secret('S3 secret access key.', 'CALLFS_BACKEND_S3_SECRET_KEY'),
      s3_region: { doc: 'S3 region.', format: String, default: 'us-east-1', env: 'CALLFS_BACKEND_S3_REGION' },
      s3_bucket_name: { doc: 'S3 bucket; empty disables the S3 backend.', format: String, default: '', env: 'CALLFS_BACKEND_S3_BUCKET_NAME' },
      s3_endpoint: { doc: 'Custom S3 endpoint (MinIO and other S3-compatible servers).', format: String, default: '', env: 'CALLFS_BACKEND_S3_ENDPOINT' },
      s3_prefix: { doc: 'Key prefix inside the bucket.', format: String, default: '', env: 'CALLFS_BACKEND_S3_PREFIX' },
      s3_force_path_style: { doc: 'Path-style addressing (needed by most S3-compatible servers). Default: on when s3_endpoint is set.', format: 'bool', default: false, env: 'CALLFS_BACKEND_S3_FORCE_PATH_STYLE' },
      s3_server_side_encryption: { doc: '"AES256", "aws:kms" or "none".', format: ['AES256', 'aws:kms', 'none', ''], default: 'AES256', env: 'CALLFS_BACKEND_S3_SERVER_SIDE_ENCRYPTION' },
      s3_kms_key_id: { doc: 'KMS key id for aws:kms.', format: String, default: '', env: 'CALLFS_BACKEND_S3_KMS_KEY_ID' },
      s3_acl: { doc: 'Canned ACL of new objects.', format: String, default: 'private', env: 'CALLFS_BACKEND_S3_ACL' },
      s3_part_size: size('Multipart upload part size (at least 5MiB).', '8MiB', 'CALLFS_BACKEND_S3_PART_SIZE'),
      s3_queue_size: { doc: 'Parts uploaded in parallel per upload.', format: 'nat', default: 4, env: 'CALLFS_BACKEND_S3_QUEUE_SIZE' },
      internal_proxy_skip_tls_verify: { doc: 'Skip TLS verification of peers (testing only).', format: 'bool', default: false, env: 'CALLFS_BACKEND_INTERNAL_PROXY_SKIP_TLS_VERIFY' },
      internal_proxy_ca_file: { doc: 'CA certificate (PEM) that peers\u2019 certificates are verified against.', format: String, default: '', env: 'CALLFS_BACKEND_INTERNAL_PROXY_CA_FILE' },
    },
    metadata_store: {
      type: { doc: '"postgres" or "embedded" (PGlite under data_dir). Empty: postgres when dsn is set, else embedded.', format: String, default: '', env: 'CALLFS_METADATA_STORE_TYPE' },
      dsn: { doc: 'PostgreSQL connection string.', format: String, default: '', env: 'CALLFS_METADATA_STORE_DSN', sensitive: true },
      pool_size: { doc: 'Connections in the Postgres pool.', format: 'nat', default: 10, env: 'CALLFS_METADATA_STORE_POOL_SIZE' },
      cache_size: { doc: 'Entries kept in the metadata cache (0 disables it).', format: 'nat', default: 10000, env: 'CALLFS_METADATA_STORE_CACHE_SIZE' },
      tree_job_entries: {
        doc: 'A recursive delete of a directory with more entries than this below it answers 202 and goes on as a job (GET /v1/jobs/{id}).',
        format: 'nat', default: 10000, env: 'CALLFS_METADATA_STORE_TREE_JOB_ENTRIES',
      },
      tree_batch_entries: { doc: 'Entries a tree job removes per transaction (at least 1).', format: 'nat', default: 5000, env: 'CALLFS_METADATA_STORE_TREE_BATCH_ENTRIES' },
    },
    dlm: {
      type: { doc: '"redis" (Redlock) or "local" (in-process). Empty: redis when metadata is postgres, else local.', format: String, default: '', env: 'CALLFS_DLM_TYPE' },
      redis_addr: { doc: 'Redis server "host:port".', format: String, default: 'localhost:6379', env: 'CALLFS_DLM_REDIS_ADDR' },
      redis_addrs: { doc: 'Several independent Redis servers for Redlock (overrides redis_addr). Comma-separated in the environment.', format: 'string-list', default: [], env: 'CALLFS_DLM_REDIS_ADDRS' },
      redis_password: secret('Redis password.', 'CALLFS_DLM_REDIS_PASSWORD'),
      lock_ttl: duration('Lease of a lock; extended while the work runs.', '10s', 'CALLFS_DLM_LOCK_TTL'),
    },
    locks: {
      wait_timeout: duration('How long a request waits for a path lock before 423 LOCKED.', '10s', 'CALLFS_LOCKS_WAIT_TIMEOUT'),
    },
    links: {
      generate_rate_limit: { doc: 'Link generations per minute per client IP (0: unlimited).', format: 'nat', default: 60, env: 'CALLFS_LINKS_GENERATE_RATE_LIMIT' },
      download_rate_limit: { doc: 'Link downloads per minute per client IP (0: unlimited).', format: 'nat', default: 120, env: 'CALLFS_LINKS_DOWNLOAD_RATE_LIMIT' },
      purge_interval: duration('How often expired and used links are purged.', '10m', 'CALLFS_LINKS_PURGE_INTERVAL'),
    },
    instance_discovery: {
      instance_id: { doc: 'This instance\u2019s unique id in the cluster.', format: String, default: 'callfs-instance-1', env: 'CALLFS_INSTANCE_DISCOVERY_INSTANCE_ID' },
      peer_endpoints: { doc: 'Map of peer instance id → base URL. JSON in the environment.', format: 'object', default: {}, env: 'CALLFS_INSTANCE_DISCOVERY_PEER_ENDPOINTS' },
      peer_timeout: duration('Longest a peer may take to start answering (connect, TLS handshake, response headers) before 502 BAD_GATEWAY; a write into a peer gets locks.wait_timeout more to be answered once its body is sent. Must be below server.read_timeout and server.write_timeout when peers are configured.', '5s', 'CALLFS_INSTANCE_DISCOVERY_PEER_TIMEOUT'),
    },
    cluster: {
      heartbeat_interval: duration('How often each instance records itself (URL, used and free space) in the metadata store.', '2s', 'CALLFS_CLUSTER_HEARTBEAT_INTERVAL'),
      down_after: duration('An instance whose last heartbeat is older than this is down: reads and writes skip it at once.', '10s', 'CALLFS_CLUSTER_DOWN_AFTER'),
      lost_after: duration('An instance down for longer than this is lost: its copies stop counting and the repairer makes new ones (0: only `callfs cluster forget` declares an instance lost).', '10m', 'CALLFS_CLUSTER_LOST_AFTER'),
      repair_interval: duration('Pause between passes of the repairer (one instance of the cluster runs it at a time; 0 disables it on this instance).', '10s', 'CALLFS_CLUSTER_REPAIR_INTERVAL'),
      repair_bytes_per_second: size('Byte rate at which the repairer copies blobs (repair and drain).', '64MiB', 'CALLFS_CLUSTER_REPAIR_BYTES_PER_SECOND'),
    },
    webdav: {
      enabled: { doc: 'Serve the namespace over WebDAV (RFC 4918 class 1 and 2) on the main port, with HTTP Basic auth (user name and API key).', format: 'bool', default: true, env: 'CALLFS_WEBDAV_ENABLED' },
      prefix: { doc: 'URL path the WebDAV tree is served under.', format: String, default: '/webdav', env: 'CALLFS_WEBDAV_PREFIX' },
    },
    ui: {
      enabled: { doc: 'Serve the web file manager at /ui/ on the main port (static files; it signs in with an API key sent as Bearer).', format: 'bool', default: true, env: 'CALLFS_UI_ENABLED' },
    },
    s3: {
      listen_addr: { doc: 'host:port of the S3-compatible API (a second TLS listener with the same certificate; path-style addressing); empty disables it.', format: String, default: '', env: 'CALLFS_S3_LISTEN_ADDR' },
      region: { doc: 'The region the S3 API names (GetBucketLocation); requests signed for any region are accepted.', format: String, default: 'us-east-1', env: 'CALLFS_S3_REGION' },
    },
    uploads: {
      expire_after: duration('A resumable upload (tus, /v1/uploads) that receives no bytes for this long is removed with its bytes.', '24h', 'CALLFS_UPLOADS_EXPIRE_AFTER'),
      max_per_user: { doc: 'Unfinished resumable uploads one user may have at a time.', format: 'nat', default: 100, env: 'CALLFS_UPLOADS_MAX_PER_USER' },
      sweep_interval: duration('How often each instance removes its expired uploads (0 disables it).', '1m', 'CALLFS_UPLOADS_SWEEP_INTERVAL'),
    },
    ha: {
      replication_enabled: { doc: 'Also copy every CAS blob to a replica backend (the original CallFS\u2019s HA keys): reads come from it when no instance copy can be read.', format: 'bool', default: false, env: 'CALLFS_HA_REPLICATION_ENABLED' },
      replica_backend: { doc: 'The replica backend: "s3" (the configured bucket, keys <s3_prefix>.callfs-cas/<sha256>).', format: String, default: 's3', env: 'CALLFS_HA_REPLICA_BACKEND' },
      require_replica_success: { doc: 'Acknowledge a PUT only once its blob is in the replica (503 otherwise); off: queue it durably and copy it in the background.', format: 'bool', default: false, env: 'CALLFS_HA_REQUIRE_REPLICA_SUCCESS' },
      outbox_interval: duration('Pause between background passes over the blobs queued for the replica.', '5s', 'CALLFS_HA_OUTBOX_INTERVAL'),
    },
};
