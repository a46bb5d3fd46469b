import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/ports.js';

/**
 * Private redis-server processes for the tests that stop and restart Redis
 * (outage, recovery, quorum). Each one runs on its own port and directory and
 * is killed by its pid, never by name.
 */
export interface SpareRedis {
  port: number;
  /** Start (or restart) the server on its port; resolves once it answers. */
  start(): Promise<void>;
  /** Kill the server and wait for it to exit. */
  stop(): Promise<void>;
  /** stop() and remove its directory. */
  dispose(): Promise<void>;
}

/** Null when a redis-server binary can be run, else the reason. */
export function redisServerAvailable(): string | null {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'no redis-server binary to start private Redis servers';
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(300, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function spareRedis(): Promise<SpareRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'callfs-lock-redis-'));
  let child: ChildProcess | undefined;

  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
  };

  return {
    port,
    async start() {
      if (child !== undefined) return;
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
        stdio: 'ignore',
      });
      for (let i = 0; i < 100; i++) {
        if (await answers(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      await stop();
      throw new Error(`redis-server did not come up on port ${port}`);
    },
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
