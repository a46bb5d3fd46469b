import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Programs the tests take from Debian packages (litmus, rclone, davfs2), found
 * on the PATH or in the sbin directories, installed with apt-get when missing
 * and the tests run as root (as the bench installs nginx), and a way to run
 * them with their output captured.
 */

export interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunProgramOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (default 5 minutes); the result then has signal SIGKILL. */
  timeoutMs?: number;
  input?: string;
}

/** Run a program to completion with its output captured. Never throws for a non-zero exit: look at `code`. */
export function runProgram(file: string, args: string[], options: RunProgramOptions = {}): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Like runProgram, but a non-zero exit is an error carrying the command and the end of its output. */
export async function runChecked(file: string, args: string[], options: RunProgramOptions = {}): Promise<ProgramResult> {
  const result = await runProgram(file, args, options);
  if (result.code !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${file} ${args.join(' ')} exited with ${result.code ?? result.signal}:\n${tail}`);
  }
  return result;
}

/**
 * The full path of a program on the PATH or in the sbin directories (not always on a user's PATH), else null.
 * A path with a slash ("/usr/bin/aws") names that very file: a package's own copy when another is first on the PATH.
 */
export function findProgram(binary: string): string | null {
  if (binary.includes('/')) {
    try {
      accessSync(binary, constants.X_OK);
      return binary;
    } catch {
      return null;
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, binary);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

const tail = (r: ProgramResult): string => (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ');
const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };

let updated: Promise<ProgramResult> | undefined;
const installs = new Map<string, Promise<string | null>>();

async function aptInstall(pkg: string): Promise<string | null> {
  const args = ['install', '-y', '--no-install-recommends', pkg];
  let result = await runProgram('apt-get', args, { env: APT_ENV, timeoutMs: 600_000 });
  if (result.code !== 0) {
    // A fresh machine's package lists may be missing or stale: refresh them once per run, then retry.
    updated ??= runProgram('apt-get', ['update'], { env: APT_ENV, timeoutMs: 600_000 });
    const update = await updated;
    if (update.code !== 0) return `apt-get update failed: ${tail(update)}`;
    result = await runProgram('apt-get', args, { env: APT_ENV, timeoutMs: 600_000 });
  }
  return result.code === 0 ? null : `apt-get install ${pkg} failed: ${tail(result)}`;
}

/**
 * Make `binary` usable, installing the Debian package `pkg` when it is missing
 * and this process is root. Resolves to null when usable, else the reason (for
 * requireComponent: a skip with that message, a failure under CI=true).
 */
export function ensureDebianPackage(binary: string, pkg: string): Promise<string | null> {
  let state = installs.get(binary);
  if (state === undefined) {
    state = (async () => {
      if (findProgram(binary) !== null) return null;
      if (process.getuid?.() !== 0) return `${binary} is missing and installing the Debian package ${pkg} needs root`;
      if (findProgram('apt-get') === null) return `${binary} is missing and there is no apt-get to install ${pkg} with`;
      let failure: string | null;
      try {
        failure = await aptInstall(pkg);
      } catch (err) {
        failure = `apt-get could not run: ${(err as Error).message}`;
      }
      if (failure !== null) return `${binary} is missing: ${failure}`;
      return findProgram(binary) === null ? `${binary} is still missing after apt-get install ${pkg}` : null;
    })();
    installs.set(binary, state);
  }
  return state;
}
