import { addrHi, addrLo } from '@klpsim/arm64';
import { describe, expect, it } from 'vitest';
import { archStackWalk, POLICIES, Walker } from '../src/index.js';
import { build } from './build.js';
import { USER_NANOSLEEP } from './chains.js';
import { CAPTURE_61, capture, strip } from './fixtures.js';

/**
 * The linux-6.6 policy against the rules of v6.6's
 * arch/arm64/kernel/stacktrace.c and asm/stacktrace/common.h. Expected
 * values come from the real 6.1 kernel's own traces (where the two kernels'
 * rules agree) and from the 6.6 source lines cited with each case.
 */

describe('linux-6.6', () => {
  it("reproduces the real 6.1 kernel's kernelTraceFull of every task (476 frames)", () => {
    // The 6.1 capture's chains are plain: one task stack, records strictly
    // rising, no tracer. There 6.6's rules give 6.1's entries: a rising
    // record is above the consumed part (`unwind_consume_stack`), the walk
    // ends at `&task_pt_regs(tsk)->stackframe` before reading it, as 6.1's
    // does, and recovering a starting pc that is no trampoline changes nothing.
    const { machine, oracle } = capture(CAPTURE_61);
    const walker = new Walker(machine, POLICIES['linux-6.6']);
    let frames = 0;
    for (const task of machine.tasks) {
      const r = archStackWalk(walker, task);
      expect(strip(r.trace), `${task.comm}:${task.pid}`).toEqual(
        strip(oracle.get(task.pid)!.traceFull!),
      );
      frames += r.trace.length;
    }
    expect(frames).toBe(476);
  });

  it('walks on at pc 0 past a kretprobe it cannot match', () => {
    // `state->pc = kretprobe_find_ret_addr(state->task, (void *)state->fp,
    // &state->kr_cur);` with no error check: an unmatched instance's 0 is
    // stored and the walk continues from the record's fp to the final frame.
    const b = build({
      layout: 'linux-6.1',
      tasks: [
        {
          frames: USER_NANOSLEEP.map((f, i) => (i === 4 ? { ...f, kretprobe: true } : f)),
          corrupt: [{ kind: 'missing-kretprobe', frame: 4 }],
        },
      ],
    });
    const r = archStackWalk(new Walker(b.machine, POLICIES['linux-6.6']), b.tasks[0]!.task);
    expect(r.trace).toHaveLength(USER_NANOSLEEP.length);
    expect(r.trace[4]!.address).toBe('0x0000000000000000');
  });

  it('stops at a record that overlaps the one before it, where 6.1 reads it', () => {
    // 6.6 `unwind_consume_stack`: "Future unwind steps can only consume
    // stack above this frame record": after the record at A, the stack
    // starts at A + 16, so a record at A + 8 is on no stack and
    // `unwind_next_frame_record` returns -EINVAL. 6.1's rule is only
    // "strictly higher than the prior record" (fp > prev_fp), which A + 8 is.
    const b = build({ layout: 'linux-6.1', tasks: [{ frames: USER_NANOSLEEP }] });
    const { machine } = b;
    const task = b.tasks[0]!.task;
    // The first record A is at the saved fp; make the record after it A + 8.
    const a = task.cpuContext.fp;
    expect(machine.memory.write64(a, addrHi(a + 8), addrLo(a + 8))).toBe(true);
    const r66 = archStackWalk(new Walker(machine, POLICIES['linux-6.6']), task);
    // The saved pc, then A's return address; the step to A + 8 fails.
    expect(r66.trace).toHaveLength(2);
    const r61 = archStackWalk(new Walker(machine, POLICIES['linux-6.1']), task);
    expect(r61.trace.length).toBeGreaterThan(2);
  });
});
