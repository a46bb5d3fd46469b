/**
 * The kinds of backend CallFS stores file bytes in, and what each is: the
 * one source of the backend type names, their aliases, and their
 * capabilities. Config validation, the metadata store's constraint on
 * `inodes.backend`, the OpenAPI enums and the engine's decisions all derive
 * from this table; nothing else spells a backend name. Pure data: importing it
 * loads no implementation.
 *
 * Adding a backend: its implementation under lib/backends/<name>/ (passing
 * the contract suite), a line here, and its construction from the config in
 * cmd/backends.ts (docs_markdown/08-developer-guide.md).
 */

/**
 * How a backend names stored bytes. `content`: by their sha256, so equal
 * bytes are stored once, stored bytes never change, and a write needs no lock
 * until its metadata commit. `path`: after the file's path (objects stay
 * browsable by other tools), so a write must hold the path's lock while it
 * uploads, and a rename must move the object.
 */
export type Addressing = 'content' | 'path';

/**
 * Where the bytes live. `instance`: on the instance that stored them (its
 * disks); another instance reaches them through the peer proxy. `shared`:
 * in a store every instance reaches directly.
 */
export type Locality = 'instance' | 'shared';

export interface BackendCapabilities {
  addressing: Addressing;
  locality: Locality;
}

export interface BackendKind extends BackendCapabilities {
  /** Other names accepted in config and requests (the original CallFS's). */
  aliases: readonly string[];
  /** One line for docs and `config validate`. */
  description: string;
  /** What a 5xx answer calls it when it fails ("… is unavailable"). */
  publicName: string;
}

export const BACKEND_KINDS = {
  cas: { addressing: 'content', locality: 'instance', aliases: ['localfs'], description: 'the content-addressed store in loop images on this instance', publicName: 'the local content store' },
  s3: { addressing: 'path', locality: 'shared', aliases: [], description: 'an S3 bucket every instance reaches', publicName: 'the S3 store' },
} as const satisfies Record<string, BackendKind>;

/** The name a backend is recorded under in entries ('cas', 's3'). */
export type BackendType = keyof typeof BACKEND_KINDS;

/** Every backend type, in the table's order. */
export const BACKEND_TYPES = Object.keys(BACKEND_KINDS) as BackendType[];

/** Every accepted name → its backend type (the types themselves and their aliases). */
export const BACKEND_ALIASES: Readonly<Record<string, BackendType>> = Object.fromEntries(
  BACKEND_TYPES.flatMap((type) => [[type, type], ...BACKEND_KINDS[type].aliases.map((alias) => [alias, type])]),
);

/** The backend type a name (or alias) stands for; undefined for an unknown name. */
export function backendTypeOf(name: unknown): BackendType | undefined {
  return typeof name === 'string' && Object.hasOwn(BACKEND_ALIASES, name) ? BACKEND_ALIASES[name] : undefined;
}

/** True when `name` is a backend type (not an alias). */
export function isBackendType(name: unknown): name is BackendType {
  return typeof name === 'string' && Object.hasOwn(BACKEND_KINDS, name);
}

export function capabilitiesOf(type: BackendType): BackendCapabilities {
  const { addressing, locality } = BACKEND_KINDS[type];
  return { addressing, locality };
}

/** Bytes named by their hash: immutable, deduplicated, written before the path lock. */
export const isContentAddressed = (type: BackendType): boolean => BACKEND_KINDS[type].addressing === 'content';

/** Bytes on the instance that stored them: elsewhere they are read through that instance. */
export const isInstanceLocal = (type: BackendType): boolean => BACKEND_KINDS[type].locality === 'instance';

/** "cas, localfs or s3": the accepted names, for messages. */
export function acceptedBackendNames(): string {
  const names = Object.keys(BACKEND_ALIASES);
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}
