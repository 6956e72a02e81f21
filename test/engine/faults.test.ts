/**
 * The network misbehaving without breaking: a slow link (every frame
 * delayed), and a peer that goes silent without closing (blackhole), which
 * the client must detect through its heartbeat (or its ACK timeout) on an
 * injected clock, then reconnect and resume.
 */
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { WorkerPool } from '../../workers/pool.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { sha256File, sleep, startPair, within, writeRandomFile } from '../helpers/fixtures.js';
import { FaultProxy } from '../helpers/proxy.js';
import { until } from '../helpers/resume-helpers.js';

const test = suite('engine: slow and silent networks');
const MiB = 1024 * 1024;
let pool: WorkerPool;
test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});


test('every frame delayed 20 ms each way: upload and download still end verified', async () => {
  const p = await startPair({ pool, noConnect: true });
  const proxy = new FaultProxy(p.addr);
  const client = new FileTransferClient({ pool, stateDir: false, autoReconnect: false });
  try {
    await client.connect(await proxy.start());
    proxy.mode = { kind: 'delay', ms: 20, direction: 'both' };
    const local = join(p.work, 'slow.src');
    const sha = await writeRandomFile(local, 8 * MiB);
    const up = await within(client.uploadFile(local, 'slow.bin'), 30_000, 'upload over a slow link');
    const down = await within(client.downloadFile('slow.bin', join(p.work, 'slow.dl')), 30_000, 'download over a slow link');
    assert.ok(up.verified && down.verified);
    assert.is(await sha256File(join(p.work, 'slow.dl')), sha);
    // 32 CHUNK_DATA frames each way at least, besides the control frames.
    assert.ok(proxy.counters.framesDelayed >= 64, `frames delayed: ${proxy.counters.framesDelayed}`);
  } finally {
    await client.disconnect({ timeoutMs: 1000 }).catch(() => undefined);
    await proxy.stop();
    await p.cleanup();
  }
});

test('a server gone silent mid-upload (blackhole): detected on the injected clock, the client reconnects and the upload resumes', async () => {
  const p = await startPair({ pool, noConnect: true });
  const proxy = new FaultProxy(p.addr);
  const clock = new FakeClock();
  const client = new FileTransferClient({
    pool,
    clock,
    stateDir: false,
    onResumeFailure: 'fail',
    reconnect: { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 4000, maxAttempts: 5, jitter: 0 },
  });
  const events: string[] = [];
  for (const name of ['disconnected', 'reconnecting', 'reconnected', 'reconnectFailed']) client.on(name, () => events.push(name));
  try {
    await client.connect(await proxy.start());
    const local = join(p.work, 'silent.src');
    const size = 16 * MiB;
    const sha = await writeRandomFile(local, size);
    let silenced = false;
    const upload = client.uploadFile(local, 'silent.bin', {
      compression: 'none',
      onProgress: (pr) => {
        if (!silenced && pr.bytes >= 2 * MiB) {
          silenced = true;
          proxy.mode = { kind: 'blackhole', direction: 'both' };
        }
      },
    });
    upload.catch(() => undefined);
    await until(() => silenced, 10_000, 'blackhole');
    await sleep(100); // what was in flight lands in the hole
    assert.equal(events, [], 'nothing noticed yet: the socket is open');
    // 15 s without a frame: HEARTBEAT (into the hole); 30 s more: lost.
    clock.advance(15_000);
    clock.advance(30_000);
    await until(() => events.includes('reconnecting'), 5_000, 'disconnected, then reconnecting');
    assert.is(events[0], 'disconnected');
    proxy.mode = { kind: 'pass' };
    clock.advance(1_000);
    const r = await within(upload, 30_000, 'upload after the reconnection');
    assert.ok(events.includes('reconnected'));
    assert.not.ok(events.includes('reconnectFailed'));
    assert.ok(r.verified);
    assert.is(await sha256File(join(p.root, 'silent.bin')), sha);
  } finally {
    await client.disconnect({ timeoutMs: 1000 }).catch(() => undefined);
    await proxy.stop();
    await p.cleanup();
  }
});

test.run();
