import { expect } from 'chai';
import { parseEntityTags, parseHttpDate } from '../../../lib/http/preconditions.js';

const strong = (opaque: string) => ({ weak: false, opaque });
const weak = (opaque: string) => ({ weak: true, opaque });

describe('parseEntityTags', () => {
  it('reads a strong and a weak entity-tag', () => {
    expect(parseEntityTags('"abc"')).to.deep.equal([strong('abc')]);
    expect(parseEntityTags('W/"abc"')).to.deep.equal([weak('abc')]);
    expect(parseEntityTags('""')).to.deep.equal([strong('')]);
  });

  it('reads a list, with or without spaces and tabs around the commas', () => {
    expect(parseEntityTags('"a",W/"b","c"')).to.deep.equal([strong('a'), weak('b'), strong('c')]);
    expect(parseEntityTags('  "a" ,\tW/"b" ,  "c"  ')).to.deep.equal([strong('a'), weak('b'), strong('c')]);
    expect(parseEntityTags('"a", , "b",')).to.deep.equal([strong('a'), strong('b')]);
  });

  it('keeps a comma that is inside a tag', () => {
    expect(parseEntityTags('"a,b", "c"')).to.deep.equal([strong('a,b'), strong('c')]);
  });

  it('reads * as any, alone and with spaces around it', () => {
    expect(parseEntityTags('*')).to.equal('*');
    expect(parseEntityTags(' * ')).to.equal('*');
  });

  it('drops members that are not entity-tags, so they match nothing', () => {
    expect(parseEntityTags('abc')).to.deep.equal([]);
    expect(parseEntityTags('abc, "d"')).to.deep.equal([strong('d')]);
    expect(parseEntityTags('w/"a"')).to.deep.equal([]);
    expect(parseEntityTags('"a"b, "c"')).to.deep.equal([strong('c')]);
    expect(parseEntityTags('"a" "b"')).to.deep.equal([]);
    expect(parseEntityTags('"unterminated')).to.deep.equal([]);
    expect(parseEntityTags('"in"side"')).to.deep.equal([]);
    expect(parseEntityTags('*, "a"')).to.deep.equal([strong('a')]);
  });

  it('reads an empty or blank value as an empty list', () => {
    expect(parseEntityTags('')).to.deep.equal([]);
    expect(parseEntityTags('   ')).to.deep.equal([]);
    expect(parseEntityTags(',')).to.deep.equal([]);
  });
});

describe('parseHttpDate', () => {
  it('reads an IMF-fixdate, and nothing from a value that is not a date', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')?.toISOString()).to.equal('1994-11-06T08:49:37.000Z');
    expect(parseHttpDate('yesterday')).to.equal(undefined);
    expect(parseHttpDate('')).to.equal(undefined);
  });
});
