import { WASM_PAGE, WasmMemory } from './columns.js';
import { EventKind } from './events.js';
import { EventHeap } from './heap.js';

export { EventKind } from './events.js';

/** Slots of the wheel: one per millisecond, so the horizon is about 65 simulated seconds. */
const WHEEL_BITS = 16;
const WHEEL = 1 << WHEEL_BITS;
const MASK = WHEEL - 1;

/**
 * An event's row in the wheel, in int32 words: its kind, the task (or
 * action) it concerns, the task's generation when it was scheduled, the next
 * event of its slot (-1: none). 16 bytes in memory whose pages are aligned:
 * four events per cache line, none straddling two. The time is not stored:
 * an event in the wheel lies in [cur, cur + WHEEL), so its slot says it
 * (`slotTime`).
 */
const EVENT_WORDS = 4;
const KIND = 0;
const ARG = 1;
const GENERATION = 2;
const NEXT = 3;

/**
 * The event queue: a timing wheel of one slot per millisecond (every event
 * time is a whole millisecond), each slot a FIFO list, with the events
 * beyond its horizon in a heap. Push and pop cost O(1) where a heap of a
 * million pending events costs twenty levels of moves.
 *
 * Order: by time, then by the order events were pushed, exactly as the heap
 * alone would give (a run is the same on every machine). Within one slot the
 * list keeps push order. An event from the heap is moved into its slot as
 * soon as its time comes within the horizon, before any event can be pushed
 * straight into that slot (a push goes straight into the wheel only when its
 * time is already within the horizon), so it lands ahead of every later push
 * for the same time.
 *
 * Events are never scheduled before the last one popped; one that is would
 * come out next, at the current time.
 */
export class EventQueue {
  // The event pool: one 16-byte row per event (see EVENT_WORDS), linked per slot through its
  // `next` word. A million pending events are scattered over the pool by the free list; with a
  // typed array per field, a pop paid a cache miss per field.
  private memory = new WasmMemory({ initial: 1 });
  private i32 = new Int32Array(this.memory.buffer);
  private capacity = this.i32.length / EVENT_WORDS;
  private free = -1;
  private used = 0;
  private readonly head = new Int32Array(WHEEL).fill(-1);
  private readonly tail = new Int32Array(WHEEL).fill(-1);
  /** One bit per slot that holds events: finding the next event skips 32 empty slots a load. */
  private readonly bits = new Uint32Array(WHEEL >>> 5);
  private inWheel = 0;
  private readonly far = new EventHeap();
  /** The time of the last event popped: the wheel covers [cur, cur + WHEEL). */
  private cur = 0;

  /** Where `pop` leaves the event it removed. */
  outTime = 0;
  outKind: EventKind = EventKind.ACTION;
  outArg = 0;
  outGeneration = 0;

  get size(): number {
    return this.inWheel + this.far.size;
  }

  push(time: number, kind: EventKind, arg: number, generation: number): void {
    const t = Math.max(time, this.cur);
    if (t - this.cur >= WHEEL) this.far.push(t, kind, arg, generation);
    else this.append(t, kind, arg, generation);
  }

  /** Removes the earliest event into the out fields; false when empty. */
  pop(): boolean {
    if (this.inWheel === 0) {
      if (this.far.size === 0) return false;
      this.advance(this.far.peekTime());
    }
    const slot = this.nextSlot();
    const e = this.head[slot]!;
    const w = e * EVENT_WORDS;
    const after = this.i32[w + NEXT]!;
    this.head[slot] = after;
    if (after === -1) {
      this.tail[slot] = -1;
      this.bits[slot >>> 5]! &= ~(1 << (slot & 31));
    }
    this.inWheel--;
    this.outTime = this.slotTime(slot);
    this.outKind = this.i32[w + KIND]! as EventKind;
    this.outArg = this.i32[w + ARG]!;
    this.outGeneration = this.i32[w + GENERATION]!;
    this.i32[w + NEXT] = this.free;
    this.free = e;
    if (this.outTime > this.cur) this.advance(this.outTime);
    return true;
  }

  /** The earliest event's time, or +Infinity. */
  peekTime(): number {
    if (this.inWheel === 0) return this.far.peekTime();
    return this.slotTime(this.nextSlot());
  }

  /** Drops every event and gives the pool's memory back (a run that has ended: its report needs the room). */
  release(): void {
    this.memory = new WasmMemory({ initial: 1 });
    this.views();
    this.free = -1;
    this.used = 0;
    this.head.fill(-1);
    this.tail.fill(-1);
    this.bits.fill(0);
    this.inWheel = 0;
    this.far.release();
  }

  /** Moves the wheel's start to `t`, bringing in the heap's events that are now within the horizon. */
  private advance(t: number): void {
    this.cur = t;
    const far = this.far;
    while (far.size > 0 && far.peekTime() - t < WHEEL) {
      far.pop();
      this.append(far.outTime, far.outKind, far.outArg, far.outGeneration);
    }
  }

  private append(t: number, kind: EventKind, arg: number, generation: number): void {
    let e = this.free;
    if (e !== -1) this.free = this.i32[e * EVENT_WORDS + NEXT]!;
    else {
      if (this.used === this.capacity) this.grow();
      e = this.used++;
    }
    const w = e * EVENT_WORDS;
    this.i32[w + KIND] = kind;
    this.i32[w + ARG] = arg;
    this.i32[w + GENERATION] = generation;
    this.i32[w + NEXT] = -1;
    const slot = t & MASK;
    const last = this.tail[slot]!;
    if (last === -1) {
      this.head[slot] = e;
      this.bits[slot >>> 5]! |= 1 << (slot & 31);
    } else this.i32[last * EVENT_WORDS + NEXT] = e;
    this.tail[slot] = e;
    this.inWheel++;
  }

  /** The first slot at or after the current time's that holds an event (the wheel is not empty). */
  private nextSlot(): number {
    const start = this.cur & MASK;
    let w = start >>> 5;
    let word = this.bits[w]! & (~0 << (start & 31));
    const words = this.bits.length;
    for (let i = 0; word === 0; i++) {
      // Round the wheel once, then the start word's low bits (times just under a horizon ahead).
      w = (w + 1) % words;
      word = i < words ? this.bits[w]! : 0;
    }
    return (w << 5) | (31 - Math.clz32(word & -word));
  }

  /** Doubles the pool (growing the memory detaches the old views). */
  private grow(): void {
    this.memory.grow(this.memory.buffer.byteLength / WASM_PAGE);
    this.views();
  }

  private views(): void {
    this.i32 = new Int32Array(this.memory.buffer);
    this.capacity = this.i32.length / EVENT_WORDS;
  }

  /** The time of the events in a slot: the one time in [cur, cur + WHEEL) that falls in it. */
  private slotTime(slot: number): number {
    return this.cur + ((slot - this.cur) & MASK);
  }
}
