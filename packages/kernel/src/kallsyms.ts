import { type Addr, formatAddr } from '@klpsim/arm64';
import { upperBound } from './search.js';

/**
 * kallsyms and the `%pS` / `%pB` formats (kernel/kallsyms.c,
 * kernel/module/kallsyms.c, lib/vsprintf.c).
 */

export interface KernelSymbol {
  readonly name: string;
  readonly address: Addr;
  /** nm-style type letter: t, T, W, D, ... */
  readonly type: string;
  /** Set for module symbols. */
  readonly module?: string;
}

/** What a lookup found: the symbol, the offset into it and its size. */
export interface SymbolHit {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly module: string | null;
}

export interface KallsymsBounds {
  readonly stext: Addr;
  readonly etext: Addr;
  readonly sinittext: Addr | null;
  readonly einittext: Addr | null;
  /** `_end`, for KALLSYMS_ALL kernels. */
  readonly end: Addr | null;
  /** CONFIG_KALLSYMS_ALL: data symbols are in the table and `_end` bounds the last one. */
  readonly all: boolean;
}

/** Each core name's first index in the table, and per index the next one with the same name (-1: none). */
interface CoreNameIndex {
  readonly first: Map<string, number>;
  readonly next: Int32Array;
}

interface ModuleTable {
  readonly name: string;
  readonly textStart: Addr;
  readonly textEnd: Addr;
  readonly addrs: Float64Array;
  readonly names: readonly string[];
}

export class Kallsyms {
  private readonly addrs: Float64Array;
  private readonly names: readonly string[];
  /**
   * The core names' index (module names are looked up in `modules`, which come and go). Built
   * at the first lookup by name: tens of thousands of names cost tens of ms, and a walk never
   * asks. The holder is shared with every clone, so the machine a simulation copies per run
   * builds it once.
   */
  private readonly byName: { index: CoreNameIndex | null } = { index: null };
  private modules: ModuleTable[] = [];

  /** `core` must be sorted by address, aliases in kallsyms order. */
  constructor(
    core: readonly KernelSymbol[],
    private readonly bounds: KallsymsBounds,
  ) {
    // A plain loop: Float64Array.from with a map function is many times slower.
    this.addrs = new Float64Array(core.length);
    for (let i = 0; i < core.length; i++) this.addrs[i] = core[i]!.address;
    this.names = core.map((s) => s.name);
  }

  /**
   * Adds a module's symbols. `$x`/`$d` mapping symbols are skipped, as the
   * kernel's module lookup skips them; the last symbol is sized up to `textEnd`.
   */
  addModule(name: string, textStart: Addr, textEnd: Addr, symbols: readonly KernelSymbol[]): void {
    const syms = symbols
      .filter((s) => !s.name.startsWith('$') && s.address >= textStart && s.address < textEnd)
      .slice()
      .sort((a, b) => a.address - b.address);
    this.modules.push({
      name,
      textStart,
      textEnd,
      addrs: Float64Array.from(syms, (s) => s.address),
      names: syms.map((s) => s.name),
    });
  }

  /** A copy sharing the core table, with a module list of its own. */
  clone(): Kallsyms {
    const k: Kallsyms = Object.create(Kallsyms.prototype);
    Object.assign(k, this, { modules: [...this.modules] });
    return k;
  }

  /** The loaded modules' names, in load order. */
  moduleNames(): string[] {
    return this.modules.map((m) => m.name);
  }

  /** The core table, in order (for writing a capture). */
  coreSymbols(): { name: string; address: Addr }[] {
    return this.names.map((name, i) => ({ name, address: this.addrs[i]! }));
  }

  /** A module's symbols (mapping symbols excluded), to detach and re-add it. */
  moduleSymbols(name: string): { name: string; address: Addr; type: string; module: string }[] {
    const m = this.modules.find((x) => x.name === name);
    if (m === undefined) return [];
    return m.names.map((n, i) => ({ name: n, address: m.addrs[i]!, type: 't', module: name }));
  }

  removeModule(name: string): void {
    this.modules = this.modules.filter((m) => m.name !== name);
  }

  /** The address of the first symbol called `name` (core, then loaded modules), or undefined. */
  addressOf(name: string): Addr | undefined {
    const first = this.nameIndex().first.get(name);
    if (first !== undefined) return this.addrs[first];
    for (const m of this.modules) {
      const i = m.names.indexOf(name);
      if (i >= 0) return m.addrs[i];
    }
    return undefined;
  }

  /** Every address of `name` in one loaded module, in its symbol order (for `sympos` in a module object). */
  moduleAddressesOf(module: string, name: string): Addr[] {
    const m = this.modules.find((x) => x.name === module);
    if (m === undefined) return [];
    const out: Addr[] = [];
    for (let i = 0; i < m.names.length; i++) if (m.names[i] === name) out.push(m.addrs[i]!);
    return out;
  }

  /** Every core-kernel address of a symbol called `name`, in kallsyms order (for `sympos`). */
  addressesOf(name: string): Addr[] {
    const { first, next } = this.nameIndex();
    const out: Addr[] = [];
    for (let i = first.get(name) ?? -1; i !== -1; i = next[i]!) out.push(this.addrs[i]!);
    return out;
  }

  private nameIndex(): CoreNameIndex {
    let index = this.byName.index;
    if (index === null) {
      // Backwards, so that each name's chain runs in kallsyms order and `first` ends at its head.
      const first = new Map<string, number>();
      const next = new Int32Array(this.names.length);
      for (let i = this.names.length - 1; i >= 0; i--) {
        const name = this.names[i]!;
        next[i] = first.get(name) ?? -1;
        first.set(name, i);
      }
      index = { first, next };
      this.byName.index = index;
    }
    return index;
  }

  /** `is_ksym_addr`: whether the core table may name this address at all. */
  private isKsymAddr(a: Addr): boolean {
    const b = this.bounds;
    if (b.all && b.end !== null) return a >= b.stext && a <= b.end;
    const inText = a >= b.stext && a < b.etext;
    const inInit =
      b.sinittext !== null && b.einittext !== null && a >= b.sinittext && a < b.einittext;
    return inText || inInit;
  }

  /** The symbol containing `a` (core first, then modules), or null. */
  lookup(a: Addr): SymbolHit | null {
    if (Number.isNaN(a)) return null;
    if (this.isKsymAddr(a)) return this.lookupCore(a);
    for (const m of this.modules) {
      if (a >= m.textStart && a < m.textEnd) return lookupModule(m, a);
    }
    return null;
  }

  private lookupCore(a: Addr): SymbolHit | null {
    const addrs = this.addrs;
    let i = upperBound(addrs, a) - 1;
    if (i < 0) return null;
    // The first alias at this address is the one the kernel prints.
    while (i > 0 && addrs[i - 1] === addrs[i]) i--;
    const start = addrs[i]!;
    let j = i + 1;
    while (j < addrs.length && addrs[j] === start) j++;
    let end: Addr;
    if (j < addrs.length) end = addrs[j]!;
    else if (
      this.bounds.sinittext !== null &&
      this.bounds.einittext !== null &&
      a >= this.bounds.sinittext &&
      a < this.bounds.einittext
    )
      end = this.bounds.einittext;
    else if (this.bounds.all && this.bounds.end !== null) end = this.bounds.end;
    else end = this.bounds.etext;
    return { name: this.names[i]!, offset: a - start, size: end - start, module: null };
  }

  /** `%pS`: `name+0xoff/0xsize [module]`, or the bare address when no symbol covers it. */
  formatS(a: Addr): string {
    const hit = this.lookup(a);
    return hit === null ? formatAddr(a) : formatHit(hit, hit.offset);
  }

  /**
   * `%pB`: the symbol of `a - 1`, offset printed plus one, so a return
   * address just past a noreturn call names the caller, not the next function.
   */
  formatB(a: Addr): string {
    const hit = this.lookup(a - 1);
    return hit === null ? formatAddr(a) : formatHit(hit, hit.offset + 1);
  }
}

function formatHit(hit: SymbolHit, offset: number): string {
  const mod = hit.module !== null ? ` [${hit.module}]` : '';
  return `${hit.name}+0x${offset.toString(16)}/0x${hit.size.toString(16)}${mod}`;
}

function lookupModule(m: ModuleTable, a: Addr): SymbolHit | null {
  const i = upperBound(m.addrs, a) - 1;
  if (i < 0) return null;
  let k = i;
  while (k > 0 && m.addrs[k - 1] === m.addrs[k]) k--;
  const start = m.addrs[k]!;
  let j = i + 1;
  while (j < m.addrs.length && m.addrs[j] === start) j++;
  const end = j < m.addrs.length ? m.addrs[j]! : m.textEnd;
  return { name: m.names[k]!, offset: a - start, size: end - start, module: m.name };
}
