/**
 * Storage's commit when the folder fsync after the rename fails (a fault
 * injected through `syncFolder`, as an EIO from a failing disk would come):
 * the upload is refused with -740 and nothing is left under its name, in the
 * folder or in the listing; the name is free for the next upload. And the
 * index of hashes, written in the background: flushIndex() waits for it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Storage } from '../../engine/storage.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { SortBy, SortOrder } from '../../protocol/constants.js';
import { WorkerPool } from '../../workers/pool.js';
import { tempDir, type TempDir } from '../helpers/fixtures.js';

const test = suite('engine: storage commit');
let pool: WorkerPool;
let dir: TempDir;

test.before(async () => {
  pool = new WorkerPool({ threads: 1 });
  dir = await tempDir('fts-storage-');
});
test.after(async () => {
  // Each storage's index is saved in the background a second after its last
  // commit: written into the folder while it is being removed, it fails the removal.
  await Promise.all(made.map((s) => s.flushIndex()));
  await pool.close();
  await dir.remove();
});

const made: Storage[] = [];
/** A Storage this suite flushes before removing its folder. */
function storageOf(...args: ConstructorParameters<typeof Storage>): Storage {
  const storage = new Storage(...args);
  made.push(storage);
  return storage;
}

const data = Buffer.from('stored bytes\n');
const sha = createHash('sha256').update(data).digest('hex');

test('the folder fsync fails after the rename: -740, the file is gone again, not listed, and its name is free', async () => {
  let failNext = true;
  const synced: string[] = [];
  const storage = storageOf(
    {
      root: dir.path,
      directIo: false,
      syncFolder: async (folder) => {
        synced.push(folder);
        if (failNext) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
    },
    pool,
  );
  await storage.init();
  const first = await storage.reserveUpload({ name: 'a.bin', size: data.length, transferId: '00000000-0000-4000-8000-0000000000a1', overwrite: false });
  writeSync(first.fd, data, 0, data.length, 0);
  let error: unknown;
  try {
    await first.commit(sha, undefined);
  } catch (err) {
    error = err;
  }
  assert.instance(error, FtsError);
  assert.is((error as FtsError).code, ErrorCode.STORAGE_ERROR);
  assert.equal(synced, [dir.path], 'the folder the file was renamed into was synced');
  assert.not.ok(existsSync(join(dir.path, 'a.bin')), 'nothing under the name');
  assert.not.ok(existsSync(first.tempPath), 'nor under the temporary name');
  const listed = await storage.list({ pattern: '*', offset: 0, limit: 0, sortBy: SortBy.NAME, sortOrder: SortOrder.ASC });
  assert.is(listed.total, 0, 'not listed');
  // The same upload again, the disk well: stored.
  failNext = false;
  const second = await storage.reserveUpload({ name: 'a.bin', size: data.length, transferId: '00000000-0000-4000-8000-0000000000a2', overwrite: false });
  writeSync(second.fd, data, 0, data.length, 0);
  const stored = await second.commit(sha, undefined);
  assert.is(stored.sha256, sha);
  assert.ok(existsSync(join(dir.path, 'a.bin')));
});

test("the index is written in the background; flushIndex() waits for every change so far (what a server's stop() does)", async () => {
  const root = join(dir.path, 'index-root');
  const storage = storageOf({ root, directIo: false }, pool);
  await storage.init();
  const names = Array.from({ length: 12 }, (_, i) => `n${i}.bin`);
  await Promise.all(
    names.map(async (name, i) => {
      const slot = await storage.reserveUpload({ name, size: data.length, transferId: `00000000-0000-4000-8000-0000000001${String(i).padStart(2, '0')}`, overwrite: false });
      writeSync(slot.fd, data, 0, data.length, 0);
      await slot.commit(sha, undefined);
    }),
  );
  await storage.flushIndex();
  const index = JSON.parse(readFileSync(join(root, '.fts', 'index.json'), 'utf8')) as Record<string, { sha256: string; size: number }>;
  assert.equal(Object.keys(index).sort(), [...names].sort(), 'every stored file is in the index once flushed');
  for (const name of names) assert.is(index[name]!.sha256, sha);
});

test('a quota counts the stored files once, follows the uploads stored, and counts again once the count is quotaRecountMs old', async () => {
  const transfer = (n: number) => `00000000-0000-4000-8000-0000000002${String(n).padStart(2, '0')}`;
  const store = async (storage: Storage, name: string, n: number, overwrite = false) => {
    const slot = await storage.reserveUpload({ name, size: data.length, transferId: transfer(n), overwrite });
    writeSync(slot.fd, data, 0, data.length, 0);
    await slot.commit(sha, undefined);
  };
  const refusal = async (storage: Storage, size: number, n: number): Promise<FtsError> => {
    try {
      await storage.reserveUpload({ name: `big${n}.bin`, size, transferId: transfer(n), overwrite: false });
    } catch (err) {
      return err as FtsError;
    }
    throw new Error('expected a refusal');
  };
  for (const recountMs of [60_000, 0]) {
    const root = join(dir.path, `quota-${recountMs}`);
    const quota = 10 * data.length;
    const storage = storageOf({ root, directIo: false, quotaBytes: quota, quotaRecountMs: recountMs }, pool);
    await storage.init();
    await store(storage, 'q1.bin', 1);
    await store(storage, 'q2.bin', 2);
    await store(storage, 'q2.bin', 3, true); // replaced: still one file's worth
    const counted = await refusal(storage, quota, 4);
    assert.is(counted.code, ErrorCode.STORAGE_FULL);
    assert.is(counted.available, quota - 2 * data.length, 'the uploads stored are counted, the replaced file once');
    // Put there by other means: seen only once the count is recounted.
    writeFileSync(join(root, 'other.bin'), Buffer.alloc(3 * data.length));
    const later = await refusal(storage, quota, 5);
    assert.is(later.available, recountMs === 0 ? quota - 5 * data.length : quota - 2 * data.length, `recountMs ${recountMs}`);
  }
});

test("an upload renamed into the root while the quota's count is being taken is counted: the next upload that would exceed the quota is refused", async () => {
  const root = join(dir.path, 'quota-race');
  mkdirSync(root, { recursive: true });
  // Files enough that counting them takes a while.
  for (let i = 0; i < 3000; i++) writeFileSync(join(root, `pre${i}`), 'x');
  const MiB = 1024 * 1024;
  const quota = 3000 + 10 * MiB;
  const storage = storageOf({ root, directIo: false, quotaBytes: quota, quotaRecountMs: 300 }, pool);
  await storage.init();
  const id = (n: number) => `00000000-0000-4000-8000-0000000003${String(n).padStart(2, '0')}`;
  const big = Buffer.alloc(6 * MiB, 1);
  const bigSha = createHash('sha256').update(big).digest('hex');
  const a = await storage.reserveUpload({ name: 'A', size: big.length, transferId: id(1), overwrite: false });
  writeSync(a.fd, big, 0, big.length, 0);
  await new Promise((r) => setTimeout(r, 350)); // the count is old: the next check takes it again
  const probe = storage.reserveUpload({ name: 'probe', size: quota + 1, transferId: id(2), overwrite: false }).then(
    () => assert.unreachable('the probe is larger than the quota'),
    (err: unknown) => err as FtsError,
  );
  await new Promise((r) => setImmediate(r));
  await a.commit(bigSha, undefined); // renamed while the probe counts
  assert.is((await probe as FtsError).code, ErrorCode.STORAGE_FULL);
  let refused: unknown;
  try {
    await storage.reserveUpload({ name: 'B', size: big.length, transferId: id(3), overwrite: false });
  } catch (err) {
    refused = err;
  }
  assert.instance(refused, FtsError, 'a second 6 MiB upload does not fit a 10 MiB quota');
  assert.is((refused as FtsError).available, quota - 3000 - big.length);
});

test('two uploads asking at once for more than the quota leaves: one is reserved, the other refused', async () => {
  const root = join(dir.path, 'quota-together');
  const MiB = 1024 * 1024;
  const storage = storageOf({ root, directIo: false, quotaBytes: 10 * MiB }, pool);
  await storage.init();
  const id = (n: number) => `00000000-0000-4000-8000-0000000004${String(n).padStart(2, '0')}`;
  const results = await Promise.allSettled([0, 1].map((n) => storage.reserveUpload({ name: `t${n}.bin`, size: 6 * MiB, transferId: id(n), overwrite: false })));
  const reserved = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r) => r.status === 'rejected');
  assert.is(reserved.length, 1, 'one of them');
  assert.is(((refused[0] as PromiseRejectedResult).reason as FtsError).code, ErrorCode.STORAGE_FULL);
  for (const r of reserved) await (r as PromiseFulfilledResult<Awaited<ReturnType<Storage['reserveUpload']>>>).value.discard();
});

test.run();
