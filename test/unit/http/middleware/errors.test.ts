import { Router } from '@koa/router';
import { expect } from 'chai';
import { CallfsError, ERROR_CODES, type ErrorCode } from '../../../../lib/errors.js';
import type { RequestState } from '../../../../lib/http/state.js';
import { API_KEYS, startTestApp, type AppUnderTest } from '../../../support/app.js';
import { request } from '../../../support/http.js';

/** The statuses API.md gives each code (405 is HTTP's own). */
const API_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400, INVALID_PATH: 400, IS_A_DIRECTORY: 400, AUTHENTICATION_FAILED: 401, PERMISSION_DENIED: 403,
  FILE_NOT_FOUND: 404, LINK_NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405, NOT_A_DIRECTORY: 409, FILE_ALREADY_EXISTS: 409,
  DIRECTORY_NOT_EMPTY: 409, CROSS_SERVER_CONFLICT: 409, LINK_EXPIRED: 410, LINK_USED: 410, PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413, RANGE_NOT_SATISFIABLE: 416, UNSUPPORTED_MEDIA_TYPE: 415, UPLOAD_OFFSET_MISMATCH: 409, CHECKSUM_MISMATCH: 460, LOCKED: 423, RATE_LIMIT_EXCEEDED: 429, INTEGRITY_ERROR: 500,
  INTERNAL_ERROR: 500, BAD_GATEWAY: 502, SERVICE_UNAVAILABLE: 503, INSUFFICIENT_STORAGE: 507,
};

/** What a thrown error carries that must never reach a client in a 5xx. */
const INTERNAL = 'pg at 10.1.2.3:5432 said ECONNRESET';

/** Routes that throw what a test asks for, past the real middleware. */
function throwingRoutes(): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get('/test/code/:code', (ctx) => {
    throw new CallfsError(ctx.params.code as ErrorCode, INTERNAL, { details: { extra: 'detail' }, retryAfterSeconds: 7, component: 'metadata' });
  });
  router.get('/test/plain', () => {
    throw new TypeError(INTERNAL);
  });
  router.get('/test/koa/:status', (ctx) => {
    ctx.throw(Number(ctx.params.status), INTERNAL);
  });
  router.get('/test/after-headers/:code', (ctx) => {
    ctx.set('ETag', '"abc"');
    ctx.set('Last-Modified', new Date().toUTCString());
    ctx.set('Content-Disposition', 'attachment; filename="x"');
    ctx.set('Content-Range', 'bytes */10');
    throw new CallfsError(ctx.params.code as ErrorCode, 'refused');
  });
  return router;
}

// lib/http/middleware/errors.ts and lib/http/error-status.ts: the one error path.
describe('http: error envelope', function () {
  let app: AppUnderTest;

  before(async function () {
    app = await startTestApp({ routers: [throwingRoutes()], capacityBytes: 10 });
  });

  after(async function () {
    await app.close();
  });

  it('answers every code with the status API.md gives it, as {code, message, request_id}', async function () {
    for (const code of ERROR_CODES) {
      const res = await request(`${app.url}/test/code/${code}`);
      expect(res.status, code).to.equal(API_STATUS[code]);
      expect(res.json, code).to.include({ code, request_id: res.headers['x-request-id'] });
      expect(res.json.message, code).to.be.a('string').and.not.equal('');
    }
  });

  it('says only fixed words in a 5xx: never the error\'s message nor its details', async function () {
    for (const code of ERROR_CODES.filter((c) => API_STATUS[c] >= 500)) {
      const res = await request(`${app.url}/test/code/${code}`);
      expect(res.text, code).to.not.include('10.1.2.3');
      expect(res.json, code).to.not.have.property('extra');
    }
    // A 4xx message is the domain's own, and its details are part of the answer.
    const conflict = await request(`${app.url}/test/code/CROSS_SERVER_CONFLICT`);
    expect(conflict.json).to.include({ message: INTERNAL, extra: 'detail' });
  });

  it('turns anything else thrown into a 500 INTERNAL_ERROR that says nothing of it', async function () {
    const res = await request(`${app.url}/test/plain`);
    expect(res.status).to.equal(500);
    expect(res.json.code).to.equal('INTERNAL_ERROR');
    expect(res.text).to.not.include('10.1.2.3');
  });

  it('maps HTTP errors thrown by Koa and its libraries by their status', async function () {
    const cases: Array<[number, number, ErrorCode]> = [[400, 400, 'BAD_REQUEST'], [404, 404, 'FILE_NOT_FOUND'], [413, 413, 'PAYLOAD_TOO_LARGE'], [418, 400, 'BAD_REQUEST'], [500, 500, 'INTERNAL_ERROR']];
    for (const [thrown, status, code] of cases) {
      const res = await request(`${app.url}/test/koa/${thrown}`);
      expect([res.status, res.json.code], `ctx.throw(${thrown})`).to.deep.equal([status, code]);
    }
    expect((await request(`${app.url}/test/koa/500`)).text).to.not.include('10.1.2.3');
  });

  it('adds Retry-After when the error gives one, and WWW-Authenticate to a 401', async function () {
    expect((await request(`${app.url}/test/code/SERVICE_UNAVAILABLE`)).headers['retry-after']).to.equal('7');
    const unauthenticated = await request(`${app.url}/v1/files/x`);
    expect(unauthenticated.status).to.equal(401);
    expect(unauthenticated.headers['www-authenticate']).to.match(/^Bearer /);
  });

  it('drops the headers that described a representation, but keeps 416\'s Content-Range', async function () {
    const res = await request(`${app.url}/test/after-headers/FILE_NOT_FOUND`);
    expect(res.status).to.equal(404);
    for (const header of ['etag', 'last-modified', 'content-disposition', 'content-range']) expect(res.headers, header).to.not.have.property(header);
    const range = await request(`${app.url}/test/after-headers/RANGE_NOT_SATISFIABLE`);
    expect(range.status).to.equal(416);
    expect(range.headers['content-range']).to.equal('bytes */10');
  });

  it('carries the engine\'s errors to the client: 404, 413, 507', async function () {
    const token = API_KEYS.root;
    expect((await request(`${app.url}/v1/files/missing`, { token })).json.code).to.equal('FILE_NOT_FOUND');
    const big = await request(`${app.url}/v1/files/big`, { token, method: 'PUT', body: Buffer.alloc(2 * 1024 * 1024) });
    expect([big.status, big.json.code]).to.deep.equal([413, 'PAYLOAD_TOO_LARGE']);
    // The backend holds 10 bytes.
    const full = await request(`${app.url}/v1/files/eleven`, { token, method: 'PUT', body: 'eleven byte' });
    expect([full.status, full.json.code]).to.deep.equal([507, 'INSUFFICIENT_STORAGE']);
  });
});
