import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

const run = promisify(execFile);

/**
 * The curl examples of the original CallFS README, verbatim apart from the
 * host (our test port) and the key, run with the real curl binary.
 */
describe('the original README’s curl examples', function () {
  this.timeout(60_000);
  let server: TestServer;
  let cwd: string;
  before(async () => {
    server = await startTestServer();
    cwd = server.dataDir;
    writeFileSync(join(cwd, 'localfile.txt'), 'contents of localfile.txt\n');
  });
  after(async () => {
    await server?.stop();
  });

  /** Run one example: `example` uses https://localhost:8443 and your-api-key as in the README. */
  async function curl(example: string[]): Promise<{ status: number; body: string }> {
    const port = new URL(server.url).port;
    const args = example.map((a) => a.replace('https://localhost:8443', `https://localhost:${port}`).replace('your-api-key', KEYS.alice));
    const { stdout } = await run('curl', ['-sS', '--cacert', join(cwd, 'tls', 'server.crt'), '-w', '\n%{http_code}', ...args], { cwd });
    const i = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
  }

  it('upload, download, list, recursive list, single-use link and create with POST work as written', async () => {
    const upload = await curl(['-X', 'PUT', '-H', 'Authorization: Bearer your-api-key', '-H', 'Content-Type: application/octet-stream', '--data-binary', '@localfile.txt', 'https://localhost:8443/v1/files/documents/myfile.txt']);
    expect(upload.status).to.equal(201);
    const download = await curl(['-H', 'Authorization: Bearer your-api-key', 'https://localhost:8443/v1/files/documents/myfile.txt']);
    expect(download.status).to.equal(200);
    expect(download.body).to.equal('contents of localfile.txt\n');
    const list = await curl(['-H', 'Authorization: Bearer your-api-key', 'https://localhost:8443/v1/directories/documents/']);
    expect(list.status).to.equal(200);
    expect(JSON.parse(list.body).items.map((e: { name: string }) => e.name)).to.deep.equal(['myfile.txt']);
    const recursive = await curl(['-H', 'Authorization: Bearer your-api-key', 'https://localhost:8443/v1/directories/documents/?recursive=true&max_depth=3']);
    expect(recursive.status).to.equal(200);
    expect(JSON.parse(recursive.body).recursive).to.equal(true);
    const link = await curl(['-X', 'POST', '-H', 'Authorization: Bearer your-api-key', '-H', 'Content-Type: application/json', '-d', '{"path":"/documents/myfile.txt","expiry_seconds":3600}', 'https://localhost:8443/v1/links/generate']);
    expect(link.status).to.equal(201);
    const { url } = JSON.parse(link.body);
    // server.external_url defaults to localhost:8443, as in the original.
    expect(url).to.match(/^https:\/\/localhost:8443\/download\/[\w-]+\.[\w-]+\.[\w-]+$/);
    const viaLink = await curl([url]);
    expect(viaLink.status).to.equal(200);
    expect(viaLink.body).to.equal('contents of localfile.txt\n');
    expect((await curl([url])).status).to.equal(410);
    const create = await curl(['-X', 'POST', '-H', 'Authorization: Bearer your-api-key', '-H', 'Content-Type: application/json', '-d', '{"type":"file"}', 'https://localhost:8443/v1/files/shared/newfile.txt']);
    expect(create.status).to.equal(201);
  });
});
