import { existsSync, readdirSync } from 'node:fs';
import { runCommand } from './processes.js';

/**
 * The external tools of the suite, installed from Debian when missing:
 * nginx (its Debian build includes the WebDAV module), wrk, and pgbench
 * (shipped with the PostgreSQL server packages; postgresql-contrib otherwise).
 */
export interface Tools {
  nginx: string;
  wrk: string;
  pgbench: string;
  /** pg_test_fsync, when the PostgreSQL server binaries are there. */
  pgTestFsync: string | null;
  redisBenchmark: string | null;
}

async function which(name: string): Promise<string | null> {
  const found = await runCommand('sh', ['-c', `command -v ${name}`]);
  const path = found.stdout.trim();
  return found.code === 0 && path !== '' ? path : null;
}

/** A binary of the newest installed PostgreSQL major version, e.g. pgbench. */
function postgresBinary(name: string): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const path = `${root}/${v}/bin/${name}`;
    if (existsSync(path)) return path;
  }
  return null;
}

async function aptInstall(packages: string[], log: (line: string) => void): Promise<void> {
  // RUNLEVEL=1 and the usual container policy keep the packages from starting their services.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
  log(`installing ${packages.join(', ')} (apt-get install -y)`);
  let result = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: 300_000 });
  if (result.code !== 0) {
    log('apt-get install failed; running apt-get update once and retrying');
    const update = await runCommand('apt-get', ['update'], { env, timeoutMs: 300_000 });
    if (update.code !== 0) throw new Error(`apt-get update failed: ${update.stderr.trim().split('\n').slice(-3).join(' ')}`);
    result = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: 300_000 });
  }
  if (result.code !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed: ${result.stderr.trim().split('\n').slice(-3).join(' ')}`);
}

/** Find the tools, installing the missing ones; fails with a clear message when that is impossible. */
export async function ensureTools(log: (line: string) => void): Promise<Tools> {
  const missing: string[] = [];
  if ((await which('nginx')) === null) missing.push('nginx');
  if ((await which('wrk')) === null) missing.push('wrk');
  if ((await which('pgbench')) === null && postgresBinary('pgbench') === null) missing.push('postgresql-contrib');
  if (missing.length > 0) await aptInstall(missing, log);

  const nginx = await which('nginx');
  const wrk = await which('wrk');
  const pgbench = (await which('pgbench')) ?? postgresBinary('pgbench');
  if (nginx === null || wrk === null || pgbench === null) throw new Error('nginx, wrk or pgbench is still missing after apt-get install');
  const v = await runCommand(nginx, ['-V']);
  if (!v.stderr.includes('--with-http_dav_module')) throw new Error(`${nginx} was built without --with-http_dav_module; the WebDAV baseline needs it`);
  return { nginx, wrk, pgbench, pgTestFsync: postgresBinary('pg_test_fsync'), redisBenchmark: await which('redis-benchmark') };
}
