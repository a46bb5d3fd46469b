import { expect } from 'chai';
import { request } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

describe('POSIX permissions through the API', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });
  const as = (who: keyof typeof KEYS) => (method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}) =>
    request(`${server.url}${path}`, { method, token: KEYS[who], ...options });
  const alice = as('alice');
  const bob = as('bob');
  const root = as('root');
  const denied = async (p: Promise<{ status: number; json: any }>, what: string): Promise<void> => {
    const res = await p;
    expect(res.status, what).to.equal(403);
    expect(res.json.code, what).to.equal('PERMISSION_DENIED');
  };

  it('the root directory is root-owned 1777', async () => {
    const head = await root('HEAD', '/v1/files/');
    expect(head.headers['x-callfs-mode']).to.equal('1777');
    expect(head.headers['x-callfs-owner']).to.equal('root');
  });

  it('a 0700 directory keeps other users out (search and read), but not its owner or root', async () => {
    await alice('POST', '/v1/files/private/', { headers: { 'x-callfs-mode': '0700' } });
    await alice('PUT', '/v1/files/private/diary.txt', { body: 'secret' });
    await denied(bob('GET', '/v1/files/private/diary.txt'), 'read through an unsearchable directory');
    await denied(bob('GET', '/v1/directories/private'), 'list');
    await denied(bob('PUT', '/v1/files/private/new.txt', { body: 'x' }), 'create inside');
    await denied(bob('GET', '/v1/files/private/missing'), 'even a missing name behind it');
    expect((await alice('GET', '/v1/files/private/diary.txt')).text).to.equal('secret');
    expect((await root('GET', '/v1/files/private/diary.txt')).text).to.equal('secret');
  });

  it('file modes decide read and write: 0644 readable by others, not writable; 0600 private', async () => {
    await alice('PUT', '/v1/files/shared/open.txt', { body: 'open' });
    expect((await bob('GET', '/v1/files/shared/open.txt')).text).to.equal('open');
    await denied(bob('PUT', '/v1/files/shared/open.txt', { body: 'vandal' }), 'replace without w');
    expect((await alice('GET', '/v1/files/shared/open.txt')).text).to.equal('open');
    await alice('PUT', '/v1/files/shared/closed.txt', { body: 'closed', headers: { 'x-callfs-mode': '0600' } });
    await denied(bob('GET', '/v1/files/shared/closed.txt'), 'read 0600');
    await denied(bob('POST', '/v1/files/shared/bobs.txt', { body: 'b' }), 'create in a 0755 directory of another user');
  });

  it('group bits apply to members of the file’s group', async () => {
    await alice('PUT', '/v1/files/group/team.txt', { body: 'team', headers: { 'x-callfs-mode': '0660' } });
    await denied(bob('GET', '/v1/files/group/team.txt'), 'not in group 1001');
    expect((await root('PATCH', '/v1/files/group/team.txt', { body: JSON.stringify({ group: 100 }) })).status).to.equal(200);
    expect((await bob('GET', '/v1/files/group/team.txt')).text).to.equal('team');
    expect((await bob('PUT', '/v1/files/group/team.txt', { body: 'bob was here' })).status).to.equal(200);
  });

  it('the sticky root directory: only the owner (or root) removes or renames a top-level entry', async () => {
    await alice('PUT', '/v1/files/alices-top.txt', { body: 'mine' });
    await denied(bob('DELETE', '/v1/files/alices-top.txt'), 'delete in a sticky directory');
    await denied(bob('PATCH', '/v1/files/alices-top.txt', { body: JSON.stringify({ name: 'stolen.txt' }) }), 'rename in a sticky directory');
    expect((await bob('PUT', '/v1/files/bobs-top.txt', { body: 'b' })).status).to.equal(201);
    expect((await bob('DELETE', '/v1/files/bobs-top.txt')).status).to.equal(204);
    expect((await alice('DELETE', '/v1/files/alices-top.txt')).status).to.equal(204);
  });

  it('only the owner or root may chmod; only root may chown', async () => {
    await alice('PUT', '/v1/files/attr/f', { body: 'x' });
    await denied(bob('PATCH', '/v1/files/attr/f', { body: JSON.stringify({ mode: '0777' }) }), 'chmod by another user');
    await denied(alice('PATCH', '/v1/files/attr/f', { body: JSON.stringify({ owner: 'bob' }) }), 'chown by the owner');
    expect((await root('PATCH', '/v1/files/attr/f', { body: JSON.stringify({ mode: '0604' }) })).status).to.equal(200);
  });

  it('a missing path is 404, not 403', async () => {
    const res = await bob('GET', '/v1/files/shared/never-there.txt');
    expect(res.status).to.equal(404);
  });

  it('recursive delete needs the right to remove everything inside', async () => {
    await alice('POST', '/v1/files/tree/', { headers: { 'x-callfs-mode': '0777' } });
    await bob('PUT', '/v1/files/tree/bobdir/f', { body: 'x' });
    await alice('PUT', '/v1/files/tree/alicefile', { body: 'x' });
    await root('PATCH', '/v1/files/tree/bobdir', { body: JSON.stringify({ mode: '0755' }) });
    await denied(alice('DELETE', '/v1/files/tree?recursive=true'), 'rm -r over another user’s 0755 directory');
    expect((await alice('GET', '/v1/files/tree/alicefile')).status).to.equal(200);
    expect((await root('DELETE', '/v1/files/tree?recursive=true')).status).to.equal(204);
  });
});
