import { describe, expect, it } from 'vitest';
import { CAP72, run } from './run.js';

// Figures are never asserted (docs/performance.md); the document's shape and counts are.
describe('bench --json', () => {
  it('bench walk: the capture and the synthetic kernel, as one document', async () => {
    const r = await run('bench', 'walk', CAP72, '--seconds', '0.05', '--tasks', '20', '--json');
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as {
      capture: { kernel: string; tasks: number; policy: string; walk: string; passes: number };
      synthetic: { tasks: number; depth: number; passes: number };
      maxRssMiB: number;
    };
    // The 7.2 capture has 71 walkable tasks and meta records, so mainline's reliable walk.
    expect(doc.capture).toMatchObject({
      kernel: '7.2.13+deb14-cloud-arm64',
      tasks: 71,
      policy: 'mainline',
      walk: 'reliable',
    });
    expect(doc.capture.passes).toBeGreaterThan(0);
    expect(doc.synthetic).toMatchObject({ tasks: 20, depth: 16 });
    expect(doc.maxRssMiB).toBeGreaterThan(0);
  });
});
