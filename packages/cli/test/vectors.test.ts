import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from './run.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

describe('klpsim vectors', () => {
  it('run: one topic passes, last line counts', async () => {
    const r = await run('vectors', 'run', root('test-vectors/loops'));
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines.at(-1)).toBe('10 passed, 0 failed');
  });

  it('run: a malformed vector is a precise failure, the others still run, exit non-zero', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-vectors-'));
    writeFileSync(join(dir, 'broken.json'), '{"format": "klpsim-vector/v1", "id": 3}');
    const r = await run('vectors', 'run', dir, root('test-vectors/alignment'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL .*broken\.json: id: /);
    expect(r.out.trim().split('\n').at(-1)).toBe('10 passed, 1 failed');
    expect(r.err).toBe('');
  });

  it('run --json and --policy', async () => {
    const r = await run(
      'vectors',
      'run',
      root('test-vectors/buffer'),
      '--policy',
      'mainline',
      '--json',
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      passed: number;
      failed: number;
      vectors: { checked: number }[];
    };
    expect(doc.failed).toBe(0);
    expect(doc.passed).toBe(6);
    // Only mainline expectations: 3 per vector and machine on mainline-layout kernels, none on 6.1 ones.
    expect(doc.vectors.some((v) => v.checked === 0)).toBe(true);
  });

  it('new: a recipe becomes a vector marked generated; a bad recipe names its field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-new-'));
    const recipe = join(dir, 'r.json');
    writeFileSync(
      recipe,
      JSON.stringify({ tasks: [{ frames: [{ fn: 'kthread' }, { fn: 'ret_from_fork' }] }] }),
    );
    const out = join(dir, 'v.json');
    const args = [
      '--recipe',
      recipe,
      '--id',
      'x/y',
      '--title',
      't',
      '--behaviour',
      'b',
      '--source',
      's',
    ];
    const r = await run('vectors', 'new', ...args, '--out', out);
    expect(r.code).toBe(0);
    const again = await run('vectors', 'run', out);
    expect(again.out.trim().split('\n').at(-1)).toBe('1 passed, 0 failed');
    writeFileSync(recipe, JSON.stringify({ tasks: [{ cpu: 7, frames: [{ fn: 'kthread' }] }] }));
    const bad = await run('vectors', 'new', ...args);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/tasks\[0\]\.cpu/);
  });
});

describe('klpsim vectors mutate', () => {
  it('gives the same bytes on stdout for 1 and 2 workers (the compiled workers)', () => {
    const args = [
      'vectors',
      'mutate',
      root('test-vectors/kretprobes'),
      '--count',
      '400',
      '--seed',
      '9',
      '--json',
    ];
    const one = spawnSync('node', [root('packages/cli/bin/klpsim.js'), ...args, '--workers', '1'], {
      encoding: 'utf8',
    });
    const two = spawnSync('node', [root('packages/cli/bin/klpsim.js'), ...args, '--workers', '2'], {
      encoding: 'utf8',
    });
    expect(one.status).toBe(0);
    expect(one.stdout).toBe(two.stdout);
    const doc = JSON.parse(one.stdout) as { stacks: number; differ: number };
    expect(doc.stacks).toBe(400);
    expect(doc.differ).toBe(0);
    expect(one.stderr).toMatch(/400 mutated stacks in [\d.]+ s/);
  });

  it('bad arguments are one line and exit 2', async () => {
    const r = await run(
      'vectors',
      'mutate',
      root('test-vectors/loops'),
      '--count',
      'many',
      '--seed',
      '1',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--count: expected a whole number/);
  });
});
