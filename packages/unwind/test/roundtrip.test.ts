import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatAddr } from '@klpsim/arm64';
import { exportCapture, type FrameDesc, formatInputError, loadCapture } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { POLICIES, type PolicyName, Walker } from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';

/**
 * The harder captures (tracers on, exception frames, module text) must
 * import as faithfully as the plain ones. No real capture here has them, so
 * a built kernel is written as an arm64-stack-capture/v1 document and read
 * back: every walk of every task under every policy must be the same as on
 * the built machine itself.
 */
const MODULE_CHAIN: FrameDesc[] = [
  { fn: '__switch_to' },
  { fn: '__schedule' },
  { fn: 'schedule' },
  { fn: 'mod_fn' },
  { fn: 'worker_thread' },
  { fn: 'kthread' },
  { fn: 'ret_from_fork' },
];
const hooked = (frames: FrameDesc[], f: number[], k: number[]) =>
  frames.map((x, i) => ({
    ...x,
    ...(f.includes(i) ? { fgraph: true } : {}),
    ...(k.includes(i) ? { kretprobe: true } : {}),
  }));

describe('a capture written from a built kernel reads back to the same walks', () => {
  for (const layout of ['mainline', 'linux-6.1'] as const) {
    it(`${layout} layout: tracers, exceptions, module text, corruptions`, () => {
      const b = build({
        layout,
        functions: [{ name: 'mod_fn', section: 'module', module: 'klp_test_mod' }],
        tasks: [
          { frames: KWORKER },
          { frames: hooked(USER_NANOSLEEP, [1, 4, 6], [3, 4, 9]) },
          { frames: hooked(KWORKER, [2, 3], [3]) },
          { frames: irqPreempted('saved') },
          { frames: irqPreempted('unsaved') },
          { frames: MODULE_CHAIN },
          {
            frames: hooked(MODULE_CHAIN, [3], [3]),
            corrupt: [{ kind: 'missing-kretprobe', frame: 3 }],
          },
          { frames: USER_NANOSLEEP, corrupt: [{ kind: 'loop', frame: 5 }] },
          { frames: USER_NANOSLEEP, corrupt: [{ kind: 'lr-not-text', frame: 2 }] },
        ],
      });
      const dir = mkdtempSync(join(tmpdir(), 'klpsim-capture-'));
      const traces = new Map(
        b.tasks.map((t) => [
          t.task.pid,
          t.debugTrace.map((e) => ({
            address: formatAddr(e.pc),
            symbol: b.machine.kallsyms.formatS(e.pc),
          })),
        ]),
      );
      const { doc, text } = exportCapture(b.machine, 'text.bin', traces);
      writeFileSync(join(dir, 'capture.json'), JSON.stringify(doc));
      writeFileSync(join(dir, 'text.bin'), text);
      const loaded = loadCapture(join(dir, 'capture.json'));
      if (!loaded.ok) throw new Error(formatInputError(loaded.error));
      const m = loaded.value.machine;
      expect(m.tasks).toHaveLength(b.tasks.length);
      expect(m.tasks.filter((t) => t.retStack !== null).length).toBe(3);
      // Task 6 lost its only kretprobe instance to the corruption.
      expect(m.tasks.filter((t) => t.kretprobes.length > 0).length).toBe(2);
      let compared = 0;
      for (const name of ['mainline', 'linux-6.1', 'symcode-v8'] as PolicyName[]) {
        const policy = POLICIES[name];
        if (policy.checkLayout(b.machine) !== null) {
          expect(policy.checkLayout(m)).not.toBeNull();
          continue;
        }
        const direct = new Walker(b.machine, policy);
        const viaCapture = new Walker(m, policy);
        for (const [i, t] of b.tasks.entries()) {
          for (const reliable of policy.hasReliableWalk ? [true, false] : [false]) {
            for (const checks of [[], ['call-site', 'start-in-schedule']] as const) {
              const a = direct.walk(t.task, { reliable, checks });
              const ra = direct.result();
              const c = viaCapture.walk(m.tasks[i]!, { reliable, checks });
              const rc = viaCapture.result();
              const what = `${name} task ${i} reliable=${reliable} checks=${checks.join(',')}`;
              expect(c, what).toBe(a);
              expect(rc.trace, what).toEqual(ra.trace);
              expect(rc.reliable, what).toBe(ra.reliable);
              expect(
                rc.reason === null
                  ? null
                  : { code: rc.reason.code, frame: rc.reason.frame, address: rc.reason.address },
                what,
              ).toEqual(
                ra.reason === null
                  ? null
                  : { code: ra.reason.code, frame: ra.reason.frame, address: ra.reason.address },
              );
              compared++;
            }
          }
        }
      }
      expect(compared).toBeGreaterThan(50);
      // A generated capture says so, and fills no field that means the kernel's own.
      expect(doc.generated?.by).toBe('klpsim exportCapture');
      for (const t of m.tasks)
        expect(loaded.value.oracle.get(t.pid)).toEqual({
          traceFull: null,
          trace: null,
          reliable: null,
        });
      // The builder's trace written into the capture is what the debug walk reads.
      const dbg = new Walker(m, POLICIES[layout === 'mainline' ? 'mainline' : 'linux-6.1']);
      for (const [i, t] of m.tasks.slice(0, 6).entries()) {
        dbg.walk(t, { reliable: false });
        const want = doc.tasks[i]!.generatedTraceFull!;
        expect(dbg.result().trace.map((e) => `${e.address} ${e.symbol}`)).toEqual(
          want.map((e) => `${e.address} ${e.symbol}`),
        );
      }
    });
  }
});
