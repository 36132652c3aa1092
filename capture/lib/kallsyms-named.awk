# From /proc/kallsyms: the members "sections" and "specialAddresses" of the
# capture's kernel object (arm64-stack-capture/v1). A section is
# [__<name>_start, __<name>_end), null when the kernel has no such markers;
# an address is the first core (non-module) symbol of that name, or null.
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
}
