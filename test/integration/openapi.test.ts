import { expect } from 'chai';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

/** The served routes and /openapi.json must describe the same API. */
describe('OpenAPI document', () => {
  let server: TestServer;
  let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };
  before(async () => {
    server = await startTestServer();
    doc = (await request(`${server.url}/openapi.json`, { token: KEYS.alice })).json;
  });
  after(async () => {
    await server?.stop();
  });

  it('documents every served route and method', () => {
    expect(server.routes.length).to.be.greaterThan(5);
    for (const route of server.routes) {
      const documented = doc.paths[route.path];
      expect(documented, `${route.path} is served but not in /openapi.json`).to.be.an('object');
      // HEAD comes with every GET (HTTP semantics); OpenAPI documents it only where it differs.
      for (const method of route.methods.filter((m) => m !== 'HEAD' || !('get' in (documented ?? {})))) {
        expect(documented, `${method} ${route.path} is served but not documented`).to.have.property(method.toLowerCase());
      }
    }
  });

  it('documents nothing that is not served', () => {
    const served = new Map(server.routes.map((r) => [r.path, r.methods.map((m) => m.toLowerCase())]));
    for (const [path, item] of Object.entries(doc.paths)) {
      const methods = served.get(path);
      expect(methods, `${path} is documented but not served`).to.be.an('array');
      for (const method of Object.keys(item).filter((k) => k !== 'parameters')) {
        expect(methods, `${method} ${path} is documented but not served`).to.include(method);
      }
    }
  });
});
