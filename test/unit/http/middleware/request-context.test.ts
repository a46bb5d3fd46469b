import { expect } from 'chai';
import { routeLabel } from '../../../../lib/http/middleware/request-context.js';

describe('routeLabel', () => {
  it('labels a route by the literal part of its pattern, up to the first parameter', () => {
    expect(routeLabel('/v1/files{/*path}')).to.equal('/v1/files');
    expect(routeLabel('/v1/directories{/*path}')).to.equal('/v1/directories');
    expect(routeLabel('/download/:token')).to.equal('/download');
    expect(routeLabel('/v1/blobs/:sha256')).to.equal('/v1/blobs');
    expect(routeLabel('/files/*rest')).to.equal('/files');
  });

  it('keeps a pattern without parameters as it is', () => {
    expect(routeLabel('/v1/links/generate')).to.equal('/v1/links/generate');
    expect(routeLabel('/health')).to.equal('/health');
    expect(routeLabel('/openapi.json')).to.equal('/openapi.json');
  });

  it('labels a pattern that is all parameter "/"', () => {
    expect(routeLabel('/:anything')).to.equal('/');
    expect(routeLabel('/')).to.equal('/');
  });
});
