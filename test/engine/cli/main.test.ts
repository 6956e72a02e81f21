/**
 * The `fts` command line (engine/cli/main.ts) for real: `fts serve` runs as
 * its own process on a free port over a temp folder, and every client command
 * is another process (`node bin/fts.js ...`), over real sockets and files.
 * Then the esbuild bundle (`node bin/build.mjs` → dist/fts.mjs) does one round
 * trip, every command run from the bundle.
 *
 * Every child gets XDG_CACHE_HOME in a temp folder and the client commands
 * `--state-dir` in another, so nothing is written to ~/.cache; every child is
 * killed (by its own pid) when its test or the process ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { TransferResult } from '../../../engine/client.js';
import { ClientStateStore } from '../../../engine/client-state.js';
import { ErrorCode } from '../../../protocol/errors.js';
import { listDir, sha256File, sleep, tempDir, within, writeRandomFile, type TempDir } from '../../helpers/fixtures.js';
import { freePort } from '../../helpers/resume-helpers.js';

const REPO = resolve(import.meta.dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'fts.js');
const BUNDLE = join(REPO, 'dist', 'fts.mjs');
const KiB = 1024;

// ---------------------------------------------------------------- processes

/** Every child still running; killed (each by its pid) if the test process ends first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** One cache folder for every child, so a default state dir would land here, not in ~/.cache. */
let cacheDir: TempDir | undefined;
async function childEnv(): Promise<NodeJS.ProcessEnv> {
  cacheDir ??= await tempDir('fts-cli-cache-');
  return { ...process.env, XDG_CACHE_HOME: cacheDir.path };
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node <entry> ...args` to its end (killed after `timeoutMs`). */
async function run(args: string[], opts: { cwd: string; entry?: string; timeoutMs?: number }): Promise<Run> {
  const env = await childEnv();
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = track(spawn(process.execPath, [opts.entry ?? BIN, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.once('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolveRun({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** `what`, with the run's output, for assertion messages. */
function show(r: Run, what: string): string {
  return `${what} (exit ${r.code}, signal ${r.signal}, stdout ${JSON.stringify(r.stdout.slice(-1500))}, stderr ${JSON.stringify(r.stderr.slice(-1500))})`;
}

function assertOk(r: Run, what: string): void {
  assert.is(r.code, 0, show(r, `${what}: exit 0`));
}

/** Exit 2 and the one `fts: error <code> <name>: <message>` line the README promises. */
function assertFtsError(r: Run, code: number, name: string, what: string): void {
  assert.is(r.code, 2, show(r, `${what}: exit 2`));
  const m = /^fts: error (-\d+) ([a-z_]+): (.+)\n$/.exec(r.stderr);
  assert.ok(m, show(r, `${what}: stderr is one 'fts: error <code> <name>: <message>' line`));
  assert.is(Number(m![1]), code, show(r, `${what}: error code`));
  assert.is(m![2], name, show(r, `${what}: error name`));
  assert.is(r.stdout, '', show(r, `${what}: nothing on stdout`));
}

/** The one JSON value a `--json` run printed: exactly one line on stdout. */
function jsonOut<T>(r: Run, what: string): T {
  assert.ok(r.stdout.endsWith('\n') && r.stdout.indexOf('\n') === r.stdout.length - 1, show(r, `${what}: exactly one line on stdout`));
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.unreachable(show(r, `${what}: stdout is JSON`));
    throw new Error('unreachable');
  }
}

interface Served {
  child: ChildProcess;
  port: number;
  /** The root as the server printed it. */
  root: string;
  stderr(): string;
  /** Sends `signal`; resolves with how the process ended (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Starts `node <entry> serve --host 127.0.0.1 --port 0 ...args`; resolves once it printed its port. */
async function serve(args: string[], opts: { cwd: string; entry?: string }): Promise<Served> {
  const env = await childEnv();
  const child = track(spawn(process.execPath, [opts.entry ?? BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  try {
    const m = await within(
      new Promise<RegExpExecArray>((resolveStart, reject) => {
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /^fts serving (.+) on 127\.0\.0\.1:(\d+)\n/m.exec(stderr);
          if (m) resolveStart(m);
        });
        void exited.then(({ code, signal }) => reject(new Error(`fts serve exited (${code ?? signal}) before listening: stdout ${JSON.stringify(stdout)} stderr ${JSON.stringify(stderr)}`)));
      }),
      20_000,
      'fts serve start',
    );
    const port = Number(m[2]);
    assert.ok(port > 0 && port < 65536, `a real port: ${m[2]}`);
    return {
      child,
      port,
      root: m[1]!,
      stderr: () => stderr,
      stop: async (signal = 'SIGTERM') => {
        const t0 = Date.now();
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const end = await exited;
        clearTimeout(killer);
        return { ...end, ms: Date.now() - t0 };
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}


/** Whether something accepts TCP connections on 127.0.0.1:port. */
async function accepts(port: number): Promise<boolean> {
  const s = connect(port, '127.0.0.1');
  try {
    await within(once(s, 'connect'), 3_000, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    s.destroy();
  }
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

async function sameBytes(a: string, b: string, what: string): Promise<void> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  assert.is(x.length, y.length, `${what}: same size`);
  assert.ok(x.equals(y), `${what}: byte-identical`);
}

/** What `put`/`get --json` print: the library's result. */
type TransferJson = TransferResult;

interface ListJson {
  total: number;
  hasMore: boolean;
  files: { name: string; size: number; sha256: string; createdMs: number; modifiedMs: number }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ================================================= one server, client commands

const cli = suite('cli: fts serve + put/get/ls/resumable as processes');

interface Env {
  server: Served;
  root: TempDir;
  work: TempDir;
  state: TempDir;
  /** Client flags: this server's port and the temp state dir. */
  flags: string[];
}
let envPromise: Promise<Env> | undefined;
/** The group's server, started by the first test that needs it (a failing start fails that test, not silently the hook). */
function env(): Promise<Env> {
  envPromise ??= (async () => {
    const root = await tempDir('fts-cli-root-');
    const work = await tempDir('fts-cli-work-');
    const state = await tempDir('fts-cli-state-');
    // A small receive budget: every upload of the group pauses and resumes the server's reads (maxBufferedBytes).
    const server = await serve(['--root', root.path, '--max-buffered', '256K'], { cwd: work.path });
    return { server, root, work, state, flags: ['--port', String(server.port), '--state-dir', state.path] };
  })();
  return envPromise;
}

/** Local files, with their SHA-256. */
const files: Record<string, { path: string; size: number; sha: string }> = {};
async function localFile(e: Env, name: string, size: number): Promise<{ path: string; size: number; sha: string }> {
  const path = join(e.work.path, name);
  const sha = await writeRandomFile(path, size);
  return (files[name] = { path, size, sha });
}

cli.after(async () => {
  if (!envPromise) return;
  const e = await envPromise.catch(() => undefined);
  if (!e) return;
  await e.server.stop('SIGKILL');
  await Promise.all([e.root.remove(), e.work.remove(), e.state.remove()]);
});

cli('serve prints "fts serving <root> on <host>:<port>" with the real port, and accepts connections there', async () => {
  const e = await env();
  assert.is(e.server.root, e.root.path, 'the root it prints is the one given');
  assert.ok(await accepts(e.server.port), 'something listens on the printed port');
});

cli('put LOCAL --json: exit 0, one JSON result (id, bytes, sha256 of the file, verified), stored file byte-identical', async () => {
  const e = await env();
  const f = await localFile(e, 'alpha.bin', 300_000);
  const r = await run(['put', f.path, ...e.flags, '--json'], { cwd: e.work.path });
  assertOk(r, 'put');
  assert.is(r.stderr, '', show(r, 'nothing on stderr (no progress bar when stderr is no terminal)'));
  const j = jsonOut<TransferJson>(r, 'put --json');
  assert.match(j.transferId, UUID, 'transferId is a UUID');
  assert.is(j.direction, 'upload');
  assert.is(j.remoteName, 'alpha.bin', 'REMOTE defaults to the base name of LOCAL');
  assert.is(j.localPath, f.path);
  assert.is(j.bytes, f.size);
  assert.is(j.sha256, f.sha, 'sha256 is the file content hash');
  assert.is(j.verified, true);
  assert.type(j.durationMs, 'number');
  await sameBytes(join(e.root.path, 'alpha.bin'), f.path, 'stored alpha.bin');
  await waitFor(() => e.server.stderr().includes(`stored alpha.bin (${f.size} bytes)\n`), 5_000, 'the server logs the stored file');
});

cli('put LOCAL REMOTE (text): stored under REMOTE; one "uploaded ... verified" line', async () => {
  const e = await env();
  const f = await localFile(e, 'beta.src', 1024 * KiB);
  const r = await run(['put', f.path, 'beta.bin', ...e.flags], { cwd: e.work.path });
  assertOk(r, 'put');
  const line = new RegExp(`^uploaded ${f.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -> beta\\.bin: ${f.size} bytes in \\d+ ms \\((\\d+\\.\\d|-) MB/s\\), sha256 ${f.sha}, verified\\n$`);
  assert.match(r.stdout, line, show(r, 'the text result'));
  await sameBytes(join(e.root.path, 'beta.bin'), f.path, 'stored beta.bin');
  assert.not.ok(existsSync(join(e.root.path, 'beta.src')), 'nothing stored under the local name');
});

cli('put of an existing name: exit 2, -744 file_already_exists, file unchanged; with --overwrite: replaced', async () => {
  const e = await env();
  const old = files['alpha.bin'];
  assert.ok(old, 'alpha.bin was uploaded by an earlier test');
  const f = await localFile(e, 'alpha-v2.bin', 200_000);
  const r = await run(['put', f.path, 'alpha.bin', ...e.flags, '--json'], { cwd: e.work.path });
  assertFtsError(r, ErrorCode.FILE_ALREADY_EXISTS, 'file_already_exists', 'put without --overwrite');
  assert.match(r.stderr, 'alpha.bin', 'the message names the file');
  assert.is(await sha256File(join(e.root.path, 'alpha.bin')), old!.sha, 'the stored file is untouched');

  const r2 = await run(['put', f.path, 'alpha.bin', '--overwrite', ...e.flags, '--json'], { cwd: e.work.path });
  assertOk(r2, 'put --overwrite');
  const j = jsonOut<TransferJson>(r2, 'put --overwrite --json');
  assert.is(j.sha256, f.sha);
  assert.is(j.bytes, f.size);
  assert.is(j.verified, true);
  await sameBytes(join(e.root.path, 'alpha.bin'), f.path, 'alpha.bin replaced');
  assert.equal(await listDir(join(e.root.path, '.fts', 'tmp')), [], 'no upload leftovers in root/.fts/tmp');
});

cli('put of a missing local file: exit 2, -753 file_not_found naming the path; nothing stored', async () => {
  const e = await env();
  const missing = join(e.work.path, 'no-such-file.bin');
  const r = await run(['put', missing, ...e.flags], { cwd: e.work.path });
  assertFtsError(r, ErrorCode.FILE_NOT_FOUND, 'file_not_found', 'put of a missing file');
  assert.match(r.stderr, missing, 'the message names the path');
  assert.not.ok(existsSync(join(e.root.path, 'no-such-file.bin')));
});

cli('get REMOTE LOCAL --json: exit 0, byte-identical, JSON result of the download; no .fts-part left', async () => {
  const e = await env();
  const f = files['alpha-v2.bin']!;
  const dir = join(e.work.path, 'down');
  await mkdir(dir);
  const target = join(dir, 'alpha.out');
  const r = await run(['get', 'alpha.bin', target, ...e.flags, '--json'], { cwd: e.work.path });
  assertOk(r, 'get');
  const j = jsonOut<TransferJson>(r, 'get --json');
  assert.is(j.direction, 'download');
  assert.is(j.remoteName, 'alpha.bin');
  assert.is(j.localPath, target);
  assert.is(j.bytes, f.size);
  assert.is(j.sha256, f.sha);
  assert.is(j.verified, true);
  await sameBytes(target, f.path, 'downloaded alpha.out');
  assert.equal(await listDir(dir), ['alpha.out'], 'only the target in the folder');
});

cli('get REMOTE (no LOCAL, text): written under the remote name in the current folder', async () => {
  const e = await env();
  const f = files['beta.src']!;
  const cwd = join(e.work.path, 'cwd');
  await mkdir(cwd);
  const r = await run(['get', 'beta.bin', ...e.flags], { cwd });
  assertOk(r, 'get');
  assert.match(r.stdout, /^downloaded beta\.bin -> .*beta\.bin: 1048576 bytes in \d+ ms .*, sha256 [0-9a-f]{64}, verified\n$/, show(r, 'the text result'));
  assert.match(r.stdout, f.sha);
  await sameBytes(join(cwd, 'beta.bin'), f.path, 'downloaded beta.bin');
});

cli('get of a missing remote name: exit 2, -746 file_not_found_on_server; no file (nor partial) under the target name', async () => {
  const e = await env();
  const dir = join(e.work.path, 'down-missing');
  await mkdir(dir);
  const r = await run(['get', 'nope.bin', join(dir, 'nope.out'), ...e.flags, '--json'], { cwd: e.work.path });
  assertFtsError(r, ErrorCode.FILE_NOT_FOUND_ON_SERVER, 'file_not_found_on_server', 'get of a missing name');
  assert.match(r.stderr, 'nope.bin');
  assert.equal(await listDir(dir), [], 'nothing written beside the target');
});

cli('ls (text): one line per file (size, time, name), then "N of T files"', async () => {
  const e = await env();
  // More files, of distinct sizes, for the listing tests (uploaded at once by four processes).
  const more = [
    ['log-a.txt', 10_000],
    ['log-b.txt', 30_000],
    ['log-c.txt', 20_000],
    ['data.csv', 5_000],
  ] as const;
  const made = await Promise.all(more.map(([n, s]) => localFile(e, n, s)));
  const puts = await Promise.all(made.map((f) => run(['put', f.path, ...e.flags], { cwd: e.work.path })));
  puts.forEach((p, i) => assertOk(p, `put ${more[i]![0]}`));

  const r = await run(['ls', ...e.flags], { cwd: e.work.path });
  assertOk(r, 'ls');
  const lines = r.stdout.trimEnd().split('\n');
  assert.is(lines.at(-1), '6 of 6 files', show(r, 'the closing line'));
  const rows = lines.slice(0, -1).map((l) => /^ *(\d+) {2}(\S+) {2}(.+)$/.exec(l));
  assert.ok(rows.every(Boolean), show(r, 'every row is "size  time  name"'));
  assert.equal(
    rows.map((m) => m![3]),
    ['alpha.bin', 'beta.bin', 'data.csv', 'log-a.txt', 'log-b.txt', 'log-c.txt'],
    'every uploaded name, by name',
  );
  assert.equal(
    rows.map((m) => Number(m![1])),
    [200_000, 1024 * KiB, 5_000, 10_000, 30_000, 20_000],
    'their sizes',
  );
  for (const m of rows) assert.ok(!Number.isNaN(Date.parse(m![2]!)), `an ISO time: ${m![2]}`);
});

cli('ls PATTERN --json, --sort size --desc, --offset/--limit: names, order, total and hasMore', async () => {
  const e = await env();
  const ls = async (...args: string[]) => {
    const r = await run(['ls', ...args, ...e.flags, '--json'], { cwd: e.work.path });
    assertOk(r, `ls ${args.join(' ')}`);
    return jsonOut<ListJson>(r, `ls ${args.join(' ')} --json`);
  };
  const [glob, bySize, page, lastPage, none] = await Promise.all([
    ls('log-*.txt'),
    ls('--sort', 'size', '--desc'),
    ls('*', '--sort', 'size', '--offset', '1', '--limit', '2'),
    ls('log-*', '--offset', '2', '--limit', '5'),
    ls('*.nothing'),
  ]);
  assert.equal(glob.files.map((f) => f.name), ['log-a.txt', 'log-b.txt', 'log-c.txt'], 'glob, by name');
  assert.is(glob.total, 3);
  assert.is(glob.hasMore, false);
  assert.is(glob.files[0]!.size, 10_000);
  assert.is(glob.files[0]!.sha256, files['log-a.txt']!.sha, 'each entry carries the stored sha256');

  assert.equal(bySize.files.map((f) => f.name), ['beta.bin', 'alpha.bin', 'log-b.txt', 'log-c.txt', 'log-a.txt', 'data.csv'], 'size, descending');
  assert.is(bySize.total, 6);
  assert.is(bySize.hasMore, false);

  assert.equal(page.files.map((f) => f.name), ['log-a.txt', 'log-c.txt'], 'size ascending, offset 1, limit 2');
  assert.is(page.total, 6);
  assert.is(page.hasMore, true);

  assert.equal(lastPage.files.map((f) => f.name), ['log-c.txt'], 'offset 2 of 3');
  assert.is(lastPage.total, 3);
  assert.is(lastPage.hasMore, false);

  assert.equal(none, { total: 0, hasMore: false, files: [] }, 'no match: an empty page');
});

cli('ls --sort with an unknown key is a usage error (exit 1, message names --sort)', async () => {
  const e = await env();
  const r = await run(['ls', '--sort', 'colour', ...e.flags], { cwd: e.work.path });
  assert.is(r.code, 1, show(r, 'usage error'));
  assert.match(r.stderr, '--sort', show(r, 'the message names the option'));
  assert.is(r.stdout, '');
});

cli('usage errors exit 1 with a message and nothing on stdout: unknown command, --port abc, missing argument, bad size', async () => {
  const e = await env();
  const cases: [string[], string | RegExp][] = [
    [['bogus'], "unknown command 'bogus'"],
    [['ls', '--port', 'abc', '--state-dir', e.state.path], /--port.*'abc' is invalid/],
    [['put', '--state-dir', e.state.path], "missing required argument 'local'"],
    [['serve', '--quota', '12X', '--root', join(e.work.path, 'never')], /--quota.*'12X' is invalid/],
    [['serve', '--max-buffered', 'lots', '--root', join(e.work.path, 'never')], /--max-buffered.*'lots' is invalid/],
  ];
  const runs = await Promise.all(cases.map(([args]) => run(args, { cwd: e.work.path })));
  runs.forEach((r, i) => {
    const [args, msg] = cases[i]!;
    assert.is(r.code, 1, show(r, `fts ${args.join(' ')}: exit 1`));
    assert.match(r.stderr, msg, show(r, `fts ${args.join(' ')}: message`));
    assert.is(r.stdout, '', show(r, `fts ${args.join(' ')}: nothing on stdout`));
  });
  assert.not.ok(existsSync(join(e.work.path, 'never')), 'serve with a bad option created no root');
});

cli('--no-reconnect to a port where nothing listens: exit 2 with -702 connection_refused, at once', async () => {
  const e = await env();
  const port = await freePort();
  const f = files['data.csv']!;
  const [ls, put] = await Promise.all([
    run(['ls', '--port', String(port), '--no-reconnect', '--state-dir', e.state.path], { cwd: e.work.path }),
    run(['put', f.path, '--port', String(port), '--no-reconnect', '--state-dir', e.state.path, '--json'], { cwd: e.work.path }),
  ]);
  for (const [r, what] of [
    [ls, 'ls'],
    [put, 'put'],
  ] as const) {
    assertFtsError(r, ErrorCode.CONNECTION_REFUSED, 'connection_refused', `${what} --no-reconnect`);
    assert.match(r.stderr, `127.0.0.1:${port}`, 'the message names the endpoint');
    assert.ok(r.ms < 10_000, `failed fast (${r.ms} ms)`);
  }
});

// The client's waits between attempts keep the process alive (they once did not: exit 13, silently).
cli('without --no-reconnect, a command started before its server retries and succeeds once the server is up', async () => {
  const e = await env();
  const port = await freePort();
  const dir = await tempDir('fts-cli-late-');
  let late: Served | undefined;
  try {
    const ls = run(['ls', '--port', String(port), '--state-dir', e.state.path, '--json'], { cwd: e.work.path, timeoutMs: 30_000 });
    // The first attempt is refused; the server is up before the second or third one (1 s, then 2 s later).
    await sleep(1_500);
    late = await serve(['--root', dir.path, '--port', String(port)], { cwd: dir.path });
    assert.is(late.port, port);
    const r = await ls;
    assertOk(r, 'ls retried until the server was up');
    assert.equal(jsonOut(r, 'ls --json'), { total: 0, hasMore: false, files: [] });
  } finally {
    await late?.stop('SIGKILL');
    await dir.remove();
  }
});

cli('resumable --json: [] with nothing pending; lists a recorded transfer; --clear forgets it and deletes the partial download', async () => {
  const e = await env();
  const dir = join(e.work.path, 'resumable-state');
  const [empty, after] = await Promise.all([
    run(['resumable', '--json', '--state-dir', dir], { cwd: e.work.path }),
    // The state folder after every run above: nothing pending (they all ended).
    run(['resumable', '--json', '--state-dir', e.state.path], { cwd: e.work.path }),
  ]);
  assertOk(empty, 'resumable');
  assert.equal(jsonOut(empty, 'resumable --json'), [], 'an empty list');
  assert.not.ok(existsSync(dir), 'listing creates no state folder');
  assertOk(after, 'resumable');
  assert.equal(jsonOut(after, 'resumable --json'), [], 'nothing left pending by the puts and gets above');

  // A download interrupted earlier, as the client records it.
  const part = join(e.work.path, 'half.bin.fts-part');
  await writeFile(part, Buffer.alloc(1000));
  const record = {
    kind: 'download' as const,
    transferId: '11111111-2222-4333-8444-555555555555',
    endpoint: `127.0.0.1:${e.server.port}`,
    remoteName: 'half.bin',
    localPath: join(e.work.path, 'half.bin'),
    savedMs: Date.now(),
    tempPath: part,
    fileSize: 5000,
    sha256: '0'.repeat(64),
    chunkSize: 262144,
    totalChunks: 1,
    compression: 0,
    modifiedMs: Date.now(),
    written: '',
  };
  await new ClientStateStore(dir).save(record);
  const [listed, text] = await Promise.all([run(['resumable', '--json', '--state-dir', dir], { cwd: e.work.path }), run(['resumable', '--state-dir', dir], { cwd: e.work.path })]);
  assertOk(listed, 'resumable');
  const recs = jsonOut<{ transferId: string; kind: string; remoteName: string }[]>(listed, 'resumable --json');
  assert.is(recs.length, 1);
  assert.is(recs[0]!.transferId, record.transferId);
  assert.is(recs[0]!.kind, 'download');

  assertOk(text, 'resumable (text)');
  assert.match(text.stdout, `${record.transferId}  127.0.0.1:${e.server.port}  get half.bin -> ${record.localPath}`);
  assert.match(text.stdout, `1 interrupted transfer in ${dir}\n`);

  const cleared = await run(['resumable', '--clear', '--json', '--state-dir', dir], { cwd: e.work.path });
  assertOk(cleared, 'resumable --clear');
  assert.equal(jsonOut(cleared, 'resumable --clear --json'), { cleared: 1 });
  assert.not.ok(existsSync(part), 'the partial download is deleted');
  const again = await run(['resumable', '--json', '--state-dir', dir], { cwd: e.work.path });
  assert.equal(jsonOut(again, 'resumable --json'), []);
});

cli('no command wrote to the default state folder ($XDG_CACHE_HOME/fts)', async () => {
  await env();
  assert.ok(cacheDir, 'the children ran with a temp XDG_CACHE_HOME');
  assert.equal(await listDir(cacheDir!.path), []);
});

cli.run();

// ======================================================= token and quota

const guarded = suite('cli: fts serve --token --quota');
let guardedEnv: Promise<{ server: Served; root: TempDir; work: TempDir; state: TempDir; base: string[] }> | undefined;
const TOKEN = 's3cret-token';
function genv() {
  guardedEnv ??= (async () => {
    const root = await tempDir('fts-cli-groot-');
    const work = await tempDir('fts-cli-gwork-');
    const state = await tempDir('fts-cli-gstate-');
    const server = await serve(['--root', root.path, '--token', TOKEN, '--quota', '256K'], { cwd: work.path });
    return { server, root, work, state, base: ['--port', String(server.port), '--state-dir', state.path] };
  })();
  return guardedEnv;
}

guarded.after(async () => {
  const g = await guardedEnv?.catch(() => undefined);
  if (!g) return;
  await g.server.stop('SIGKILL');
  await Promise.all([g.root.remove(), g.work.remove(), g.state.remove()]);
});

guarded('a client without the token, or with a wrong one, is refused with -708 authentication_failed (at once, even with reconnection on)', async () => {
  const g = await genv();
  const [none, wrong] = await Promise.all([run(['ls', ...g.base], { cwd: g.work.path }), run(['ls', ...g.base, '--token', 'wrong', '--no-reconnect'], { cwd: g.work.path })]);
  assertFtsError(none, ErrorCode.AUTHENTICATION_FAILED, 'authentication_failed', 'ls without a token');
  assertFtsError(wrong, ErrorCode.AUTHENTICATION_FAILED, 'authentication_failed', 'ls with a wrong token');
  assert.ok(none.ms < 10_000, `no retries for a refused token (${none.ms} ms)`);
});

guarded('with the token: put within the quota and ls succeed', async () => {
  const g = await genv();
  const local = join(g.work.path, 'small.bin');
  const sha = await writeRandomFile(local, 100 * KiB);
  const put = await run(['put', local, ...g.base, '--token', TOKEN, '--json'], { cwd: g.work.path });
  assertOk(put, 'put with the token');
  assert.is(jsonOut<TransferJson>(put, 'put --json').sha256, sha);
  await sameBytes(join(g.root.path, 'small.bin'), local, 'stored small.bin');
  const ls = await run(['ls', ...g.base, '--token', TOKEN, '--json'], { cwd: g.work.path });
  assertOk(ls, 'ls with the token');
  assert.equal(jsonOut<ListJson>(ls, 'ls --json').files.map((f) => f.name), ['small.bin']);
});

guarded('a put larger than what the quota leaves: exit 2, -745 storage_full; nothing stored', async () => {
  const g = await genv();
  const local = join(g.work.path, 'big.bin');
  await writeRandomFile(local, 300 * KiB);
  const r = await run(['put', local, ...g.base, '--token', TOKEN], { cwd: g.work.path });
  assertFtsError(r, ErrorCode.STORAGE_FULL, 'storage_full', 'put over the quota');
  assert.not.ok(existsSync(join(g.root.path, 'big.bin')), 'nothing stored under the name');
  assert.equal(await listDir(join(g.root.path, '.fts', 'tmp')), [], 'no upload leftovers');
});

guarded.run();

// ============================================================= signals

const signals = suite('cli: fts serve stops on SIGTERM and SIGINT');
const signalDirs: TempDir[] = [];
const signalServers: Served[] = [];

signals.after(async () => {
  await Promise.all(signalServers.map((s) => s.stop('SIGKILL')));
  await Promise.all(signalDirs.map((d) => d.remove()));
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  signals(`${sig}: "shutting down", exit 0 within seconds (a client connected meanwhile), the port closed`, async () => {
    const root = await tempDir('fts-cli-sig-');
    signalDirs.push(root);
    const server = await serve(['--root', root.path], { cwd: root.path });
    signalServers.push(server);
    // Served one request first: the ready line is printed a moment before the
    // signal handlers are installed (a signal in between kills the process;
    // see the report), and that start-up race is not what this test is about.
    const ls = await run(['ls', '--port', String(server.port), '--no-reconnect', '--state-dir', join(root.path, 'state'), '--json'], { cwd: root.path });
    assertOk(ls, 'ls before the signal');
    // An idle connection must not keep the server up.
    const sock: Socket = connect(server.port, '127.0.0.1');
    sock.on('error', () => undefined);
    await within(once(sock, 'connect'), 3_000, 'raw connect');
    // (not events.once: it would reject on the ECONNRESET the server's close may cause)
    const sockClosed = new Promise<void>((r) => sock.once('close', () => r()));
    try {
      const end = await server.stop(sig);
      assert.is(end.signal, null, `exited by itself, not killed (stderr ${JSON.stringify(server.stderr())})`);
      assert.is(end.code, 0, 'exit code 0');
      assert.ok(end.ms < 8_000, `stopped in ${end.ms} ms`);
      assert.match(server.stderr(), /\nshutting down\n/);
      await within(sockClosed, 3_000, 'the connected socket is closed');
      assert.not.ok(await accepts(server.port), 'nothing listens on the port any more');
    } finally {
      sock.destroy();
    }
  });
}

signals.run();

// ========================================================== the bundle

const bundle = suite('cli: the dist/fts.mjs bundle');
let bundleDirs: { root: TempDir; work: TempDir; state: TempDir } | undefined;
let bundleServer: Served | undefined;

bundle.after(async () => {
  await bundleServer?.stop('SIGKILL');
  if (bundleDirs) await Promise.all(Object.values(bundleDirs).map((d) => d.remove()));
});

bundle('node bin/build.mjs builds dist/fts.mjs, dist/bench-agent.mjs, dist/minimal-copy.mjs, dist/tasks.cjs', async () => {
  const t0 = Date.now();
  const r = await run([], { cwd: REPO, entry: join(REPO, 'bin', 'build.mjs'), timeoutMs: 60_000 });
  assertOk(r, 'build');
  assert.match(r.stdout, 'built dist/fts.mjs, dist/bench-agent.mjs, dist/minimal-copy.mjs, dist/tasks.cjs');
  for (const f of ['fts.mjs', 'bench-agent.mjs', 'minimal-copy.mjs', 'tasks.cjs']) {
    const st = await stat(join(REPO, 'dist', f));
    assert.ok(st.size > 1000 && st.mtimeMs >= t0 - 2_000, `dist/${f} written now`);
  }
});

bundle('node dist/fts.mjs --help starts and prints the usage (a bundle that cannot start fails here)', async () => {
  const r = await run(['--help'], { cwd: REPO, entry: BUNDLE });
  assertOk(r, 'fts.mjs --help');
  assert.is(r.stderr, '', show(r, 'nothing on stderr'));
  assert.match(r.stdout, /^Usage: fts /, show(r, 'the usage'));
  for (const c of ['serve', 'put', 'get', 'ls', 'resumable']) assert.match(r.stdout, `  ${c} `);
});

bundle('the bundle run through a symlink in a folder whose name has a space still runs (its entry check resolves the path)', async () => {
  const dir = await tempDir('fts cli link ');
  try {
    const link = join(dir.path, 'fts link.mjs');
    await symlink(BUNDLE, link);
    const r = await run(['--help'], { cwd: dir.path, entry: link });
    assertOk(r, 'fts link.mjs --help');
    assert.match(r.stdout, /^Usage: fts /, show(r, 'the usage'));
  } finally {
    await dir.remove();
  }
});

bundle('a round trip from the bundle: serve, put --json, ls --json, get; byte-identical; SIGTERM exit 0', async () => {
  const root = await tempDir('fts-cli-broot-');
  const work = await tempDir('fts-cli-bwork-');
  const state = await tempDir('fts-cli-bstate-');
  bundleDirs = { root, work, state };
  bundleServer = await serve(['--root', root.path], { cwd: work.path, entry: BUNDLE });
  const flags = ['--port', String(bundleServer.port), '--state-dir', state.path];
  const local = join(work.path, 'bundle.src');
  const sha = await writeRandomFile(local, 2 * 1024 * KiB + 12345);

  const put = await run(['put', local, 'bundle.bin', ...flags, '--json'], { cwd: work.path, entry: BUNDLE });
  assertOk(put, 'bundle put');
  assert.is(put.stderr, '', show(put, 'nothing on stderr'));
  const up = jsonOut<TransferJson>(put, 'bundle put --json');
  assert.is(up.sha256, sha);
  assert.is(up.verified, true);
  await sameBytes(join(root.path, 'bundle.bin'), local, 'stored by the bundle server');

  const ls = await run(['ls', ...flags, '--json'], { cwd: work.path, entry: BUNDLE });
  assertOk(ls, 'bundle ls');
  const list = jsonOut<ListJson>(ls, 'bundle ls --json');
  assert.equal(list.files.map((f) => [f.name, f.size, f.sha256]), [['bundle.bin', up.bytes, sha]]);
  assert.is(list.total, 1);

  const target = join(work.path, 'bundle.out');
  const get = await run(['get', 'bundle.bin', target, ...flags, '--json'], { cwd: work.path, entry: BUNDLE });
  assertOk(get, 'bundle get');
  assert.is(jsonOut<TransferJson>(get, 'bundle get --json').sha256, sha);
  await sameBytes(target, local, 'downloaded by the bundle client');

  const end = await bundleServer.stop('SIGTERM');
  assert.is(end.signal, null, `the bundle server exited by itself (stderr ${JSON.stringify(bundleServer.stderr())})`);
  assert.is(end.code, 0);
  assert.match(bundleServer.stderr(), /stored bundle\.bin \(\d+ bytes\)\n/);
});

bundle.run();

// The shared cache folder goes once every suite has run (uvu runs them in order).
const cleanup = suite('cli: cleanup');
cleanup.after(async () => {
  await cacheDir?.remove();
});
cleanup('every child process has ended', async () => {
  await waitFor(() => live.size === 0, 5_000, 'children ended');
});
cleanup.run();
