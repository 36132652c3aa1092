#!/usr/bin/env python3
"""An independent runner for klpsim-vector/v1 raw-state vectors.

Written from the kernel's own rules, not from klpsim's TypeScript: it walks
each vector's raw machine state under

  mainline   arch/arm64/kernel/stacktrace.c (6.13+ meta records; 6.17+
             arch_stack_walk_reliable), arch/arm64/include/asm/stacktrace/common.h
  linux-6.1  arch/arm64/kernel/stacktrace.c and asm/stacktrace/common.h of v6.1
  sframe-regs  mainline with the step after a pt_regs pc taken from the frame
             state at that pc ("unwind: arm64: Use sframe to unwind interrupt
             frames", SFrame series v5, with Mark Rutland's review of v5;
             docs/policies.md, section sframe-regs)
  fp-validate  mainline with every frame checked against the frame state
             ("arm64: livepatch: Use ORC for dynamic frame pointer validation",
             RFC v2/v3; docs/policies.md, section fp-validate)

The last two read the frame state from the vector's `frameStates` (no
instruction decoder here). It compares the verdict and the trace addresses
with every expectation of those policies that uses no extra checks; for the
last two also the source markers (L for an LR taken from pt_regs) and the
reason codes of their own rules (NO_FRAME_STATE, FRAME_STATE_STEP_FAILED,
FP_MISMATCH). Python standard library only.

usage: run.py [paths...]      (default: the test-vectors/ folder this file is in)
The last line is "N passed, N failed"; the exit code is 1 on any failure.
"""

import json
import os
import sys

MASK64 = (1 << 64) - 1
EINVAL = -22
ENOENT = -2

# enum kunwind_source (KUNWIND_SOURCE_REGS_LR: the SFrame series)
SRC_UNKNOWN, SRC_FRAME, SRC_CALLER, SRC_TASK, SRC_REGS_PC, SRC_REGS_LR = range(6)
# state_source_string
SRC_MARK = {SRC_UNKNOWN: "U", SRC_FRAME: "", SRC_CALLER: "C", SRC_TASK: "T", SRC_REGS_PC: "P", SRC_REGS_LR: "L"}
# The reason codes of the frame-state policies' own rules (docs/reasons.md).
NO_FRAME_STATE, STEP_FAILED, FP_MISMATCH = "NO_FRAME_STATE", "FRAME_STATE_STEP_FAILED", "FP_MISMATCH"
FRAME_STATE_REASONS = (NO_FRAME_STATE, STEP_FAILED, FP_MISMATCH)
# enum stack_type (6.1 asm/stacktrace/common.h); ST_EFI for mainline's EFI runtime stack, which has no type
ST_UNKNOWN, ST_TASK, ST_IRQ, ST_OVERFLOW, ST_SDEI_NORMAL, ST_SDEI_CRITICAL, ST_EFI = range(7)


class Unreadable(Exception):
    """A read of memory the vector does not map (the kernel would fault)."""


def genmask(high, low):
    return ((1 << (high + 1)) - 1) & ~((1 << low) - 1)


class FrameStates:
    """A vector's `frameStates`: per function, runs of instructions with one frame state.

    A pc in no listed function, or in none of its rows, has no frame state."""

    def __init__(self, fs):
        self.funcs = []
        for f in (fs or {}).get("functions", []):
            start = int(f["start"], 16)
            rows = [(r["start"], r["end"], r["state"], r["cfa"]["base"], r["cfa"]["offset"], r["record"],
                     r["sp"])
                    for r in f["rows"]]
            self.funcs.append((start, f["size"], rows))
        self.funcs.sort()

    def at(self, pc):
        """(state, cfa base, cfa offset, record offset, CFA - sp or None) before the instruction at pc,
        or None."""
        for start, size, rows in self.funcs:
            if start <= pc < start + size:
                off = pc - start
                if off % 4:
                    return None
                for lo, hi, state, base, cfa_off, record, sp in rows:
                    if lo <= off < hi:
                        return state, base, cfa_off, record, sp
                return None
        return None


class Machine:
    """The raw state: memory, layout, tracer state; values as Python ints."""

    def __init__(self, raw, frame_states=None):
        self.frame_states = FrameStates(frame_states)
        self.raw = raw
        self.regions = []
        for m in raw["memory"]:
            buf = bytearray(m["size"])
            for c in m["chunks"]:
                data = __import__("base64").b64decode(c["base64"])
                buf[c["offset"]:c["offset"] + len(data)] = data
            self.regions.append((int(m["start"], 16), bytes(buf)))
        self.va_bits = raw["vaBits"]
        self.pac = raw["kernelPacEnabled"]
        pr = raw["ptRegs"]
        self.pt_regs_size = pr["size"]
        self.stackframe_off = pr["stackframeOffset"]
        self.pc_off = pr["pcOffset"]
        self.x29_off = pr["regs29Offset"]
        # struct user_pt_regs { u64 regs[31]; u64 sp; u64 pc; u64 pstate; }
        self.x30_off = self.x29_off + 8
        self.sp_off = self.x29_off + 16
        self.meta = pr["meta"]
        sp = raw["special"]
        h = lambda s: None if s is None else int(s, 16)
        self.return_to_handler = h(sp["returnToHandler"])
        self.kretprobe_trampoline = h(sp["kretprobeTrampoline"])
        self.cpus = raw["cpus"]
        self.tasks = raw["tasks"]

    def read64(self, addr):
        for start, buf in self.regions:
            if start <= addr and addr + 8 <= start + len(buf):
                return int.from_bytes(buf[addr - start:addr - start + 8], "little")
        raise Unreadable(hex(addr))

    def strip_pac(self, ptr):
        """XPACLRI (mainline) / ptrauth_strip_insn_pac (6.1); identity without pointer auth.

        Bit 55 picks the half: set, GENMASK(63, va) becomes ones (TBI1 off);
        clear, GENMASK(54, va) becomes zeros and the top byte stays (TBI0 on).
        """
        if not self.pac:
            return ptr
        if ptr & (1 << 55):
            return ptr | genmask(63, self.va_bits)
        return ptr & ~genmask(54, self.va_bits) & MASK64


class StackInfo:
    __slots__ = ("low", "high", "type")

    def __init__(self, low=0, high=0, type_=ST_UNKNOWN):
        self.low, self.high, self.type = low, high, type_

    def on(self, sp, size):
        # stackinfo_on_stack: an unknown stack (low == 0) holds nothing; no wrap-around.
        if not self.low:
            return False
        if sp < self.low or sp + size > MASK64 or sp + size > self.high:
            return False
        return True


def rng(r):
    return None if r is None else (int(r["low"], 16), int(r["high"], 16))


def known_stacks(m, task, ctx, efi=False):
    """kunwind_stack_walk's stacks[]: the task stack; per-CPU ones only for current in the right context.

    efi: the kernel has STACKINFO_EFI (the EFI runtime stack, efi_rt_stack_top, known while
    current_in_efi()): mainline since v6.2; v6.1's arch_stack_walk has no such entry."""
    out = [StackInfo(int(task["stack"]["low"], 16), int(task["stack"]["high"], 16), ST_TASK)]
    if ctx is None:
        return out
    cpu = m.cpus[task["cpu"]]
    if ctx["nonPreemptible"]:
        for key, t in (("irqStack", ST_IRQ), ("overflowStack", ST_OVERFLOW)):
            r = rng(cpu[key])
            if r:
                out.append(StackInfo(r[0], r[1], t))
    if ctx["inNmi"]:
        for key, t in (("sdeiNormalStack", ST_SDEI_NORMAL), ("sdeiCriticalStack", ST_SDEI_CRITICAL)):
            r = rng(cpu[key])
            if r:
                out.append(StackInfo(r[0], r[1], t))
    if efi and ctx.get("inEfi"):
        r = rng(cpu.get("efiStack"))
        if r:
            out.append(StackInfo(r[0], r[1], ST_EFI))
    return out


class Buffer:
    """kernel/stacktrace.c stack_trace_consume_entry."""

    def __init__(self, size):
        self.size, self.entries, self.marks = size, [], []

    def consume(self, pc, mark=""):
        if len(self.entries) >= self.size:
            return False
        self.entries.append(pc)
        self.marks.append(mark)
        return len(self.entries) < self.size


def fgraph_shadow(task, idx, fp, rth):
    """ftrace_graph_ret_addr (kernel/trace/fgraph.c, 6.8+): downwards from *idx or the top."""
    fg = task["fgraph"]
    i = idx or fg["curr"]
    for e in reversed(fg["entries"]):
        if e["pos"] >= i:
            continue
        if int(e["retp"], 16) == fp and int(e["ret"], 16) != rth:
            return int(e["ret"], 16), e["pos"]
    return None, idx


def fgraph_array(task, fp):
    """6.1 ftrace_graph_ret_addr: ret_stack[0..curr_ret_stack], first retp == fp."""
    fg = task["fgraph"]
    top = fg["curr"] if fg["layout"] == "array" else fg["curr"] - 1
    if top < 0:
        return None
    for e in fg["entries"]:
        if e["pos"] > top:
            break
        if int(e["retp"], 16) == fp:
            return int(e["ret"], 16)
    return None


def kretprobe_find(task, fp, cur, trampoline):
    """kernel/kprobes.c kretprobe_find_ret_addr: from after *cur; a 0 ret_addr ends the search."""
    lst = task["kretprobes"]
    i = cur + 1
    while True:
        # __kretprobe_find_ret_addr: the next instance that is not the trampoline itself.
        while i < len(lst) and int(lst[i]["retAddr"], 16) == trampoline:
            i += 1
        if i >= len(lst):
            return 0, cur
        cur = i
        ret = int(lst[i]["retAddr"], 16)
        if ret == 0:
            return 0, cur
        if int(lst[i]["fp"], 16) == fp:
            return ret, cur
        i += 1


class Mainline:
    """struct kunwind_state and do_kunwind."""

    # arch_reliable_kunwind_consume_entry refuses a pt_regs pc.
    refuses_regs_pc = True

    def __init__(self, m, task, ctx, reliable=False):
        self.m, self.task = m, task
        self.stacks = known_stacks(m, task, ctx, efi=True)
        self.stack = StackInfo()
        self.graph_idx = 0
        self.kr_cur = -1
        self.regs = None
        self.reliable = reliable
        self.flags = ""
        # The reason code of a frame-state rule that failed the walk (None: another rule, or none).
        self.reason = None

    def find_stack(self, sp, size):
        if self.stack.on(sp, size):
            return self.stack
        for s in self.stacks:
            if s.on(sp, size):
                return s
        return None

    def consume_stack(self, info, sp, size):
        tmp = StackInfo(info.low, info.high, info.type)
        info.low, info.high, info.type = 0, 0, ST_UNKNOWN
        self.stack = tmp
        self.stack.low = sp + size

    def recover(self):
        m, t = self.m, self.task
        if t["fgraph"] is not None and self.pc == m.return_to_handler:
            orig, self.graph_idx = fgraph_shadow(t, self.graph_idx, self.fp, m.return_to_handler)
            if orig is None or orig == self.pc:
                return EINVAL
            self.pc = orig
            self.flags += "F"
        if m.kretprobe_trampoline is not None and self.pc == m.kretprobe_trampoline:
            orig, self.kr_cur = kretprobe_find(t, self.fp, self.kr_cur, m.kretprobe_trampoline)
            if not orig:
                return EINVAL
            self.pc = orig
            self.flags += "K"
        return 0

    def mark(self):
        """The entry's marker as dump_backtrace prints it: source, then F / K for a recovered address."""
        return SRC_MARK[self.source] + self.flags

    def next_regs_pc(self):
        regs = self.fp - self.m.stackframe_off
        info = self.find_stack(regs, self.m.pt_regs_size)
        if info is None:
            return EINVAL
        self.consume_stack(info, regs, self.m.pt_regs_size)
        # The SFrame series keeps state->regs for the step after the pt_regs pc.
        self.regs = regs
        self.pc = self.m.read64(regs + self.m.pc_off)
        self.fp = self.m.read64(regs + self.m.x29_off)
        self.source = SRC_REGS_PC
        return 0

    def next_meta(self):
        meta = self.m.meta
        if meta is None:
            return EINVAL
        fp = self.fp
        if self.find_stack(fp, meta["size"]) is None:
            return EINVAL
        typ = self.m.read64(fp + meta["typeOffset"])
        if typ == meta["typeFinal"]:
            pt_regs = int(self.task["ptRegs"], 16)
            return ENOENT if fp == pt_regs + self.m.stackframe_off else EINVAL
        if typ == meta["typePtRegs"]:
            return self.next_regs_pc()
        return EINVAL

    def next_frame_record(self):
        fp = self.fp
        if fp & 7:
            return EINVAL
        info = self.find_stack(fp, 16)
        if info is None:
            return EINVAL
        new_fp = self.m.read64(fp)
        new_pc = self.m.read64(fp + 8)
        if new_fp == 0 and new_pc == 0:
            return self.next_meta()
        self.consume_stack(info, fp, 16)
        self.fp, self.pc, self.source = new_fp, new_pc, SRC_FRAME
        return 0

    def step(self):
        """The switch of kunwind_next: one step by the source of the current entry."""
        return self.next_frame_record()

    def next(self):
        self.flags = ""
        if self.source == SRC_UNKNOWN:
            return EINVAL
        err = self.step()
        if err:
            return err
        self.pc = self.m.strip_pac(self.pc)
        return self.recover()

    def check_frame(self):
        """A policy's check of the frame about to be stepped from (none in mainline)."""
        return 0

    def walk(self, fp, pc, source, buf, reliable, regs=None):
        self.fp, self.pc, self.source, self.regs = fp, pc, source, regs
        ret = self.recover()
        if ret:
            return ret
        while True:
            # arch_reliable_kunwind_consume_entry: give up at an exception boundary.
            if reliable and self.refuses_regs_pc and self.source == SRC_REGS_PC:
                return EINVAL
            if not buf.consume(self.pc, self.mark()):
                return EINVAL
            if reliable:
                ret = self.check_frame()
                if ret:
                    return ret
            ret = self.next()
            if ret == ENOENT:
                return 0
            if ret < 0:
                return ret


class Linux61:
    """struct unwind_state and unwind() of v6.1 (best effort only)."""

    def __init__(self, m, task, ctx, reliable=False):
        self.reason = None
        self.m, self.task = m, task
        self.stacks = known_stacks(m, task, None if ctx is None or not ctx["nonPreemptible"] else ctx)
        self.prev_fp, self.prev_type, self.stacks_done = 0, ST_UNKNOWN, set()
        self.kr_cur = -1

    def next_common(self):
        fp = self.fp
        if fp & 7:
            return EINVAL
        info = next((s for s in self.stacks if s.on(fp, 16)), None)
        if info is None or info.type in self.stacks_done:
            return EINVAL
        if info.type == self.prev_type:
            if fp <= self.prev_fp:
                return EINVAL
        else:
            self.stacks_done.add(self.prev_type)
        self.fp = self.m.read64(fp)
        self.pc = self.m.read64(fp + 8)
        self.prev_fp, self.prev_type = fp, info.type
        return 0

    def next(self):
        m, t = self.m, self.task
        if self.fp == int(t["ptRegs"], 16) + m.stackframe_off:
            return ENOENT
        err = self.next_common()
        if err:
            return err
        self.pc = m.strip_pac(self.pc)
        if t["fgraph"] is not None and self.pc == m.return_to_handler:
            orig = fgraph_array(t, self.fp)
            if orig is None or orig == self.pc:
                return EINVAL
            self.pc = orig
        if m.kretprobe_trampoline is not None and self.pc == m.kretprobe_trampoline:
            self.pc, self.kr_cur = kretprobe_find(t, self.fp, self.kr_cur, m.kretprobe_trampoline)
        return 0

    def walk(self, fp, pc, source, buf, reliable, regs=None):
        self.fp, self.pc = fp, pc
        while True:
            if not buf.consume(self.pc):
                break
            if self.next() < 0:
                break
        return 0


class SFrameRegs(Mainline):
    """The SFrame series (v5, as docs/policies.md `sframe-regs` reads it, with Rutland's review of v5).

    kunwind_next: after a pt_regs pc (KUNWIND_SOURCE_REGS_PC) the frame state at
    that pc decides the step (kunwind_next_regs_sframe); every other step is
    mainline's frame-record step. A reliable walk fails where the SFrame step
    fails (no frame-pointer fallback, no outermost frame); the debug walk falls
    back to the frame-record step as v5 does."""

    refuses_regs_pc = False

    def step(self):
        if self.source != SRC_REGS_PC:
            return self.next_frame_record()
        err = self.next_regs_sframe()
        if err and not self.reliable:
            # v5: "Fallback to FP based unwinder" (and mark the walk unreliable).
            self.reason = None
            err = self.next_frame_record()
        self.regs = None
        return err

    def fail(self, reason):
        self.reason = reason
        return EINVAL

    def next_regs_sframe(self):
        m, regs = self.m, self.regs
        if regs is None:
            return self.fail(STEP_FAILED)
        # v6 kunwind_next_regs_sframe: fp alignment before the lookup; sp's own is not checked.
        if self.fp & 7:
            return self.fail(STEP_FAILED)
        row = m.frame_states.at(self.pc)
        if row is None:
            return self.fail(NO_FRAME_STATE)
        state, base, cfa_off, record, _ = row
        sp = m.read64(regs + m.sp_off)
        # The CFA: regs->sp (sp-based rule) or x29 (fp-based rule, never below regs->sp).
        if base == "sp":
            cfa = sp
        else:
            if self.fp < sp:
                return self.fail(STEP_FAILED)
            cfa = self.fp
        cfa = (cfa + cfa_off) & MASK64
        # "Check CFA alignment to 16 bytes" (v6's changelog), in every state.
        if cfa & 15:
            return self.fail(STEP_FAILED)
        if state == "L":
            # UNWIND_RULE_RETAIN for both: the return address is regs[30], x29 still the caller's.
            self.pc = m.read64(regs + m.x30_off)
            self.source = SRC_REGS_LR
            return 0
        # CFA_OFFSET_DEREF: x29 at CFA+record (get_word), x30 above it (get_consume_word).
        fp_at = (cfa + record) & MASK64
        if self.find_stack(fp_at, 8) is None:
            return self.fail(STEP_FAILED)
        fp = m.read64(fp_at)
        ra_at = fp_at + 8
        info = self.find_stack(ra_at, 8)
        if info is None:
            return self.fail(STEP_FAILED)
        ra = m.read64(ra_at)
        self.consume_stack(info, ra_at, 8)
        self.fp, self.pc, self.source = fp, ra, SRC_FRAME
        return 0


class FpValidate(Mainline):
    """The ORC validation RFC (docs/policies.md `fp-validate`): mainline's walk, and before each
    step of a reliable walk the frame it steps from is checked against the frame state."""

    refuses_regs_pc = False

    def __init__(self, m, task, ctx, reliable=False):
        Mainline.__init__(self, m, task, ctx, reliable)
        # Every known stack's full bounds (consumption does not narrow them here).
        self.ranges = [(s.low, s.high) for s in self.stacks]
        # sp of the frame checked next (ORC's running CFA): a blocked task's saved sp to begin with.
        self.frame_sp = int(task["cpuContext"]["sp"], 16) if ctx is None else None

    def same_stack(self, a, b):
        return any(lo <= a < hi and lo <= b < hi for lo, hi in self.ranges)

    def is_meta(self, fp):
        try:
            return self.m.read64(fp) == 0 and self.m.read64(fp + 8) == 0
        except Unreadable:
            return False

    def check_frame(self):
        m, fp = self.m, self.fp
        # A meta record (FINAL, or an exception's pt_regs): the kernel marked the frame itself.
        if self.is_meta(fp):
            self.frame_sp = None
            return 0
        regs_pc = self.source == SRC_REGS_PC
        # A return address is looked up at its call (ORC: ip - 1); a pt_regs pc at itself.
        row = m.frame_states.at(self.pc if regs_pc else self.pc - 4)
        if row is None:
            self.reason = NO_FRAME_STATE
            return EINVAL
        state, base, cfa_off, record, sp_off = row
        if state != "F":
            self.reason = FP_MISMATCH
            return EINVAL
        # unwind_check_reliable: cfa += sp_offset; fp = cfa + fp_offset; fp must match.
        sp = self.frame_sp
        if regs_pc:
            sp = m.read64(self.regs + m.sp_off) if self.regs is not None else None
        if sp is not None and sp_off is not None and self.same_stack(fp, sp):
            cfa = (sp + sp_off) & MASK64
            if fp != (cfa + record) & MASK64:
                self.reason = FP_MISMATCH
                return EINVAL
        else:
            # sp unknown: the CFA from x29, as an fp-based ORC entry; nothing to compare.
            cfa = (fp - record) & MASK64
        self.frame_sp = cfa
        return 0


POLICIES = {"mainline": Mainline, "linux-6.1": Linux61, "sframe-regs": SFrameRegs, "fp-validate": FpValidate}
FRAME_STATE_POLICIES = ("sframe-regs", "fp-validate")


def start(m, task, frm):
    """Where the walk starts: (fp, pc, source, walking context or None for a blocked task, regs)."""
    kind = frm["kind"] if frm else "task"
    if kind == "task":
        cc = task["cpuContext"]
        return int(cc["fp"], 16), int(cc["pc"], 16), SRC_TASK, None, None
    ctx = {
        "nonPreemptible": frm.get("nonPreemptible", False),
        "inNmi": frm.get("inNmi", False),
        "inEfi": frm.get("inEfi", False),
    }
    if kind == "caller":
        return int(frm["fp"], 16), int(frm["pc"], 16), SRC_CALLER, ctx, None
    regs = int(frm["regs"], 16)
    return m.read64(regs + m.x29_off), m.read64(regs + m.pc_off), SRC_REGS_PC, ctx, regs


def walk(m, policy, task, frm, reliable, size):
    """(return value, entries, markers, reason code of a frame-state rule or None)."""
    buf = Buffer(size if size is not None else (100 if reliable else 512))
    try:
        fp, pc, source, ctx, regs = start(m, task, frm)
    except Unreadable:
        return EINVAL, [], [], None
    w = POLICIES[policy](m, task, ctx, reliable)
    try:
        ret = w.walk(fp, pc, source, buf, reliable, regs)
    except Unreadable:
        ret = EINVAL
    return ret, buf.entries, buf.marks, w.reason if ret < 0 else None


def check(vector):
    """The differences between this runner and the vector's expectations; None if nothing applies."""
    if "raw" not in vector:
        return None
    m = Machine(vector["raw"], vector.get("frameStates"))
    problems, checked = [], 0
    for wi, w in enumerate(vector["walks"]):
        task = m.tasks[w["task"]]
        for ei, e in enumerate(w["expect"]):
            if e["policy"] not in POLICIES or e.get("checks"):
                continue
            if e["policy"] != "linux-6.1" and m.meta is None:
                continue
            reliable = e["walk"] == "reliable"
            checked += 1
            ret, entries, marks, reason = walk(m, e["policy"], task, w.get("from"), reliable, w.get("size"))
            where = "walks[%d].expect[%d] %s %s" % (wi, ei, e["policy"], e["walk"])
            got = (ret >= 0) if reliable else None
            if got != e["reliable"]:
                problems.append("%s: reliable: expected %s, got %s" % (where, e["reliable"], got))
            if "trace" in e:
                want = [int(t["address"], 16) for t in e["trace"]]
                if want != entries:
                    i = next((k for k in range(max(len(want), len(entries)))
                              if k >= len(want) or k >= len(entries) or want[k] != entries[k]), 0)
                    fmt = lambda l: "%#018x" % l[i] if i < len(l) else "(nothing)"
                    problems.append("%s: trace[%d]: expected %s, got %s (%d expected, %d walked)"
                                    % (where, i, fmt(want), fmt(entries), len(want), len(entries)))
                elif e["policy"] in FRAME_STATE_POLICIES:
                    for i, t in enumerate(e["trace"]):
                        if "source" in t and t["source"] != marks[i]:
                            problems.append("%s: trace[%d] %#018x: expected source %r, got %r"
                                            % (where, i, entries[i], t["source"], marks[i]))
                            break
            if e["policy"] in FRAME_STATE_POLICIES and "reason" in e:
                want = e["reason"]
                if (want in FRAME_STATE_REASONS or reason is not None) and want != reason:
                    problems.append("%s: reason: expected %s, got %s" % (where, want, reason))
    return problems if checked else None


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for n in sorted(names):
                    if n.endswith(".json") and not n.endswith(".schema.json"):
                        yield os.path.join(root, n)
        else:
            yield p


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    paths = argv or [os.path.normpath(os.path.join(here, "..", ".."))]
    passed = failed = skipped = 0
    for f in files(paths):
        try:
            with open(f, encoding="utf-8") as fh:
                vector = json.load(fh)
            if vector.get("format") != "klpsim-vector/v1":
                raise ValueError("format is not klpsim-vector/v1")
            problems = check(vector)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            print("FAIL %s: not a readable klpsim-vector/v1 raw vector: %s" % (f, e))
            failed += 1
            continue
        if problems is None:
            skipped += 1
        elif problems:
            failed += 1
            print("FAIL %s (%s)" % (vector["id"], f))
            for p in problems:
                print("  " + p)
        else:
            passed += 1
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
