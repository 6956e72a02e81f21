/**
 * A client in its own process, for crash tests:
 * `client-child.ts put|get PORT LOCAL REMOTE STATE_DIR`. Prints
 * "progress BYTES" as the transfer goes; the test kills it with SIGKILL.
 */
import { FileTransferClient } from '../../engine/client.js';

const [role, port, local, remote, stateDir] = process.argv.slice(2);
const client = new FileTransferClient({ stateDir: stateDir!, checkpointEveryBytes: 2 * 1024 * 1024 });
await client.connect({ host: '127.0.0.1', port: Number(port) });
const onProgress = (p: { bytes: number }) => process.stdout.write(`progress ${p.bytes}\n`);
if (role === 'put') await client.uploadFile(local!, remote!, { onProgress });
else await client.downloadFile(remote!, local!, { onProgress });
process.stdout.write('done\n');
await client.disconnect();
