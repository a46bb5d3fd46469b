// tsc compiles only .ts; copy the non-TypeScript files that lib/ reads at run time
// (SQL migrations, the OpenAPI document) into dist/ beside the compiled code.
// Also make the CLI executable: tsc writes it 0644, and an `npx callfs` that
// finds an earlier install of this directory in its cache runs the file as it is.
import { chmodSync, cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';

const ASSET = /\.(sql|json|yaml)$/;

function copyAssets(from, to) {
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    if (statSync(src).isDirectory()) copyAssets(src, join(to, name));
    else if (ASSET.test(name)) {
      mkdirSync(dirname(join(to, name)), { recursive: true });
      cpSync(src, join(to, name));
    }
  }
}

copyAssets('lib', join('dist', 'lib'));
chmodSync(join('dist', 'cmd', 'callfs.js'), 0o755);
