/**
 * A server in its own process, for crash tests: `server-child.ts ROOT PORT`.
 * Prints "listening PORT" once it accepts connections. Killed with SIGKILL
 * by the test, so nothing here runs at exit.
 */
import { FileTransferServer } from '../../engine/server.js';

const [root, port] = process.argv.slice(2);
const server = new FileTransferServer({ root: root!, host: '127.0.0.1', port: Number(port), checkpointEveryBytes: 2 * 1024 * 1024 });
const addr = await server.start();
process.stdout.write(`listening ${addr.port}\n`);
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
