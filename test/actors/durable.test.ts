/**
 * syncDirectory: fsync(2) of a real directory after a rename in it; a
 * directory that is not there is an error, not something to skip.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { syncDirectory } from '../../actors/durable.js';
import { tempDir, type TempDir } from '../helpers/fixtures.js';

const test = suite('actors: durable renames (directory fsync)');
let dir: TempDir;

test.before(async () => {
  dir = await tempDir('fts-durable-');
});
test.after(async () => {
  await dir.remove();
});

test('a directory with a fresh rename in it syncs', async () => {
  writeFileSync(join(dir.path, 'a.part'), 'data');
  renameSync(join(dir.path, 'a.part'), join(dir.path, 'a'));
  await syncDirectory(dir.path);
  assert.ok(existsSync(join(dir.path, 'a')));
});

test('a directory that does not exist: the error (ENOENT) reaches the caller', async () => {
  let code: string | undefined;
  try {
    await syncDirectory(join(dir.path, 'missing'));
  } catch (err) {
    code = (err as NodeJS.ErrnoException).code;
  }
  assert.is(code, 'ENOENT');
});

test.run();
