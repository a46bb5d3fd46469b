import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * Child processes of the suite: short commands whose output is captured, and
 * long-running servers started pinned to the server core. Servers get their
 * own process group (detached) so that a Ctrl-C in the terminal reaches only
 * the harness, which then stops them in order — a CallFS server receiving
 * the terminal's SIGINT and then the harness's SIGTERM would take the second
 * signal as "exit now" and skip unmounting its images.
 */

/** The core the server stack runs on, and the core of the load generators. */
export const SERVER_CPU = '1';
export const LOAD_CPU = '0';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Killed (SIGTERM) when aborted. */
  signal?: AbortSignal;
  input?: string;
}

/** Run a command to completion, capturing its output. Never throws for a non-zero exit: look at `code`. */
export function runCommand(file: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        env: options.env ?? process.env,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      });
    } catch (err) {
      reject(err);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on('error', (e: NodeJS.ErrnoException) => {
      // An abort is reported through the exit below; a missing binary is a real failure.
      if (e.name !== 'AbortError') reject(e);
    });
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Like runCommand, but a non-zero exit is an error carrying stderr. */
export async function runChecked(file: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
    throw new Error(`${file} ${args.join(' ')} exited with ${result.code ?? result.signal}: ${detail}`);
  }
  return result.stdout;
}

/** A long-running child started by the harness. */
export interface ServerProcess {
  name: string;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  alive(): boolean;
  /** The last lines it printed, for error messages. */
  tail(): string;
  /** The next output line (from now on) that `match` accepts; rejects if the process exits first or after `timeoutMs`. */
  nextLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** Send `signal`, wait up to `graceMs`, then SIGKILL. Resolves once it is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

export interface StartServerOptions {
  name: string;
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Pin to this CPU list with taskset (default: the server core). */
  cpus?: string;
  timeoutMs?: number;
  /** Also write every output line here (truncated at start). */
  logFile?: string;
  /** Called at once with the process, before it is ready: register its cleanup here, so that an interrupt during start-up stops it too. */
  onSpawn?: (proc: ServerProcess) => void;
}

/** Start a server pinned to the server core and wait until it prints its ready line. */
export function startServer<T>(
  options: StartServerOptions & {
    /** Called with every output line; a result other than undefined means "ready" and is returned. */
    ready?: (line: string) => T | undefined;
    /** Polled every 100 ms instead (for servers that print nothing when they are up). */
    probe?: () => Promise<T | undefined>;
  },
): Promise<{ proc: ServerProcess; ready: T }> {
  const child = spawn('taskset', ['-c', options.cpus ?? SERVER_CPU, options.file, ...options.args], {
    env: options.env ?? process.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  const logStream = options.logFile === undefined ? null : createWriteStream(options.logFile);
  const watchers = new Set<(line: string) => void>();
  let exitedWith: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.on('close', (code, signal) => {
      exitedWith = code ?? signal ?? 'unknown';
      logStream?.end(`-- exited: ${exitedWith}\n`);
      resolve(exitedWith);
    });
  });
  const proc: ServerProcess = {
    name: options.name,
    pid: child.pid ?? -1,
    exited,
    alive: () => exitedWith === null,
    tail: () => lines.slice(-15).join('\n'),
    nextLine(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const finish = (err: Error | null, line = ''): void => {
          clearTimeout(timer);
          watchers.delete(watch);
          if (err === null) resolve(line);
          else reject(err);
        };
        const watch = (line: string): void => {
          if (match(line)) finish(null, line);
        };
        const timer = setTimeout(() => finish(new Error(`${options.name}: no expected output within ${timeoutMs} ms`)), timeoutMs);
        watchers.add(watch);
        void exited.then((how) => finish(new Error(`${options.name} exited (${how}):\n${proc.tail()}`)));
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (exitedWith !== null) return exitedWith;
      try {
        process.kill(proc.pid, signal);
      } catch {
        return exited;
      }
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs)));
      const first = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (first !== 'late') return first;
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      return exited;
    },
  };
  options.onSpawn?.(proc);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      // SIGTERM first: a half-started CallFS still unmounts what it mounted.
      const failure = new Error(`${options.name} did not become ready within ${options.timeoutMs ?? 60_000} ms:\n${proc.tail()}`);
      void proc.stop('SIGTERM', 30_000).then(() => reject(failure));
    }, options.timeoutMs ?? 60_000);
    const done = (ready: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ proc, ready });
    };
    const onLine = (line: string): void => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      logStream?.write(line + '\n');
      for (const watch of watchers) watch(line);
      if (settled || options.ready === undefined) return;
      const ready = options.ready(line);
      if (ready !== undefined) done(ready);
    };
    const { probe } = options;
    if (probe !== undefined) {
      const poll = (): void => {
        if (settled) return;
        probe().then(
          (ready) => (ready === undefined ? setTimeout(poll, 100) : done(ready)),
          () => setTimeout(poll, 100),
        );
      };
      setTimeout(poll, 100);
    }
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((how) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${how}) before it was ready:\n${proc.tail()}`));
    });
  });
}

/** Resident set size of one process in bytes, or null when it is gone. */
export function rssOf(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Direct children of a process (all its threads' children). */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  try {
    for (const line of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) {
      if (line !== '') kids.push(Number(line));
    }
  } catch {
    /* gone */
  }
  return kids;
}

/** RSS of a process plus its direct children (nginx master + worker). */
export function treeRss(pid: number): number | null {
  const own = rssOf(pid);
  if (own === null) return null;
  return childrenOf(pid).reduce((sum, kid) => sum + (rssOf(kid) ?? 0), own);
}
