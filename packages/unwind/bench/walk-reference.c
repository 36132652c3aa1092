/*
 * klpsim's C reference walker: a native yardstick for `klpsim bench walk`.
 *
 * It walks the same inputs as the flat walk (packages/unwind/src/flat/walk.ts),
 * read from the file `exportStackArena` writes, with the same checks, in
 * plain C over native 64-bit addresses, as the kernel's own unwinder does:
 * a frame record must be 8-aligned and on the task stack above the previous
 * one (mainline: above the part already consumed), its fp a kernel address,
 * its LR PAC-stripped to a kernel address that is no tracer trampoline; the
 * walk ends at the task's FINAL meta record (mainline) or at its final frame
 * (6.1 and the 2021 series); under a text check every pc but the last must
 * lie in core text and outside every SYM_CODE range. Each entry is stored,
 * as stack_trace_consume_entry stores it. It stops at the first thing that is
 * not plain, exactly where the flat walk hands a walk back, so both count the
 * same entries and reach the same outcome per task (the bench compares a
 * hash of the outcomes).
 *
 * Usage: walk-reference FILE SECONDS
 * Prints: frames=N walks=N ns=N plain=N hash=H (ns: CPU time of the timed passes)
 * Written for klpsim; built at bench time with the system C compiler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAGIC 0x41504c4bu /* "KLPA" */
#define VERSION 2
#define HANDED_BACK (-1)

/* The rule bits of src/rules.ts. */
#define FLAT_CONSUME 1
#define FLAT_END_BEFORE_NEXT 2
#define FLAT_END_BEFORE_CONSUME 4
#define FLAT_TEXT 8
#define FLAT_META 32

#define KERNEL_BASE 0xfff0000000000000ull
#define BIT55 (1ull << 55)

struct task {
	int flat;
	uint64_t stack_low; /* first byte */
	uint64_t stack_size;
	const uint64_t *words; /* the stack, as 64-bit words */
	uint64_t fp, pc, final_frame;
};

struct kernel {
	uint64_t kmask, rth, kr;
	int64_t meta_type_word; /* in 64-bit words from the record; -1: none */
	uint64_t meta_final, meta_size;
	int text_ok;
	uint64_t text_start, text_size;
	uint32_t nsym;
	uint64_t *sym_start, *sym_end; /* absolute */
	const uint8_t *pages;
};

static uint64_t u64_at(const uint8_t *arena, uint32_t at)
{
	uint64_t v;
	memcpy(&v, arena + at, 8);
	return v;
}

static uint32_t u32_at(const uint8_t *arena, uint32_t at)
{
	uint32_t v;
	memcpy(&v, arena + at, 4);
	return v;
}

static int in_sym_code(const struct kernel *k, uint64_t pc)
{
	uint32_t lo = 0, hi = k->nsym;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (k->sym_start[mid] <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && pc < k->sym_end[lo - 1];
}

static int is_kernel(uint64_t a)
{
	return a >= KERNEL_BASE;
}

/*
 * One walk; the number of entries stored when it ended with success, else
 * HANDED_BACK (*stored: entries stored). Everything compared per frame is
 * in locals first: a store to the trace may alias any uint64_t the
 * compiler cannot see is distinct, and would force reloads every frame.
 */
static int walk(const struct kernel *k, const struct task *t, int mode, int size,
		uint64_t *restrict trace, int *stored)
{
	const uint64_t rth = k->rth, kr = k->kr, kmask = k->kmask << 32;
	const uint64_t text_start = k->text_start, text_size = k->text_size;
	const uint64_t stack_low = t->stack_low, stack_size = t->stack_size, final_frame = t->final_frame;
	const uint64_t *const words = t->words;
	const uint8_t *const pages = k->pages;
	uint64_t fp = t->fp, pc = t->pc, low = 0;
	int n = 0;
	*stored = 0;
	if (!t->flat)
		return HANDED_BACK;
	if ((mode & FLAT_TEXT) && !k->text_ok)
		return HANDED_BACK;
	if (pc == rth || pc == kr)
		return HANDED_BACK;
	for (;;) {
		if (n >= size - 1)
			goto stop;
		if ((mode & FLAT_END_BEFORE_CONSUME) && fp == final_frame) {
			trace[n++] = pc;
			*stored = n;
			return n;
		}
		if (mode & FLAT_TEXT) {
			uint64_t off = pc - text_start;
			if (off >= text_size)
				goto stop;
			if (pages[off >> 12] && in_sym_code(k, pc))
				goto stop;
		}
		trace[n++] = pc;
		if ((mode & FLAT_END_BEFORE_NEXT) && fp == final_frame) {
			*stored = n;
			return n;
		}
		uint64_t off = fp - stack_low;
		if ((fp & 7) || fp < stack_low || off < low || off + 16 > stack_size)
			goto stop;
		const uint64_t *rec = words + off / 8;
		uint64_t nfp = rec[0], lr = rec[1];
		if ((nfp | lr) == 0) {
			if ((mode & FLAT_META) && fp == final_frame && off + k->meta_size <= stack_size &&
			    k->meta_type_word >= 0 && rec[k->meta_type_word] == k->meta_final) {
				*stored = n;
				return n;
			}
			goto stop;
		}
		if (!is_kernel(nfp) || !(lr & BIT55))
			goto stop;
		uint64_t npc = lr | kmask;
		if (!is_kernel(npc) || npc == rth || npc == kr)
			goto stop;
		low = (mode & FLAT_CONSUME) ? off + 16 : off + 1;
		fp = nfp;
		pc = npc;
	}
stop:
	*stored = n;
	return HANDED_BACK;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: walk-reference FILE SECONDS\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	double seconds = atof(argv[2]);
	int32_t h[12];
	if (fread(h, 4, 12, f) != 12 || (uint32_t)h[0] != MAGIC || h[1] != VERSION) {
		fprintf(stderr, "%s: not a klpsim stack arena (version %d)\n", argv[1], VERSION);
		return 2;
	}
	uint32_t ntasks = h[2], nsym = h[3];
	int mode = h[4], size = h[5];
	uint32_t at_tasks = h[6], at_sym = h[7], at_pages = h[8], at_words = h[10], bytes = h[11];
	(void)at_words;
	uint8_t *arena = malloc((size_t)bytes + 8);
	if (!arena || fread(arena, 1, bytes, f) != bytes) {
		fprintf(stderr, "%s: truncated\n", argv[1]);
		return 2;
	}
	fclose(f);

	/* The kernel block (flat/arena.ts K_* offsets). */
	struct kernel k = {0};
	k.kmask = u64_at(arena, 0) >> 32;
	k.rth = u64_at(arena, 8);
	k.kr = u64_at(arena, 16);
	int32_t meta_type = (int32_t)u32_at(arena, 24);
	k.meta_type_word = meta_type < 0 ? -1 : meta_type / 8;
	k.meta_final = u64_at(arena, 32);
	k.meta_size = u32_at(arena, 40);
	k.text_ok = (int)u32_at(arena, 44);
	k.text_start = u64_at(arena, 48);
	k.text_size = u32_at(arena, 56);
	k.nsym = nsym;
	k.sym_start = malloc(nsym * 8 + 8);
	k.sym_end = malloc(nsym * 8 + 8);
	for (uint32_t i = 0; i < nsym; i++) {
		k.sym_start[i] = k.text_start + u32_at(arena, at_sym + 4 * i);
		k.sym_end[i] = k.text_start + u32_at(arena, at_sym + 4 * (nsym + i));
	}
	k.pages = arena + at_pages;
	/* A zero rth/kr means "none": no kernel address is 0. */

	/* The task rows (flat/arena.ts T_* offsets). */
	struct task *tasks = calloc(ntasks + 1, sizeof *tasks);
	for (uint32_t i = 0; i < ntasks; i++) {
		uint32_t row = at_tasks + 48 * i;
		struct task *t = &tasks[i];
		t->flat = (int)u32_at(arena, row);
		t->words = (const uint64_t *)(arena + u32_at(arena, row + 4));
		t->stack_size = u32_at(arena, row + 8);
		t->stack_low = u64_at(arena, row + 16);
		t->fp = u64_at(arena, row + 24);
		t->pc = u64_at(arena, row + 32);
		t->final_frame = u64_at(arena, row + 40);
	}

	uint64_t *trace = malloc((size_t)size * 8 + 8);
	int *outcome = malloc((size_t)ntasks * sizeof(int) + 4);
	int stored;
	/* One pass for the outcomes (and to warm the caches), then timed passes. */
	unsigned plain = 0;
	for (uint32_t i = 0; i < ntasks; i++) {
		outcome[i] = walk(&k, &tasks[i], mode, size, trace, &stored);
		plain += outcome[i] != HANDED_BACK;
	}
	uint32_t hash = 2166136261u; /* FNV-1a over the outcomes, as the bench computes it */
	for (uint32_t i = 0; i < ntasks; i++) {
		uint32_t v = (uint32_t)outcome[i];
		for (int b = 0; b < 4; b++) {
			hash ^= (v >> (8 * b)) & 0xff;
			hash *= 16777619u;
		}
	}
	uint64_t frames = 0, walks = 0;
	volatile uint64_t sink = 0;
	/* Reading the CPU clock is a system call: read it every ~100,000 walks, as the bench does. */
	uint32_t reps = (100000 + ntasks - 1) / (ntasks ? ntasks : 1);
	double t0 = now(), elapsed;
	do {
		for (uint32_t r = 0; r < reps; r++) {
			for (uint32_t i = 0; i < ntasks; i++) {
				walk(&k, &tasks[i], mode, size, trace, &stored);
				frames += stored;
				sink += trace[0];
			}
			walks += ntasks;
		}
		elapsed = now() - t0;
	} while (elapsed < seconds);
	printf("frames=%llu walks=%llu ns=%llu plain=%u hash=%08x\n", (unsigned long long)frames,
	       (unsigned long long)walks, (unsigned long long)(elapsed * 1e9), plain, hash);
	return 0;
}
