import { ConfigError, loadConfigLeniently, type LoadConfigOptions } from './load.js';
import { deriveSettings, type Settings } from './settings.js';
import { checkConfig, withGeneratedSecrets } from './validate.js';
import { ensureGeneratedSecrets, readGeneratedSecrets } from './embedded.js';

export { ConfigError } from './load.js';
export type { Config } from './schema.js';
export type { Settings } from './settings.js';

export interface PrepareConfigOptions extends LoadConfigOptions {
  /** Generate the embedded default's secrets when missing (the server does; `config validate` does not). */
  createMissing?: boolean;
}

export interface PreparedConfig {
  settings: Settings;
  file: string | null;
  warnings: string[];
  /** The API key generated on this very start (print it once), else null. */
  generatedApiKey: string | null;
  /** True when the effective API key and secrets come from <data_dir>/secrets.json. */
  usesGeneratedSecrets: boolean;
}

/**
 * Load, validate and complete the configuration. Throws ConfigError listing
 * every problem found.
 */
export function prepareConfig(options: PrepareConfigOptions = {}): PreparedConfig {
  const loaded = loadConfigLeniently(options);
  let settings = deriveSettings(loaded.config, options.cwd, loaded.explicitKeys);
  const problems = [...loaded.problems];
  let warnings: string[] = [];
  try {
    const checked = checkConfig(settings);
    problems.push(...checked.problems.filter((p) => !problems.some((q) => q.split(':')[0] === p.split(':')[0])));
    warnings = checked.warnings;
  } catch (err) {
    // Values of the wrong type can trip a semantic check; the type problem is already listed.
    if (problems.length === 0) throw err;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  let generatedApiKey: string | null = null;
  let usesGeneratedSecrets = false;
  if (settings.metadataType === 'embedded') {
    let secrets;
    try {
      if (options.createMissing === true) {
        const ensured = ensureGeneratedSecrets(settings.dataDir);
        secrets = ensured.secrets;
        if (ensured.created) generatedApiKey = secrets.api_key;
      } else {
        secrets = readGeneratedSecrets(settings.dataDir);
      }
    } catch (err) {
      throw new ConfigError([`server.data_dir: ${(err as Error).message}`]);
    }
    if (secrets !== null) {
      const completed = withGeneratedSecrets(settings.config, secrets);
      usesGeneratedSecrets = completed.auth !== settings.config.auth;
      settings = { ...settings, config: completed };
      if (generatedApiKey !== null && completed.auth.users.admin?.api_key !== generatedApiKey) generatedApiKey = null;
    }
  }
  return { settings, file: loaded.file, warnings, generatedApiKey, usesGeneratedSecrets };
}
