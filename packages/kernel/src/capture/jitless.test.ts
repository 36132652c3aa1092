import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../builder/synthetic.js';
import { captureSchemaChecked } from './check-symbols.js';

/*
 * loadCapture parses a capture without zod's fast pass (`jitless`, import.ts):
 * the same issues, in the same order, and the same value as with it, on the
 * real capture and on captures broken at random anywhere but the symbols
 * (which check-symbols.ts checks either way).
 */

const CAP61 = fileURLToPath(
  new URL('../../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
const VALUES: readonly unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e20,
  4096,
  '',
  'x',
  '0x',
  'ffff',
  '0xffff800008000000',
  true,
  [],
  {},
];

/** Every path of `v` below its top level's symbols. */
function pathsOf(v: unknown, path: string[] = [], out: string[][] = []): string[][] {
  if (v !== null && typeof v === 'object')
    for (const k of Object.keys(v)) {
      if (path.length === 0 && k === 'symbols') continue;
      out.push([...path, k]);
      pathsOf((v as Record<string, unknown>)[k], [...path, k], out);
    }
  return out;
}

function bothWays(doc: unknown): void {
  const fast = captureSchemaChecked.safeParse(doc);
  const jitless = captureSchemaChecked.safeParse(doc, { jitless: true });
  expect(jitless.success).toBe(fast.success);
  if (fast.success) expect(JSON.stringify(jitless.data)).toBe(JSON.stringify(fast.data));
  else expect(JSON.stringify(jitless.error!.issues)).toBe(JSON.stringify(fast.error.issues));
}

describe('the capture schema without zod fast pass', () => {
  const base = JSON.parse(readFileSync(CAP61, 'utf8')) as Record<string, unknown>;

  it('takes the real capture as it is', () => {
    bothWays(base);
  });

  it('says what zod with its fast pass says of a thousand broken captures', () => {
    const small = {
      ...base,
      symbols: (base['symbols'] as unknown[]).slice(0, 20),
      tasks: (base['tasks'] as unknown[]).slice(0, 6),
    };
    const paths = pathsOf(small);
    const rand = mulberry32(8);
    const pick = (n: number) => Math.floor(rand() * n);
    for (let n = 0; n < 1000; n++) {
      const doc = structuredClone(small);
      for (let m = 1 + pick(3); m > 0; m--) {
        const path = paths[pick(paths.length)]!;
        let at: unknown = doc;
        for (const k of path.slice(0, -1)) at = (at as Record<string, unknown> | null)?.[k];
        if (at === null || typeof at !== 'object') continue;
        const o = at as Record<string, unknown>;
        const key = path.at(-1)!;
        const how = pick(3);
        if (how === 0) delete o[key];
        else if (how === 1) o[key] = VALUES[pick(VALUES.length)];
        else o[`${key}Extra`] = 1;
      }
      bothWays(doc);
    }
  });
});
