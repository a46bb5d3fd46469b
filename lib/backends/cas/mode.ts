import { access } from 'node:fs/promises';
import { runTool } from './system.js';
import type { CasMode, CasModeSetting } from './types.js';

/** What `mode: auto|loop|dir` becomes on this machine, and why. */
export interface CasModeResolution {
  requested: CasModeSetting;
  mode: CasMode;
  /** Human explanation for logs and `config validate`. */
  reason: string;
  /** Why loop mode cannot work here when it was asked for explicitly; null when usable. */
  problem: string | null;
}

/** Null when this process can make loop mounts, else the reason it cannot. */
export async function loopModeProblem(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'loop mounts need root (CAP_SYS_ADMIN)';
  try {
    await access('/dev/loop-control');
  } catch {
    return 'no /dev/loop-control (loop devices unavailable)';
  }
  try {
    await runTool('losetup', ['-f'], 10_000);
  } catch {
    return 'no free loop device (losetup -f failed)';
  }
  try {
    await runTool('mkfs.ext4', ['-V'], 10_000);
  } catch {
    return 'mkfs.ext4 is not installed';
  }
  try {
    await runTool('mount', ['-V'], 10_000);
  } catch {
    return 'mount is not installed';
  }
  return null;
}

/** Decide the CAS mode; `auto` picks loop when root, loop devices and mkfs.ext4 are available. */
export async function resolveCasMode(requested: CasModeSetting = 'auto'): Promise<CasModeResolution> {
  if (requested === 'dir') return { requested, mode: 'dir', reason: 'configured: plain directories', problem: null };
  const problem = await loopModeProblem();
  if (requested === 'loop') {
    return { requested, mode: 'loop', reason: problem === null ? 'configured: ext4 loop images' : `configured, but ${problem}`, problem };
  }
  if (problem === null) return { requested, mode: 'loop', reason: 'auto: root, loop devices and mkfs.ext4 available, using ext4 loop images', problem: null };
  return { requested, mode: 'dir', reason: `auto: ${problem}, using plain directories`, problem: null };
}
