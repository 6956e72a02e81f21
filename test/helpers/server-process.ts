/**
 * Starts test/helpers/server-child.ts (a server in its own process, for crash
 * tests) on `root` and `port`; resolves once it accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { within } from './fixtures.js';

const CHILD = join(import.meta.dirname, 'server-child.ts');

export async function startServerChild(root: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await within(
    new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`server child exited with ${code}`)));
    }),
    20_000,
    'server child start',
  );
  return child;
}
