import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Tools } from './install.js';
import { runCommand } from './processes.js';

/** What BENCH.md §6.4 asks to record with every run. */
export interface Environment {
  cpuModel: string;
  cores: number;
  /** sha_ni, vaes, aes, avx2, avx512f as present. */
  cpuFlags: string[];
  memoryGiB: number;
  kernel: string;
  node: string;
  /** OpenSSL linked into Node, and the system's (used by nginx and wrk). */
  nodeOpenssl: string;
  systemOpenssl: string;
  nginx: string;
  wrk: string;
  postgres: string;
  ktls: string;
  /** fdatasync of one 8 kB write on the temp directory's disk, from pg_test_fsync. */
  fsync: string;
  pageCache: string;
  /** Protocol and cipher each target negotiated with the suite's clients. */
  negotiated: Record<string, string>;
  /** /proc/loadavg at the start and the end: other work on the box distorts every figure. */
  load: { start: string; end: string };
}

/** The 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

const WANTED_FLAGS = ['sha_ni', 'vaes', 'aes', 'avx2', 'avx512f'];

function cpuInfo(): { model: string; flags: string[] } {
  const text = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  return { model, flags: WANTED_FLAGS.filter((f) => flags.has(f)) };
}

/** kTLS: whether the kernel module is loaded and, if so, its counters (no nginx here enables it). */
function ktlsState(): string {
  const loaded = existsSync('/proc/modules') && /^tls\s/m.test(readFileSync('/proc/modules', 'utf8'));
  const stat = '/proc/net/tls_stat';
  if (!existsSync(stat)) return `off (tls module ${loaded ? 'loaded' : 'not loaded'}, no /proc/net/tls_stat; nginx not configured for it)`;
  const counters = readFileSync(stat, 'utf8')
    .split('\n')
    .filter((l) => /^Tls(Curr|Tx|Rx)(Sw|Device)/.test(l))
    .map((l) => l.replace(/\s+/g, '='))
    .join(' ');
  return `off in nginx (no ssl_conf_command Options KTLS); kernel: ${counters}`;
}

/**
 * pg_test_fsync -s 1, stopped after the first comparison's fdatasync line
 * (the whole tool takes ~15 s): the latency of a small durable write here.
 */
async function fsyncLatency(pgTestFsync: string | null, dir: string): Promise<string> {
  if (pgTestFsync === null) return 'unknown (pg_test_fsync not found)';
  return new Promise((resolve) => {
    const child = spawn(pgTestFsync, ['-s', '1', '-f', join(dir, 'pg_test_fsync.out')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let found = 'unknown';
    const timer = setTimeout(() => child.kill('SIGTERM'), 20_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^\s*fdatasync\s+([\d.]+) ops\/sec\s+(\d+) usecs\/op/.exec(line);
      if (m !== null && found === 'unknown') {
        found = `fdatasync ${(Number(m[2]) / 1000).toFixed(2)} ms/op (${Math.round(Number(m[1]))}/s, pg_test_fsync one 8 kB write)`;
        child.kill('SIGTERM');
      }
    });
    child.on('error', () => resolve('unknown (pg_test_fsync failed)'));
    child.on('close', () => {
      clearTimeout(timer);
      resolve(found);
    });
  });
}

const firstLine = (s: string): string => s.trim().split('\n')[0] ?? '';

export async function describeEnvironment(tools: Tools, tmpDir: string, postgresVersion: string): Promise<Environment> {
  const cpu = cpuInfo();
  const nginxV = await runCommand(tools.nginx, ['-v']);
  const wrkV = await runCommand(tools.wrk, ['-v']);
  const openssl = await runCommand('openssl', ['version']);
  return {
    cpuModel: cpu.model,
    cores: os.cpus().length,
    cpuFlags: cpu.flags,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'unknown',
    systemOpenssl: firstLine(openssl.stdout) || 'unknown',
    nginx: firstLine(nginxV.stderr).replace(/^nginx version: /, ''),
    wrk: firstLine(wrkV.stdout || wrkV.stderr).replace(/ Copyright.*$/, ''),
    postgres: postgresVersion,
    ktls: ktlsState(),
    fsync: await fsyncLatency(tools.pgTestFsync, tmpDir),
    pageCache: `every file is hot in the page cache (${Math.round(os.totalmem() / 2 ** 30)} GiB RAM): the suite measures the servers, not the disk`,
    negotiated: {},
    load: { start: loadAverage(), end: '' },
  };
}

/** The one-line form printed under the table. */
export function environmentLine(env: Environment): string {
  const ciphers = new Set(Object.values(env.negotiated));
  const tls =
    ciphers.size === 1
      ? `${[...ciphers][0] ?? ''} for every target`
      : `MISMATCH ${Object.entries(env.negotiated)
          .map(([t, c]) => `${t} ${c}`)
          .join(', ')}`;
  return [
    `CPU ${env.cpuModel} × ${env.cores} (${env.cpuFlags.join(' ') || 'no sha_ni/vaes'})`,
    `${env.memoryGiB} GiB RAM, Linux ${env.kernel}`,
    `Node ${env.node} (OpenSSL ${env.nodeOpenssl})`,
    env.systemOpenssl,
    `nginx ${env.nginx}`,
    env.wrk,
    `PostgreSQL ${env.postgres}`,
    `kTLS ${env.ktls}`,
    `TLS: ${tls}`,
    `fsync: ${env.fsync}`,
    `page cache: ${env.pageCache}`,
    `load average ${env.load.start} at the start, ${env.load.end} at the end`,
  ].join('; ');
}
