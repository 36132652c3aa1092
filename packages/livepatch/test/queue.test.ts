import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventHeap } from '../src/sim/heap.js';
import { EventKind, EventQueue } from '../src/sim/queue.js';

/**
 * The timing wheel must pop events in exactly the heap's order, (time, push
 * order): equal times are common (a pass at a whole second, a tick), and the
 * order they run in is part of a run's log.
 */
describe('the timing-wheel event queue', () => {
  // Delays near and beyond the wheel's 65,536 ms horizon, and many equal times.
  const delay = fc.oneof(
    fc.constantFrom(0, 1, 1000, 65_535, 65_536, 65_537, 131_072),
    fc.integer({ min: 0, max: 20 }),
    fc.integer({ min: 0, max: 300_000 }),
  );
  // A script: each step pops some events, then pushes some at now + delay.
  const script = fc.array(
    fc.record({ pops: fc.integer({ min: 0, max: 4 }), pushes: fc.array(delay, { maxLength: 6 }) }),
    { maxLength: 200 },
  );

  it('pops in the same order as the heap for any schedule (pushes never before the last pop)', () => {
    fc.assert(
      fc.property(script, (steps) => {
        const wheel = new EventQueue();
        const heap = new EventHeap();
        let now = 0;
        let id = 0;
        const popBoth = (): boolean => {
          expect(wheel.peekTime()).toBe(heap.peekTime());
          const a = wheel.pop();
          const b = heap.pop();
          expect(a).toBe(b);
          if (!a) return false;
          expect([wheel.outTime, wheel.outArg, wheel.outKind, wheel.outGeneration]).toEqual([
            heap.outTime,
            heap.outArg,
            heap.outKind,
            heap.outGeneration,
          ]);
          now = wheel.outTime;
          return true;
        };
        for (const s of steps) {
          for (let i = 0; i < s.pops; i++) if (!popBoth()) break;
          for (const d of s.pushes) {
            const kind = (id % 10) as EventKind;
            wheel.push(now + d, kind, id, id & 7);
            heap.push(now + d, kind, id, id & 7);
            id++;
          }
          expect(wheel.size).toBe(heap.size);
        }
        while (popBoth());
        expect(wheel.size).toBe(0);
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('a million events through a sliding window come out once each, in time order', () => {
    const q = new EventQueue();
    for (let i = 0; i < 1000; i++) q.push(i, EventKind.WAKE, i, 0);
    let popped = 0;
    let last = 0;
    let ordered = true;
    while (q.pop()) {
      popped++;
      if (q.outTime < last) ordered = false;
      last = q.outTime;
      if (popped < 1_000_000) q.push(q.outTime + 1 + (popped % 50), EventKind.WAKE, popped, 0);
    }
    expect(ordered).toBe(true);
    expect(popped).toBe(1_000_000 + 999);
  });

  it('an event beyond the horizon comes out at its time, ahead of one pushed later for the same time', () => {
    const q = new EventQueue();
    q.push(200_000, EventKind.RETRY, 1, 0); // far: into the heap
    q.push(150_000, EventKind.WAKE, 2, 0);
    expect(q.pop()).toBe(true);
    expect(q.outArg).toBe(2);
    q.push(200_000, EventKind.TICK, 3, 0); // now within the horizon: after the first one
    expect(q.pop() && q.outArg).toBe(1);
    expect(q.pop() && q.outArg).toBe(3);
    expect(q.pop()).toBe(false);
    expect(q.peekTime()).toBe(Number.POSITIVE_INFINITY);
  });
});
