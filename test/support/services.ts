import { execFileSync, execSync } from 'node:child_process';
import net from 'node:net';

/**
 * Real components for tests: Postgres and Redis on loopback, root + loop devices.
 * Where one is missing the test is skipped with a message saying why, except
 * under CI=true, where a missing component fails the test.
 */

const inCi = process.env.CI === 'true';

function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitForPort(port: number, tries = 40): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await portOpen(port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

let postgresState: Promise<string | null> | undefined;
let redisState: Promise<string | null> | undefined;

/** Start Postgres if it does not answer. Resolves to null when usable, else the reason. */
export function ensurePostgres(): Promise<string | null> {
  postgresState ??= (async () => {
    if (await portOpen(5432)) return null;
    try {
      const version = execSync('ls /etc/postgresql', { encoding: 'utf8' }).trim().split('\n')[0];
      execSync(`pg_ctlcluster --skip-systemctl-redirect ${version} main start`, { stdio: 'ignore' });
    } catch {
      return 'PostgreSQL is not answering on 127.0.0.1:5432 and could not be started';
    }
    return (await waitForPort(5432)) ? null : 'PostgreSQL did not come up on 127.0.0.1:5432';
  })();
  return postgresState;
}

/** Start Redis if it does not answer. Resolves to null when usable, else the reason. */
export function ensureRedis(): Promise<string | null> {
  redisState ??= (async () => {
    if (await portOpen(6379)) return null;
    try {
      execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    } catch {
      return 'Redis is not answering on 127.0.0.1:6379 and could not be started';
    }
    return (await waitForPort(6379)) ? null : 'Redis did not come up on 127.0.0.1:6379';
  })();
  return redisState;
}

/** Null when this process can make loop mounts (root, losetup, mkfs.ext4), else the reason. */
export function loopMountsAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'loop mounts need root';
  try {
    execFileSync('losetup', ['-f'], { stdio: 'ignore' });
    execFileSync('which', ['mkfs.ext4'], { stdio: 'ignore' });
  } catch {
    return 'no free loop device or no mkfs.ext4';
  }
  return null;
}

/**
 * Skip the current suite (or fail it under CI=true) when `reason` is not null.
 * Call from a `before` hook: `requireComponent(this, await ensurePostgres())`.
 */
export function requireComponent(ctx: Mocha.Context, reason: string | null): void {
  if (reason === null) return;
  if (inCi) throw new Error(`required component missing under CI=true: ${reason}`);
  console.warn(`    skipped: ${reason}`);
  ctx.skip();
}

export const POSTGRES_ADMIN_DSN = process.env.CALLFS_TEST_POSTGRES_DSN ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.CALLFS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
