import { expect } from 'chai';
import { attachmentDisposition, parseRange, type RangeRequest } from '../../../lib/http/representation.js';

const range = (start: number, end: number): RangeRequest => ({ kind: 'range', range: { start, end } });
const WHOLE: RangeRequest = { kind: 'none' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };

describe('parseRange', () => {
  const cases: [string | undefined, number, RangeRequest][] = [
    [undefined, 20, WHOLE],
    ['', 20, WHOLE],
    ['bytes=0-0', 20, range(0, 0)],
    ['bytes=5-9', 20, range(5, 9)],
    ['bytes=19-', 20, range(19, 19)],
    ['bytes=18-100', 20, range(18, 19)],
    ['bytes=0-19', 20, range(0, 19)],
    ['bytes=-3', 20, range(17, 19)],
    ['bytes=-20', 20, range(0, 19)],
    ['Bytes=2-3', 20, range(2, 3)],
    // A suffix longer than the file means all of it (RFC 9110 §14.1.3).
    ['bytes=-50', 20, range(0, 19)],
    ['bytes=-1', 1, range(0, 0)],
    // The first byte past the end, or a zero suffix: nothing to send.
    ['bytes=20-', 20, UNSATISFIABLE],
    ['bytes=20-25', 20, UNSATISFIABLE],
    ['bytes=-0', 20, UNSATISFIABLE],
    // An empty file has no first byte; a non-zero suffix is satisfiable, but only by the (empty) whole.
    ['bytes=0-', 0, UNSATISFIABLE],
    ['bytes=0-0', 0, UNSATISFIABLE],
    ['bytes=-1', 0, WHOLE],
    // Invalid (last before first), several ranges, another unit, bad syntax: the whole file.
    ['bytes=9-3', 20, WHOLE],
    ['bytes=30-25', 20, WHOLE],
    ['bytes=0-1,4-5', 20, WHOLE],
    ['bytes=0-1,50-60', 20, WHOLE],
    ['bytes=50-60,70-80', 20, WHOLE],
    ['bytes=0-1,', 20, WHOLE],
    ['lines=1-2', 20, WHOLE],
    ['lines=30-', 20, WHOLE],
    ['bytes=', 20, WHOLE],
    ['bytes=-', 20, WHOLE],
    ['bytes=abc', 20, WHOLE],
    ['bytes=1-2x', 20, WHOLE],
    ['bytes=0-1e3', 20, WHOLE],
    ['bytes=5', 20, WHOLE],
    ['bytes 0-1', 20, WHOLE],
  ];
  for (const [header, size, expected] of cases) {
    it(`${JSON.stringify(header)} of ${size} bytes → ${expected.kind === 'range' ? `${expected.range.start}-${expected.range.end}` : expected.kind}`, () => {
      expect(parseRange(header, size)).to.deep.equal(expected);
    });
  }
});

describe('attachmentDisposition', () => {
  it('gives a plain ASCII name as filename alone, quoted only when it must be', () => {
    expect(attachmentDisposition('report-2024.pdf')).to.equal('attachment; filename=report-2024.pdf');
    expect(attachmentDisposition('my report.pdf')).to.equal('attachment; filename="my report.pdf"');
  });

  it('percent-encodes UTF-8 and the characters RFC 8187 does not allow in filename*, and replaces them in the fallback', () => {
    expect(attachmentDisposition(`naïve "q" 100% (x)*'.txt`)).to.equal(
      `attachment; filename="na_ve _q_ 100_ (x)*'.txt"; filename*=UTF-8''na%C3%AFve%20%22q%22%20100%25%20%28x%29%2A%27.txt`,
    );
    expect(attachmentDisposition('a\\b;c.txt')).to.equal(`attachment; filename="a_b;c.txt"; filename*=UTF-8''a%5Cb%3Bc.txt`);
    expect(attachmentDisposition('a"b.txt')).to.equal(`attachment; filename=a_b.txt; filename*=UTF-8''a%22b.txt`);
  });

  it('never lets a control character or a percent escape into filename', () => {
    expect(attachmentDisposition('a\r\nb\x01.txt')).to.equal(`attachment; filename=a__b_.txt; filename*=UTF-8''a%0D%0Ab%01.txt`);
    expect(attachmentDisposition('100%25.txt')).to.equal(`attachment; filename=100_25.txt; filename*=UTF-8''100%2525.txt`);
  });

  it('falls back to "download" when nothing printable is left', () => {
    expect(attachmentDisposition('日本')).to.equal(`attachment; filename=download; filename*=UTF-8''%E6%97%A5%E6%9C%AC`);
  });
});
