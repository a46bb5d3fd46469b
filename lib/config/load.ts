import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { createSchema, type Config } from './schema.js';

/** A configuration that cannot be loaded; `problems` has one line per problem, each naming its key. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Explicit file (--config/-c). */
  file?: string;
  /** Where config.yaml|yml|json is looked for (default: process.cwd()). */
  cwd?: string;
  /** Environment (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: Config;
  /** Type and unknown-key problems (empty when the file and environment fit the schema). */
  problems: string[];
  /** The file that was read, if any. */
  file: string | null;
  /** Keys whose values came from the file or the environment (not defaults). */
  explicitKeys: Set<string>;
}

const DEFAULT_FILES = ['config.yaml', 'config.yml', 'config.json'];

/** Locate the config file: the explicit one, else the first default name in cwd. */
export function findConfigFile(options: LoadConfigOptions): string | null {
  if (options.file !== undefined) {
    const file = resolve(options.cwd ?? process.cwd(), options.file);
    if (!existsSync(file)) throw new ConfigError([`config file ${options.file}: no such file`]);
    return file;
  }
  for (const name of DEFAULT_FILES) {
    const file = resolve(options.cwd ?? process.cwd(), name);
    if (existsSync(file)) return file;
  }
  return null;
}

/** Parse a YAML or JSON file into a plain object, or throw a ConfigError with one clear line. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let data: unknown;
  try {
    data = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
      throw new ConfigError([`config file ${file}: malformed YAML${where}: ${err.message.split('\n')[0]}`]);
    }
    throw new ConfigError([`config file ${file}: malformed JSON: ${(err as Error).message}`]);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError([`config file ${file}: the top level must be a mapping of sections (server, auth, …)`]);
  return data as Record<string, unknown>;
}

const LEGACY_METADATA_TYPES: Record<string, string> = {
  sqlite: "'sqlite' is not supported by this CallFS; use 'embedded' (embedded Postgres, no server needed) or 'postgres' with metadata_store.dsn",
  redis: "'redis' is not supported as a metadata store; use 'postgres' with metadata_store.dsn, or 'embedded'",
  raft: "'raft' is not supported; run several instances on one 'postgres' metadata store (metadata_store.dsn) instead",
};

function collectKeys(value: unknown, prefix: string, out: Set<string>): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    out.add(prefix);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    out.add(key);
    collectKeys(v, key, out);
  }
}

/**
 * Load defaults, then the file, then CALLFS_* variables (env beats file beats
 * defaults), and validate types and unknown keys. Semantic checks (keys,
 * secrets, peers, TLS files) are in validate.ts. Throws ConfigError with every
 * problem found.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const loaded = loadConfigLeniently(options);
  if (loaded.problems.length > 0) throw new ConfigError(loaded.problems);
  return loaded;
}

/**
 * As loadConfig, but type and unknown-key problems are returned rather than
 * thrown, so that the semantic checks can still run and every problem is
 * reported at once. Only an unreadable or malformed file throws.
 */
export function loadConfigLeniently(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = findConfigFile(options);
  const data = file === null ? {} : readConfigFile(file);
  const schema = createSchema(env);
  const problems: string[] = [];
  try {
    // convict re-applies env on top of whatever is loaded: env beats file beats defaults.
    schema.load(data as Partial<Config>);
  } catch (err) {
    problems.push(...String((err as Error).message).split('\n'));
  }
  const explicitKeys = new Set<string>();
  collectKeys(data, '', explicitKeys);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('CALLFS_') || value === undefined) continue;
    for (const key of envKeys(schema)) if (key.env === name) explicitKeys.add(key.path);
  }
  const type = schema.get('metadata_store.type');
  if (typeof type === 'string' && type in LEGACY_METADATA_TYPES) problems.push(`metadata_store.type: ${LEGACY_METADATA_TYPES[type]}`);
  try {
    schema.validate({ allowed: 'strict' });
  } catch (err) {
    problems.push(...String((err as Error).message).split('\n').filter((l) => l.trim() !== ''));
  }
  return { config: schema.getProperties(), problems: problems.map(tidyConvictMessage), file, explicitKeys };
}

/** Every schema leaf that has an env variable. */
export function envKeys(schema = createSchema()): { path: string; env: string }[] {
  const out: { path: string; env: string }[] = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(node)) {
      const path = prefix === '' ? k : `${prefix}.${k}`;
      const spec = v as Record<string, unknown>;
      if (spec !== null && typeof spec === 'object' && '_cvtProperties' in spec) walk(spec._cvtProperties as Record<string, unknown>, path);
      else if (typeof spec.env === 'string') out.push({ path, env: spec.env });
    }
  };
  walk((schema.getSchema() as unknown as { _cvtProperties: Record<string, unknown> })._cvtProperties, '');
  return out;
}

function tidyConvictMessage(line: string): string {
  const unknown = /configuration param '([^']+)' not declared in the schema/.exec(line);
  if (unknown !== null) return `${unknown[1]}: unknown key (not part of the configuration schema)`;
  return line.replace(/^\s+/, '');
}
