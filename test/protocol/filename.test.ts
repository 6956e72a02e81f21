import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeMessage, filenameProblem, MAX_FILENAME_BYTES, validateFilename } from '../../protocol/index.js';
import { ID_A, MULTIBYTE, NAME_255, T, throwsFts } from './helpers.js';

const names = suite('filename rules (§6, §8.21)');

const VALID: [string, string][] = [
  ['one letter', 'a'],
  ['plain', 'report.txt'],
  ['dots inside and at the end', 'a..b.'],
  ['spaces', ' spaced name '],
  ['multi-byte', MULTIBYTE],
  ['exactly 255 bytes, mixed widths', NAME_255],
  ['exactly 255 ASCII bytes', 'x'.repeat(255)],
  ['exactly 255 bytes of 4-byte characters and ASCII', `${'😀'.repeat(63)}abc`],
  ['combining mark', 'e\u0301'],
  ['NBSP (Zs, not Cc)', '\u00a0'],
  ['U+00A0 just past the C1 range', 'a\u00a0b'],
  ['zero-width space (Cf)', 'a\u200bb'],
  ['leading BOM (Cf)', '\ufeffname'],
  ['U+FFFD', '\ufffd'],
  ['dash and parentheses', '-(1)'],
  ['colon and star are not forbidden by the protocol', 'a:b*c?'],
];

const INVALID: [string, string, RegExp][] = [
  ['empty', '', /empty/],
  ['256 ASCII bytes', 'x'.repeat(256), /256 bytes/],
  ['256 bytes of 4-byte characters', '😀'.repeat(64), /256 bytes/],
  ['far too long', '文'.repeat(1000), /3000 bytes/],
  ['.', '.', /not a file name/],
  ['..', '..', /not a file name/],
  ['leading dot', '.hidden', /starts with "\."/],
  ['leading dot-slash', './a', /starts with/],
  ['slash', 'a/b', /contains "\/"/],
  ['only a slash', '/', /contains "\/"/],
  ['absolute path', '/etc/passwd', /contains "\/"/],
  ['backslash', 'a\\b', /contains "\\"/],
  ['NUL', 'a\u0000b', /U\+0000/],
  ['U+0001', '\u0001', /U\+0001/],
  ['tab', 'a\tb', /U\+0009/],
  ['newline', 'a\nb', /U\+000A/],
  ['U+001F', 'a\u001f', /U\+001F/],
  ['U+007F DEL', 'a\u007f', /U\+007F/],
  ['U+0080', '\u0080a', /U\+0080/],
  ['U+0085 NEL', 'a\u0085b', /U\+0085/],
  ['U+009F', 'a\u009f', /U\+009F/],
  ['lone high surrogate', 'a\ud800b', /not valid UTF-8/],
  ['lone low surrogate', '\udc80', /not valid UTF-8/],
];

for (const [label, name] of VALID) {
  names(`valid: ${label}`, () => {
    assert.ok(Buffer.byteLength(name) <= MAX_FILENAME_BYTES);
    assert.is(filenameProblem(name), undefined);
    assert.is(validateFilename(name), name);
  });
}

for (const [label, name, reason] of INVALID) {
  names(`invalid: ${label} → -748`, () => {
    assert.match(filenameProblem(name) ?? '', reason);
    const e = throwsFts(() => validateFilename(name), -748, label);
    assert.is(e.codeName, 'invalid_filename');
    assert.match(e.message, reason);
  });
}

names('the boundary sample names are the byte lengths they claim', () => {
  assert.is(MAX_FILENAME_BYTES, 255);
  assert.is(Buffer.byteLength(NAME_255), 255);
  assert.is(Buffer.byteLength(`${'😀'.repeat(63)}abc`), 255);
});

names.run();

// ---------------------------------------------------------------------------
const wire = suite('filename rules: names as they arrive in UPLOAD_REQUEST, DOWNLOAD_REQUEST, RESUME_REQUEST');

function str16(bytes: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

const uuid = Buffer.from(ID_A.replace(/-/g, ''), 'hex');
/** Payloads carrying `name` as raw bytes, one per message type with a filename. */
const carriers: [number, (name: Buffer) => Buffer][] = [
  [T.UPLOAD_REQUEST, (name) => Buffer.concat([uuid, str16(name), Buffer.alloc(8 + 32 + 4 + 8 + 1 + 4 + 8)])],
  [T.DOWNLOAD_REQUEST, (name) => Buffer.concat([uuid, str16(name), Buffer.alloc(1 + 4 + 4)])],
  [T.RESUME_REQUEST, (name) => Buffer.concat([uuid, Buffer.from([1]), str16(name), Buffer.alloc(32 + 8 + 4)])],
];

function filenameOf(type: number, payload: Buffer): string {
  const m = decodeMessage(type, payload);
  if (m.type !== T.UPLOAD_REQUEST && m.type !== T.DOWNLOAD_REQUEST && m.type !== T.RESUME_REQUEST) throw new Error('unexpected type');
  return m.filename;
}

const BAD_UTF8: [string, string][] = [
  ['overlong "/" (C0 AF)', 'c0af'],
  ['overlong NUL (C0 80)', 'c080'],
  ['overlong 3-byte "/" (E0 80 AF)', 'e080af'],
  ['overlong 4-byte "/" (F0 80 80 AF)', 'f08080af'],
  ['encoded surrogate U+D800 (ED A0 80)', 'eda080'],
  ['encoded surrogate U+DFFF (ED BF BF)', 'edbfbf'],
  ['encoded surrogate pair (ED A0 BD ED B8 80)', 'eda0bdedb880'],
  ['truncated 3-byte sequence (E6 96)', '61e696'],
  ['truncated 4-byte sequence (F0 9F 98)', 'f09f98'],
  ['truncated in the middle', '61e69662'],
  ['lone lead byte at the end', '6162c3'],
  ['lone continuation byte', '80'],
  ['continuation bytes after ASCII', '61bfbf'],
  ['FE', 'fe'],
  ['FF', '61ff62'],
  ['above U+10FFFF (F4 90 80 80)', 'f4908080'],
  ['5-byte form (F8 88 80 80 80)', 'f888808080'],
];

for (const [label, hexBytes] of BAD_UTF8) {
  wire(`invalid UTF-8 reaches validation as -748: ${label}`, () => {
    for (const [type, build] of carriers) {
      const name = filenameOf(type, build(Buffer.from(hexBytes, 'hex')));
      assert.ok(!name.isWellFormed(), 'marked as not well-formed');
      const e = throwsFts(() => validateFilename(name), -748, `${label} in type ${type}`);
      assert.match(e.message, /not valid UTF-8/);
    }
  });
}

wire('valid names survive the wire byte for byte', () => {
  for (const name of [...VALID.map(([, n]) => n)]) {
    for (const [type, build] of carriers) {
      const decoded = filenameOf(type, build(Buffer.from(name, 'utf8')));
      assert.is(decoded, name);
      assert.is(validateFilename(decoded), name);
    }
  }
});

wire('a leading EF BB BF is part of the name, not a stripped byte-order mark', () => {
  for (const [type, build] of carriers) {
    const decoded = filenameOf(type, build(Buffer.from('efbbbf61', 'hex')));
    assert.is(decoded, '\ufeffa');
    assert.is(Buffer.byteLength(decoded), 4);
  }
});

wire('well-formed but forbidden names from the wire: control characters, separators, length, dots', () => {
  const cases: [string, RegExp][] = [
    ['c280', /U\+0080/],
    ['c29f', /U\+009F/],
    ['c285', /U\+0085/],
    ['7f', /U\+007F/],
    ['1f', /U\+001F/],
    ['00', /U\+0000/],
    ['612f62', /"\/"/],
    ['5c', /"\\"/],
    ['2e', /not a file name/],
    ['2e2e', /not a file name/],
    ['2e61', /starts with/],
    ['', /empty/],
    ['61'.repeat(256), /256 bytes/],
  ];
  for (const [hexBytes, reason] of cases) {
    for (const [type, build] of carriers) {
      const name = filenameOf(type, build(Buffer.from(hexBytes, 'hex')));
      assert.match(throwsFts(() => validateFilename(name), -748, hexBytes).message, reason);
    }
  }
});

wire('255 bytes from the wire is valid, 256 is not', () => {
  for (const [type, build] of carriers) {
    assert.is(validateFilename(filenameOf(type, build(Buffer.from(NAME_255)))), NAME_255);
    throwsFts(() => validateFilename(filenameOf(type, build(Buffer.from(`${NAME_255}x`)))), -748);
  }
});

wire.run();
