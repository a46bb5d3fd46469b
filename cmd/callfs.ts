#!/usr/bin/env node
import { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { prepareConfig, ConfigError, type PreparedConfig } from '../lib/config/index.js';
import { redactConfig } from '../lib/config/validate.js';
import { tlsFiles } from '../lib/config/embedded.js';
import { createLogger } from '../lib/log/index.js';
import { isCallfsError } from '../lib/errors.js';
import { startCallfs, UI_ROOT, type RunningCallfs } from './compose.js';
import { webUi } from '../lib/http/web-ui.js';
import { casCommand } from './cas-admin.js';
import { migrateDatabase } from '../lib/metadata/index.js';
import { resolveCasMode } from '../lib/backends/cas/index.js';
import { metadataDir } from './stores.js';
import { clusterActivate, clusterDrain, clusterForget, clusterRebalance, clusterStatus } from './cluster-admin.js';
import { parseDuration } from '../lib/config/formats.js';

/** Print one clear line per problem and exit non-zero; never a stack trace for a user's mistake. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    for (const problem of err.problems) process.stderr.write(`callfs: ${problem}\n`);
  } else if (isCallfsError(err)) {
    process.stderr.write(`callfs: ${err.message}\n`);
  } else {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`callfs: ${e?.code !== undefined ? `${e.code}: ` : ''}${e?.message ?? String(err)}\n`);
  }
  process.exit(1);
}

function load(opts: { config?: string }, createMissing: boolean): PreparedConfig {
  return prepareConfig(opts.config === undefined ? { createMissing } : { file: opts.config, createMissing });
}

async function serverCommand(opts: { config?: string }): Promise<void> {
  const prepared = load(opts, true);
  const { settings } = prepared;
  const logger = createLogger({ level: settings.config.log.level, format: settings.config.log.format });
  for (const warning of prepared.warnings) logger.warn(warning);
  // Signals are handled from the start: one that arrives while the stores open and
  // the images mount waits for start-up to finish, then shuts down cleanly (unmounting).
  let running: RunningCallfs | null = null;
  let stopping: string | null = null;
  const shutDown = (server: RunningCallfs, signal: string): void => {
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string): void => {
    if (stopping !== null) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = signal;
    if (running !== null) shutDown(running, signal);
    else logger.info({ signal }, 'stopping once start-up has finished');
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const started = await startCallfs({ settings, logger });
  running = started;
  if (stopping !== null) {
    shutDown(started, stopping);
    return;
  }
  if (prepared.generatedApiKey !== null) {
    const tls = tlsFiles(settings);
    process.stdout.write(
      [
        '',
        'CallFS generated an API key for user "admin" (uid 0) on this first start.',
        `It is shown only now (it is kept, mode 0600, in ${settings.dataDir}/secrets.json):`,
        '',
        `    ${prepared.generatedApiKey}`,
        '',
        'Try it:',
        `    curl --cacert ${tls.certFile} -H "Authorization: Bearer ${prepared.generatedApiKey}" ${started.url.replace('127.0.0.1', 'localhost')}/v1/directories/`,
        ...(settings.config.ui.enabled ? ['', 'Or open the web file manager and paste the key there:', `    ${started.url.replace('127.0.0.1', 'localhost')}/ui/`] : []),
        '',
      ].join('\n') + '\n',
    );
  }
  logger.info({ url: started.url, metrics_port: started.metricsPort, metadata: settings.metadataType, locks: settings.dlmType, instance_id: settings.config.instance_discovery.instance_id, ...(settings.config.ui.enabled ? { web_ui: `${started.url}/ui/` } : {}) }, 'CallFS is listening');
}

async function validateCommand(opts: { config?: string }): Promise<void> {
  const prepared = load(opts, false);
  const { settings } = prepared;
  process.stdout.write('Configuration is valid\n');
  for (const warning of prepared.warnings) process.stdout.write(`warning: ${warning}\n`);
  const tls = settings.config.server.protocol === 'https' ? tlsFiles(settings) : null;
  const effective = {
    source: prepared.file ?? '(no config file: defaults and CALLFS_* environment variables)',
    metadata_store: settings.metadataType,
    locks: settings.dlmType,
    default_backend: settings.defaultBackend,
    data_dir: settings.dataDir,
    cas_root: settings.casRoot,
    cas_mode: await casModeLine(settings.config.backend.cas.mode),
    tls: tls === null ? 'off (server.protocol: http)' : tls.generated ? `self-signed, generated under ${settings.dataDir}/tls on first start` : tls.certFile,
    secrets: settings.metadataType === 'embedded' && (prepared.usesGeneratedSecrets || settings.config.auth.internal_proxy_secret === '')
      ? `generated on first start into ${settings.dataDir}/secrets.json`
      : 'from configuration',
    web_ui: !settings.config.ui.enabled ? 'off (ui.enabled is false)' : webUi({ root: UI_ROOT }).built ? `served at ${settings.externalUrl}/ui/` : `on, but not built: /ui/ answers 404 until npm run build writes ${UI_ROOT}`,
  };
  process.stdout.write('\nEffective settings:\n' + toYaml(effective, { lineWidth: 0 }) + '\n' + toYaml(redactConfig(settings.config), { lineWidth: 0 }));
}

async function casModeLine(mode: 'auto' | 'loop' | 'dir'): Promise<string> {
  const resolved = await resolveCasMode(mode);
  if (resolved.problem !== null) throw new ConfigError([`backend.cas.mode: loop was asked for, but ${resolved.problem}`]);
  return `${resolved.mode} (${resolved.reason})`;
}

async function migrateCommand(opts: { config?: string }): Promise<void> {
  const { settings } = load(opts, false);
  const target = settings.metadataType === 'postgres' ? { dsn: settings.config.metadata_store.dsn } : { dataDir: metadataDir(settings) };
  const applied = await migrateDatabase(target);
  process.stdout.write(applied.length === 0 ? 'The metadata schema is up to date\n' : `Applied migrations: ${applied.join(', ')}\n`);
}

const program = new Command();
program.name('callfs').description('CallFS: a TLS REST filesystem over Postgres metadata and a loop-image content-addressed store').showHelpAfterError();
program
  .command('server')
  .description('start the CallFS server')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action((opts: { config?: string }) => serverCommand(opts).catch(fail));
program
  .command('migrate')
  .description('apply pending metadata schema migrations (safe to run from several instances at once)')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action((opts: { config?: string }) => migrateCommand(opts).catch(fail));
const cas = program.command('cas').description('the loop-image content-addressed store (through the running server, or directly when none runs)');
for (const [verb, description] of [
  ['images', 'each image: state, size, used, free, inodes, blob count'],
  ['scrub', 're-verify every blob against its SHA-256 now'],
  ['gc', 'collect unreferenced blobs past the grace period now, and return the space to the host'],
] as const) {
  cas
    .command(verb)
    .description(description)
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .action((opts: { config?: string }) =>
      casCommand(load(opts, false).settings, verb)
        .then((text) => void process.stdout.write(text + '\n'))
        .catch(fail),
    );
}
const clusterCmd = program.command('cluster').description('the instances of a cluster, as its shared metadata store records them (same -c config as the servers)');
const print = (text: string): void => void process.stdout.write(text + '\n');
clusterCmd
  .command('status')
  .description('each instance: state, up or down, used and free space, blobs held; under-replicated blobs')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--json', 'print JSON for scripts')
  .action((opts: { config?: string; json?: boolean }) => clusterStatus(load(opts, false).settings, opts.json === true).then(print).catch(fail));
clusterCmd
  .command('forget <id>')
  .description('declare an instance lost (switched off, disk gone): its copies stop counting and the repairer makes new ones')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--force', 'forget it even though it still reports itself')
  .action((id: string, opts: { config?: string; force?: boolean }) => clusterForget(load(opts, false).settings, id, opts.force === true).then(print).catch(fail));
clusterCmd
  .command('drain <id>')
  .description('move every copy off an instance (copy, verify, record, then drop) and follow the progress until it holds nothing that exists nowhere else')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--no-wait', 'only start the drain')
  .option('--timeout <duration>', 'give up waiting after this long (exit 1; the drain goes on)', '0')
  .action((id: string, opts: { config?: string; wait: boolean; timeout: string }) =>
    clusterDrain(load(opts, false).settings, id, { wait: opts.wait, timeoutMs: parseDuration(opts.timeout), write: print }).catch(fail),
  );
clusterCmd
  .command('rebalance')
  .description('even out the space the instances use (copy, verify, record, then drop), following the progress until done')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--no-wait', 'only request it')
  .option('--timeout <duration>', 'give up waiting after this long (exit 1; the rebalance goes on)', '0')
  .action((opts: { config?: string; wait: boolean; timeout: string }) =>
    clusterRebalance(load(opts, false).settings, { wait: opts.wait, timeoutMs: parseDuration(opts.timeout), write: print }).catch(fail),
  );
clusterCmd
  .command('activate <id>')
  .description('undo a drain: the instance takes new copies again')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action((id: string, opts: { config?: string }) => clusterActivate(load(opts, false).settings, id).then(print).catch(fail));
const config = program.command('config').description('configuration tools');
config
  .command('validate')
  .description('validate the configuration and print the effective settings (secrets redacted)')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action((opts: { config?: string }) => validateCommand(opts).catch(fail));

program.parseAsync(process.argv).catch(fail);
