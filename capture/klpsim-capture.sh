#!/bin/sh
# klpsim-capture: writes an arm64-stack-capture/v1 capture of the running
# kernel (capture.json and the text dump beside it) into a directory.
#
#   klpsim-capture.sh [-m klpcapture.ko] [-o DIR]
#
# POSIX sh, awk, sed, sort and sha256sum only (busybox is enough): production
# machines rarely have Node, and this runs on the machine being captured.
# It loads the klpcapture module (capture/module), reads its debugfs files and
# /proc/kallsyms, unloads the module, and writes DIR/capture.json atomically.
# Read docs/capture.md first: this loads an out-of-tree module (taint).
set -eu

usage() {
	echo "usage: $0 [-m klpcapture.ko] [-o DIR]" >&2
	exit 2
}

module="$(dirname "$0")/module/klpcapture.ko"
out=.
while getopts m:o:h opt; do
	case "$opt" in
	m) module=$OPTARG ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

die() {
	echo "klpsim-capture: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it loads a kernel module and reads /proc/kallsyms)"
[ "$(uname -m)" = aarch64 ] || die "this is $(uname -m); the capture format is for arm64 kernels"
[ -r "$module" ] || die "$module: no such module; build it first (docs/capture.md: make -C capture/module)"
[ -d "$out" ] || die "$out: no such directory"

release=$(uname -r)
text="text-$release.bin"
work=$(mktemp -d "$out/.klpsim-capture.XXXXXX")
loaded=
cleanup() {
	[ -z "$loaded" ] || rmmod klpcapture 2>/dev/null || echo "klpsim-capture: could not unload klpcapture; run rmmod klpcapture" >&2
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Addresses of what the module needs and the kernel does not export; the
# module checks each against kallsyms itself before use.
cp /proc/kallsyms "$work/kallsyms"
addr() {
	awk -v n="$1" '$3 == n && NF == 3 { print "0x" $1; exit }' "$work/kallsyms"
}
for s in stack_trace_save_tsk arch_stack_walk put_task_stack _stext _etext; do
	a=$(addr "$s")
	[ -n "$a" ] || die "/proc/kallsyms has no $s: this kernel is not one the module knows"
	case "$a" in 0x0000000000000000) die "/proc/kallsyms shows zero addresses (kernel.kptr_restrict): run as root with CAP_SYSLOG" ;; esac
done
reliable=$(addr stack_trace_save_tsk_reliable)

[ -d /sys/kernel/debug/klpcapture ] && die "klpcapture is already loaded (another capture running?)"
if ! grep -qs ' /sys/kernel/debug debugfs ' /proc/mounts; then
	mount -t debugfs debugfs /sys/kernel/debug || die "cannot mount debugfs at /sys/kernel/debug"
fi
insmod "$module" stack_trace_save_tsk="$(addr stack_trace_save_tsk)" \
	arch_stack_walk="$(addr arch_stack_walk)" put_task_stack="$(addr put_task_stack)" \
	_stext="$(addr _stext)" _etext="$(addr _etext)" \
	${reliable:+stack_trace_save_tsk_reliable=$reliable} ||
	die "insmod $module failed; dmesg says why"
loaded=1
d=/sys/kernel/debug/klpcapture
cat "$d/kernel" >"$work/kernel"
cat "$d/tasks" >"$work/tasks"
cat "$d/modules" >"$work/modules"
cat "$d/text" >"$work/$text"
rmmod klpcapture || die "rmmod klpcapture failed"
loaded=

size=$(wc -c <"$work/$text" | tr -d ' ')
sha=$(sha256sum "$work/$text" | cut -d' ' -f1)
start=$(addr _stext)
end=$(addr _etext)
cmdline=$(sed 's/\\/\\\\/g; s/"/\\"/g' /proc/cmdline)

# sections, specialAddresses and symbols, from one read of kallsyms.
awk '
function hex(a) { return "\"0x" a "\"" }
function find(n) { return (n in core) ? hex(core[n]) : "null" }
function section(name, s, e) {
	printf "%s\"%s\":", (nsec++ ? "," : ""), name
	if ((s in core) && (e in core)) printf "{\"start\":%s,\"end\":%s}", hex(core[s]), hex(core[e])
	else printf "null"
}
NF == 3 && !($3 in core) { core[$3] = $1 }
END {
	printf "\"sections\":{"
	section("text", "_stext", "_etext")
	section("inittext", "_sinittext", "_einittext")
	n = split("entry_text irqentry_text softirqentry_text idmap_text hyp_idmap_text hyp_text kprobes_text sched_text lock_text cpuidle_text noinstr_text hibernate_exit_text relocate_new_kernel exception_text", names, " ")
	for (i = 1; i <= n; i++) section(names[i], "__" names[i] "_start", "__" names[i] "_end")
	printf "},\n\"specialAddresses\":{"
	n = split("return_to_handler ftrace_caller ftrace_regs_caller ftrace_common ftrace_graph_caller ftrace_stub ftrace_stub_graph prepare_ftrace_return ftrace_graph_func ftrace_return_to_handler __kretprobe_trampoline kretprobe_trampoline arch_rethook_trampoline trampoline_probe_handler __kretprobe_trampoline_handler arch_prepare_kretprobe ret_from_fork cpu_switch_to __switch_to __schedule schedule call_on_irq_stack vectors el1h_64_sync el1h_64_irq el1h_64_fiq el1h_64_error el0t_64_sync el0t_64_irq el0t_64_fiq el0t_64_error el0t_32_sync el0t_32_irq el1t_64_sync el1t_64_irq el1h_64_sync_handler el1h_64_irq_handler el0t_64_sync_handler el0t_64_irq_handler handle_bad_stack __bad_stack arch_stack_walk stack_trace_save_tsk stack_trace_save_tsk_reliable handle_userfault do_mem_abort do_page_fault do_translation_fault el1_abort cpu_do_idle default_idle_call do_idle kthread secondary_start_kernel start_kernel rest_init __primary_switched __secondary_switched __sdei_asm_handler", names, " ")
	for (i = 1; i <= n; i++) printf "%s\"%s\":%s", (i > 1 ? "," : ""), names[i], find(names[i])
	printf "}"
}' "$work/kallsyms" >"$work/named"

# Text symbols (t, T, w, W) and _etext, sorted by address; aliases keep kallsyms order.
awk '
($2 ~ /^[tTwW]$/ || $3 == "_etext") && (NF == 3 || NF == 4) {
	mod = ""
	if (NF == 4) { mod = $4; gsub(/[][]/, "", mod); mod = ",\"module\":\"" mod "\"" }
	printf "%s %012d {\"name\":\"%s\",\"address\":\"0x%s\",\"type\":\"%s\"%s}\n", $1, NR, $3, $1, $2, mod
}' "$work/kallsyms" | sort -k1,1 -k2,2 | sed 's/^[^ ]* [^ ]* //; $!s/$/,/' >"$work/symbols"

{
	printf '{"format":"arm64-stack-capture/v1",\n'
	printf '"capture":{"tool":"klpsim-capture.sh","module":"klpcapture","date":"%s"},\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '"kernel":{'
	cat "$work/kernel"
	printf ',"cmdline":"%s",\n' "$cmdline"
	cat "$work/named"
	printf ',\n"textDump":{"file":"%s","start":"%s","end":"%s","size":%s,"sha256":"%s","offsetRule":"file offset = address - start (start = _stext)"},\n' \
		"$text" "$start" "$end" "$size" "$sha"
	cat "$work/modules"
	printf '},\n"symbols":[\n'
	cat "$work/symbols"
	printf '],\n'
	cat "$work/tasks"
	printf '}\n'
} >"$work/capture.json"

mv "$work/$text" "$out/$text"
mv "$work/capture.json" "$out/capture.json"
tasks=$(grep -o '"stack":{"low"' "$out/capture.json" | wc -l | tr -d ' ')
echo "klpsim-capture: wrote $out/capture.json ($tasks tasks) and $out/$text ($size bytes)"
