// Piscina's worker entry. Worker threads do not inherit the parent's tsx
// loader, so this plain-JS file registers it before loading the TypeScript
// tasks, then re-exports them under the names the pool runs.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./tasks.ts');

export const readChunk = tasks.readChunk;
export const writeChunk = tasks.writeChunk;
export const syncFile = tasks.syncFile;
export const hashFile = tasks.hashFile;
