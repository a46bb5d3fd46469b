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

describe('what a caller learns about a tree they cannot search', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    const alice = (method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}) => request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });
    expect((await alice('POST', '/v1/files/alice/private/', { headers: { 'x-callfs-mode': '0700' } })).status).to.equal(201);
    expect((await alice('PUT', '/v1/files/alice/private/inner.txt', { body: 'secret' })).status).to.equal(201);
    expect((await alice('POST', '/v1/files/alice/private/sub/')).status).to.equal(201);
    expect((await request(`${server.url}/v1/files/bob/mine.txt`, { method: 'PUT', token: KEYS.bob, body: 'b' })).status).to.equal(201);
  });
  after(async () => {
    await server?.stop();
  });
  const bob = (method: string, path: string, body?: string) => request(`${server.url}${path}`, { method, token: KEYS.bob, ...(body === undefined ? {} : { body }) });

  /** Behind /alice/private: a file, a directory, and nothing. */
  const behind = ['/alice/private/inner.txt/x', '/alice/private/sub/x', '/alice/private/missing/x', '/alice/private/inner.txt', '/alice/private/missing'];
  const probes: [string, (p: string) => Promise<{ status: number; json: any }>][] = [
    ['GET', (p) => bob('GET', `/v1/files${p}`)],
    ['HEAD', (p) => bob('HEAD', `/v1/files${p}`)],
    ['PUT', (p) => bob('PUT', `/v1/files${p}`, 'probe')],
    ['POST a file', (p) => bob('POST', `/v1/files${p}`, 'probe')],
    ['POST a directory', (p) => bob('POST', `/v1/files${p}/`)],
    ['DELETE', (p) => bob('DELETE', `/v1/files${p}`)],
    ['PATCH chmod', (p) => bob('PATCH', `/v1/files${p}`, JSON.stringify({ mode: '0777' }))],
    ['a listing', (p) => bob('GET', `/v1/directories${p}`)],
    ['link generation', (p) => bob('POST', '/v1/links/generate', JSON.stringify({ path: p }))],
    ['a move destination', (p) => bob('PATCH', '/v1/files/bob/mine.txt', JSON.stringify({ destination: p }))],
  ];
  for (const [what, probe] of probes) {
    it(`${what}: 403 naming only the unsearchable directory, whatever lies behind it`, async () => {
      for (const path of behind) {
        const res = await probe(path);
        expect(res.status, `${what} ${path}`).to.equal(403);
        if (what === 'HEAD') continue;
        expect(res.json.code, `${what} ${path}`).to.equal('PERMISSION_DENIED');
        expect(res.json.message, `${what} ${path}`).to.not.match(/inner|sub|missing/);
      }
    });
  }

  it('a recursive listing hides what lies inside the directory, and its count counts only what it shows', async () => {
    const aliceDo = (method: string, path: string, body?: string) => request(`${server.url}${path}`, { method, token: KEYS.alice, ...(body === undefined ? {} : { body }) });
    expect((await aliceDo('POST', '/v1/files/alice/tree/open/')).status).to.equal(201);
    expect((await aliceDo('PUT', '/v1/files/alice/tree/open/seen.txt', 'x')).status).to.equal(201);
    expect((await aliceDo('POST', '/v1/files/alice/tree/closed/')).status).to.equal(201);
    for (const name of ['a', 'b', 'deep/c', 'deep/er/d']) expect((await aliceDo('PUT', `/v1/files/alice/tree/closed/${name}`, 'x')).status).to.equal(201);
    expect((await aliceDo('PATCH', '/v1/files/alice/tree/closed', JSON.stringify({ mode: '0700' }))).status).to.equal(200);
    const listing = await bob('GET', '/v1/directories/alice/tree?recursive=true');
    expect(listing.status).to.equal(200);
    expect(listing.json.items.map((e: { path: string }) => e.path)).to.deep.equal(['/alice/tree/closed', '/alice/tree/open', '/alice/tree/open/seen.txt']);
    expect(listing.json.count).to.equal(3);
    expect(listing.headers['x-callfs-count'], 'the count up front says no more than the listing').to.equal('3');
    const shallow = await bob('GET', '/v1/directories/alice/tree?recursive=true&max_depth=0');
    expect(shallow.headers['x-callfs-count']).to.equal('2');
    const owner = await aliceDo('GET', '/v1/directories/alice/tree?recursive=true');
    expect(owner.headers['x-callfs-count']).to.equal(String(owner.json.items.length));
    expect(owner.json.items).to.have.length(9);
  });

  it('the owner still gets the true answers: 409 through a file, 404 for a missing name', async () => {
    const alice = (method: string, path: string) => request(`${server.url}${path}`, { method, token: KEYS.alice });
    const through = await alice('GET', '/v1/files/alice/private/inner.txt/x');
    expect(through.status).to.equal(409);
    expect(through.json.code).to.equal('NOT_A_DIRECTORY');
    expect((await alice('GET', '/v1/files/alice/private/missing/x')).status).to.equal(404);
  });

  it('a create needs write on the directory before it is told that the name exists', async () => {
    await request(`${server.url}/v1/files/alice/open/`, { method: 'POST', token: KEYS.alice });
    await request(`${server.url}/v1/files/alice/open/taken.txt`, { method: 'PUT', token: KEYS.alice, body: 'a' });
    const res = await bob('POST', '/v1/files/alice/open/taken.txt', 'b');
    expect(res.status).to.equal(403);
    expect(res.json.code).to.equal('PERMISSION_DENIED');
    expect((await request(`${server.url}/v1/files/alice/open/taken.txt`, { method: 'POST', token: KEYS.alice, body: 'b' })).json.code).to.equal('FILE_ALREADY_EXISTS');
  });
});

describe('POSIX details of rename and setgid directories', () => {
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

  it('moving a directory to another parent needs write on the directory itself (its ".." changes)', async () => {
    expect((await root('POST', '/v1/files/shared/', { headers: { 'x-callfs-mode': '0777' } })).status).to.equal(201);
    expect((await bob('POST', '/v1/files/shared/bobs/', { headers: { 'x-callfs-mode': '0755' } })).status).to.equal(201);
    expect((await alice('POST', '/v1/files/alices/')).status).to.equal(201);
    const away = await alice('PATCH', '/v1/files/shared/bobs', { body: JSON.stringify({ destination: '/alices/bobs' }) });
    expect(away.status).to.equal(403);
    expect(away.json.code).to.equal('PERMISSION_DENIED');
    expect((await bob('HEAD', '/v1/files/shared/bobs')).status, 'still where it was').to.equal(200);
    // A rename within the same directory leaves ".." alone: write on the parent is enough.
    const rename = await alice('PATCH', '/v1/files/shared/bobs', { body: JSON.stringify({ name: 'renamed' }) });
    expect(rename.status).to.equal(200);
    // A file has no "..": write on both parents is enough.
    expect((await bob('PUT', '/v1/files/shared/bobs-file', { body: 'f', headers: { 'x-callfs-mode': '0644' } })).status).to.equal(201);
    expect((await alice('PATCH', '/v1/files/shared/bobs-file', { body: JSON.stringify({ destination: '/alices/bobs-file' }) })).status).to.equal(200);
    // The owner, with write on the directory, and root may move it.
    expect((await bob('PATCH', '/v1/files/shared/renamed', { body: JSON.stringify({ destination: '/shared/deeper/renamed', create_parents: true }) })).status).to.equal(200);
    expect((await root('PATCH', '/v1/files/shared/deeper/renamed', { body: JSON.stringify({ destination: '/alices/bobs' }) })).status).to.equal(200);
  });

  it('a directory made in a setgid directory inherits the group and the setgid bit, also through mkdir -p and create_parents', async () => {
    expect((await alice('POST', '/v1/files/team/', { headers: { 'x-callfs-mode': '2775' } })).status).to.equal(201);
    expect((await root('PATCH', '/v1/files/team', { body: JSON.stringify({ group: 100 }) })).status).to.equal(200);
    const mode = async (path: string) => {
      const head = await alice('HEAD', `/v1/files${path}`);
      return { mode: head.headers['x-callfs-mode'], group: head.headers['x-callfs-group'] };
    };
    expect((await alice('POST', '/v1/files/team/docs/', { headers: { 'x-callfs-mode': '0750' } })).status).to.equal(201);
    expect(await mode('/team/docs')).to.deep.equal({ mode: '2750', group: '100' });
    expect((await alice('POST', '/v1/files/team/a/b/c/')).status).to.equal(201);
    for (const p of ['/team/a', '/team/a/b', '/team/a/b/c']) expect(await mode(p), p).to.deep.equal({ mode: '2755', group: '100' });
    expect((await alice('PUT', '/v1/files/team/x/y/file.txt', { body: 'f' })).status).to.equal(201);
    expect(await mode('/team/x/y')).to.deep.equal({ mode: '2755', group: '100' });
    expect(await mode('/team/x/y/file.txt'), 'a file takes the group, not the bit').to.deep.equal({ mode: '0644', group: '100' });
    expect((await alice('PUT', '/v1/files/loose.txt', { body: 'l' })).status).to.equal(201);
    expect((await alice('PATCH', '/v1/files/loose.txt', { body: JSON.stringify({ destination: '/team/m/n/loose.txt', create_parents: true }) })).status).to.equal(200);
    expect(await mode('/team/m/n')).to.deep.equal({ mode: '2755', group: '100' });
    // Outside a setgid directory nothing is inherited.
    expect((await alice('POST', '/v1/files/plain/sub/')).status).to.equal(201);
    expect(await mode('/plain/sub')).to.deep.equal({ mode: '0755', group: '1001' });
  });
});
