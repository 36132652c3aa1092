import { type Addr, formatAddr } from '@klpsim/arm64';
import { fail, type InputError, ok, type Result } from './errors.js';

/**
 * Sparse little-endian memory: a sorted list of mapped regions, each one
 * contiguous buffer viewed as 32-bit words. Reads report an unmapped access
 * by their return value; nothing here throws on a bad address.
 */

/** One mapped, contiguous piece of memory (a stack, a text section, ...). */
export interface MemoryRegion {
  readonly name: string;
  /** First byte (folded address, 8-aligned). */
  readonly start: Addr;
  /** One past the last byte. */
  readonly end: Addr;
  readonly bytes: Uint8Array;
  /** The same bytes as little-endian 32-bit words. */
  readonly words: Uint32Array;
}

/** Where a 64-bit read puts its halves (reused, so reads do not allocate). */
export interface Word64 {
  hi: number;
  lo: number;
}

export class Memory {
  private readonly regions: MemoryRegion[] = [];

  /** Maps a copy of `bytes` at `start`; fails if it overlaps a mapped region. */
  map(name: string, start: Addr, bytes: Uint8Array): Result<MemoryRegion, InputError> {
    const r = this.mapZeroed(name, start, bytes.length);
    if (r.ok) r.value.bytes.set(bytes);
    return r;
  }

  /** Maps `size` zero bytes at `start`, for the caller to fill in place. */
  mapZeroed(name: string, start: Addr, length: number): Result<MemoryRegion, InputError> {
    if (!Number.isFinite(start) || start % 8 !== 0) {
      return fail({
        code: 'KLPSIM_MEMORY_OVERLAP',
        message: `region ${name} at ${formatAddr(start)} is not 8-byte aligned`,
      });
    }
    const size = Math.ceil(length / 8) * 8;
    const end = start + size;
    let i = this.regions.length;
    while (i > 0 && this.regions[i - 1]!.start > start) i--;
    for (const r of [this.regions[i - 1], this.regions[i]]) {
      if (r !== undefined && start < r.end && r.start < end) {
        return fail({
          code: 'KLPSIM_MEMORY_OVERLAP',
          message: `region ${name} [${formatAddr(start)}, ${formatAddr(end)}) overlaps ${r.name} [${formatAddr(r.start)}, ${formatAddr(r.end)})`,
        });
      }
    }
    const buf = new ArrayBuffer(size);
    const region: MemoryRegion = {
      name,
      start,
      end,
      bytes: new Uint8Array(buf),
      words: new Uint32Array(buf),
    };
    this.regions.splice(i, 0, region);
    return ok(region);
  }

  /**
   * Maps `length` bytes at `start` that `fill` writes the first time anything
   * reads the region's `bytes` or `words`: until then none of its pages is
   * touched (a 12 MiB text dump that a walk never reads costs no page faults).
   * `fill` may throw (an `InputFault`); the next read then tries again.
   */
  mapLazy(
    name: string,
    start: Addr,
    length: number,
    fill: (into: Uint8Array) => void,
  ): Result<MemoryRegion, InputError> {
    const mapped = this.mapZeroed(name, start, length);
    if (!mapped.ok) return mapped;
    const region = mapped.value;
    const { bytes, words } = region;
    const filled = (): void => {
      fill(bytes);
      // Plain fields from now on: later reads cost what they cost in any region.
      Object.defineProperties(region, {
        bytes: { value: bytes, enumerable: true },
        words: { value: words, enumerable: true },
      });
    };
    Object.defineProperties(region, {
      bytes: {
        get: () => {
          filled();
          return bytes;
        },
        configurable: true,
        enumerable: true,
      },
      words: {
        get: () => {
          filled();
          return words;
        },
        configurable: true,
        enumerable: true,
      },
    });
    return mapped;
  }

  /** Removes a region (module unload, init memory freed). */
  unmap(region: MemoryRegion): void {
    const i = this.regions.indexOf(region);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** The region holding all of `[addr, addr+size)`, or null. */
  regionOf(addr: Addr, size: number): MemoryRegion | null {
    const rs = this.regions;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = rs[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return addr + size <= r.end ? r : null;
    }
    return null;
  }

  /** Reads the 64-bit word at an 8-aligned `addr` into `out`; false if unmapped. */
  read64(addr: Addr, out: Word64): boolean {
    const r = this.regionOf(addr, 8);
    if (r === null || addr % 8 !== 0) return false;
    const i = (addr - r.start) / 4;
    out.lo = r.words[i]!;
    out.hi = r.words[i + 1]!;
    return true;
  }

  /** The 32-bit word at a 4-aligned `addr`, or -1 if unmapped. */
  read32(addr: Addr): number {
    const r = this.regionOf(addr, 4);
    if (r === null || addr % 4 !== 0) return -1;
    return r.words[(addr - r.start) / 4]!;
  }

  /** Writes a 64-bit word at an 8-aligned `addr`; false if unmapped. */
  write64(addr: Addr, hi: number, lo: number): boolean {
    const r = this.regionOf(addr, 8);
    if (r === null || addr % 8 !== 0) return false;
    const i = (addr - r.start) / 4;
    r.words[i] = lo >>> 0;
    r.words[i + 1] = hi >>> 0;
    return true;
  }

  /** Writes a 32-bit word at a 4-aligned `addr`; false if unmapped. */
  write32(addr: Addr, word: number): boolean {
    const r = this.regionOf(addr, 4);
    if (r === null || addr % 4 !== 0) return false;
    r.words[(addr - r.start) / 4] = word >>> 0;
    return true;
  }

  /**
   * A memory whose region list is its own but whose bytes are shared with
   * this one: mapping and unmapping in the copy leave this one alone (a
   * simulation loads modules and adds stack images on a copy).
   */
  clone(): Memory {
    const m = new Memory();
    m.regions.push(...this.regions);
    return m;
  }

  /** All mapped regions, lowest first. */
  list(): readonly MemoryRegion[] {
    return this.regions;
  }
}
