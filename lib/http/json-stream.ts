import { Readable } from 'node:stream';

/**
 * Stream a JSON document whose `items` array comes from an async iterable, a
 * bounded batch of items per chunk, so a listing of millions of entries is
 * never built whole in memory. `head` fields come first; `tail(count)` fields
 * after the array (they may depend on what was streamed). With `bare`, the
 * document is the array alone.
 */
export function jsonListingStream<T>(options: {
  items: AsyncIterable<T>;
  render: (item: T) => unknown;
  head?: Record<string, unknown>;
  tail?: (count: number, last: T | undefined) => Record<string, unknown>;
  bare?: boolean;
}): Readable {
  const { items, render, head = {}, tail, bare = false } = options;
  async function* chunks(): AsyncGenerator<string> {
    let out = bare ? '[' : `${JSON.stringify(head).slice(0, -1)}${Object.keys(head).length > 0 ? ',' : ''}"items":[`;
    let count = 0;
    let last: T | undefined;
    for await (const item of items) {
      out += (count === 0 ? '' : ',') + JSON.stringify(render(item));
      count++;
      last = item;
      if (out.length >= 64 * 1024) {
        yield out;
        out = '';
      }
    }
    out += ']';
    if (!bare) {
      const extra = tail?.(count, last) ?? {};
      const fields = Object.entries(extra).filter(([, v]) => v !== undefined).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
      out += (fields.length > 0 ? ',' + fields.join(',') : '') + '}';
    }
    yield out;
  }
  return Readable.from(chunks(), { objectMode: false });
}
