#!/usr/bin/env node
// The `fts` executable: fts ships its TypeScript sources and runs them through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../engine/cli/main.ts');
const code = await main(process.argv);
if (code !== 0) process.exit(code);
