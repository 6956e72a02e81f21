/**
 * Run by test/engine/lifecycle.test.ts in a child process
 * (`node --import tsx test/helpers/lifecycle-child.ts <mode>`): starts a
 * server and a client with their default (own) worker pools, moves a file
 * each way, stops both, prints `done`, and must then exit by itself: any
 * handle left open keeps it alive and fails the test.
 *
 * Modes: `normal` (client disconnects, then the server stops), `server-first`
 * (the server stops while the client is connected, then the client
 * disconnects), `never-connected` (a server that saw no client).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTransferClient } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';

const mode = process.argv[2] ?? 'normal';
const dir = await mkdtemp(join(tmpdir(), 'fts-child-'));
try {
  const server = new FileTransferServer({ root: join(dir, 'root'), host: '127.0.0.1', port: 0 });
  const addr = await server.start();
  if (mode !== 'never-connected') {
    const client = new FileTransferClient({ stateDir: false });
    await client.connect(addr);
    const data = randomBytes(700_000);
    await writeFile(join(dir, 'src.bin'), data);
    const up = await client.uploadFile(join(dir, 'src.bin'), 'x.bin');
    const down = await client.downloadFile('x.bin', join(dir, 'back.bin'));
    const sha = createHash('sha256').update(data).digest('hex');
    const back = createHash('sha256').update(await readFile(join(dir, 'back.bin'))).digest('hex');
    if (!up.verified || !down.verified || up.sha256 !== sha || back !== sha) throw new Error('transfer not verified');
    if (mode === 'server-first') {
      const gone = new Promise<{ reason: string }>((r) => client.once('disconnected', r));
      await server.stop();
      const { reason } = await gone;
      if (reason !== 'server_shutdown') throw new Error(`disconnected reason ${reason}`);
      await client.disconnect();
    } else {
      await client.disconnect();
      await server.stop();
    }
  } else {
    await server.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log('done');
