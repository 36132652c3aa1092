// SPDX-License-Identifier: GPL-2.0
/*
 * klpcapture: a read-only snapshot of every task's kernel stack, for klpsim
 * (format arm64-stack-capture/v1, capture/README in the klpsim repository).
 *
 * debugfs, root only (0400), nothing written to kernel state:
 *   klpcapture/kernel   members of the capture's "kernel" object (JSON text)
 *   klpcapture/tasks    "tasks":[...],"skippedTasks":[...] (JSON text, one task a line)
 *   klpcapture/modules  "modules":[...] each loaded module's core text, base64
 *   klpcapture/text     the raw bytes of the kernel's core text [_stext, _etext)
 *
 * The kernel does not export what a stack snapshot needs (stack_trace_save_tsk,
 * arch_stack_walk, put_task_stack, _stext/_etext), so the collector reads their
 * addresses from /proc/kallsyms and passes them as parameters; each is checked
 * here against the kernel's own symbol table (%pS must name it at offset 0)
 * before it is called or read, and the module refuses to load otherwise.
 *
 * Each task is pinned (get_task_struct, try_get_task_stack) while it is
 * copied. The copy and the kernel's own traces are taken between two reads
 * of the task's context-switch count; if the task was on a CPU at either end
 * or switched meanwhile, the snapshot is thrown away and taken again, and a
 * task that stays on a CPU is listed in skippedTasks with the reason.
 */
#include <linux/version.h>

/*
 * What differs between the kernel lines this module has been checked on
 * (Debian's 6.1, 6.12 and 7.2 cloud-arm64 kernels booted under QEMU, each
 * capture checked against the kernel's own traces):
 *   - module memory: mod->core_layout on 6.1, mod->mem[MOD_TEXT] from 6.4;
 *   - the function-graph return stack: an array of FTRACE_RETFUNC_DEPTH
 *     struct ftrace_ret_stack on 6.1, a shadow stack of words shared by
 *     several fgraph users from 6.11 (read with the kernel's own
 *     ftrace_graph_get_ret_stack, since its encoding is private to fgraph.c);
 *   - pt_regs->stackframe: a plain {fp, lr} pair on 6.1, a meta frame record
 *     {fp = 0, lr = 0, type} from 6.13;
 *   - stack_trace_save_tsk_reliable: none on arm64 6.1 and 6.12, present on 7.2.
 * kretprobe_instances (no rethook on arm64 in any of them), cpu_context and the
 * stack sizes are the same. Any other version is refused at build time
 * rather than read with layouts nobody checked against it.
 */
#define KLP_KNOWN_6_1 (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 1, 0) && LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0))
#define KLP_KNOWN_6_12 (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) && LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0))
#define KLP_KNOWN_7_2 (LINUX_VERSION_CODE >= KERNEL_VERSION(7, 2, 0) && LINUX_VERSION_CODE < KERNEL_VERSION(7, 3, 0))
#if !KLP_KNOWN_6_1 && !KLP_KNOWN_6_12 && !KLP_KNOWN_7_2
#error "klpcapture knows the layouts of Linux 6.1, 6.12 and 7.2 only (docs/capture.md); this kernel is another version"
#endif
#define KLP_MOD_MEM (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0))
#define KLP_FGRAPH_SHADOW (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0))
#define KLP_META_FRAMES (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0))

#include <linux/cpu.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/workqueue.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/stacktrace.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>
#include <linux/vmalloc.h>
#include <asm/memory.h>
#include <asm/ptrace.h>
#include <asm/sysreg.h>
#if KLP_META_FRAMES
#include <asm/stacktrace/frame.h>
#endif

#ifndef CONFIG_ARM64
#error "klpcapture reads arm64 frame records and cpu_context"
#endif
#ifndef CONFIG_FRAME_POINTER
#error "klpcapture needs CONFIG_FRAME_POINTER: the arm64 unwinder follows frame records"
#endif
#ifndef CONFIG_THREAD_INFO_IN_TASK
#error "klpcapture pins stacks with try_get_task_stack, which needs CONFIG_THREAD_INFO_IN_TASK"
#endif
#ifndef CONFIG_ARCH_STACKWALK
#error "klpcapture calls arch_stack_walk, which needs CONFIG_ARCH_STACKWALK"
#endif

/* A system with more tasks than this is captured in part, and says so. */
#define MAX_TASKS 65536
#define MAX_MODULES 4096
/* Snapshots of a task that keeps running before it is listed as skipped. */
#define MAX_ATTEMPTS 8
/* Far above any stack's frame count; livepatch asks for 100 (MAX_STACK_ENTRIES). */
#define TRACE_ENTRIES 256
#define RELIABLE_ENTRIES 100
#define MAX_KRETPROBES 64
/* One task's JSON: a base64 stack of THREAD_SIZE plus traces; 4x THREAD_SIZE is ample. */
#define RECORD_SIZE (4 * THREAD_SIZE + 64 * 1024)
/* fgraph.c's SHADOW_STACK_SIZE: one page of words per task (6.11+). */
#define KLP_SHADOW_WORDS (PAGE_SIZE / sizeof(long))
#define KLP_FGRAPH_MAX 64
/* The kernel's core text is tens of MiB; more means a wrong _etext. */
#define MAX_TEXT_SIZE (256UL << 20)

static unsigned long stack_trace_save_tsk_addr;
static unsigned long stack_trace_save_tsk_reliable_addr;
static unsigned long arch_stack_walk_addr;
static unsigned long put_task_stack_addr;
static unsigned long stext_addr;
static unsigned long etext_addr;
static unsigned long ftrace_graph_get_ret_stack_addr;
/* Per-CPU variables, in kallsyms only with CONFIG_KALLSYMS_ALL (7.2 has it, Debian's 6.1 not). */
static unsigned long irq_stack_ptr_addr;
static unsigned long overflow_stack_addr;
static unsigned long sdei_stack_normal_ptr_addr;
static unsigned long sdei_stack_critical_ptr_addr;
module_param_named(stack_trace_save_tsk, stack_trace_save_tsk_addr, ulong, 0400);
module_param_named(stack_trace_save_tsk_reliable, stack_trace_save_tsk_reliable_addr, ulong, 0400);
module_param_named(arch_stack_walk, arch_stack_walk_addr, ulong, 0400);
module_param_named(put_task_stack, put_task_stack_addr, ulong, 0400);
module_param_named(_stext, stext_addr, ulong, 0400);
module_param_named(_etext, etext_addr, ulong, 0400);
module_param_named(ftrace_graph_get_ret_stack, ftrace_graph_get_ret_stack_addr, ulong, 0400);
module_param_named(irq_stack_ptr, irq_stack_ptr_addr, ulong, 0400);
module_param_named(overflow_stack, overflow_stack_addr, ulong, 0400);
module_param_named(sdei_stack_normal_ptr, sdei_stack_normal_ptr_addr, ulong, 0400);
module_param_named(sdei_stack_critical_ptr, sdei_stack_critical_ptr_addr, ulong, 0400);

static unsigned int (*klp_stack_trace_save_tsk)(struct task_struct *task, unsigned long *store,
						 unsigned int size, unsigned int skipnr);
static int (*klp_stack_trace_save_tsk_reliable)(struct task_struct *task, unsigned long *store,
						unsigned int size);
static void (*klp_arch_stack_walk)(stack_trace_consume_fn consume, void *cookie,
				   struct task_struct *task, struct pt_regs *regs);
static void (*klp_put_task_stack)(struct task_struct *task);
#if KLP_FGRAPH_SHADOW && defined(CONFIG_FUNCTION_GRAPH_TRACER)
static struct ftrace_ret_stack *(*klp_ftrace_graph_get_ret_stack)(struct task_struct *task, int skip);
#endif

static struct dentry *klp_dir;

/* ---- bounded output: a record is written whole or not at all ---- */

struct out {
	char *buf;
	size_t len;
	size_t cap;
	bool overflow;
};

static __printf(2, 3) void out_printf(struct out *o, const char *fmt, ...)
{
	va_list args;
	int n;

	if (o->overflow)
		return;
	va_start(args, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, args);
	va_end(args);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	o->len += n;
}

/* A JSON string: comm and symbol names may hold any byte. */
static void out_json_string(struct out *o, const char *s, size_t max)
{
	size_t i;

	out_printf(o, "\"");
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			out_printf(o, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			out_printf(o, "\\u%04x", c);
		else
			out_printf(o, "%c", c);
	}
	out_printf(o, "\"");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void out_base64(struct out *o, const u8 *p, size_t n)
{
	size_t i, need = (n + 2) / 3 * 4;
	char *d;

	if (o->overflow || o->cap - o->len <= need) {
		o->overflow = true;
		return;
	}
	d = o->buf + o->len;
	for (i = 0; i + 2 < n; i += 3) {
		u32 v = p[i] << 16 | p[i + 1] << 8 | p[i + 2];
		*d++ = b64[v >> 18 & 63];
		*d++ = b64[v >> 12 & 63];
		*d++ = b64[v >> 6 & 63];
		*d++ = b64[v & 63];
	}
	if (i < n) {
		u32 v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0);
		*d++ = b64[v >> 18 & 63];
		*d++ = b64[v >> 12 & 63];
		*d++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*d++ = '=';
	}
	o->len += need;
	o->buf[o->len] = '\0';
}

static void out_trace(struct out *o, const unsigned long *entries, unsigned int n)
{
	unsigned int i;

	out_printf(o, "[");
	for (i = 0; i < n; i++) {
		char sym[KSYM_SYMBOL_LEN];

		sprint_symbol(sym, entries[i]);
		out_printf(o, "%s{\"address\":\"0x%lx\",\"symbol\":", i ? "," : "", entries[i]);
		out_json_string(o, sym, sizeof(sym));
		out_printf(o, "}");
	}
	out_printf(o, "]");
}

/* ---- symbols the kernel does not export ---- */

/* True when the kernel's own %pS names addr as exactly `name` at offset 0. */
static bool symbol_is(unsigned long addr, const char *name)
{
	char sym[KSYM_SYMBOL_LEN];
	size_t n = strlen(name);

	if (!addr)
		return false;
	sprint_symbol(sym, addr);
	return strncmp(sym, name, n) == 0 && strncmp(sym + n, "+0x0/", 5) == 0;
}

/* True when kallsyms knows addr (a symbol's start, if `start`): %pS prints a name, not a bare address. */
static bool symbol_at(unsigned long addr, bool start)
{
	char sym[KSYM_SYMBOL_LEN];

	sprint_symbol(sym, addr);
	if (strncmp(sym, "0x", 2) == 0)
		return false;
	return !start || strstr(sym, "+0x0/") != NULL;
}

static int resolve_symbols(void)
{
	if (!symbol_is(stack_trace_save_tsk_addr, "stack_trace_save_tsk")) {
		pr_err("klpcapture: stack_trace_save_tsk=0x%lx is not that function in this kernel's kallsyms\n",
		       stack_trace_save_tsk_addr);
		return -EINVAL;
	}
	if (!symbol_is(arch_stack_walk_addr, "arch_stack_walk")) {
		pr_err("klpcapture: arch_stack_walk=0x%lx is not that function in this kernel's kallsyms\n",
		       arch_stack_walk_addr);
		return -EINVAL;
	}
	if (!symbol_is(put_task_stack_addr, "put_task_stack")) {
		pr_err("klpcapture: put_task_stack=0x%lx is not that function in this kernel's kallsyms\n",
		       put_task_stack_addr);
		return -EINVAL;
	}
	/* Optional: only kernels with HAVE_RELIABLE_STACKTRACE have it (arm64 from 6.13 on, not 6.1). */
	if (stack_trace_save_tsk_reliable_addr &&
	    !symbol_is(stack_trace_save_tsk_reliable_addr, "stack_trace_save_tsk_reliable")) {
		pr_err("klpcapture: stack_trace_save_tsk_reliable=0x%lx is not that function in this kernel's kallsyms\n",
		       stack_trace_save_tsk_reliable_addr);
		return -EINVAL;
	}
	/*
	 * _stext shares its address with the first text symbol, and _etext with
	 * whatever follows the text, either of which %pS may print instead; so
	 * check that _stext starts a text symbol, that the byte before _etext
	 * lies in one, and that the range holds arch_stack_walk.
	 */
	if (!stext_addr || !etext_addr || etext_addr <= stext_addr ||
	    etext_addr - stext_addr > MAX_TEXT_SIZE || arch_stack_walk_addr < stext_addr ||
	    arch_stack_walk_addr >= etext_addr || !symbol_at(stext_addr, true) ||
	    !symbol_at(etext_addr - 1, false)) {
		pr_err("klpcapture: _stext=0x%lx _etext=0x%lx do not bound this kernel's core text\n",
		       stext_addr, etext_addr);
		return -EINVAL;
	}
#if KLP_FGRAPH_SHADOW && defined(CONFIG_FUNCTION_GRAPH_TRACER)
	if (!symbol_is(ftrace_graph_get_ret_stack_addr, "ftrace_graph_get_ret_stack")) {
		pr_err("klpcapture: ftrace_graph_get_ret_stack=0x%lx is not that function in this kernel's kallsyms\n",
		       ftrace_graph_get_ret_stack_addr);
		return -EINVAL;
	}
	klp_ftrace_graph_get_ret_stack = (void *)ftrace_graph_get_ret_stack_addr;
#endif
	/* The per-CPU stacks are optional: a name that does not match is dropped, not trusted. */
	if (irq_stack_ptr_addr && !symbol_is(irq_stack_ptr_addr, "irq_stack_ptr"))
		irq_stack_ptr_addr = 0;
	if (overflow_stack_addr && !symbol_is(overflow_stack_addr, "overflow_stack"))
		overflow_stack_addr = 0;
	if (sdei_stack_normal_ptr_addr && !symbol_is(sdei_stack_normal_ptr_addr, "sdei_stack_normal_ptr"))
		sdei_stack_normal_ptr_addr = 0;
	if (sdei_stack_critical_ptr_addr &&
	    !symbol_is(sdei_stack_critical_ptr_addr, "sdei_stack_critical_ptr"))
		sdei_stack_critical_ptr_addr = 0;
	klp_stack_trace_save_tsk = (void *)stack_trace_save_tsk_addr;
	klp_stack_trace_save_tsk_reliable = (void *)stack_trace_save_tsk_reliable_addr;
	klp_arch_stack_walk = (void *)arch_stack_walk_addr;
	klp_put_task_stack = (void *)put_task_stack_addr;
	return 0;
}

/* ---- the kernel object ---- */

static bool kernel_pac_enabled(void)
{
#ifdef CONFIG_ARM64_PTR_AUTH_KERNEL
	/* SCTLR_EL1.EnIA: instruction address signing with key A is on at EL1. */
	return read_sysreg(sctlr_el1) & SCTLR_ELx_ENIA;
#else
	return false;
#endif
}

/* ---- per-CPU stacks ---- */

/* A per-CPU variable's address on `cpu`, from its kallsyms address (arm64's per-CPU symbols are not zero-based). */
static void *percpu_at(unsigned long sym, int cpu)
{
	return (void *)(sym + per_cpu_offset(cpu));
}

static void show_percpu_from_symbols(struct seq_file *m)
{
	int cpu;
	bool first = true;

	seq_puts(m, "\"perCpuStacks\":[");
	for_each_possible_cpu(cpu) {
		unsigned long sdei_normal = 0, sdei_critical = 0;

		if (sdei_stack_normal_ptr_addr)
			sdei_normal = READ_ONCE(*(unsigned long *)percpu_at(sdei_stack_normal_ptr_addr, cpu));
		if (sdei_stack_critical_ptr_addr)
			sdei_critical = READ_ONCE(*(unsigned long *)percpu_at(sdei_stack_critical_ptr_addr, cpu));
		seq_printf(m,
			   "%s{\"cpu\":%d,\"irqStackSize\":%lu,\"overflowStackSize\":%lu,\"sdeiStackSize\":%lu,\"irqStack\":\"0x%lx\",\"overflowStack\":\"0x%lx\"",
			   first ? "" : ",", cpu, (unsigned long)IRQ_STACK_SIZE,
			   (unsigned long)OVERFLOW_STACK_SIZE, (unsigned long)IRQ_STACK_SIZE,
			   READ_ONCE(*(unsigned long *)percpu_at(irq_stack_ptr_addr, cpu)),
			   (unsigned long)percpu_at(overflow_stack_addr, cpu));
		/* 0: no SDEI stack (no firmware interface probed, or SDEI not built). */
		if (sdei_stack_normal_ptr_addr)
			seq_printf(m, ",\"sdeiStackNormal\":\"0x%lx\",\"sdeiStackCritical\":\"0x%lx\"", sdei_normal,
				   sdei_critical);
		else
			seq_puts(m, ",\"sdeiStackNormal\":null,\"sdeiStackCritical\":null");
		seq_puts(m, ",\"method\":\"per-CPU variables from kallsyms (CONFIG_KALLSYMS_ALL)\"}");
		first = false;
	}
	seq_puts(m, "],");
}

#ifdef CONFIG_VMAP_STACK
struct irq_sample {
	int cpu;
	unsigned long sp;
	bool in_irq;
	bool on_task_stack;
};

/* Runs in the IPI on the sampled CPU: an EL1 interrupt taken on a task stack moves to the IRQ stack first. */
static void sample_irq_sp(void *arg)
{
	struct irq_sample *sample = arg;

	sample->sp = current_stack_pointer;
	sample->in_irq = in_hardirq();
	sample->on_task_stack = sample->sp - (unsigned long)task_stack_page(current) < THREAD_SIZE;
}

/* Runs on a helper CPU, which interrupts the sampled one (a CPU cannot send itself an IPI). */
static long interrupt_cpu(void *arg)
{
	struct irq_sample *sample = arg;

	return smp_call_function_single(sample->cpu, sample_irq_sp, sample, 1);
}
#endif

/*
 * Without the per-CPU symbols: each CPU's IRQ stack from the stack pointer
 * of an IPI handler running on it. With VMAP_STACK the IRQ stacks are
 * vmalloc'ed THREAD_ALIGN-aligned, so the base is that pointer rounded down.
 */
static void show_irq_stacks_sampled(struct seq_file *m)
{
#ifdef CONFIG_VMAP_STACK
	int cpu;
	bool first = true;

	seq_puts(m, "\"irqStacks\":[");
	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct irq_sample sample = { .cpu = cpu };
		unsigned int helper = cpumask_any_but(cpu_online_mask, cpu);
		unsigned long base;

		if (helper >= nr_cpu_ids || work_on_cpu(helper, interrupt_cpu, &sample) ||
		    !sample.in_irq || sample.on_task_stack)
			continue;
		base = sample.sp & ~((unsigned long)IRQ_STACK_SIZE - 1);
		seq_printf(m,
			   "%s{\"cpu\":%d,\"base\":\"0x%lx\",\"top\":\"0x%lx\",\"size\":%lu,\"sampledSp\":\"0x%lx\",\"sampledFromCpu\":%u,\"method\":\"sp sampled in an IPI handler, rounded down to IRQ_STACK_SIZE (VMAP_STACK: THREAD_ALIGN-aligned)\"}",
			   first ? "" : ",", cpu, base, base + IRQ_STACK_SIZE, (unsigned long)IRQ_STACK_SIZE,
			   sample.sp, helper);
		first = false;
	}
	cpus_read_unlock();
	seq_puts(m, "],");
#endif
}

#define CONFIG_FLAG(name) seq_printf(m, "%s\"%s\":%d", first++ ? "," : "", #name, IS_ENABLED(CONFIG_##name))
#define CONFIG_YN(name) seq_printf(m, "%s\"%s\":\"%s\"", first++ ? "," : "", #name, IS_ENABLED(CONFIG_##name) ? "y" : "n")

static int kernel_show(struct seq_file *m, void *v)
{
	int first = 0;

	seq_printf(m, "\"release\":\"%s\",\"version\":\"%s\",\"machine\":\"%s\",",
		   utsname()->release, utsname()->version, utsname()->machine);
	seq_puts(m, "\"configFromModule\":{");
	first = 0;
	CONFIG_FLAG(FRAME_POINTER);
	CONFIG_FLAG(ARM64_PTR_AUTH_KERNEL);
	CONFIG_FLAG(FUNCTION_GRAPH_TRACER);
	CONFIG_FLAG(DYNAMIC_FTRACE_WITH_REGS);
	CONFIG_FLAG(KRETPROBES);
	CONFIG_FLAG(KRETPROBE_ON_RETHOOK);
	CONFIG_FLAG(VMAP_STACK);
	CONFIG_FLAG(SHADOW_CALL_STACK);
	CONFIG_FLAG(ARM64_BTI_KERNEL);
	CONFIG_FLAG(KASAN);
	CONFIG_FLAG(PREEMPT);
	CONFIG_FLAG(PREEMPT_VOLUNTARY);
	CONFIG_FLAG(ARM_SDE_INTERFACE);
	CONFIG_FLAG(RANDOMIZE_BASE);
	CONFIG_FLAG(ARM64_MODULE_PLTS);
	CONFIG_FLAG(KALLSYMS_ALL);
	seq_puts(m, "},\"config\":{");
	first = 0;
	CONFIG_YN(FRAME_POINTER);
	CONFIG_YN(ARM64_PTR_AUTH_KERNEL);
	CONFIG_YN(FUNCTION_GRAPH_TRACER);
	CONFIG_YN(DYNAMIC_FTRACE_WITH_REGS);
	CONFIG_YN(KRETPROBES);
	CONFIG_YN(KRETPROBE_ON_RETHOOK);
	CONFIG_YN(VMAP_STACK);
	CONFIG_YN(SHADOW_CALL_STACK);
	CONFIG_YN(ARM64_BTI_KERNEL);
	CONFIG_YN(KASAN);
	CONFIG_YN(PREEMPT);
	CONFIG_YN(PREEMPT_VOLUNTARY);
	CONFIG_YN(ARM_SDE_INTERFACE);
	CONFIG_YN(RANDOMIZE_BASE);
	CONFIG_YN(ARM64_MODULE_PLTS);
	CONFIG_YN(KALLSYMS_ALL);
	seq_puts(m, "},");
	seq_printf(m, "\"threadSize\":%lu,\"irqStackSize\":%lu,\"overflowStackSize\":%lu,",
		   (unsigned long)THREAD_SIZE, (unsigned long)IRQ_STACK_SIZE,
		   (unsigned long)OVERFLOW_STACK_SIZE);
	/* TCR_EL1.T1SZ is what the kernel runs with (vabits_actual), which a 52-bit build may lower to 48. */
	seq_printf(m, "\"pageSize\":%lu,\"vaBits\":%llu,\"vaBitsConfig\":%d,\"kernelPacEnabled\":%s,",
		   PAGE_SIZE, 64 - ((read_sysreg(tcr_el1) >> 16) & 63), VA_BITS,
		   kernel_pac_enabled() ? "true" : "false");
	seq_printf(m, "\"sctlrEl1\":\"0x%llx\",", read_sysreg(sctlr_el1));
	seq_printf(m,
		   "\"ptRegs\":{\"size\":%zu,\"stackframeOffset\":%zu,\"pcOffset\":%zu,\"spOffset\":%zu,\"pstateOffset\":%zu",
		   sizeof(struct pt_regs), offsetof(struct pt_regs, stackframe),
		   offsetof(struct pt_regs, pc), offsetof(struct pt_regs, sp),
		   offsetof(struct pt_regs, pstate));
#if KLP_META_FRAMES
	seq_printf(m,
		   ",\"meta\":{\"sizeofFrameRecordMeta\":%zu,\"recordFpOffset\":%zu,\"recordLrOffset\":%zu,\"typeOffset\":%zu,\"regs29Offset\":%zu,\"regs30Offset\":%zu,\"FRAME_META_TYPE_NONE\":%d,\"FRAME_META_TYPE_FINAL\":%d,\"FRAME_META_TYPE_PT_REGS\":%d}",
		   sizeof(struct frame_record_meta), offsetof(struct pt_regs, stackframe.record.fp),
		   offsetof(struct pt_regs, stackframe.record.lr), offsetof(struct pt_regs, stackframe.type),
		   offsetof(struct pt_regs, regs[29]), offsetof(struct pt_regs, regs[30]),
		   FRAME_META_TYPE_NONE, FRAME_META_TYPE_FINAL, FRAME_META_TYPE_PT_REGS);
#endif
	seq_puts(m, "},");
#if defined(CONFIG_FUNCTION_GRAPH_TRACER) && KLP_FGRAPH_SHADOW
	seq_printf(m, "\"fgraphShadow\":{\"shadowStackWords\":%lu,\"sizeofFtraceRetStack\":%zu},",
		   KLP_SHADOW_WORDS, sizeof(struct ftrace_ret_stack));
#elif defined(CONFIG_FUNCTION_GRAPH_TRACER)
	seq_printf(m, "\"ftraceRetfuncDepth\":%d,\"sizeofFtraceRetStack\":%zu,", FTRACE_RETFUNC_DEPTH,
		   sizeof(struct ftrace_ret_stack));
#endif
	seq_printf(m,
		   "\"layout\":{\"PAGE_OFFSET\":\"0x%lx\",\"KIMAGE_VADDR\":\"0x%lx\",\"MODULES_VADDR\":\"0x%lx\",\"MODULES_END\":\"0x%lx\",\"VMALLOC_START\":\"0x%lx\",\"VMALLOC_END\":\"0x%lx\"},",
		   (unsigned long)PAGE_OFFSET, (unsigned long)KIMAGE_VADDR,
		   (unsigned long)MODULES_VADDR, (unsigned long)MODULES_END,
		   (unsigned long)VMALLOC_START, (unsigned long)VMALLOC_END);
	seq_printf(m, "\"cpus\":{\"nrCpuIds\":%u,\"online\":%u},", nr_cpu_ids, num_online_cpus());
	if (irq_stack_ptr_addr && overflow_stack_addr)
		show_percpu_from_symbols(m);
	else
		show_irq_stacks_sampled(m);
	seq_printf(m, "\"capturedBy\":\"klpcapture (Linux %d.%d layouts)\"\n", LINUX_VERSION_CODE >> 16,
		   (LINUX_VERSION_CODE >> 8) & 0xff);
	return 0;
}

/* ---- tasks ---- */

enum slot_status { SLOT_PENDING, SLOT_CAPTURED, SLOT_RUNNING, SLOT_CURRENT, SLOT_NO_STACK, SLOT_TOO_BIG };

static const char *const skip_reason[] = {
	[SLOT_RUNNING] = "running on a cpu (on_cpu=1) at every attempt",
	[SLOT_CURRENT] = "current task (the reader itself is running)",
	[SLOT_NO_STACK] = "its stack is gone (the task is exiting)",
	[SLOT_TOO_BIG] = "its record does not fit the capture buffer",
};

struct task_slot {
	struct task_struct *task;
	u8 status;
	u8 attempts;
};

struct capture {
	struct task_slot *slots;
	unsigned int nr;
	bool truncated;
	/* The record of the last task shown, kept so seq_file's retry with a bigger buffer does not snapshot again. */
	struct out rec;
	int rec_index;
	/* The first task written: every later one is preceded by a comma. */
	int first_captured;
	/* Scratch for one snapshot, allocated once per open. */
	u8 *stack;
	unsigned long *full, *trace, *reliable;
};

struct walk_cookie {
	unsigned long *store;
	unsigned int len, size;
};

/* arch_stack_walk's consume callback with no filter: every address the unwinder yields. */
static bool consume_full(void *cookie, unsigned long addr)
{
	struct walk_cookie *c = cookie;

	if (c->len >= c->size)
		return false;
	c->store[c->len++] = addr;
	return true;
}

static unsigned long switch_count(struct task_struct *t)
{
	return READ_ONCE(t->nvcsw) + READ_ONCE(t->nivcsw);
}

struct snapshot {
	struct cpu_context ctx;
	struct pt_regs regs;
	unsigned int state;
	unsigned int flags;
	int cpu;
	unsigned long switches;
	unsigned int nfull, ntrace;
	int reliable_ret;
	unsigned int nreliable;
#if defined(CONFIG_FUNCTION_GRAPH_TRACER) && KLP_FGRAPH_SHADOW
	unsigned long *ret_stack;
	int curr_ret_stack, curr_ret_depth;
	unsigned int nfgraph;
	unsigned long words[KLP_SHADOW_WORDS];
	struct {
		long offset;
		struct ftrace_ret_stack e;
	} fgraph[KLP_FGRAPH_MAX];
#elif defined(CONFIG_FUNCTION_GRAPH_TRACER)
	struct ftrace_ret_stack *ret_stack;
	int curr_ret_stack, curr_ret_depth;
	struct ftrace_ret_stack fgraph[FTRACE_RETFUNC_DEPTH];
#endif
#if defined(CONFIG_KRETPROBES) && !defined(CONFIG_KRETPROBE_ON_RETHOOK)
	unsigned int nkrp;
	bool krp_truncated;
	struct {
		unsigned long ret_addr, fp;
	} krp[MAX_KRETPROBES];
#endif
};

static void copy_kretprobes(struct task_struct *t, struct snapshot *s)
{
#if defined(CONFIG_KRETPROBES) && !defined(CONFIG_KRETPROBE_ON_RETHOOK)
	struct llist_node *node;

	s->nkrp = 0;
	s->krp_truncated = false;
	/* Instances are freed through RCU; the list is pushed at its head, so this is newest first. */
	rcu_read_lock();
	for (node = READ_ONCE(t->kretprobe_instances.first); node; node = READ_ONCE(node->next)) {
		struct kretprobe_instance *ri = container_of(node, struct kretprobe_instance, llist);

		if (s->nkrp == MAX_KRETPROBES) {
			s->krp_truncated = true;
			break;
		}
		s->krp[s->nkrp].ret_addr = (unsigned long)READ_ONCE(ri->ret_addr);
		s->krp[s->nkrp].fp = (unsigned long)READ_ONCE(ri->fp);
		s->nkrp++;
	}
	rcu_read_unlock();
#endif
}

static void copy_fgraph(struct task_struct *t, struct snapshot *s)
{
#if defined(CONFIG_FUNCTION_GRAPH_TRACER) && KLP_FGRAPH_SHADOW
	int skip;

	s->ret_stack = READ_ONCE(t->ret_stack);
	s->curr_ret_stack = READ_ONCE(t->curr_ret_stack);
	s->curr_ret_depth = READ_ONCE(t->curr_ret_depth);
	s->nfgraph = 0;
	if (!s->ret_stack || s->curr_ret_stack < 0 || s->curr_ret_stack > KLP_SHADOW_WORDS)
		return;
	memcpy(s->words, s->ret_stack, s->curr_ret_stack * sizeof(long));
	/* The frames' encoding is fgraph.c's own: let the kernel decode them, newest first. */
	for (skip = 0; skip < KLP_FGRAPH_MAX; skip++) {
		struct ftrace_ret_stack *e = klp_ftrace_graph_get_ret_stack(t, skip);
		long offset = (unsigned long *)e - s->ret_stack;

		if (!e || offset < 0 || offset >= s->curr_ret_stack)
			break;
		s->fgraph[s->nfgraph].offset = offset;
		s->fgraph[s->nfgraph].e = *e;
		s->nfgraph++;
	}
#elif defined(CONFIG_FUNCTION_GRAPH_TRACER)
	s->ret_stack = READ_ONCE(t->ret_stack);
	s->curr_ret_stack = READ_ONCE(t->curr_ret_stack);
	s->curr_ret_depth = READ_ONCE(t->curr_ret_depth);
	/* The array lives as long as the task (ftrace_graph_exit_task frees it at exit; the task is pinned). */
	if (s->ret_stack)
		memcpy(s->fgraph, s->ret_stack, sizeof(s->fgraph));
#endif
}

/*
 * One snapshot, taken while the task is off every CPU and has not switched:
 * the kernel's traces first, then the raw state they were computed from.
 */
static bool take_snapshot(struct capture *c, struct task_struct *t, void *stack, struct snapshot *s)
{
	struct walk_cookie wc = { .store = c->full, .size = TRACE_ENTRIES };

	if (READ_ONCE(t->on_cpu))
		return false;
	s->switches = switch_count(t);
	smp_rmb();
	klp_arch_stack_walk(consume_full, &wc, t, NULL);
	s->nfull = wc.len;
	s->ntrace = klp_stack_trace_save_tsk(t, c->trace, TRACE_ENTRIES, 0);
	s->reliable_ret = 0;
	s->nreliable = 0;
	if (klp_stack_trace_save_tsk_reliable) {
		/* On failure it returns -errno, not how far it got: count what it stored in a zeroed buffer. */
		memset(c->reliable, 0, RELIABLE_ENTRIES * sizeof(long));
		s->reliable_ret = klp_stack_trace_save_tsk_reliable(t, c->reliable, RELIABLE_ENTRIES);
		if (s->reliable_ret >= 0)
			s->nreliable = min_t(unsigned int, s->reliable_ret, RELIABLE_ENTRIES);
		else
			while (s->nreliable < RELIABLE_ENTRIES && c->reliable[s->nreliable])
				s->nreliable++;
	}
	s->ctx = t->thread.cpu_context;
	memcpy(&s->regs, task_pt_regs(t), sizeof(s->regs));
	memcpy(c->stack, stack, THREAD_SIZE);
	s->state = READ_ONCE(t->__state);
	s->flags = READ_ONCE(t->flags);
	s->cpu = task_cpu(t);
	copy_fgraph(t, s);
	copy_kretprobes(t, s);
	smp_rmb();
	return !READ_ONCE(t->on_cpu) && switch_count(t) == s->switches;
}

static void out_fgraph(struct out *o, const struct snapshot *s)
{
#if defined(CONFIG_FUNCTION_GRAPH_TRACER) && KLP_FGRAPH_SHADOW
	unsigned int i;
	int w;
	bool live = s->ret_stack && s->curr_ret_stack >= 0 && s->curr_ret_stack <= KLP_SHADOW_WORDS;

	if (s->ret_stack && !live) {
		out_printf(o, ",\"fgraphNote\":\"curr_ret_stack %d is out of range\"", s->curr_ret_stack);
		return;
	}
	out_printf(o, ",\"fgraph\":{\"layout\":\"shadow\",\"retStack\":\"0x%lx\",\"curr\":%d,\"depth\":%d,\"entries\":[",
		   (unsigned long)s->ret_stack, live ? s->curr_ret_stack : -1,
		   live ? s->curr_ret_depth : -1);
	for (i = 0; live && i < s->nfgraph; i++) {
		const struct ftrace_ret_stack *e = &s->fgraph[i].e;

		out_printf(o, "%s{\"index\":%u,\"wordOffset\":%ld,\"ret\":\"0x%lx\",\"func\":\"0x%lx\"",
			   i ? "," : "", i, s->fgraph[i].offset, e->ret, e->func);
#ifdef HAVE_FUNCTION_GRAPH_FP_TEST
		out_printf(o, ",\"fp\":\"0x%lx\"", e->fp);
#endif
		out_printf(o, ",\"retp\":\"0x%lx\"}", (unsigned long)e->retp);
	}
	out_printf(o, "],\"words\":[");
	for (w = 0; live && w < s->curr_ret_stack; w++)
		out_printf(o, "%s\"0x%lx\"", w ? "," : "", s->words[w]);
	out_printf(o, "]}");
#elif defined(CONFIG_FUNCTION_GRAPH_TRACER)
	int i;

	if (s->curr_ret_stack < -1 || s->curr_ret_stack >= FTRACE_RETFUNC_DEPTH) {
		/* A trace being torn down parks curr_ret_stack out of range; there is no live entry to give. */
		out_printf(o, ",\"fgraphNote\":\"curr_ret_stack %d is out of range\"", s->curr_ret_stack);
		return;
	}
	out_printf(o, ",\"fgraph\":{\"retStack\":\"0x%lx\",\"curr\":%d,\"depth\":%d,\"entries\":[",
		   (unsigned long)s->ret_stack, s->ret_stack ? s->curr_ret_stack : -1,
		   s->ret_stack ? s->curr_ret_depth : -1);
	for (i = s->ret_stack ? s->curr_ret_stack : -1; i >= 0; i--) {
		const struct ftrace_ret_stack *e = &s->fgraph[i];

		out_printf(o, "%s{\"index\":%d,\"ret\":\"0x%lx\",\"func\":\"0x%lx\",\"calltime\":%llu",
			   i == s->curr_ret_stack ? "" : ",", i, e->ret, e->func, e->calltime);
#ifdef HAVE_FUNCTION_GRAPH_FP_TEST
		out_printf(o, ",\"fp\":\"0x%lx\"", e->fp);
#endif
#ifdef HAVE_FUNCTION_GRAPH_RET_ADDR_PTR
		out_printf(o, ",\"retp\":\"0x%lx\"", (unsigned long)e->retp);
#endif
		out_printf(o, "}");
	}
	out_printf(o, "]}");
#endif
}

static void out_kretprobes(struct out *o, const struct snapshot *s)
{
#if defined(CONFIG_KRETPROBES) && !defined(CONFIG_KRETPROBE_ON_RETHOOK)
	unsigned int i;

	out_printf(o, ",\"kretprobes\":[");
	for (i = 0; i < s->nkrp; i++)
		out_printf(o, "%s{\"retAddr\":\"0x%lx\",\"fp\":\"0x%lx\"}", i ? "," : "",
			   s->krp[i].ret_addr, s->krp[i].fp);
	out_printf(o, "],\"kretprobesTruncated\":%s", s->krp_truncated ? "true" : "false");
#endif
}

static void out_task(struct out *o, struct capture *c, struct task_struct *t,
		     const struct snapshot *s, unsigned long stack, unsigned int attempts)
{
	const struct pt_regs *regs = task_pt_regs(t);
	const struct cpu_context *x = &s->ctx;
	char comm[TASK_COMM_LEN];

	get_task_comm(comm, t);
	out_printf(o, "{\"pid\":%d,\"tgid\":%d,\"comm\":", t->pid, t->tgid);
	out_json_string(o, comm, sizeof(comm));
	out_printf(o, ",\"kthread\":%s,\"state\":\"%c\",\"stateRaw\":\"0x%x\",\"flags\":\"0x%x\",\"cpu\":%d",
		   (s->flags & PF_KTHREAD) ? "true" : "false", task_index_to_char(__task_state_index(s->state, t->exit_state)),
		   s->state, s->flags, s->cpu);
	out_printf(o, ",\"attempts\":%u,\"switchCount\":%lu", attempts, s->switches);
	out_printf(o,
		   ",\"cpuContext\":{\"x19\":\"0x%lx\",\"x20\":\"0x%lx\",\"x21\":\"0x%lx\",\"x22\":\"0x%lx\",\"x23\":\"0x%lx\",\"x24\":\"0x%lx\",\"x25\":\"0x%lx\",\"x26\":\"0x%lx\",\"x27\":\"0x%lx\",\"x28\":\"0x%lx\",\"fp\":\"0x%lx\",\"sp\":\"0x%lx\",\"pc\":\"0x%lx\"}",
		   x->x19, x->x20, x->x21, x->x22, x->x23, x->x24, x->x25, x->x26, x->x27, x->x28,
		   x->fp, x->sp, x->pc);
	out_printf(o, ",\"stack\":{\"low\":\"0x%lx\",\"high\":\"0x%lx\",\"size\":%lu,\"base64\":\"", stack,
		   stack + THREAD_SIZE, (unsigned long)THREAD_SIZE);
	out_base64(o, c->stack, THREAD_SIZE);
	out_printf(o, "\"}");
	out_printf(o, ",\"ptRegs\":\"0x%lx\",\"finalFrame\":\"0x%lx\"", (unsigned long)regs,
		   (unsigned long)&regs->stackframe);
#if KLP_META_FRAMES
	out_printf(o,
		   ",\"ptRegsContent\":{\"pc\":\"0x%llx\",\"sp\":\"0x%llx\",\"pstate\":\"0x%llx\",\"x29\":\"0x%llx\",\"x30\":\"0x%llx\",\"syscallno\":%d,\"stackframe0\":\"0x%llx\",\"stackframe1\":\"0x%llx\",\"stackframeType\":\"0x%llx\"}",
		   s->regs.pc, s->regs.sp, s->regs.pstate, s->regs.regs[29], s->regs.regs[30],
		   s->regs.syscallno, s->regs.stackframe.record.fp, s->regs.stackframe.record.lr,
		   s->regs.stackframe.type);
	out_printf(o, ",\"finalMetaType\":%llu", s->regs.stackframe.type);
#else
	out_printf(o,
		   ",\"ptRegsContent\":{\"pc\":\"0x%llx\",\"sp\":\"0x%llx\",\"pstate\":\"0x%llx\",\"x29\":\"0x%llx\",\"x30\":\"0x%llx\",\"syscallno\":%d,\"stackframe0\":\"0x%llx\",\"stackframe1\":\"0x%llx\"}",
		   s->regs.pc, s->regs.sp, s->regs.pstate, s->regs.regs[29], s->regs.regs[30],
		   s->regs.syscallno, s->regs.stackframe[0], s->regs.stackframe[1]);
#endif
	out_fgraph(o, s);
	out_kretprobes(o, s);
	out_printf(o, ",\"kernelTraceFull\":");
	out_trace(o, c->full, s->nfull);
	out_printf(o, ",\"kernelTrace\":");
	out_trace(o, c->trace, s->ntrace);
	if (klp_stack_trace_save_tsk_reliable) {
		out_printf(o, ",\"kernelReliable\":{\"ret\":%d,\"entries\":%d,\"size\":%d,\"trace\":",
			   s->reliable_ret, s->nreliable, RELIABLE_ENTRIES);
		out_trace(o, c->reliable, s->nreliable);
		out_printf(o, "}");
	}
	out_printf(o, "}");
}

/* Snapshots one pinned task into c->rec; sets its slot's status. */
static void capture_task(struct capture *c, struct task_slot *slot)
{
	struct task_struct *t = slot->task;
	struct snapshot *s;
	void *stack;
	unsigned int attempt;
	bool ok = false;

	c->rec.len = 0;
	c->rec.overflow = false;
	if (t == current) {
		slot->status = SLOT_CURRENT;
		return;
	}
	stack = try_get_task_stack(t);
	if (!stack) {
		slot->status = SLOT_NO_STACK;
		return;
	}
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		klp_put_task_stack(t);
		slot->status = SLOT_TOO_BIG;
		return;
	}
	for (attempt = 1; attempt <= MAX_ATTEMPTS && !ok; attempt++) {
		ok = take_snapshot(c, t, stack, s);
		if (!ok)
			msleep(1);
	}
	slot->attempts = attempt - 1;
	if (ok) {
		out_task(&c->rec, c, t, s, (unsigned long)stack, slot->attempts);
		slot->status = c->rec.overflow ? SLOT_TOO_BIG : SLOT_CAPTURED;
	} else {
		slot->status = SLOT_RUNNING;
	}
	kfree(s);
	klp_put_task_stack(t);
}

static void *tasks_start(struct seq_file *m, loff_t *pos)
{
	struct capture *c = m->private;

	/* Records 0..nr-1 are tasks; record nr closes "tasks" and writes "skippedTasks". */
	return *pos <= c->nr ? pos : NULL;
}

static void *tasks_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return tasks_start(m, pos);
}

static void tasks_stop(struct seq_file *m, void *v)
{
}

static void show_skipped(struct seq_file *m, struct capture *c)
{
	unsigned int i;
	bool first = true;

	seq_puts(m, "],\n\"skippedTasks\":[");
	for (i = 0; i < c->nr; i++) {
		struct task_slot *sl = &c->slots[i];
		char comm[TASK_COMM_LEN];
		struct out o;
		char buf[128];

		if (sl->status == SLOT_CAPTURED || sl->status == SLOT_PENDING)
			continue;
		get_task_comm(comm, sl->task);
		o = (struct out){ .buf = buf, .cap = sizeof(buf) };
		out_json_string(&o, comm, sizeof(comm));
		seq_printf(m, "%s{\"pid\":%d,\"tgid\":%d,\"comm\":%s,\"cpu\":%d,\"attempts\":%u,\"reason\":\"%s\"}",
			   first ? "" : ",\n", sl->task->pid, sl->task->tgid, buf, task_cpu(sl->task),
			   sl->attempts, skip_reason[sl->status]);
		first = false;
	}
	seq_printf(m, "],\n\"tasksTruncated\":%s\n", c->truncated ? "true" : "false");
}

static int tasks_show(struct seq_file *m, void *v)
{
	struct capture *c = m->private;
	unsigned int i = *(loff_t *)v;

	if (i == c->nr) {
		show_skipped(m, c);
		return 0;
	}
	if (i == 0)
		seq_puts(m, "\"tasks\":[\n");
	/* seq_file shows a record again, into a bigger buffer, when it overflowed: reuse the snapshot. */
	if (c->rec_index != i) {
		capture_task(c, &c->slots[i]);
		c->rec_index = i;
	}
	if (c->slots[i].status != SLOT_CAPTURED)
		return 0;
	if (c->first_captured < 0)
		c->first_captured = i;
	if (c->first_captured < (int)i)
		seq_puts(m, ",\n");
	seq_write(m, c->rec.buf, c->rec.len);
	return 0;
}

static const struct seq_operations tasks_seq_ops = {
	.start = tasks_start,
	.next = tasks_next,
	.stop = tasks_stop,
	.show = tasks_show,
};

static void capture_free(struct capture *c)
{
	unsigned int i;

	for (i = 0; i < c->nr; i++)
		put_task_struct(c->slots[i].task);
	kvfree(c->slots);
	vfree(c->rec.buf);
	vfree(c->stack);
	kfree(c->full);
	kfree(c->trace);
	kfree(c->reliable);
	kfree(c);
}

static void pin_task(struct capture *c, struct task_struct *t)
{
	if (c->nr == MAX_TASKS) {
		c->truncated = true;
		return;
	}
	get_task_struct(t);
	c->slots[c->nr++] = (struct task_slot){ .task = t };
}

static int tasks_open(struct inode *inode, struct file *file)
{
	struct task_struct *g, *t;
	struct capture *c;
	int err;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	c->slots = kvcalloc(MAX_TASKS, sizeof(*c->slots), GFP_KERNEL);
	c->rec.buf = vmalloc(RECORD_SIZE);
	c->rec.cap = RECORD_SIZE;
	c->rec_index = -1;
	c->first_captured = -1;
	c->stack = vmalloc(THREAD_SIZE);
	c->full = kcalloc(TRACE_ENTRIES, sizeof(long), GFP_KERNEL);
	c->trace = kcalloc(TRACE_ENTRIES, sizeof(long), GFP_KERNEL);
	c->reliable = kcalloc(RELIABLE_ENTRIES, sizeof(long), GFP_KERNEL);
	if (!c->slots || !c->rec.buf || !c->stack || !c->full || !c->trace || !c->reliable) {
		capture_free(c);
		return -ENOMEM;
	}
	/* Pin every task now, under RCU; each is copied later, one at a time, outside it. */
	rcu_read_lock();
	pin_task(c, &init_task);
	for_each_process_thread(g, t)
		pin_task(c, t);
	rcu_read_unlock();
	err = seq_open(file, &tasks_seq_ops);
	if (err) {
		capture_free(c);
		return err;
	}
	((struct seq_file *)file->private_data)->private = c;
	return 0;
}

static int tasks_release(struct inode *inode, struct file *file)
{
	struct seq_file *m = file->private_data;

	capture_free(m->private);
	return seq_release(inode, file);
}

static const struct file_operations tasks_fops = {
	.owner = THIS_MODULE,
	.open = tasks_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = tasks_release,
};

/* ---- modules ---- */

struct module_list {
	struct module *mods[MAX_MODULES];
	unsigned int nr;
};

static unsigned long module_text_start(struct module *mod)
{
#if KLP_MOD_MEM
	return (unsigned long)mod->mem[MOD_TEXT].base;
#else
	return (unsigned long)mod->core_layout.base;
#endif
}

static unsigned long module_text_size(struct module *mod)
{
#if KLP_MOD_MEM
	return mod->mem[MOD_TEXT].size;
#else
	return mod->core_layout.text_size;
#endif
}

static bool is_module(struct module *mod)
{
	/*
	 * The walk from THIS_MODULE->list also passes the kernel's own list
	 * head, which is no module: a real struct module lies inside its
	 * module's core memory.
	 */
#if KLP_MOD_MEM
	/* struct module is in .gnu.linkonce.this_module, which module memory places in MOD_DATA. */
	unsigned long base = (unsigned long)READ_ONCE(mod->mem[MOD_DATA].base);
	unsigned long size = READ_ONCE(mod->mem[MOD_DATA].size);
#else
	unsigned long base = (unsigned long)READ_ONCE(mod->core_layout.base);
	unsigned long size = READ_ONCE(mod->core_layout.size);
#endif

	return base && (unsigned long)mod >= base && (unsigned long)mod < base + size;
}

static void *modules_start(struct seq_file *m, loff_t *pos)
{
	struct module_list *l = m->private;

	return *pos <= l->nr ? pos : NULL;
}

static void *modules_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return modules_start(m, pos);
}

static int modules_show(struct seq_file *m, void *v)
{
	struct module_list *l = m->private;
	unsigned int i = *(loff_t *)v;
	struct module *mod;
	unsigned long start, size;
	struct out o;

	if (i == 0)
		seq_puts(m, "\"modules\":[\n");
	if (i == l->nr) {
		seq_puts(m, "]\n");
		return 0;
	}
	mod = l->mods[i];
	start = module_text_start(mod);
	size = module_text_size(mod);
	o = (struct out){ .buf = kvmalloc(size * 4 / 3 + 512, GFP_KERNEL), .cap = size * 4 / 3 + 512 };
	if (!o.buf)
		return -ENOMEM;
	out_printf(&o, "%s{\"name\":", i ? ",\n" : "");
	out_json_string(&o, mod->name, sizeof(mod->name));
	out_printf(&o, ",\"textStart\":\"0x%lx\",\"textEnd\":\"0x%lx\",\"textBase64\":\"", start, start + size);
	out_base64(&o, (const u8 *)start, size);
	out_printf(&o, "\"}");
	if (!o.overflow)
		seq_write(m, o.buf, o.len);
	kvfree(o.buf);
	return 0;
}

static const struct seq_operations modules_seq_ops = {
	.start = modules_start,
	.next = modules_next,
	.stop = tasks_stop,
	.show = modules_show,
};

static int modules_open(struct inode *inode, struct file *file)
{
	struct module_list *l;
	struct module *mod;
	int err;

	l = kvzalloc(sizeof(*l), GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	/* The module list is RCU-sched protected; each live module is pinned so its text stays. */
	preempt_disable();
	list_for_each_entry_rcu(mod, &THIS_MODULE->list, list) {
		if (l->nr == MAX_MODULES)
			break;
		if (is_module(mod) && mod->state == MODULE_STATE_LIVE && try_module_get(mod))
			l->mods[l->nr++] = mod;
	}
	/* The list is circular: THIS_MODULE itself is the entry the walk started from. */
	if (l->nr < MAX_MODULES && try_module_get(THIS_MODULE))
		l->mods[l->nr++] = THIS_MODULE;
	preempt_enable();
	err = seq_open(file, &modules_seq_ops);
	if (err) {
		while (l->nr)
			module_put(l->mods[--l->nr]);
		kvfree(l);
		return err;
	}
	((struct seq_file *)file->private_data)->private = l;
	return 0;
}

static int modules_release(struct inode *inode, struct file *file)
{
	struct seq_file *m = file->private_data;
	struct module_list *l = m->private;

	while (l->nr)
		module_put(l->mods[--l->nr]);
	kvfree(l);
	return seq_release(inode, file);
}

static const struct file_operations modules_fops = {
	.owner = THIS_MODULE,
	.open = modules_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = modules_release,
};

/* ---- kernel text ---- */

/*
 * Kernel text is no slab object, so hardened usercopy refuses to copy it to
 * user space directly: it goes through a bounce page, one page at a time.
 */
static ssize_t text_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	unsigned long size = etext_addr - stext_addr;
	size_t done = 0;
	void *page;

	if (*pos < 0)
		return -EINVAL;
	if (*pos >= size || !count)
		return 0;
	page = (void *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	while (done < count && *pos < size) {
		size_t n = min3((size_t)(count - done), (size_t)(size - *pos), (size_t)PAGE_SIZE);

		memcpy(page, (const void *)(stext_addr + *pos), n);
		if (copy_to_user(buf + done, page, n)) {
			free_page((unsigned long)page);
			return done ? done : -EFAULT;
		}
		done += n;
		*pos += n;
	}
	free_page((unsigned long)page);
	return done;
}

static const struct file_operations text_fops = {
	.owner = THIS_MODULE,
	.read = text_read,
	.llseek = default_llseek,
};

static int kernel_open(struct inode *inode, struct file *file)
{
	return single_open(file, kernel_show, NULL);
}

static const struct file_operations kernel_fops = {
	.owner = THIS_MODULE,
	.open = kernel_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init klpcapture_init(void)
{
	int err = resolve_symbols();

	if (err)
		return err;
	klp_dir = debugfs_create_dir("klpcapture", NULL);
	if (IS_ERR(klp_dir)) {
		pr_err("klpcapture: cannot create the debugfs directory (is debugfs enabled?)\n");
		return PTR_ERR(klp_dir);
	}
	debugfs_create_file("kernel", 0400, klp_dir, NULL, &kernel_fops);
	debugfs_create_file("tasks", 0400, klp_dir, NULL, &tasks_fops);
	debugfs_create_file("modules", 0400, klp_dir, NULL, &modules_fops);
	debugfs_create_file_size("text", 0400, klp_dir, NULL, &text_fops, etext_addr - stext_addr);
	return 0;
}

static void __exit klpcapture_exit(void)
{
	debugfs_remove_recursive(klp_dir);
}

module_init(klpcapture_init);
module_exit(klpcapture_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Read-only snapshot of every task's kernel stack for klpsim");
