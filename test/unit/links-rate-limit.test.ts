import { expect } from 'chai';
import { createRateLimiter } from '../../lib/http/rate-limit.js';

describe('rate limiter (token bucket per key)', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => {
    clock = 1_000_000;
  });

  it('allows a burst of `limit`, then refuses with the seconds until the next request is allowed', () => {
    const limiter = createRateLimiter({ limit: 3, now });
    for (let i = 0; i < 3; i++) expect(limiter.take('a').allowed).to.equal(true);
    // 60 s / 3 = one token every 20 s.
    expect(limiter.take('a')).to.deep.equal({ allowed: false, retryAfterSeconds: 20 });
    clock += 15_000;
    expect(limiter.take('a')).to.deep.equal({ allowed: false, retryAfterSeconds: 5 });
    clock += 5_000;
    expect(limiter.take('a').allowed).to.equal(true);
    expect(limiter.take('a').allowed).to.equal(false);
  });

  it('keeps keys apart', () => {
    const limiter = createRateLimiter({ limit: 1, now });
    expect(limiter.take('a').allowed).to.equal(true);
    expect(limiter.take('a').allowed).to.equal(false);
    expect(limiter.take('b').allowed).to.equal(true);
  });

  it('sustains `limit` per window after the initial burst of `limit`, however requests are spread', () => {
    const limiter = createRateLimiter({ limit: 10, now });
    const start = clock;
    const allowedAt: number[] = [];
    for (let i = 0; i < 2000; i++) {
      clock += 97;
      if (limiter.take('a').allowed) allowedAt.push(clock);
    }
    const refilled = ((clock - start) / 60_000) * 10;
    expect(allowedAt.length).to.be.within(10 + Math.floor(refilled) - 1, 10 + Math.ceil(refilled));
    // Once the burst is spent, no 60 s stretch gets more than limit + 1.
    const steady = allowedAt.filter((t) => t > start + 60_000);
    for (const from of steady) expect(steady.filter((t) => t >= from && t < from + 60_000).length).to.be.at.most(11);
  });

  it('is unlimited at 0 and remembers nothing', () => {
    const limiter = createRateLimiter({ limit: 0, now });
    for (let i = 0; i < 1000; i++) expect(limiter.take(`k${i}`).allowed).to.equal(true);
    expect(limiter.size).to.equal(0);
  });

  it('forgets idle keys and never holds more than maxKeys', () => {
    const limiter = createRateLimiter({ limit: 5, maxKeys: 100, now });
    for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).to.equal(100);
    clock += 60_000;
    limiter.take('fresh');
    expect(limiter.size).to.equal(1);
  });

  it('keeps a busy key limited while a flood of other keys comes and goes', () => {
    const limiter = createRateLimiter({ limit: 2, maxKeys: 50, now });
    limiter.take('busy');
    limiter.take('busy');
    for (let i = 0; i < 40; i++) limiter.take(`other-${i}`);
    expect(limiter.take('busy').allowed).to.equal(false);
  });

  it('rejects a negative or fractional limit', () => {
    expect(() => createRateLimiter({ limit: -1 })).to.throw();
    expect(() => createRateLimiter({ limit: 1.5 })).to.throw();
  });
});
