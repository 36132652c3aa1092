import { grown } from './columns.js';
import { EventKind } from './events.js';

/**
 * A binary min-heap of events ordered by (time, sequence), so equal times
 * keep the order they were scheduled in. The timing wheel (`queue.ts`) keeps
 * here only the events beyond its horizon; the heap is also the reference
 * order the wheel is tested against. Events live in parallel typed arrays (a
 * struct of arrays): an object per event would keep the garbage collector
 * busy.
 */

export class EventHeap {
  private time = new Float64Array(1024);
  private seq = new Float64Array(1024);
  private kind = new Uint8Array(1024);
  /** The task index, or the action index for ACTION events. */
  private arg = new Int32Array(1024);
  private generation = new Int32Array(1024);
  private n = 0;
  private nextSeq = 0;

  /** Where `pop` leaves the event it removed. */
  outTime = 0;
  outKind: EventKind = EventKind.ACTION;
  outArg = 0;
  outGeneration = 0;

  get size(): number {
    return this.n;
  }

  push(time: number, kind: EventKind, arg: number, generation: number): void {
    if (this.n === this.time.length) this.grow();
    const s = this.nextSeq++;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!(time < this.time[p]! || (time === this.time[p] && s < this.seq[p]!))) break;
      this.move(p, i);
      i = p;
    }
    this.time[i] = time;
    this.seq[i] = s;
    this.kind[i] = kind;
    this.arg[i] = arg;
    this.generation[i] = generation;
  }

  /** Removes the earliest event into the out fields; false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    this.outTime = this.time[0]!;
    this.outKind = this.kind[0]! as EventKind;
    this.outArg = this.arg[0]!;
    this.outGeneration = this.generation[0]!;
    const last = --this.n;
    if (last > 0) {
      const t = this.time[last]!;
      const s = this.seq[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= last) break;
        const r = l + 1;
        const c = r < last && this.before(r, l) ? r : l;
        if (!(this.time[c]! < t || (this.time[c] === t && this.seq[c]! < s))) break;
        this.move(c, i);
        i = c;
      }
      this.move(last, i);
    }
    return true;
  }

  /** Drops every event and shrinks back to the starting size. */
  release(): void {
    this.time = new Float64Array(1024);
    this.seq = new Float64Array(1024);
    this.kind = new Uint8Array(1024);
    this.arg = new Int32Array(1024);
    this.generation = new Int32Array(1024);
    this.n = 0;
  }

  /** The earliest event's time, or +Infinity. */
  peekTime(): number {
    return this.n === 0 ? Number.POSITIVE_INFINITY : this.time[0]!;
  }

  private before(a: number, b: number): boolean {
    return (
      this.time[a]! < this.time[b]! ||
      (this.time[a] === this.time[b] && this.seq[a]! < this.seq[b]!)
    );
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!;
    this.seq[to] = this.seq[from]!;
    this.kind[to] = this.kind[from]!;
    this.arg[to] = this.arg[from]!;
    this.generation[to] = this.generation[from]!;
  }

  private grow(): void {
    const size = this.time.length * 2;
    this.time = grown(this.time, size);
    this.seq = grown(this.seq, size);
    this.kind = grown(this.kind, size);
    this.arg = grown(this.arg, size);
    this.generation = grown(this.generation, size);
  }
}
