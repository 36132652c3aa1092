import { describe, expect, it } from 'vitest';
import {
  POLICIES,
  stackTraceSaveTskReliable,
  unwindConsume,
  unwindFailed,
  unwindIsReliable,
  unwindNext,
  unwindStart,
  Walker,
} from '../src/index.js';
import { build } from './build.js';
import { KWORKER } from './chains.js';
import { CAPTURE_61, capture } from './fixtures.js';

describe("the 2021 series' step API", () => {
  it('drives a symcode-v8 walk by hand to the same result as the whole walk', () => {
    const { machine } = capture(CAPTURE_61);
    const byHand = new Walker(machine, POLICIES['symcode-v8']);
    const whole = new Walker(machine, POLICIES['symcode-v8']);
    for (const task of machine.tasks) {
      expect(unwindStart(byHand, task, { reliable: true })).toBe(true);
      while (unwindConsume(byHand)) unwindNext(byHand);
      expect(unwindFailed(byHand)).toBe(false);
      expect(stackTraceSaveTskReliable(whole, task)).toBe(byHand.trace.len);
      expect(byHand.result().trace).toEqual(whole.result().trace);
    }
  });

  it('unwindIsReliable rejects a pc inside SYM_CODE and the walk fails', () => {
    const b = build({
      tasks: [{ frames: [...KWORKER.slice(0, 3), { fn: 'ftrace_caller' }, ...KWORKER.slice(3)] }],
    });
    const w = new Walker(b.machine, POLICIES['symcode-v8']);
    unwindStart(w, b.tasks[0]!.task, { reliable: true });
    let steps = 0;
    while (unwindConsume(w)) {
      expect(unwindIsReliable(w)).toBe(true);
      unwindNext(w);
      steps++;
    }
    expect(steps).toBe(3);
    expect(unwindIsReliable(w)).toBe(false);
    expect(unwindFailed(w)).toBe(true);
    expect(w.result().reason?.code).toBe('IN_SYM_CODE');
  });

  it('mainline: unwindNext returns -ENOENT at the FINAL record', () => {
    const b = build({ tasks: [{ frames: KWORKER }] });
    const w = new Walker(b.machine, POLICIES.mainline);
    unwindStart(w, b.tasks[0]!.task, { reliable: true });
    const rets: number[] = [];
    while (unwindConsume(w)) {
      const r = unwindNext(w);
      rets.push(r);
      if (r !== 0) break;
    }
    expect(rets.at(-1)).toBe(-2);
    expect(w.trace.len).toBe(KWORKER.length);
  });
});
