import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureSchema } from '@klpsim/kernel';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * The collector's kallsyms step (capture/lib/kallsyms.sh), the part of
 * capture/klpsim-capture.sh that runs without a kernel module: it is run here
 * with the host's sh, awk, sort and sed on /proc/kallsyms lines of a real
 * boot (Debian 6.1.0-57-cloud-arm64 under QEMU, nokaslr: the QEMU stage's
 * kernel), in kallsyms order. The whole collector runs in that stage
 * (scripts/capture-qemu.mjs), where the kernel itself is the other side.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// Real /proc/kallsyms lines. gic_handle_irq, _stext and __irqentry_text_start share an
// address, in that order; _etext is a data symbol (D) the format keeps; module symbols
// come after the core ones in kallsyms but sort before them by address.
const KALLSYMS = `ffff800008010000 t gic_handle_irq
ffff800008010000 T _stext
ffff800008010000 T __irqentry_text_start
ffff8000080101cc T __irqentry_text_end
ffff8000080101d0 T __do_softirq
ffff8000080101d0 T __softirqentry_text_start
ffff8000080101f8 T __entry_text_start
ffff8000080101f8 T __softirqentry_text_end
ffff8000080166bc T ret_from_fork
ffff80000802cbfc T return_to_handler
ffff800008bb50f0 T __sched_text_start
ffff800008bb50f0 T __switch_to
ffff800008bb5280 t __schedule
ffff800008bbe918 T __sched_text_end
ffff800008be0000 D _etext
ffff800009a00000 b overflow_stack
ffff800000be9000 t $x\t[virtio_mmio]
ffff800000be9000 t vm_reset\t[virtio_mmio]
ffff800000be9024 t vm_notify\t[virtio_mmio]
ffff800000be9100 t __schedule\t[virtio_mmio]
`;

const work = mkdtempSync(join(tmpdir(), 'klpsim-kallsyms-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const input = join(work, 'kallsyms');
writeFileSync(input, KALLSYMS);

/** Runs a function of capture/lib/kallsyms.sh on the excerpt, as the collector does. */
function kallsyms(fn: 'kallsyms_symbols' | 'kallsyms_named'): string {
  const r = spawnSync(
    'sh',
    ['-c', `lib=capture/lib; . "$lib/kallsyms.sh"; ${fn} "$1"`, 'sh', input],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

describe('capture/lib/kallsyms.sh', () => {
  it('symbols: text symbols and _etext, by address, aliases in kallsyms order, modules named', () => {
    const symbols = JSON.parse(`[${kallsyms('kallsyms_symbols')}]`) as {
      name: string;
      address: string;
      type: string;
      module?: string;
    }[];
    // The format's rule (shared/captures/README.md): t/T/w/W plus _etext, sorted by
    // address, aliases in kallsyms order (%pS prints the first one).
    expect(symbols.map((s) => `${s.address} ${s.name}${s.module ? ` [${s.module}]` : ''}`)).toEqual(
      [
        '0xffff800000be9000 $x [virtio_mmio]',
        '0xffff800000be9000 vm_reset [virtio_mmio]',
        '0xffff800000be9024 vm_notify [virtio_mmio]',
        '0xffff800000be9100 __schedule [virtio_mmio]',
        '0xffff800008010000 gic_handle_irq',
        '0xffff800008010000 _stext',
        '0xffff800008010000 __irqentry_text_start',
        '0xffff8000080101cc __irqentry_text_end',
        '0xffff8000080101d0 __do_softirq',
        '0xffff8000080101d0 __softirqentry_text_start',
        '0xffff8000080101f8 __entry_text_start',
        '0xffff8000080101f8 __softirqentry_text_end',
        '0xffff8000080166bc ret_from_fork',
        '0xffff80000802cbfc return_to_handler',
        '0xffff800008bb50f0 __sched_text_start',
        '0xffff800008bb50f0 __switch_to',
        '0xffff800008bb5280 __schedule',
        '0xffff800008bbe918 __sched_text_end',
        '0xffff800008be0000 _etext',
      ],
    );
    expect(symbols.find((s) => s.name === '_etext')?.type).toBe('D');
  });

  it('sections and specialAddresses: marker pairs or null, core symbols before module ones', () => {
    const named = JSON.parse(`{${kallsyms('kallsyms_named')}}`) as {
      sections: Record<string, { start: string; end: string } | null>;
      specialAddresses: Record<string, string | null>;
    };
    expect(named.sections['text']).toEqual({
      start: '0xffff800008010000',
      end: '0xffff800008be0000',
    });
    expect(named.sections['sched_text']).toEqual({
      start: '0xffff800008bb50f0',
      end: '0xffff800008bbe918',
    });
    expect(named.sections['softirqentry_text']).toEqual({
      start: '0xffff8000080101d0',
      end: '0xffff8000080101f8',
    });
    // Markers this excerpt lacks (and 6.1 arm64 has no hibernate_exit_text at all): null, never a guess.
    expect(named.sections['hibernate_exit_text']).toBeNull();
    expect(named.sections['entry_text']).toBeNull();
    // __schedule is also a (made-up) module symbol listed after the core one: the core one wins.
    expect(named.specialAddresses['__schedule']).toBe('0xffff800008bb5280');
    expect(named.specialAddresses['return_to_handler']).toBe('0xffff80000802cbfc');
    expect(named.specialAddresses['arch_rethook_trampoline']).toBeNull();
  });

  it('the members assemble into a kernel object the capture schema accepts', () => {
    const named = kallsyms('kallsyms_named');
    const symbols = kallsyms('kallsyms_symbols');
    const doc =
      JSON.parse(`{"format":"arm64-stack-capture/v1","kernel":{"release":"6.1.0-57-cloud-arm64",
      "threadSize":16384,"vaBits":48,"kernelPacEnabled":true,
      "ptRegs":{"size":336,"stackframeOffset":304,"pcOffset":256},${named},
      "textDump":{"file":"text.bin","start":"0xffff800008010000","end":"0xffff800008be0000","size":12451840,
      "sha256":"${'0'.repeat(64)}"}},"symbols":[${symbols}],"tasks":[]}`);
    const r = captureSchema.safeParse(doc);
    expect(r.success, JSON.stringify(r.error?.issues)).toBe(true);
  });
});
