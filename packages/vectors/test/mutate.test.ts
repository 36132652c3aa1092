import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MUTATION_KINDS, mutateVectors } from '../src/index.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

describe('vectors mutate (in this thread; the CLI test runs the workers)', () => {
  it('every mutation kind is drawn, the fast path never differs, mainline is never unsound', async () => {
    const r = await mutateVectors([root('test-vectors')], { count: 3000, seed: 11, workers: 0 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const rep = r.value;
    expect(rep.stacks).toBe(3000);
    for (const k of MUTATION_KINDS) expect(rep.kinds[k], k).toBeGreaterThan(0);
    expect(rep.differ).toBe(0);
    for (const s of rep.sets.filter((x) => x.policy === 'mainline')) expect(s.unsound).toBe(0);
    // With the call-site check no policy was fooled either.
    for (const s of rep.sets.filter((x) => x.checks.includes('call-site')))
      expect(s.unsound).toBe(0);
    // The oracle is not vacuous: some mutated stacks still describe valid chains, some do not.
    expect(rep.validChains).toBeGreaterThan(0);
    expect(rep.validChains).toBeLessThan(rep.stacks);
  });

  it('the same count and seed give the same report', async () => {
    const a = await mutateVectors([root('test-vectors/fgraph')], {
      count: 500,
      seed: 3,
      workers: 0,
    });
    const b = await mutateVectors([root('test-vectors/fgraph')], {
      count: 500,
      seed: 3,
      workers: 0,
    });
    const c = await mutateVectors([root('test-vectors/fgraph')], {
      count: 500,
      seed: 4,
      workers: 0,
    });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(c));
  });

  it('a folder without recipe vectors is an input error', async () => {
    const r = await mutateVectors([root('test-vectors/captures/linux-6.1-arm64-plain')], {
      count: 10,
      seed: 1,
      workers: 0,
    });
    expect(r.ok).toBe(false);
  });
});
