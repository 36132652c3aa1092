import { formatAddr } from '@klpsim/arm64';
import { CORRUPTIONS, type CorruptionKind, type FrameDesc, type KernelDesc } from '@klpsim/kernel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { POLICIES, type PolicyName, Walker } from '../src/index.js';
import { build } from './build.js';

/** Functions a chain may pass through that are ordinary C (no SYM_CODE, no entry text). */
const POOL = [
  '__switch_to',
  '__schedule',
  'schedule',
  'worker_thread',
  'do_nanosleep',
  'kthread',
  'f_alpha',
  'f_beta',
  'f_gamma',
  'f_delta',
  'mod_fn',
  'init_fn',
];

const frameArb = fc.record({
  fn: fc.constantFrom(...POOL),
  frameSize: fc.constantFrom(32, 48, 64, 128),
  call: fc.constantFrom('bl', 'bl', 'blr', 'blraa', 'blraaz'),
  // About one frame in six hooked by each tracer.
  fgraph: fc.nat({ max: 5 }).map((x) => x === 0),
  kretprobe: fc.nat({ max: 5 }).map((x) => x === 0),
});

const kernelArb = fc.record({
  layout: fc.constantFrom('mainline', 'linux-6.1'),
  vaBits: fc.constantFrom(48, 52),
  pac: fc.boolean(),
  user: fc.boolean(),
  frames: fc.array(frameArb, { minLength: 1, maxLength: 40 }),
});

type Gen = {
  layout: 'mainline' | 'linux-6.1';
  vaBits: 48 | 52;
  pac: boolean;
  user: boolean;
  frames: { fn: string; frameSize: number; call: string; fgraph: boolean; kretprobe: boolean }[];
};

function describeKernel(
  g: Gen,
  corrupt: { kind: CorruptionKind; frame: number }[] = [],
): KernelDesc {
  const frames: FrameDesc[] = g.frames.map((f, i) => ({
    fn: f.fn,
    frameSize: f.frameSize,
    call: f.call as FrameDesc['call'],
    ...(i > 0 && f.fgraph ? { fgraph: true } : {}),
    ...(i > 0 && f.kretprobe ? { kretprobe: true } : {}),
  }));
  frames.push({ fn: g.user ? 'el0t_64_sync' : 'ret_from_fork' });
  return {
    layout: g.layout,
    vaBits: g.vaBits,
    pac: g.pac,
    functions: [
      { name: 'mod_fn', section: 'module', module: 'klp_test' },
      { name: 'init_fn', section: 'init' },
    ],
    tasks: [{ frames, corrupt }],
  };
}

const POLICY_NAMES: PolicyName[] = ['mainline', 'linux-6.1', 'symcode-v8'];

describe('properties', () => {
  it('any valid chain the builder makes walks back exactly, under every policy that fits', () => {
    fc.assert(
      fc.property(kernelArb, (g) => {
        const b = build(describeKernel(g as Gen));
        const t = b.tasks[0]!;
        for (const name of POLICY_NAMES) {
          const policy = POLICIES[name];
          if (policy.checkLayout(b.machine) !== null) continue;
          const w = new Walker(b.machine, policy);
          w.walk(t.task, { reliable: false });
          expect(Array.from(w.trace.pcs.subarray(0, w.trace.len), formatAddr)).toEqual(
            t.chain.map(formatAddr),
          );
          if (name === 'mainline')
            expect(w.result().trace.map((e) => e.source)).toEqual(
              t.debugTrace.map((e) => e.marker),
            );
          if (policy.hasReliableWalk) {
            const ret = w.walk(t.task, { reliable: true, checks: ['call-site'] });
            expect(ret, `${name}: ${w.result().reason?.message}`).toBe(0);
            expect(Array.from(w.trace.pcs.subarray(0, w.trace.len), formatAddr)).toEqual(
              t.chain.map(formatAddr),
            );
          }
        }
      }),
      { numRuns: 250, seed: 20261122 },
    );
  });

  it('a corrupted stack is never reported reliable with a trace other than what its records hold', () => {
    const corruptionArb = kernelArb.chain((g) =>
      fc.record({
        g: fc.constant(g),
        kind: fc.constantFrom(...CORRUPTIONS),
        at: fc.nat({ max: g.frames.length }),
      }),
    );
    // These leave a chain a frame-pointer walk can follow; all others break it.
    const followable = new Set<CorruptionKind>(['lr-not-text', 'lr-not-after-call']);
    let built = 0;
    let reliableAfterCorruption = 0;
    fc.assert(
      fc.property(corruptionArb, ({ g: g0, kind, at }) => {
        const g = structuredClone(g0) as Gen;
        const n = g.frames.length + 1;
        const needsRecord = !['lr-not-after-call', 'missing-fgraph', 'missing-kretprobe'].includes(
          kind,
        );
        if (needsRecord && at >= n - 1) return;
        if (
          kind === 'missing-fgraph' ||
          kind === 'missing-kretprobe' ||
          kind === 'lr-not-after-call'
        ) {
          if (at < 1 || at >= n - 1) return;
        }
        if (kind === 'missing-fgraph') g.frames[at]!.fgraph = true;
        if (kind === 'missing-kretprobe') g.frames[at]!.kretprobe = true;
        const b = build(describeKernel(g, [{ kind, frame: at }]));
        const t = b.tasks[0]!;
        built++;
        for (const name of POLICY_NAMES) {
          const policy = POLICIES[name];
          if (!policy.hasReliableWalk || policy.checkLayout(b.machine) !== null) continue;
          const w = new Walker(b.machine, policy);
          // Without extra checks a policy may follow a corrupted LR; then the trace must be what the records hold.
          if (w.walk(t.task, { reliable: true }) === 0) {
            reliableAfterCorruption++;
            expect(followable.has(kind), `${name} called a ${kind} stack reliable`).toBe(true);
            expect(Array.from(w.trace.pcs.subarray(0, w.trace.len), formatAddr)).toEqual(
              t.debugTrace.map((e) => formatAddr(e.pc)),
            );
          } else {
            expect(w.result().reason).not.toBeNull();
          }
          // With the call-site check, no corruption passes.
          expect(
            w.walk(t.task, { reliable: true, checks: ['call-site'] }),
            `${name} + call-site on ${kind}`,
          ).toBe(-22);
        }
      }),
      { numRuns: 400, seed: 1122 },
    );
    // The property must have been exercised both ways, or it proves nothing.
    expect(built).toBeGreaterThan(150);
    expect(reliableAfterCorruption).toBeGreaterThan(0);
  });
});
