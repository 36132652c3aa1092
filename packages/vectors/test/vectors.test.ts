import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAddr } from '@klpsim/arm64';
import { LazyFrameTable } from '@klpsim/frames';
import { KTHREAD_TAIL, SCHEDULE_TOP } from '@klpsim/kernel';
import { REASON_CODES } from '@klpsim/unwind';
import { describe, expect, it } from 'vitest';
import {
  expectationPcs,
  FRAME_STATE_POLICIES,
  frameStatesDiff,
  loadVectors,
  newVector,
  parseVector,
  runVector,
  type Vector,
  vectorJsonSchema,
  vectorMachines,
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

describe('frameStates: the frame state a vector carries for runners without a decoder', () => {
  const loaded = loadVectors([root('test-vectors')]);
  if (!loaded.ok) throw new Error(loaded.error.message);
  const vectors = loaded.value.vectors;

  it('agree with the analysis of the text of every machine the vector describes (the field cannot drift)', () => {
    let n = 0;
    const problems: string[] = [];
    for (const { vector, file } of vectors) {
      if (vector.frameStates === undefined) continue;
      n++;
      const ms = vectorMachines(vector, file);
      if (!ms.ok) throw new Error(ms.error.message);
      for (const m of ms.value)
        for (const d of frameStatesDiff(vector.frameStates, new LazyFrameTable(m.machine)))
          problems.push(`${vector.id} (${m.kind}): ${d}`);
    }
    expect(problems).toEqual([]);
    expect(n).toBeGreaterThan(100);
  });

  it('are present wherever a policy that consults them is expected, and list the function of every pc (and pc - 4) the analysis models', () => {
    const problems: string[] = [];
    for (const { vector, file } of vectors) {
      const uses = vector.walks.some((w) =>
        w.expect.some((e) => FRAME_STATE_POLICIES.includes(e.policy)),
      );
      if (!uses) continue;
      if (vector.frameStates === undefined) {
        problems.push(`${vector.id}: no frameStates`);
        continue;
      }
      const starts = new Set(vector.frameStates.functions.map((f) => parseAddr(f.start)));
      const ms = vectorMachines(vector, file);
      if (!ms.ok) throw new Error(ms.error.message);
      const table = new LazyFrameTable(ms.value[0]!.machine);
      for (const pc of expectationPcs(vector.walks)) {
        const f = table.functionAt(pc);
        if (f !== undefined && f.refusal === null && !starts.has(f.start))
          problems.push(`${vector.id}: ${f.name} (holds ${pc.toString(16)}) is not listed`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('a vector whose frameStates disagree with the text is caught', () => {
    const v = vectors.find((x) => x.vector.frameStates?.functions.some((f) => f.rows.length > 1));
    expect(v).toBeDefined();
    const fs = v!.vector.frameStates!;
    const i = fs.functions.findIndex((f) => f.rows.length > 1);
    const f = fs.functions[i]!;
    const bad = {
      ...fs,
      functions: fs.functions.map((g, k) =>
        k === i
          ? { ...f, rows: f.rows.map((r, j) => (j === 0 ? { ...r, lrSigned: !r.lrSigned } : r)) }
          : g,
      ),
    };
    const ms = vectorMachines(v!.vector, v!.file);
    if (!ms.ok) throw new Error(ms.error.message);
    const d = frameStatesDiff(bad, new LazyFrameTable(ms.value[0]!.machine));
    expect(d.length).toBe(1);
    expect(d[0]).toContain(`${f.name} rows[0]`);
  });

  it('the schema refuses rows out of order, a record in state L and an unaligned bound', () => {
    const v = fresh();
    const fn = (rows: unknown[]) =>
      JSON.stringify({
        ...v,
        frameStates: {
          origin: 'builder',
          functions: [{ name: 'f', start: '0xffff800008010000', size: 16, rows }],
        },
      });
    const row = (start: number, end: number, state: string, record: number | null) => ({
      start,
      end,
      state,
      cfa: { base: 'sp', offset: 0 },
      record,
      sp: 0,
      lrSigned: false,
    });
    expect(parseVector(fn([row(0, 8, 'L', null), row(8, 16, 'S', -16)]), 'ok.json').ok).toBe(true);
    for (const [rows, field] of [
      [[row(8, 16, 'L', null), row(0, 8, 'L', null)], 'frameStates.functions[0].rows'],
      [[row(0, 8, 'L', -16)], 'frameStates.functions[0].rows[0].record'],
      [[row(0, 6, 'L', null)], 'frameStates.functions[0].rows[0].end'],
      [[row(0, 20, 'L', null)], 'frameStates.functions[0].rows'],
    ] as const) {
      const r = parseVector(fn([...rows]), 'bad.json');
      expect(r.ok, field).toBe(false);
      if (!r.ok) expect(r.error.field).toBe(field);
    }
  });
});
