import { AsyncLocalStorage } from 'node:async_hooks';
import { expect } from 'chai';
import { GroupCommit } from '../../lib/group-commit.js';

describe('GroupCommit', () => {
  it('runs a lone item at once, gathers items submitted meanwhile into the next batch, and answers each with its own result', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const group = new GroupCommit<number, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await first;
      return items.map((i) => `r${i}`);
    }, 3);
    const results = [group.submit(1), group.submit(2), group.submit(3), group.submit(4), group.submit(5), group.submit(6)];
    expect(batches).to.deep.equal([[1]]);
    release();
    expect(await Promise.all(results)).to.deep.equal(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    // At most three per batch; the batches after the first ran one after the other.
    expect(batches).to.deep.equal([[1], [2, 3, 4], [5, 6]]);
  });

  it('rejects the items of a failed batch only, and keeps going', async () => {
    let calls = 0;
    const group = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (items.includes(13)) throw new Error('unlucky batch');
      return items.map((i) => i * 2);
    });
    const bad = group.submit(13);
    const good = [group.submit(1), group.submit(2)];
    const threw = (async () => {
      try {
        await bad;
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    })();
    expect(await threw).to.equal('unlucky batch');
    expect(await Promise.all(good)).to.deep.equal([2, 4]);
    expect(calls).to.equal(2);
    // A result count that does not match is an error for the whole batch, not a silent undefined.
    const short = new GroupCommit<number, number>(async () => []);
    let message = '';
    await short.submit(1).catch((err: Error) => (message = err.message));
    expect(message).to.include('0 results for 1 items');
  });

  it('runs every batch in the context the group was made in, not in that of the caller that started it', async () => {
    const als = new AsyncLocalStorage<string>();
    const seen: Array<string | undefined> = [];
    const group = new GroupCommit<number, number>(async (items) => {
      seen.push(als.getStore());
      await new Promise((r) => setTimeout(r, 5));
      return items;
    });
    // A request (or a transaction) starts the first batch; the next one is started by the first's end.
    const first = als.run('request-1', () => group.submit(1));
    const second = als.run('request-2', () => group.submit(2));
    await Promise.all([first, second]);
    expect(seen).to.deep.equal([undefined, undefined]);
  });
});
