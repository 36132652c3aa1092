import { RowMemory } from './columns.js';
import { EventKind } from './events.js';
import { EventHeap } from './heap.js';

export { EventKind } from './events.js';

/** Slots of the wheel: one per millisecond, so the horizon is about 65 simulated seconds. */
const WHEEL_BITS = 16;
const WHEEL = 1 << WHEEL_BITS;
const MASK = WHEEL - 1;

/**
 * The wheel keeps each slot's events in chunks of CHUNK_EVENTS, one cache
 * line each (16 int32 words, in a RowMemory, whose start is page-aligned
 * once it is large, so a chunk never straddles two lines): per event its kind, the task (or action) it
 * concerns and the task's generation when it was scheduled; the last word
 * links the slot's next chunk (-1: none). A slot's events are popped one
 * after the other, so a pop reads the line the previous pop read, where
 * events linked one by one over a scattered pool cost a cache miss each.
 * Times are not stored: an event in the wheel lies in [cur, cur + WHEEL),
 * so its slot says it (`slotTime`).
 */
const CHUNK_WORDS = 16;
const CHUNK_EVENTS = 5;
const EVENT_WORDS = 3;
const KIND = 0;
const ARG = 1;
const GENERATION = 2;
const LINK = CHUNK_WORDS - 1;

/** A queue's storage: its chunk pool (whose chunks are written before they are read) and its wheel. */
interface WheelStorage {
  readonly memory: RowMemory;
  readonly headChunk: Int32Array;
  readonly headAt: Uint8Array;
  readonly tailChunk: Int32Array;
  readonly tailFill: Uint8Array;
  readonly bits: Uint32Array;
}

/** The storage of the last queue released, for the next one (one per thread: a worker has its own). */
let spare: WheelStorage | null = null;

/** A new queue's chunk pool: 1,024 chunks. */
const INITIAL_POOL_BYTES = 1024 * CHUNK_WORDS * 4;

/** A chunk pool larger than this is not kept for the next queue. */
const SPARE_MAX_BYTES = 4 << 20;

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
  // The chunk pool (see CHUNK_WORDS): free chunks linked through their LINK word.
  private memory: RowMemory;
  private i32 = new Int32Array(0);
  private capacity = 0;
  private free = -1;
  private used = 0;
  /** Per slot: its first chunk (-1: the slot is empty) and the next event to pop in it. */
  private readonly headChunk: Int32Array;
  private readonly headAt: Uint8Array;
  /** Per slot: its last chunk and how many events that chunk holds. */
  private readonly tailChunk: Int32Array;
  private readonly tailFill: Uint8Array;
  /** One bit per slot that holds events: finding the next event skips 32 empty slots a load. */
  private readonly bits: Uint32Array;
  private inWheel = 0;
  private readonly far = new EventHeap();
  /** The time of the last event popped: the wheel covers [cur, cur + WHEEL). */
  private cur = 0;

  /** Where `pop` leaves the event it removed. */
  outTime = 0;
  outKind: EventKind = EventKind.ACTION;
  outArg = 0;
  outGeneration = 0;

  constructor() {
    // The storage a released queue left (see `release`), else fresh.
    const w = spare ?? {
      memory: new RowMemory(INITIAL_POOL_BYTES),
      headChunk: new Int32Array(WHEEL).fill(-1),
      headAt: new Uint8Array(WHEEL),
      tailChunk: new Int32Array(WHEEL).fill(-1),
      tailFill: new Uint8Array(WHEEL),
      bits: new Uint32Array(WHEEL >>> 5),
    };
    spare = null;
    this.memory = w.memory;
    this.headChunk = w.headChunk;
    this.headAt = w.headAt;
    this.tailChunk = w.tailChunk;
    this.tailFill = w.tailFill;
    this.bits = w.bits;
    this.views();
  }

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
    const c = this.headChunk[slot]!;
    const at = this.headAt[slot]!;
    const w = c * CHUNK_WORDS + at * EVENT_WORDS;
    this.outTime = this.slotTime(slot);
    this.outKind = this.i32[w + KIND]! as EventKind;
    this.outArg = this.i32[w + ARG]!;
    this.outGeneration = this.i32[w + GENERATION]!;
    this.inWheel--;
    if (c === this.tailChunk[slot] && at + 1 === this.tailFill[slot]) {
      // The slot's last event: the slot is empty.
      this.freeChunk(c);
      this.headChunk[slot] = -1;
      this.tailChunk[slot] = -1;
      this.bits[slot >>> 5]! &= ~(1 << (slot & 31));
    } else if (at + 1 === CHUNK_EVENTS) {
      this.headChunk[slot] = this.i32[c * CHUNK_WORDS + LINK]!;
      this.headAt[slot] = 0;
      this.freeChunk(c);
    } else this.headAt[slot] = at + 1;
    if (this.outTime > this.cur) this.advance(this.outTime);
    return true;
  }

  /** The earliest event's time, or +Infinity. */
  peekTime(): number {
    if (this.inWheel === 0) return this.far.peekTime();
    return this.slotTime(this.nextSlot());
  }

  /**
   * Drops every event; the queue is not used again. Its storage, cleared,
   * goes to the next queue made (a run of many simulations makes one after
   * another, and fresh memory costs more than clearing); a chunk pool grown
   * past SPARE_MAX_BYTES is dropped instead, so that a run that has ended
   * gives that room back to its report.
   */
  release(): void {
    this.far.release();
    if (this.memory.buffer.byteLength > SPARE_MAX_BYTES)
      this.memory = new RowMemory(INITIAL_POOL_BYTES);
    this.i32 = new Int32Array(0);
    this.headChunk.fill(-1);
    this.tailChunk.fill(-1);
    this.bits.fill(0);
    spare = {
      memory: this.memory,
      headChunk: this.headChunk,
      headAt: this.headAt,
      tailChunk: this.tailChunk,
      tailFill: this.tailFill,
      bits: this.bits,
    };
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
    const slot = t & MASK;
    let c = this.tailChunk[slot]!;
    let fill = this.tailFill[slot]!;
    if (c === -1) {
      c = this.newChunk();
      this.headChunk[slot] = c;
      this.headAt[slot] = 0;
      this.tailChunk[slot] = c;
      fill = 0;
      this.bits[slot >>> 5]! |= 1 << (slot & 31);
    } else if (fill === CHUNK_EVENTS) {
      const next = this.newChunk();
      this.i32[c * CHUNK_WORDS + LINK] = next;
      this.tailChunk[slot] = next;
      c = next;
      fill = 0;
    }
    const w = c * CHUNK_WORDS + fill * EVENT_WORDS;
    this.i32[w + KIND] = kind;
    this.i32[w + ARG] = arg;
    this.i32[w + GENERATION] = generation;
    this.tailFill[slot] = fill + 1;
    this.inWheel++;
  }

  private newChunk(): number {
    let c = this.free;
    if (c !== -1) this.free = this.i32[c * CHUNK_WORDS + LINK]!;
    else {
      if (this.used === this.capacity) this.grow();
      c = this.used++;
    }
    this.i32[c * CHUNK_WORDS + LINK] = -1;
    return c;
  }

  private freeChunk(c: number): void {
    this.i32[c * CHUNK_WORDS + LINK] = this.free;
    this.free = c;
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

  /** Doubles the pool (views are made again: growing gives a new buffer). */
  private grow(): void {
    this.memory.ensure(this.memory.buffer.byteLength * 2);
    this.views();
  }

  private views(): void {
    this.i32 = new Int32Array(this.memory.buffer);
    this.capacity = this.i32.length / CHUNK_WORDS;
  }

  /** The time of the events in a slot: the one time in [cur, cur + WHEEL) that falls in it. */
  private slotTime(slot: number): number {
    return this.cur + ((slot - this.cur) & MASK);
  }
}
