/**
 * Page-aligned staging blocks for O_DIRECT writes (see TempFile).
 *
 * O_DIRECT needs the memory, the file offset and the length aligned to the
 * device's block size. A Node Buffer comes from malloc and is only 16-byte
 * aligned; a WebAssembly.Memory is mapped by V8 on page boundaries. So the
 * blocks are carved out of one memory of `maxBytes`, made at the first
 * take(). Its pages become resident only when a block is first used (one per
 * concurrent large upload), and are then reused by every later upload instead
 * of the kernel handing out new ones. V8 reserves ~10 GiB of address space
 * (not memory) for any WebAssembly memory; where that is refused (ulimit -v,
 * --jitless), every upload is written through the page cache.
 */
export const DIRECT_ALIGN = 4096;

const WASM_PAGE = 64 * 1024;

/** The one part of WebAssembly used here (TypeScript's node types do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
type WasmMemoryConstructor = new (descriptor: { initial: number; maximum: number }) => WasmMemory;
const WasmMemoryClass = (globalThis as { WebAssembly?: { Memory?: WasmMemoryConstructor } }).WebAssembly?.Memory;

export class DirectBlocks {
  private readonly idle: Buffer[] = [];
  private readonly count: number;
  /** The memory the blocks are in; undefined until the first take(), null when it cannot be made. */
  private memory: Buffer | null | undefined;

  /** At most `maxBytes` of blocks of `blockBytes` (a multiple of 64 KiB) each. */
  constructor(
    readonly blockBytes: number,
    maxBytes: number,
  ) {
    if (blockBytes <= 0 || blockBytes % WASM_PAGE !== 0) throw new Error('direct blocks: the block size must be a multiple of 64 KiB');
    this.count = Math.floor(maxBytes / blockBytes);
    if (this.count === 0 || WasmMemoryClass === undefined) this.memory = null;
  }

  /** A free block, or null when every one is taken (write through the page cache then). */
  take(): Buffer | null {
    if (this.memory === undefined) this.memory = this.allocate();
    return this.idle.pop() ?? null;
  }

  /** Give a block back once no write uses it any more. */
  give(block: Buffer): void {
    if (!this.idle.includes(block)) this.idle.push(block);
  }

  private allocate(): Buffer | null {
    let memory: WasmMemory;
    try {
      const pages = (this.count * this.blockBytes) / WASM_PAGE;
      memory = new (WasmMemoryClass as WasmMemoryConstructor)({ initial: pages, maximum: pages });
    } catch {
      return null;
    }
    const all = Buffer.from(memory.buffer);
    // The last pushed is taken first: the same few blocks serve while uploads are few.
    for (let i = this.count - 1; i >= 0; i--) this.idle.push(all.subarray(i * this.blockBytes, (i + 1) * this.blockBytes));
    return all;
  }
}
