import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KTHREAD_TAIL, SCHEDULE_TOP } from '@klpsim/kernel';
import { REASON_CODES } from '@klpsim/unwind';
import { describe, expect, it } from 'vitest';
import {
  loadVectors,
  newVector,
  parseVector,
  runVector,
  type Vector,
  vectorJsonSchema,
} from '../src/index.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

const RECIPE = {
  tasks: [
    {
      frames: [...SCHEDULE_TOP, { fn: 'worker_thread', kretprobe: true }, ...KTHREAD_TAIL],
    },
  ],
};

function fresh(): Vector {
  const v = newVector(
    { id: 'test/one', title: 't', behaviour: 'b', source: 's', tags: [] },
    RECIPE,
  );
  if (!v.ok) throw new Error(v.error.message);
  return v.value;
}

describe('the klpsim-vector/v1 format', () => {
  it('the published JSON Schemas are the ones the zod schema gives (regenerate: node scripts/gen-vectors.mjs)', () => {
    const want = JSON.parse(JSON.stringify(vectorJsonSchema()));
    for (const f of ['docs/vector.schema.json', 'test-vectors/vector.schema.json'])
      expect(JSON.parse(readFileSync(root(f), 'utf8')), f).toEqual(want);
  });

  it('a new vector is labelled generated and unreviewed, and survives JSON', () => {
    const v = fresh();
    const all = v.walks.flatMap((w) => w.expect);
    expect(all.every((e) => e.origin === 'generated' && e.reviewed === false)).toBe(true);
    // No generated expectation may claim the kernel's own origin.
    expect(all.some((e) => e.origin === 'kernel')).toBe(false);
    const p = parseVector(JSON.stringify(v), 'mem.json');
    expect(p.ok).toBe(true);
  });

  it('a wrong expectation fails with a readable diff naming the entry', () => {
    const v = fresh();
    const e = v.walks[0]!.expect[0]!;
    const trace = e.trace!.map((t, i) => (i === 3 ? { ...t, address: '0xffff800008010000' } : t));
    const bad: Vector = {
      ...v,
      walks: [{ ...v.walks[0]!, expect: [{ ...e, trace }] }],
    };
    const r = runVector(bad, 'bad.json');
    expect(r.passed).toBe(false);
    expect(r.failures.join('\n')).toMatch(/trace\[3\]: expected 0xffff800008010000/);
    // Both machines (raw state and recipe) are walked.
    expect(r.failures.length).toBe(2);
  });

  it('a verdict the kernel would not give fails', () => {
    const v = fresh();
    const e = v.walks[0]!.expect[0]!;
    const r = runVector(
      { ...v, walks: [{ ...v.walks[0]!, expect: [{ ...e, reliable: !e.reliable }] }] },
      'x.json',
    );
    expect(r.failures[0]).toMatch(/reliable: expected/);
  });
});

describe('the loader reports a bad vector precisely and goes on with the others', () => {
  const cases: [string, string, RegExp][] = [
    ['not json', '{"format": ', /not JSON/],
    ['wrong type', JSON.stringify({ ...fresh(), title: 7 }), /title/],
    [
      'address not hex',
      JSON.stringify({
        ...fresh(),
        walks: [
          {
            task: 0,
            from: { kind: 'caller', fp: 'ffff', pc: '0x1' },
            expect: fresh().walks[0]!.expect,
          },
        ],
      }),
      /walks\[0\]\.from\.fp/,
    ],
    [
      'unbounded number',
      JSON.stringify({ ...fresh(), walks: [{ ...fresh().walks[0]!, size: 1e9 }] }),
      /walks\[0\]\.size/,
    ],
  ];
  for (const [name, text, field] of cases)
    it(name, () => {
      const r = parseVector(text, `${name}.json`);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.file).toBe(`${name}.json`);
        expect(`${r.error.field ?? ''} ${r.error.message}`).toMatch(field);
      }
    });

  it('a recipe that contradicts itself is named by its field', () => {
    const v = fresh();
    const r = runVector(
      { ...v, raw: undefined, recipe: { tasks: [{ cpu: 9, frames: [{ fn: 'a' }] }] } } as Vector,
      'c.json',
    );
    expect(r.passed).toBe(false);
    expect(r.failures[0]).toMatch(/recipe\.tasks\[0\]\.cpu/);
  });

  it('loading a folder with a bad file keeps the good ones', () => {
    const r = loadVectors([root('packages/vectors/test/fixtures')]);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.vectors.map((v) => v.vector.id)).toEqual(['fixtures/good']);
      expect(r.value.errors.map((e) => e.file?.split('/').pop())).toEqual(['bad.json']);
    }
  });
});

describe('the corpus', () => {
  it('every vector in test-vectors/ passes, both ways, on every machine it describes', () => {
    const r = loadVectors([root('test-vectors')]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.errors).toEqual([]);
    expect(r.value.vectors.length).toBeGreaterThanOrEqual(200);
    const failed = r.value.vectors
      .map((v) => runVector(v.vector, v.file))
      .filter((o) => !o.passed)
      .map((o) => `${o.id}: ${o.failures.join('; ')}`);
    expect(failed).toEqual([]);
  });

  it('every reason code is pinned by some expectation', () => {
    const r = loadVectors([root('test-vectors')]);
    if (!r.ok) throw new Error(r.error.message);
    const seen = new Set(
      r.value.vectors.flatMap(({ vector }) =>
        vector.walks.flatMap((w) => w.expect.map((e) => e.reason ?? null)),
      ),
    );
    expect(REASON_CODES.filter((c) => !seen.has(c))).toEqual([]);
  });

  it('capture vectors state the kernel\'s own results with origin "kernel", and only they do', () => {
    const r = loadVectors([root('test-vectors')]);
    if (!r.ok) throw new Error(r.error.message);
    for (const { vector } of r.value.vectors) {
      const kernel = vector.walks.flatMap((w) => w.expect).filter((e) => e.origin === 'kernel');
      if (vector.id.startsWith('captures/')) expect(kernel.length, vector.id).toBeGreaterThan(0);
      else expect(kernel, vector.id).toEqual([]);
    }
  });
});
