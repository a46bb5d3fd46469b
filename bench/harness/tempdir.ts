import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './processes.js';

/**
 * The suite's temp directory. Removing it is refused while anything is
 * mounted below it: CallFS unmounts its images on SIGTERM, but a CallFS that
 * had to be killed leaves them, and those (made by the server this harness
 * started, inside this directory) are unmounted and their loop devices
 * detached here. Nothing outside the directory is touched.
 */
export function createTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'callfs-bench-'));
}

function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => m !== undefined && m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

function loopsBackedUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const found: string[] = [];
  for (const name of readdirSync('/sys/block').filter((n) => n.startsWith('loop'))) {
    try {
      const backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
      if (backing.startsWith(prefix)) found.push(`/dev/${name}`);
    } catch {
      /* not attached */
    }
  }
  return found;
}

export async function removeTempDir(dir: string, log: (line: string) => void): Promise<void> {
  for (const mount of mountsUnder(dir)) {
    log(`unmounting ${mount}, left by a CallFS that did not shut down cleanly`);
    await runCommand('umount', [mount]);
  }
  for (const device of loopsBackedUnder(dir)) await runCommand('losetup', ['-d', device]);
  const left = mountsUnder(dir);
  if (left.length > 0) {
    log(`NOT removing ${dir}: still mounted below it: ${left.join(', ')}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}
