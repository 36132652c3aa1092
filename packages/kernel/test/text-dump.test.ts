import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { formatAddr } from '@klpsim/arm64';
import { afterAll, describe, expect, it } from 'vitest';
import { captureSchema, InputFault, importCapture, loadCapture, validate } from '../src/index.js';

/*
 * The text dump a capture names, read from its file straight into the
 * memory that maps it (loadCapture), must be checked as the bytes handed to
 * importCapture are: the same checks, in the same order, the same errors.
 */

const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
const TEXT61 = CAP61.replace('capture.json', 'text-6.1.0-50-cloud-arm64.bin');
const dir = mkdtempSync(join(tmpdir(), 'klpsim-text-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const text = new Uint8Array(readFileSync(TEXT61));
const doc = (() => {
  const v = validate(captureSchema, JSON.parse(readFileSync(CAP61, 'utf8')), 'capture.json');
  if (!v.ok) throw new Error('the real capture should validate');
  return v.value;
})();

/** loadCapture of the real capture with `bytes` as its text file, and importCapture of the same bytes. */
function both(name: string, bytes: Uint8Array) {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return {
    loaded: loadCapture(CAP61, { textFile: file }),
    imported: importCapture(doc, bytes, CAP61, file),
  };
}

describe('the text dump, read into place', () => {
  it('maps the same bytes as importCapture, read from the file', () => {
    const { loaded, imported } = both('same.bin', text);
    expect(loaded.ok && imported.ok).toBe(true);
    if (!loaded.ok || !imported.ok) return;
    const region = (m: typeof imported.value) => m.memory.regionOf(m.text.core.start, 4)!;
    const a = region(loaded.value.machine);
    const b = region(imported.value);
    expect(formatAddr(a.start)).toBe(formatAddr(b.start));
    expect(a.bytes.length).toBe(b.bytes.length);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(Buffer.from(a.bytes.subarray(0, text.length)).equals(Buffer.from(text))).toBe(true);
  });

  it('a dump of the wrong size: the size is named, before the digest is computed', () => {
    const { loaded, imported } = both('short.bin', text.subarray(0, text.length - 8));
    expect(loaded).toEqual(imported);
    expect(loaded.ok || loaded.error).toMatchObject({
      code: 'KLPSIM_TEXT_DUMP_MISMATCH',
      field: 'kernel.textDump.size',
      expected: `${text.length} bytes`,
    });
  });

  it('a dump with one byte changed: the digest is named', () => {
    const changed = text.slice();
    changed[12345] ^= 0x40;
    const { loaded, imported } = both('changed.bin', changed);
    expect(loaded).toEqual(imported);
    expect(loaded.ok || loaded.error).toMatchObject({
      code: 'KLPSIM_TEXT_DUMP_MISMATCH',
      field: 'kernel.textDump.sha256',
      expected: doc.kernel.textDump.sha256,
    });
  });

  it('a wrong digest is reported before a start that cannot be mapped, and the start after', () => {
    // 0x8ad8... is a return address still carrying its PAC: not a canonical address.
    const badStart = { ...doc, kernel: { ...doc.kernel, textDump: { ...doc.kernel.textDump } } };
    badStart.kernel.textDump.start = '0x8ad8800008baf1a0';
    const changed = text.slice();
    changed[0] ^= 1;
    const first = importCapture(badStart, changed, CAP61, 't.bin');
    expect(first.ok || first.error.field).toBe('kernel.textDump.sha256');
    const then = importCapture(badStart, text, CAP61, 't.bin');
    expect(then.ok || then.error.field).toBe('kernel.textDump.start');
  });

  it('a dump that cannot be read: missing, a directory', () => {
    const missing = loadCapture(CAP61, { textFile: join(dir, 'none.bin') });
    expect(missing.ok || missing.error).toMatchObject({
      code: 'KLPSIM_FILE_UNREADABLE',
      file: join(dir, 'none.bin'),
      message: expect.stringMatching(/^cannot read the text dump the capture names: ENOENT/),
    });
    mkdirSync(join(dir, 'a-dir'));
    const folder = loadCapture(CAP61, { textFile: join(dir, 'a-dir') });
    expect(folder.ok || folder.error).toMatchObject({
      code: 'KLPSIM_FILE_UNREADABLE',
      message: expect.stringMatching(/EISDIR/),
    });
  });

  it('only FILE.gz beside the capture: read gunzipped', () => {
    writeFileSync(join(dir, 'zipped.bin.gz'), gzipSync(text));
    const r = loadCapture(CAP61, { textFile: join(dir, 'zipped.bin') });
    expect(r.ok).toBe(true);
  });
});

describe('the text dump read at its first use (lazyText)', () => {
  const lazily = (name: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = loadCapture(CAP61, { textFile: file, lazyText: true });
    if (!r.ok) throw new Error(r.error.message);
    return { file, machine: r.value.machine };
  };

  it('checks the dump at load all the same: a changed byte, a wrong size, a missing file', () => {
    for (const [name, bytes] of [
      [
        'lazy-changed.bin',
        (() => {
          const c = text.slice();
          c[999] ^= 2;
          return c;
        })(),
      ],
      ['lazy-short.bin', text.subarray(0, text.length - 8)],
    ] as const) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      const eager = loadCapture(CAP61, { textFile: file });
      expect(eager.ok).toBe(false);
      expect(loadCapture(CAP61, { textFile: file, lazyText: true })).toEqual(eager);
    }
    const missing = join(dir, 'lazy-none.bin');
    expect(loadCapture(CAP61, { textFile: missing, lazyText: true })).toEqual(
      loadCapture(CAP61, { textFile: missing }),
    );
  });

  it('maps the same bytes, read when first asked for', () => {
    const { machine } = lazily('lazy-same.bin');
    const r = machine.memory.regionOf(machine.text.core.start, 4)!;
    expect(Buffer.from(r.bytes.subarray(0, text.length)).equals(Buffer.from(text))).toBe(true);
    expect(machine.memory.read32(machine.text.core.start)).toBe(
      new DataView(text.buffer, text.byteOffset).getUint32(0, true),
    );
  });

  it('a dump changed or gone by its first read: an InputFault naming the file, and a retry', () => {
    const { file, machine } = lazily('lazy-later.bin');
    const changed = text.slice();
    changed[4242] ^= 8;
    writeFileSync(file, changed);
    const read = () => machine.memory.read32(machine.text.core.start);
    expect(read).toThrow(InputFault);
    try {
      read();
    } catch (e) {
      expect((e as InputFault).error).toMatchObject({
        code: 'KLPSIM_TEXT_DUMP_MISMATCH',
        file,
        field: 'kernel.textDump.sha256',
        expected: doc.kernel.textDump.sha256,
        message: expect.stringMatching(/^text dump changed after the capture was loaded/),
      });
    }
    rmSync(file);
    expect(read).toThrow(/cannot read the text dump the capture names: ENOENT/);
    // Put back, the next read succeeds: a fault leaves the region to be read again.
    writeFileSync(file, text);
    expect(read()).toBe(new DataView(text.buffer, text.byteOffset).getUint32(0, true));
  });
});

describe('the capture text, ASCII or not', () => {
  it('a capture with a byte beyond ASCII is decoded as UTF-8, an ASCII one as before', () => {
    // The bundled capture is ASCII; a comm in UTF-8 must read back as written.
    const raw = JSON.parse(readFileSync(CAP61, 'utf8')) as { tasks: { comm: string }[] };
    const before = raw.tasks[0]!.comm;
    raw.tasks[0]!.comm = 'café·Ω';
    const file = join(dir, 'capture.json');
    writeFileSync(file, JSON.stringify(raw), 'utf8');
    const r = loadCapture(file, { textFile: TEXT61 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.machine.tasks[0]!.comm).toBe('café·Ω');
    const plain = loadCapture(CAP61);
    expect(plain.ok && plain.value.machine.tasks[0]!.comm).toBe(before);
  });
});
