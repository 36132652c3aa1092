import { describe, expect, it } from 'vitest';
import { CAP61, run } from './run.js';

interface FramesDoc {
  release: string;
  coverage: { functions: number; modelled: number; instructions: { total: number } };
  functions: {
    name: string;
    start: string;
    end: string;
    ranges?: { start: string; end: string; state: string; cfa?: string; lrSigned?: boolean }[];
  }[];
}

describe('klpsim frames', () => {
  it('--function --json: one function, ranges that tile it, starting with LR live at entry', async () => {
    const r = await run('frames', CAP61, '--function', 'do_nanosleep', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as FramesDoc;
    expect(doc.release).toMatch(/^6\.1\./);
    expect(doc.coverage.functions).toBe(1);
    const f = doc.functions[0]!;
    expect(f.name).toBe('do_nanosleep');
    const ranges = f.ranges!;
    // At a function's first instruction nothing is pushed: AAPCS64 puts the return address in x30.
    expect(ranges[0]).toMatchObject({ start: f.start, state: 'L', cfa: 'sp+0', lrSigned: false });
    expect(ranges.at(-1)!.end).toBe(f.end);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start).toBe(ranges[i - 1]!.end);
    // A C function that calls schedule pushes its record and points x29 at it.
    expect(ranges.some((x) => x.state === 'F' && x.cfa?.startsWith('x29+'))).toBe(true);
  });

  it('text output ends with the coverage', async () => {
    const r = await run('frames', CAP61, '--function', '__arch_clear_user');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^__arch_clear_user 0x/m);
    expect(r.out).toMatch(/functions +1: 1 modelled/);
    // A frameless assembly leaf: LR live at every instruction any path reaches.
    expect(r.out).not.toMatch(/^ +\+\S+ +[SF] /m);
  });

  it('a bad --function names the flag and what it expects (exit 2)', async () => {
    const r = await run('frames', CAP61, '--function', 'no such!');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--function/);
    expect(r.err).toMatch(/kallsyms/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('an unknown function and a missing capture are usage errors, no stack trace', async () => {
    const a = await run('frames', CAP61, '--function', 'no_such_function_here');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/no function of that name/);
    const b = await run('frames', 'no-such-capture.json');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/no-such-capture\.json/);
    expect(b.err).not.toMatch(/\n\s+at /);
  });

  it('--help lists the options', async () => {
    const r = await run('frames', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--function NAME/);
    expect(r.out).toMatch(/--summary/);
  });
});
