/**
 * The client process killed with SIGKILL mid-transfer: running the same
 * transfer again (same state folder) resumes it, fetching or sending only
 * what was not durable, and ends verified.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient, type TransferResumed } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';
import { WorkerPool } from '../../workers/pool.js';
import { sha256File, tempDir, within, writeRandomFile } from '../helpers/fixtures.js';

const test = suite('engine: client killed mid-transfer');
const MiB = 1024 * 1024;
const CHILD = join(import.meta.dirname, '..', 'helpers', 'client-child.ts');

/** Runs the child until it reported `killAt` bytes and `ready()` holds, then SIGKILLs it. */
async function killMidway(args: string[], killAt: number, ready: () => Promise<boolean> = async () => true): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let killed = false;
  let checking = false;
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    const last = [...out.matchAll(/progress (\d+)/g)].at(-1);
    if (killed || checking || !last || Number(last[1]) < killAt) return;
    checking = true;
    void ready().then((ok) => {
      checking = false;
      if (ok && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
  });
  await within(once(child, 'exit'), 60_000, 'client child');
  assert.ok(killed, `the child was killed midway (output: ${out.slice(-200)})`);
  assert.not.ok(out.includes('done'), 'the transfer had not finished');
}

for (const direction of ['download', 'upload'] as const) {
  test(`${direction}: SIGKILL of the client midway, the same ${direction} run again resumes and ends verified`, async () => {
    const root = await tempDir('fts-cc-root-');
    const work = await tempDir('fts-cc-work-');
    const state = await tempDir('fts-cc-state-');
    const pool = new WorkerPool({ threads: 1 });
    const server = new FileTransferServer({ root: root.path, port: 0, pool, checkpointEveryBytes: 2 * MiB });
    const { port } = await server.start();
    const size = 40 * MiB;
    const source = join(work.path, 'source.bin');
    const sha = await writeRandomFile(source, size);
    const target = join(work.path, 'copy.bin');
    try {
      if (direction === 'download') {
        const seed = new FileTransferClient({ pool, stateDir: false });
        await seed.connect({ host: '127.0.0.1', port });
        await seed.uploadFile(source, 'data.bin');
        await seed.disconnect();
        // Killed once a durable part is on record: its state names synced chunks.
        await killMidway(['get', String(port), target, 'data.bin', state.path], size / 4, async () => {
          for (const name of await readdir(state.path)) {
            if (!name.endsWith('.json')) continue;
            const record = JSON.parse(await readFile(join(state.path, name), 'utf8')) as { written?: string };
            if (record.written) return true;
          }
          return false;
        });
      } else {
        // Killed once its record is saved (the server checkpoints the data itself).
        await killMidway(['put', String(port), source, 'data.bin', state.path], size / 2, async () => (await readdir(state.path)).some((n) => n.endsWith('.json')));
      }
      const client = new FileTransferClient({ pool, stateDir: state.path });
      const resumes: TransferResumed[] = [];
      client.on('transferResumed', (r: TransferResumed) => resumes.push(r));
      await client.connect({ host: '127.0.0.1', port });
      const result = direction === 'download' ? await client.downloadFile('data.bin', target) : await client.uploadFile(source, 'data.bin');
      await client.disconnect();
      assert.ok(result.verified);
      assert.is(result.sha256, sha);
      assert.is(await sha256File(direction === 'download' ? target : join(root.path, 'data.bin')), sha);
      assert.is(resumes.length, 1, 'the second run resumed the first one');
      assert.is(resumes[0]!.status, 'resumable');
      assert.ok(resumes[0]!.chunksKept > 0, `chunks kept ${resumes[0]!.chunksKept}`);
      // Only what was not durable went again.
      assert.ok(result.bytesOnWire < size, `second run put ${result.bytesOnWire} bytes on the wire for ${size}`);
      assert.equal(await readdir(state.path), [], 'the state record is gone once the transfer completed');
      assert.equal((await readdir(work.path)).filter((n) => n.endsWith('.fts-part')), []);
    } finally {
      await server.stop();
      await pool.close();
      await root.remove();
      await work.remove();
      await state.remove();
    }
  });
}

test.run();
