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
	cat >&2 <<USAGE
usage: $0 [-m MODULE] [-o DIR]
  Captures every task of the running arm64 kernel as DIR/capture.json and
  its text dump (arm64-stack-capture/v1), for klpsim walk, predict and
  transition scenarios. Run as root: it loads an out-of-tree module (taint;
  see docs/capture.md), reads /proc/kallsyms and debugfs, then unloads it.
  -m MODULE  the built klpcapture.ko (default: module/klpcapture.ko beside this script)
  -o DIR     where to write (default: the current directory)
  -h         this help
USAGE
	exit "${1:-2}"
}

lib=$(dirname "$0")/lib
module="$(dirname "$0")/module/klpcapture.ko"
out=.
case "${1:-}" in --help) usage 0 ;; esac
while getopts m:o:h opt; do
	case "$opt" in
	m) module=$OPTARG ;;
	o) out=$OPTARG ;;
	h) usage 0 ;;
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
[ -r "$lib/kallsyms.sh" ] || die "$lib/kallsyms.sh: missing (copy all of capture/)"
. "$lib/kallsyms.sh"

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
# Only where the kernel has them: the reliable walk (arm64 from 6.13) and the
# function-graph shadow stack's decoder (6.11+; the module asks for it there).
reliable=$(addr stack_trace_save_tsk_reliable)
fgraph=$(addr ftrace_graph_get_ret_stack)
# Per-CPU stacks, where kallsyms lists data symbols (CONFIG_KALLSYMS_ALL).
percpu=
for s in irq_stack_ptr overflow_stack sdei_stack_normal_ptr sdei_stack_critical_ptr; do
	a=$(awk -v n="$s" '$3 == n && NF == 3 { print "0x" $1; exit }' "$work/kallsyms")
	[ -z "$a" ] || percpu="$percpu $s=$a"
done

[ -d /sys/kernel/debug/klpcapture ] && die "klpcapture is already loaded (another capture running?)"
if ! grep -qs ' /sys/kernel/debug debugfs ' /proc/mounts; then
	mount -t debugfs debugfs /sys/kernel/debug || die "cannot mount debugfs at /sys/kernel/debug"
fi
insmod "$module" stack_trace_save_tsk="$(addr stack_trace_save_tsk)" \
	arch_stack_walk="$(addr arch_stack_walk)" put_task_stack="$(addr put_task_stack)" \
	_stext="$(addr _stext)" _etext="$(addr _etext)" \
	${reliable:+stack_trace_save_tsk_reliable=$reliable} \
	${fgraph:+ftrace_graph_get_ret_stack=$fgraph} $percpu ||
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

# sections and specialAddresses, then the text symbols, from one read of kallsyms.
kallsyms_named "$work/kallsyms" >"$work/named"

kallsyms_symbols "$work/kallsyms" >"$work/symbols"

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
