#!/usr/bin/env node
// The QEMU stage: boots a real Debian arm64 kernel under
// qemu-system-aarch64 (TCG), captures every task with capture/ (module and
// collector), and checks with klpsim that its walk of every task equals the
// kernel's own trace, frame for frame, and that `predict` names the tasks
// the kernel's traces show sleeping in a patched function (docs/capture.md).
//
//   node scripts/capture-qemu.mjs [--suite bookworm] [--abi 6.1.0-57] [--mode tracers|plain]
//                                 [--out DIR] [--timeout SECONDS] [--keep]
//
// Needs qemu-system-aarch64 and gcc-aarch64-linux-gnu (installed with
// apt-get when run as root, as scripts/system-packages.mjs does); the kernel
// packages come with a private apt state and are cached in
// $XDG_CACHE_HOME/klpsim (or ~/.cache/klpsim) between runs.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkCapture } from './capture-qemu/check.mjs';
import {
  fetchKernel,
  newestCloudAbi,
  privateApt,
  SUITES,
  sidBuildRoot,
} from './capture-qemu/debian.mjs';
import { newcArchive } from './capture-qemu/initramfs.mjs';

const TOOLS = [
  { path: '/usr/bin/qemu-system-aarch64', pkg: 'qemu-system-arm' },
  { path: '/usr/bin/aarch64-linux-gnu-gcc', pkg: 'gcc-aarch64-linux-gnu' },
  { path: '/usr/aarch64-linux-gnu/include/stdio.h', pkg: 'libc6-dev-arm64-cross' },
];
// The virtio-mmio disk the guest writes its result to, loaded in dependency order.
const GUEST_MODULES = ['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_blk'];
const OUT_DISK_BYTES = 256 << 20;

const usage =
  'usage: node scripts/capture-qemu.mjs [--suite bookworm|bookworm-backports|sid] [--abi ABI] [--mode tracers|plain] [--out DIR] [--timeout SECONDS] [--keep]';

function fail(message) {
  console.error(`capture-qemu: ${message}`);
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        suite: { type: 'string', default: 'bookworm' },
        abi: { type: 'string' },
        mode: { type: 'string', default: 'tracers' },
        out: { type: 'string' },
        timeout: { type: 'string', default: '300' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    fail(`${e.message}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (!Object.hasOwn(SUITES, values.suite)) {
    fail(`--suite ${values.suite}: expected one of ${Object.keys(SUITES).join(', ')}`);
  }
  if (!['tracers', 'plain'].includes(values.mode))
    fail(`--mode ${values.mode}: expected tracers or plain`);
  if (values.abi !== undefined && !/^\d+\.\d+\.\d+(-\d+|\+deb\d+)$/.test(values.abi)) {
    fail(`--abi ${values.abi}: expected a Debian kernel ABI such as 6.1.0-57 or 7.2.13+deb14`);
  }
  if (
    !/^\d{1,4}$/.test(values.timeout) ||
    Number(values.timeout) < 30 ||
    Number(values.timeout) > 3600
  ) {
    fail(`--timeout ${values.timeout}: expected whole seconds from 30 to 3600`);
  }
  return { ...values, timeout: Number(values.timeout) };
}

/** $XDG_CACHE_HOME/klpsim, else ~/.cache/klpsim; a temporary directory when neither can be written. */
function cacheDirectory() {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: run by scripts/test.mjs directly, never as a turbo task
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const dir = join(base, 'klpsim');
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.writable'), '');
    return dir;
  } catch {
    const tmp = mkdtempSync(join(tmpdir(), 'klpsim-cache-'));
    console.log(`capture-qemu: ${dir} is not writable; downloading into ${tmp} (not kept)`);
    return tmp;
  }
}

function ensureTools() {
  const missing = TOOLS.filter((t) => !existsSync(t.path));
  if (missing.length === 0) return;
  const pkgs = missing.map((t) => t.pkg);
  if (process.getuid?.() !== 0) {
    fail(
      `missing ${missing.map((t) => t.path).join(', ')}; as root: apt-get install -y ${pkgs.join(' ')}`,
    );
  }
  console.log(`capture-qemu: installing ${pkgs.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...pkgs],
  ]) {
    if (spawnSync('apt-get', args, { stdio: 'inherit', env }).status !== 0) {
      fail(`apt-get ${args.join(' ')} failed`);
    }
  }
}

function sh(cmd, args, what, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error || r.status !== 0) {
    fail(
      `${what} failed:\n${`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n')}`,
    );
  }
  return r.stdout;
}

/**
 * Cross-builds capture/module against the downloaded headers, in a copy (the
 * source tree stays clean): on the host for bookworm's kernels, inside the
 * sid build root for sid's (their kbuild tools need sid's glibc).
 */
function buildModule(kernel, work, buildRoot) {
  const make = ['-s', 'ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-', '-j2'];
  const copy = (dir) => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const f of ['klpcapture.c', 'Kbuild', 'Makefile']) {
      writeFileSync(join(dir, f), readFileSync(join('capture/module', f)));
    }
  };
  if (buildRoot === null) {
    const dir = join(work, 'module');
    copy(dir);
    sh('make', [...make, `KDIR=${kernel.headers}`], 'building the klpcapture module', { cwd: dir });
    return join(dir, 'klpcapture.ko');
  }
  const inside = '/klpcapture-build';
  copy(join(buildRoot, inside));
  const kdir = `/usr/src/linux-headers-${kernel.release}`;
  sh(
    'chroot',
    [buildRoot, 'make', '-C', inside, ...make, `KDIR=${kdir}`],
    'building the klpcapture module in the sid build root',
  );
  return join(buildRoot, inside, 'klpcapture.ko');
}

function buildWorkload(work) {
  const out = join(work, 'workload');
  const flags = ['-static', '-O2', '-Wall', '-Werror', '-Wno-unused-result'];
  sh(
    'aarch64-linux-gnu-gcc',
    [...flags, '-o', out, 'capture/workload/workload.c'],
    'building the workload',
  );
  return out;
}

/**
 * The guest's virtio disk drivers that this kernel builds as modules (6.1:
 * all four; 7.2: virtio and virtio_ring are built in), decompressed when the
 * package ships them as .ko.xz; in the order the guest loads them.
 */
function guestModules(kernel, work) {
  const builtin = readFileSync(join(kernel.modules, 'modules.builtin'), 'utf8');
  const out = [];
  for (const m of GUEST_MODULES) {
    if (new RegExp(`/${m}\\.ko$`, 'm').test(builtin)) continue;
    const found = sh(
      'find',
      [kernel.modules, '-name', `${m}.ko`, '-o', '-name', `${m}.ko.xz`],
      `finding ${m}.ko`,
    )
      .trim()
      .split('\n')[0];
    if (!found) fail(`${m}.ko is neither built in nor in ${kernel.modules}`);
    let ko = found;
    if (found.endsWith('.xz')) {
      ko = join(work, `${m}.ko`);
      writeFileSync(ko, sh('xz', ['-dc', found], `decompressing ${found}`, { encoding: 'buffer' }));
    }
    out.push({ name: m, ko });
  }
  return out;
}

function buildInitramfs(kernel, moduleKo, workload, work) {
  const file = (path, mode, from) => ({ path, mode, data: readFileSync(from) });
  const dirs = ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'modules'].map((path) => ({
    path,
    mode: 0o755,
  }));
  const guest = guestModules(kernel, work);
  const order = Buffer.from(guest.map((m) => `${m.name}\n`).join(''));
  const archive = newcArchive([
    ...dirs,
    file('bin/busybox', 0o755, kernel.busybox),
    file('init', 0o755, 'capture/qemu/init'),
    file('klpsim-capture.sh', 0o755, 'capture/klpsim-capture.sh'),
    file('lib/kallsyms.sh', 0o644, 'capture/lib/kallsyms.sh'),
    file('lib/kallsyms-named.awk', 0o644, 'capture/lib/kallsyms-named.awk'),
    file('lib/kallsyms-symbols.awk', 0o644, 'capture/lib/kallsyms-symbols.awk'),
    file('klpcapture.ko', 0o644, moduleKo),
    file('workload', 0o755, workload),
    ...guest.map((m) => file(`modules/${m.name}.ko`, 0o644, m.ko)),
    { path: 'modules/order', mode: 0o644, data: order },
  ]);
  const out = join(work, 'initramfs.cpio.gz');
  writeFileSync(out, archive);
  return out;
}

/** Boots the kernel; resolves with the console log once the guest powers off, rejects on timeout. */
function boot(kernel, initramfs, disk, mode, timeout) {
  const args = [
    '-M',
    'virt',
    '-cpu',
    'max,pauth-impdef=on',
    '-smp',
    '2',
    '-m',
    '1024',
    '-nographic',
    '-no-reboot',
    '-nic',
    'none',
    '-kernel',
    kernel.vmlinuz,
    '-initrd',
    initramfs,
    '-append',
    `console=ttyAMA0 nokaslr rdinit=/init panic=-1 oops=panic klpsim_mode=${mode}`,
    '-drive',
    `file=${disk},format=raw,if=none,id=out`,
    '-device',
    'virtio-blk-device,drive=out',
  ];
  return new Promise((done, reject) => {
    const q = spawn('qemu-system-aarch64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let shown = 0;
    q.stdout.on('data', (d) => {
      log += d;
      // The guest's own status lines, whole lines only (a chunk may end mid-line).
      const end = log.lastIndexOf('\n') + 1;
      for (const line of log.slice(shown, end).split('\n'))
        if (line.includes('klpsim-stage:')) console.log(`  guest: ${line.trim()}`);
      shown = Math.max(shown, end);
    });
    q.stderr.on('data', (d) => {
      log += d;
    });
    const timer = setTimeout(() => {
      q.kill('SIGKILL');
      reject(new Error(`the guest did not finish in ${timeout} s; console:\n${log.slice(-4000)}`));
    }, timeout * 1000);
    q.on('exit', () => {
      clearTimeout(timer);
      done(log);
    });
  });
}

async function main() {
  const opts = parseOptions();
  const t0 = Date.now();
  const lap = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  ensureTools();
  const cache = cacheDirectory();
  let kernel;
  try {
    const abi = opts.abi ?? newestCloudAbi(privateApt(cache, opts.suite));
    console.log(
      `capture-qemu: Debian ${opts.suite} linux-image-${abi}-cloud-arm64, mode ${opts.mode}`,
    );
    kernel = fetchKernel(cache, opts.suite, abi);
  } catch (e) {
    fail(e.message);
  }
  console.log(
    `capture-qemu: kernel ${kernel.release} (${kernel.version}) ready in ${kernel.root} [${lap()}]`,
  );

  const work = mkdtempSync(join(tmpdir(), 'klpsim-qemu-'));
  let buildRoot = null;
  if (opts.suite === 'sid') {
    try {
      buildRoot = sidBuildRoot(cache, kernel);
    } catch (e) {
      fail(e.message);
    }
  }
  const moduleKo = buildModule(kernel, work, buildRoot);
  const workload = buildWorkload(work);
  const initramfs = buildInitramfs(kernel, moduleKo, workload, work);
  console.log(`capture-qemu: module, workload and initramfs built [${lap()}]`);

  const disk = join(work, 'out.img');
  writeFileSync(disk, '');
  sh('truncate', ['-s', String(OUT_DISK_BYTES), disk], 'creating the output disk');
  let log;
  try {
    log = await boot(kernel, initramfs, disk, opts.mode, opts.timeout);
  } catch (e) {
    fail(e.message);
  }
  writeFileSync(join(work, 'console.log'), log);
  if (!log.includes('klpsim-stage: CAPTURED')) {
    fail(`the guest did not capture; console (${join(work, 'console.log')}):\n${log.slice(-3000)}`);
  }
  console.log(`capture-qemu: guest captured and powered off [${lap()}]`);

  const out = resolve(opts.out ?? join(cache, 'captures', `${kernel.release}-${opts.mode}`));
  const staging = `${out}.new`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  sh('tar', ['-xf', disk, '-C', staging], 'reading the guest output disk');
  writeFileSync(join(staging, 'console.log'), log);
  rmSync(out, { recursive: true, force: true });
  renameSync(staging, out);
  if (!opts.keep) rmSync(work, { recursive: true, force: true });

  const { failures, figures } = checkCapture(join(out, 'capture.json'), {
    tracers: opts.mode === 'tracers',
  });
  console.log(`capture-qemu: capture in ${out}`);
  console.log(
    `  kernel ${figures.release}: ${figures.tasks} tasks captured, ${figures.frames} frames walked`,
  );
  console.log(`  per-CPU stacks: ${figures.cpuStacks}`);
  console.log(`  not captured: ${figures.skipped.join('; ') || 'none'}`);
  console.log(
    `  kernel agreement (${figures.policy}, arch_stack_walk): ${figures.agreeing}/${figures.tasks} tasks, frame for frame`,
  );
  if (figures.reliable !== null) {
    console.log(
      `  kernel agreement (stack_trace_save_tsk_reliable): ${figures.reliable.agreeing}/${figures.reliable.tasks} verdicts and traces; unreliable: ${figures.reliable.unreliable.join(', ') || 'none'}`,
    );
  }
  console.log(
    `  shapes: ${Object.entries(figures.shapes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(`  predict --patch do_nanosleep: sleeping ${figures.predictSleeping.join(', ')}`);
  console.log(`capture-qemu: ${failures.length === 0 ? 'PASS' : 'FAIL'} in ${lap()}`);
  for (const f of failures) console.log(`  FAIL ${f}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

// Every failure is a message, never a stack trace: the checks' own errors included.
await main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
