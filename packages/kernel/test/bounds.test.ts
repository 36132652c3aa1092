import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { captureSchema, formatInputError, validate } from '../src/index.js';

const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);

/** The real 6.1 capture with one change: what a broken or hostile file would hold. */
function mutated(
  change: (doc: { kernel: Record<string, unknown>; tasks: { pid: number }[] }) => void,
) {
  const doc = JSON.parse(readFileSync(CAP61, 'utf8'));
  change(doc);
  return validate(captureSchema, doc, 'capture.json');
}

describe('capture bounds: refused before any work, in one line', () => {
  it('the real capture passes', () => {
    expect(mutated(() => {}).ok).toBe(true);
  });

  it('nr_cpu_ids above CONFIG_NR_CPUS (at most 4096 on arm64) is refused, not built', () => {
    const r = mutated((d) => {
      d.kernel['cpus'] = { nrCpuIds: 1_000_000_000, online: 1 };
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(formatInputError(r.error)).toMatch(/^capture\.json: kernel\.cpus\.nrCpuIds: .*4096/);
    const over = mutated((d) => {
      d.kernel['cpus'] = { nrCpuIds: 4, online: 5 };
    });
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.error.field).toBe('kernel.cpus.online');
  });

  it('two tasks with one pid are refused, naming the second', () => {
    const r = mutated((d) => {
      d.tasks[5]!.pid = d.tasks[2]!.pid;
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.field).toBe('tasks[5].pid');
    expect(r.error.message).toContain('appears twice');
  });

  it('counts further problems with the right grammar', () => {
    const one = mutated((d) => {
      d.kernel['vaBits'] = 7;
      d.kernel['threadSize'] = -1;
    });
    expect(one.ok || one.error.message).toMatch(/\(and 1 more problem\)$/);
  });
});

describe('every number in a capture has a bound', () => {
  it('a stack above 64 KiB (THREAD_SIZE at most 64 KiB on arm64) is refused', () => {
    const r = mutated((d) => {
      d.kernel['threadSize'] = 1e12;
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.field).toBe('kernel.threadSize');
  });

  it('a pid at or above PID_MAX_LIMIT is refused', () => {
    const r = mutated((d) => {
      d.tasks[0]!.pid = 4 * 1024 * 1024;
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.field).toBe('tasks[0].pid');
  });
});
