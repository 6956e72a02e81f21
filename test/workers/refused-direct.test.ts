/**
 * workers/refused-direct.ts over real descriptors: a refusal sticks to its
 * file, not to the descriptor number the kernel hands out again.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RefusedDirect } from '../../workers/refused-direct.js';
import { tempDir } from '../helpers/fixtures.js';

const test = suite('workers: refused direct descriptors');

test('a refused descriptor stays refused while it names its file; the same number reused for another file is not', async () => {
  const dir = await tempDir('fts-refused-');
  try {
    const a = join(dir.path, 'a');
    const b = join(dir.path, 'b');
    writeFileSync(a, 'a');
    writeFileSync(b, 'b');
    const refused = new RefusedDirect();
    const fdA = openSync(a, 'r');
    refused.add(fdA);
    assert.ok(refused.has(fdA));
    assert.ok(refused.has(fdA), 'still, on a second look');
    closeSync(fdA);
    // The kernel hands out the lowest free number: b gets a's.
    const fdB = openSync(b, 'r');
    try {
      assert.is(fdB, fdA, 'the number was reused (what the check is for)');
      assert.not.ok(refused.has(fdB), "b does not inherit a's refusal");
      refused.add(fdB);
      assert.ok(refused.has(fdB));
    } finally {
      closeSync(fdB);
    }
    assert.not.ok(refused.has(fdB), 'a closed descriptor is not refused');
  } finally {
    await dir.remove();
  }
});

test.run();
