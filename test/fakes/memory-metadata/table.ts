const GONE: unique symbol = Symbol('deleted row');

/**
 * A keyed table whose writes can be layered: a layer sees the rows below it
 * plus its own changes, and either commits them into the layer below or is
 * dropped. The in-memory metadata store keeps its committed rows in a base
 * table, a transaction in a layer over it, and each operation in a layer
 * over that, so that an operation failing part-way (a mkdir -p whose last
 * insert is refused) leaves nothing of itself behind.
 *
 * Rows are never changed in place: a write stores a new object. A layer can
 * therefore share row objects with the layers below it.
 */
export class Table<V> {
  private readonly rows = new Map<string, V | typeof GONE>();

  private constructor(private readonly below: Table<V> | null) {}

  /** A table with no layer below: what it holds is committed. */
  static base<V>(): Table<V> {
    return new Table<V>(null);
  }

  /** A layer over this table, seeing its rows until it commits its own. */
  layer(): Table<V> {
    return new Table<V>(this);
  }

  get(key: string): V | undefined {
    const row = this.rows.get(key);
    if (row === GONE) return undefined;
    return row ?? this.below?.get(key);
  }

  set(key: string, value: V): void {
    this.rows.set(key, value);
  }

  delete(key: string): void {
    if (this.below === null) this.rows.delete(key);
    else this.rows.set(key, GONE);
  }

  /** Every row, in no particular order. */
  *entries(): Generator<[string, V]> {
    if (this.below !== null) {
      for (const [key, value] of this.below.entries()) if (!this.rows.has(key)) yield [key, value];
    }
    for (const [key, value] of this.rows) if (value !== GONE) yield [key, value];
  }

  *values(): Generator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Apply this layer's changes to the table below it. */
  commit(): void {
    if (this.below === null) throw new Error('a base table has nothing to commit into');
    for (const [key, value] of this.rows) {
      if (value === GONE) this.below.delete(key);
      else this.below.set(key, value);
    }
    this.rows.clear();
  }
}

/**
 * Byte order of the UTF-8 encodings, which is Unicode code point order: what
 * Postgres's "C" collation sorts names and paths by. JavaScript's `<`
 * compares UTF-16 code units instead, which puts U+E000–U+FFFF after the
 * astral characters (emoji), unlike the bytes.
 */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Code units ranked so that surrogates (astral code points) sort after every BMP character. */
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
