import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, realpathSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { ensureDebianPackage, findProgram, runChecked, runProgram, type ProgramResult } from '../support/debian.js';
import { md5, multipartEtag, s3Endpoint, s3PortOf, singlePartEtag, splitParts } from '../support/s3-api.js';
import { requireComponent } from '../support/services.js';
import { tempDir } from '../support/tmp.js';

/**
 * The S3 listener (issue 25) with S3 clients that no one here wrote, installed from Debian
 * when missing: aws-cli, s3cmd, rclone's s3 remote and restic. Each trusts only the server's
 * certificate and signs as alice (access key = user name, secret = her API key).
 */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

/** The last lines of a program's output, for an assertion message. */
const outputOf = (r: ProgramResult, lines = 40): string => `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-lines).join('\n');

/** The environment without the caller's AWS/rclone/restic settings, so that only what a test sets counts. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(AWS_|RCLONE_|RESTIC_)/.test(k)) env[k] = v;
  return env;
}

/** Every file below `dir`, as relative path → bytes. */
function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

/** Write `files` (relative path → bytes) below `dir`. */
function writeTree(dir: string, files: Map<string, Buffer>): void {
  for (const [path, body] of files) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), body);
  }
}

/** Compare two trees by path and SHA-256 (a readable diff on failure). */
function expectSameTree(got: Map<string, Buffer>, want: Map<string, Buffer>, what: string): void {
  const digest = (m: Map<string, Buffer>): Record<string, string> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, b]) => [p, sha256(b)]));
  expect(digest(got), what).to.deep.equal(digest(want));
}

/** Debian's aws-cli (2.x); the issue asks for clients from Debian packages. */
const DEBIAN_AWS = '/usr/bin/aws';

/**
 * aws-cli as Debian ships it, and also an aws-cli first on the PATH when that is another one (a
 * pip aws-cli 1.x with a recent botocore sends aws-chunked bodies with CRC32 trailers): their
 * wire protocols differ.
 */
const AWS_VARIANTS = [
  { name: 'aws-cli (Debian)', binary: DEBIAN_AWS, debian: true, bucket: 'awsb' },
  { name: 'aws-cli (first on the PATH, when not Debian’s)', binary: 'aws', debian: false, bucket: 'awsb-path' },
];

describe('S3 API with real clients', function () {
  this.timeout(600_000);
  let server: TestServer;
  let work: { dir: string; remove: () => void };
  let caFile: string;
  let endpoint: string;
  const v1 = (method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, { method, token: KEYS.alice, ca: server.ca, ...options });

  before(async () => {
    server = await startTestServer({ s3: { listen_addr: '127.0.0.1:0' } });
    work = tempDir('callfs-s3-clients-');
    caFile = join(work.dir, 'server.pem');
    writeFileSync(caFile, server.ca);
    endpoint = s3Endpoint(server);
  });
  after(async () => {
    await server?.stop();
    work?.remove();
  });

  for (const variant of AWS_VARIANTS) describe(variant.name, () => {
    let env: NodeJS.ProcessEnv;
    let dir: string;
    const bucket = variant.bucket;
    const aws = (args: string[]): Promise<ProgramResult> => runProgram(variant.binary, ['--endpoint-url', endpoint, ...args], { env, timeoutMs: 300_000 });
    const awsOk = async (args: string[]): Promise<ProgramResult> => {
      const r = await aws(args);
      expect(r.code, `aws ${args.join(' ')}\n${outputOf(r)}`).to.equal(0);
      return r;
    };
    const headObject = async (key: string): Promise<{ ETag: string; ContentLength: number; Metadata?: Record<string, string> }> =>
      JSON.parse((await awsOk(['s3api', 'head-object', '--bucket', bucket, '--key', key, '--output', 'json'])).stdout);
    let small: Buffer;
    let big: Buffer;

    before(async function () {
      if (variant.debian) requireComponent(this, await ensureDebianPackage(variant.binary, 'awscli'));
      else {
        const other = findProgram(variant.binary);
        const debian = findProgram(DEBIAN_AWS);
        if (other === null || realpathSync(other) === (debian === null ? null : realpathSync(debian))) {
          console.warn(`    skipped: no aws-cli on the PATH other than Debian's`);
          this.skip();
        }
      }
      dir = join(work.dir, bucket);
      mkdirSync(dir);
      small = randomBytes(12_345);
      big = randomBytes(40 * 1024 * 1024);
      const config = join(dir, 'config');
      // Path-style addressing: the listener has no per-bucket host names. aws-cli v1 presigns with
      // Signature V2 unless told s3v4 (the listener takes V4 only, as S3 does in newer regions).
      writeFileSync(config, '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n');
      env = {
        ...cleanEnv(),
        AWS_CONFIG_FILE: config,
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
        AWS_ACCESS_KEY_ID: 'alice',
        AWS_SECRET_ACCESS_KEY: KEYS.alice,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CA_BUNDLE: caFile,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_PAGER: '',
        // One attempt: a server error must show, not be retried away.
        AWS_MAX_ATTEMPTS: '1',
        AWS_RETRY_MODE: 'standard',
      };
      writeFileSync(join(dir, 'small.bin'), small);
      writeFileSync(join(dir, 'big.bin'), big);
    });

    it('mb makes a bucket that ls lists and /v1 sees as a top-level directory', async () => {
      await awsOk(['s3', 'mb', `s3://${bucket}`]);
      const buckets = (await awsOk(['s3', 'ls'])).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).pop());
      expect(buckets).to.include(bucket);
      const dirEntry = await v1('HEAD', `/v1/files/${bucket}`);
      expect(dirEntry.status).to.equal(200);
      expect(dirEntry.headers['x-callfs-type']).to.equal('directory');
      expect(dirEntry.headers['x-callfs-owner']).to.equal('alice');
    });

    it('cp of a small file up and down is byte-exact, with the MD5 ETag, and /v1 reads the same bytes', async () => {
      await awsOk(['s3', 'cp', join(dir, 'small.bin'), `s3://${bucket}/small.bin`]);
      expect((await headObject('small.bin')).ETag).to.equal(singlePartEtag(small));
      await awsOk(['s3', 'cp', `s3://${bucket}/small.bin`, join(dir, 'small-back.bin')]);
      expect(readFileSync(join(dir, 'small-back.bin')).equals(small), 'downloaded bytes').to.equal(true);
      const got = await v1('GET', `/v1/files/${bucket}/small.bin`);
      expect(got.status).to.equal(200);
      expect(got.body.equals(small), 'the bytes through /v1').to.equal(true);
    });

    it('cp of a 40 MiB file goes multipart (5 × 8 MiB): the "-5" ETag, byte-exact down and through /v1', async () => {
      await awsOk(['s3', 'cp', join(dir, 'big.bin'), `s3://${bucket}/dir/big.bin`]);
      const head = await headObject('dir/big.bin');
      expect(head.ContentLength).to.equal(big.length);
      expect(head.ETag, 'aws-cli uploads 8 MiB parts above its 8 MiB threshold').to.equal(multipartEtag(splitParts(big, 8 * 1024 * 1024)));
      await awsOk(['s3', 'cp', `s3://${bucket}/dir/big.bin`, join(dir, 'big-back.bin')]);
      expect(sha256(readFileSync(join(dir, 'big-back.bin')))).to.equal(sha256(big));
      const got = await v1('GET', `/v1/files/${bucket}/dir/big.bin`);
      expect(got.status).to.equal(200);
      expect(sha256(got.body), 'the bytes through /v1').to.equal(sha256(big));
    });

    it('a file put through /v1 is read through S3, with its SHA-256 as ETag', async () => {
      const body = randomBytes(70_001);
      expect((await v1('PUT', `/v1/files/${bucket}/from-v1.bin`, { body })).status).to.equal(201);
      await awsOk(['s3', 'cp', `s3://${bucket}/from-v1.bin`, join(dir, 'from-v1.bin')]);
      expect(readFileSync(join(dir, 'from-v1.bin')).equals(body)).to.equal(true);
      const head = await headObject('from-v1.bin');
      expect(head.ContentLength).to.equal(body.length);
      expect(head.ETag).to.equal(`"${sha256(body)}"`);
    });

    it('ls lists a bucket (prefixes and objects), a prefix, and recursively', async () => {
      const top = (await awsOk(['s3', 'ls', `s3://${bucket}/`])).stdout;
      expect(top).to.match(/^\s*PRE dir\/$/m);
      expect(top).to.match(new RegExp(`\\s${small.length} small\\.bin$`, 'm'));
      expect(top).to.match(/\sfrom-v1\.bin$/m);
      expect(top, 'objects below a prefix are not listed at the top').to.not.match(/big\.bin/);
      const prefix = (await awsOk(['s3', 'ls', `s3://${bucket}/dir/`])).stdout;
      expect(prefix).to.match(new RegExp(`\\s${big.length} big\\.bin$`, 'm'));
      expect(prefix.trim().split('\n')).to.have.length(1);
      const all = (await awsOk(['s3', 'ls', '--recursive', `s3://${bucket}`])).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).pop());
      expect(all).to.deep.equal(['dir/big.bin', 'from-v1.bin', 'small.bin']);
    });

    it('sync uploads a tree, a second sync uploads nothing, a sync down brings back the same tree', async () => {
      const files = new Map<string, Buffer>();
      for (let a = 0; a < 3; a++) for (let b = 0; b < 4; b++) files.set(`d${a}/${b === 2 ? 'with space' : 'sub'}/f${b}.txt`, randomBytes(100 + a * 1000 + b));
      files.set('top.txt', Buffer.from('top of the tree\n'));
      files.set('empty.dat', Buffer.alloc(0));
      const local = join(dir, 'tree');
      writeTree(local, files);
      // sync uploads what is newer here than there: an hour-old tree is never newer than the upload,
      // whatever the precision of the listing's LastModified.
      const anHourAgo = new Date(Date.now() - 3_600_000);
      for (const path of files.keys()) utimesSync(join(local, path), anHourAgo, anHourAgo);

      const up = await awsOk(['s3', 'sync', '--no-progress', local, `s3://${bucket}/tree`]);
      expect(up.stdout.split('\n').filter((l) => l.startsWith('upload:'))).to.have.length(files.size);
      const again = await awsOk(['s3', 'sync', '--no-progress', local, `s3://${bucket}/tree`]);
      expect(again.stdout.trim(), 'nothing changed, nothing to upload').to.equal('');
      for (const [path, body] of files) {
        const got = await v1('GET', `/v1/files/${bucket}/tree/${encodePath(path)}`);
        expect(got.status, path).to.equal(200);
        expect(got.body.equals(body), `${path} through /v1`).to.equal(true);
      }
      const down = join(dir, 'tree-down');
      await awsOk(['s3', 'sync', '--no-progress', `s3://${bucket}/tree`, down]);
      expectSameTree(readTree(down), files, 'the tree synced back down');
    });

    it('presign gives a URL that a plain HTTPS GET (curl) fetches byte-exact; a tampered one is refused', async () => {
      const url = (await awsOk(['s3', 'presign', `s3://${bucket}/small.bin`, '--expires-in', '300'])).stdout.trim();
      expect(url).to.match(new RegExp(`^${endpoint.replace(/\./g, '\\.')}/${bucket}/small\\.bin\\?.*X-Amz-Signature=`));
      const out = join(dir, 'presigned.bin');
      const fetched = await runChecked('curl', ['-sS', '--cacert', caFile, '-o', out, '-w', '%{http_code}', url]);
      expect(fetched.stdout).to.equal('200');
      expect(readFileSync(out).equals(small), 'presigned GET bytes').to.equal(true);

      const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
      expect(tampered).to.not.equal(url);
      const refused = await runChecked('curl', ['-sS', '--cacert', caFile, '-o', out, '-w', '%{http_code}', tampered]);
      expect(refused.stdout).to.equal('403');
      expect(readFileSync(out, 'utf8')).to.include('<Code>SignatureDoesNotMatch</Code>');
      const otherKey = url.replace(`/${bucket}/small.bin?`, `/${bucket}/from-v1.bin?`);
      const wrongKey = await runChecked('curl', ['-sS', '--cacert', caFile, '-o', out, '-w', '%{http_code}', otherKey]);
      expect(wrongKey.stdout, 'a presigned URL is good for its own key only').to.equal('403');
    });

    it('rm --recursive removes a prefix; the objects are gone through S3 and /v1', async () => {
      await awsOk(['s3', 'rm', '--recursive', `s3://${bucket}/tree`]);
      const left = JSON.parse((await awsOk(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'tree/', '--output', 'json'])).stdout || '{}') as { Contents?: unknown[] };
      expect(left.Contents ?? []).to.deep.equal([]);
      const kept = JSON.parse((await awsOk(['s3api', 'list-objects-v2', '--bucket', bucket, '--output', 'json'])).stdout) as { Contents?: Array<{ Key: string }> };
      expect((kept.Contents ?? []).map((o) => o.Key)).to.deep.equal(['dir/big.bin', 'from-v1.bin', 'small.bin']);
      expect((await v1('HEAD', `/v1/files/${bucket}/tree/top.txt`)).status).to.equal(404);
      expect((await v1('HEAD', `/v1/files/${bucket}/tree/${encodePath('d1/with space/f2.txt')}`)).status).to.equal(404);
      expect((await v1('HEAD', `/v1/files/${bucket}/small.bin`)).status, 'outside the prefix').to.equal(200);
      const missing = await aws(['s3api', 'head-object', '--bucket', bucket, '--key', 'tree/top.txt']);
      expect(missing.code).to.not.equal(0);
      expect(missing.stderr).to.match(/404|Not Found/);
    });
  });

  describe('s3cmd', () => {
    let dir: string;
    let config: string;
    const s3cmd = (args: string[]): Promise<ProgramResult> => runProgram('s3cmd', ['-c', config, '--no-progress', ...args], { env: cleanEnv(), timeoutMs: 300_000 });
    const s3cmdOk = async (args: string[]): Promise<ProgramResult> => {
      const r = await s3cmd(args);
      expect(r.code, `s3cmd ${args.join(' ')}\n${outputOf(r)}`).to.equal(0);
      // s3cmd compares the ETag with the MD5 it computed and only warns on a download.
      expect(r.stderr, `s3cmd ${args.join(' ')}`).to.not.match(/WARNING|ERROR/);
      return r;
    };

    before(async function () {
      requireComponent(this, await ensureDebianPackage('s3cmd', 's3cmd'));
      dir = join(work.dir, 's3cmd');
      mkdirSync(dir);
      config = join(dir, 's3cfg');
      const host = `127.0.0.1:${s3PortOf(server)}`;
      writeFileSync(
        config,
        [
          '[default]',
          'access_key = alice',
          `secret_key = ${KEYS.alice}`,
          `host_base = ${host}`,
          // No %(bucket)s in host_bucket: path-style requests.
          `host_bucket = ${host}`,
          'bucket_location = us-east-1',
          'use_https = True',
          `ca_certs_file = ${caFile}`,
          'check_ssl_certificate = True',
          'check_ssl_hostname = True',
          'signature_v2 = False',
          'max_retries = 1',
        ].join('\n') + '\n',
      );
    });

    it('mb, put (MD5 checked against the ETag), ls, get byte-exact, del', async () => {
      await s3cmdOk(['mb', 's3://s3cmdb']);
      const files = { 'one.txt': Buffer.from('s3cmd was here\n'), 'two.bin': randomBytes(3 * 1024 * 1024 + 7) };
      for (const [name, body] of Object.entries(files)) {
        writeFileSync(join(dir, name), body);
        await s3cmdOk(['put', join(dir, name), `s3://s3cmdb/sub/${name}`]);
        expect((await v1('GET', `/v1/files/s3cmdb/sub/${name}`)).body.equals(body), `${name} through /v1`).to.equal(true);
      }
      // The listing's ETags are the MD5s s3cmd computed (it compares them after each put).
      const md5s = (await s3cmdOk(['ls', '--list-md5', 's3://s3cmdb/sub/'])).stdout;
      for (const [name, body] of Object.entries(files)) expect(md5s).to.match(new RegExp(`\\s${md5(body)}\\s+s3://s3cmdb/sub/${name.replace('.', '\\.')}$`, 'm'));

      const listed = (await s3cmdOk(['ls', 's3://s3cmdb/sub/'])).stdout.trim().split('\n');
      expect(listed.map((l) => l.trim().split(/\s+/).pop())).to.deep.equal(['s3://s3cmdb/sub/one.txt', 's3://s3cmdb/sub/two.bin']);
      expect(listed[1]).to.match(new RegExp(`\\s${files['two.bin'].length}\\s`));
      const top = (await s3cmdOk(['ls', 's3://s3cmdb/'])).stdout;
      expect(top).to.match(/DIR\s+s3:\/\/s3cmdb\/sub\//);

      for (const [name, body] of Object.entries(files)) {
        await s3cmdOk(['get', '--force', `s3://s3cmdb/sub/${name}`, join(dir, `${name}.back`)]);
        expect(readFileSync(join(dir, `${name}.back`)).equals(body), `${name} downloaded`).to.equal(true);
      }

      await s3cmdOk(['del', 's3://s3cmdb/sub/one.txt']);
      const after = (await s3cmdOk(['ls', 's3://s3cmdb/sub/'])).stdout;
      expect(after).to.not.include('one.txt');
      expect(after).to.include('two.bin');
      expect((await v1('HEAD', '/v1/files/s3cmdb/sub/one.txt')).status).to.equal(404);
      const gone = await s3cmd(['get', '--force', 's3://s3cmdb/sub/one.txt', join(dir, 'gone')]);
      expect(gone.code).to.not.equal(0);
    });
  });

  describe('rclone (s3 remote)', () => {
    let env: NodeJS.ProcessEnv;
    let rcloneArgs: string[];
    const rclone = (args: string[]): Promise<ProgramResult> => runProgram('rclone', [...args, ...rcloneArgs], { env, timeoutMs: 300_000 });

    before(async function () {
      requireComponent(this, await ensureDebianPackage('rclone', 'rclone'));
      const conf = join(work.dir, 'rclone.conf');
      writeFileSync(conf, '');
      env = {
        ...cleanEnv(),
        RCLONE_CONFIG_CALLFS_TYPE: 's3',
        RCLONE_CONFIG_CALLFS_PROVIDER: 'Other',
        RCLONE_CONFIG_CALLFS_ENV_AUTH: 'false',
        RCLONE_CONFIG_CALLFS_ACCESS_KEY_ID: 'alice',
        RCLONE_CONFIG_CALLFS_SECRET_ACCESS_KEY: KEYS.alice,
        RCLONE_CONFIG_CALLFS_ENDPOINT: endpoint,
        RCLONE_CONFIG_CALLFS_REGION: 'us-east-1',
        RCLONE_CONFIG_CALLFS_FORCE_PATH_STYLE: 'true',
      };
      rcloneArgs = ['--config', conf, '--ca-cert', caFile, '--retries', '1', '--low-level-retries', '1', '--transfers', '8', '--checkers', '8'];
    });

    it('copies a tree of 200 files up and check finds no differences (MD5 against the ETags)', async () => {
      const files = new Map<string, Buffer>();
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 5; b++) {
          for (let c = 0; c < 10; c++) {
            const name = c === 3 ? `spaced name ${c}.txt` : c === 4 ? `ünïcødé-${c}.txt` : `f${c}.dat`;
            files.set(`top${a}/sub ${b}/${name}`, c === 5 ? Buffer.alloc(0) : randomBytes(1 + ((a * 50 + b * 10 + c) * 37) % 3000));
          }
        }
      }
      expect(files.size).to.equal(200);
      const local = join(work.dir, 'rclone-tree');
      writeTree(local, files);

      const copy = await rclone(['copy', local, 'callfs:rcb/tree']);
      expect(copy.code, outputOf(copy)).to.equal(0);
      const check = await rclone(['check', local, 'callfs:rcb/tree']);
      expect(check.code, outputOf(check)).to.equal(0);
      const said = `${check.stdout}\n${check.stderr}`;
      expect(said).to.match(/0 differences found/);
      expect(said).to.match(/200 matching files/);
      expect(said, 'check compared hashes, not only sizes').to.not.match(/hashes could not be checked|no hashes in common/i);

      const odd = await v1('GET', `/v1/files/rcb/tree/${encodePath('top2/sub 3/ünïcødé-4.txt')}`);
      expect(odd.status).to.equal(200);
      expect(odd.body.equals(files.get('top2/sub 3/ünïcødé-4.txt') as Buffer), 'a unicode name through /v1').to.equal(true);

      // A file changed behind rclone's back (through /v1) is a difference.
      expect((await v1('PUT', '/v1/files/rcb/tree/top0/sub%200/f0.dat', { body: 'changed through /v1' })).status).to.equal(200);
      const recheck = await rclone(['check', local, 'callfs:rcb/tree']);
      expect(recheck.code, outputOf(recheck)).to.not.equal(0);
      expect(`${recheck.stdout}\n${recheck.stderr}`).to.match(/1 differences found/);
    });
  });

  describe('restic (s3 repository)', () => {
    let env: NodeJS.ProcessEnv;
    let dir: string;
    const restic = (args: string[]): Promise<ProgramResult> => runProgram('restic', ['--cacert', caFile, ...args], { env, timeoutMs: 300_000 });
    const resticOk = async (args: string[]): Promise<ProgramResult> => {
      const r = await restic(args);
      expect(r.code, `restic ${args.join(' ')}\n${outputOf(r)}`).to.equal(0);
      return r;
    };

    before(async function () {
      requireComponent(this, await ensureDebianPackage('restic', 'restic'));
      dir = join(work.dir, 'restic');
      mkdirSync(dir);
      env = {
        ...cleanEnv(),
        RESTIC_REPOSITORY: `s3:${endpoint}/resticb/repo`,
        RESTIC_PASSWORD: 'correct horse battery staple',
        RESTIC_CACHE_DIR: join(dir, 'cache'),
        AWS_ACCESS_KEY_ID: 'alice',
        AWS_SECRET_ACCESS_KEY: KEYS.alice,
        AWS_DEFAULT_REGION: 'us-east-1',
      };
    });

    it('init, backup, check --read-data, restore an identical tree', async () => {
      const files = new Map<string, Buffer>();
      for (let i = 0; i < 40; i++) files.set(`docs/${i % 4}/note-${i}.txt`, Buffer.from(`note ${i}\n`.repeat(1 + i * 13)));
      files.set('blobs/random-6mib.bin', randomBytes(6 * 1024 * 1024 + 3));
      files.set('blobs/random-1.bin', randomBytes(1));
      files.set('blobs/empty', Buffer.alloc(0));
      // Repeated content: restic deduplicates it into the same blobs.
      const repeated = randomBytes(700_000);
      files.set('dup/a.bin', repeated);
      files.set('dup/b.bin', repeated);
      const source = join(dir, 'source');
      writeTree(source, files);

      await resticOk(['init']);
      const config = await v1('GET', '/v1/files/resticb/repo/config');
      expect(config.status, 'the repository config through /v1').to.equal(200);
      await resticOk(['backup', source]);
      const snapshots = JSON.parse((await resticOk(['snapshots', '--json'])).stdout) as Array<{ paths: string[] }>;
      expect(snapshots).to.have.length(1);
      expect(snapshots[0]?.paths).to.deep.equal([source]);
      const check = await resticOk(['check', '--read-data']);
      expect(check.stdout).to.match(/no errors were found/);

      const target = join(dir, 'restored');
      await resticOk(['restore', 'latest', '--target', target]);
      // restic restores an absolute backup path below the target.
      expectSameTree(readTree(join(target, source)), files, 'the restored tree');
    });
  });
});
