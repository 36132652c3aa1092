// Debian's arm64 kernel packages, fetched with a private apt state: its own
// sources list, lists, cache and status file under the cache directory, so
// the machine's apt configuration and dpkg database are never touched.
// Unpacked with dpkg-deb -x into a root of their own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The archive a suite's packages come from; bookworm's kernel updates come through security. */
export const SUITES = {
  bookworm: [
    'http://deb.debian.org/debian bookworm main',
    'http://deb.debian.org/debian-security bookworm-security main',
  ],
  // Debian 13's 6.12 kernel, built for bookworm: its kbuild tools run on the host.
  'bookworm-backports': [
    'http://deb.debian.org/debian bookworm-backports main',
    'http://deb.debian.org/debian bookworm main',
  ],
  sid: ['http://deb.debian.org/debian sid main'],
};

function run(cmd, args, what, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error || r.status !== 0) {
    const err = (r.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`${what}: ${cmd} ${args.join(' ')} failed${err ? `:\n${err}` : ''}`);
  }
  return r.stdout;
}

/** apt options that point every path apt writes at `dir` (a suite's private state). */
function aptOptions(dir) {
  return [
    `-o Dir::State=${dir}/state`,
    `-o Dir::State::status=${dir}/state/status`,
    `-o Dir::Cache=${dir}/cache`,
    `-o Dir::Etc::sourcelist=${dir}/sources.list`,
    '-o Dir::Etc::sourceparts=-',
    `-o Dir::Etc::preferencesparts=${dir}/preferences.d`,
    '-o APT::Architectures::=amd64',
    '-o APT::Architectures::=arm64',
    // Another run's apt-get on the same private state is the only contender; the machine's lock is not ours to take.
    '-o Debug::NoLocking=1',
    '-o APT::Sandbox::User=root',
  ].flatMap((o) => o.split(/ (.*)/s).filter(Boolean));
}

/** Creates the private apt state for a suite and updates its lists (at most once a day). */
export function privateApt(cacheDir, suite) {
  const sources = SUITES[suite];
  if (sources === undefined)
    throw new Error(`--suite ${suite}: expected one of ${Object.keys(SUITES).join(', ')}`);
  const dir = join(cacheDir, 'apt', suite);
  for (const d of ['state/lists/partial', 'cache/archives/partial', 'preferences.d']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  const list = sources.map((s) => `deb [arch=amd64,arm64 signed-by=${KEYRING}] ${s}\n`).join('');
  writeFileSync(join(dir, 'sources.list'), list);
  if (!existsSync(join(dir, 'state/status'))) writeFileSync(join(dir, 'state/status'), '');
  const stamp = join(dir, 'updated');
  const fresh = existsSync(stamp) && Date.now() - Number(readFileSync(stamp, 'utf8')) < 86_400_000;
  const opts = aptOptions(dir);
  if (!fresh) {
    run(
      'apt-get',
      [...opts, '-qq', 'update'],
      `apt-get update (${suite}, private state in ${dir})`,
    );
    writeFileSync(stamp, String(Date.now()));
  }
  return {
    dir,
    /** A field of a package's record, from the private lists. */
    show(pkg, field) {
      const r = spawnSync('apt-cache', [...opts, 'show', pkg], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      if (r.status !== 0 && /No packages found/.test(r.stderr ?? '')) return null;
      if (r.error || r.status !== 0) {
        throw new Error(
          `apt-cache show ${pkg} failed: ${(r.stderr ?? '').trim() || r.error?.message}`,
        );
      }
      const out = r.stdout;
      const m = out.match(new RegExp(`^${field}: (.*)$`, 'm'));
      return m === null ? null : m[1];
    },
    /** Downloads packages (name:arch) into `into`, keeping what is there already. */
    download(pkgs, into) {
      mkdirSync(into, { recursive: true });
      run('apt-get', [...opts, '-qq', 'download', ...pkgs], `apt-get download ${pkgs.join(' ')}`, {
        cwd: into,
      });
    },
  };
}

/** The ABI name (e.g. 6.1.0-57) of the newest cloud-arm64 kernel of the suite, from its metapackage. */
export function newestCloudAbi(apt) {
  const dep = apt.show('linux-image-cloud-arm64:arm64', 'Depends') ?? '';
  const m = dep.match(/linux-image-(\S+)-cloud-arm64/);
  if (m === null)
    throw new Error(`linux-image-cloud-arm64 depends on "${dep}": no cloud-arm64 kernel named`);
  return m[1];
}

/**
 * Downloads and unpacks the kernel image, its headers (arch and common),
 * the amd64 kbuild tools of the same version and busybox-static into
 * `<cacheDir>/root-<abi>`; returns the paths a build and a boot need.
 */
export function fetchKernel(cacheDir, suite, abi) {
  const apt = privateApt(cacheDir, suite);
  const image = `linux-image-${abi}-cloud-arm64`;
  const version = apt.show(`${image}:arm64`, 'Version');
  if (version === null) throw new Error(`${image}: not in Debian ${suite}`);
  // The host tools' package is named by upstream version on 6.1 (linux-kbuild-6.1) and by ABI on
  // 7.x (linux-kbuild-7.2.13+deb14): take it from the headers' own dependencies.
  const headersDeps = apt.show(`linux-headers-${abi}-cloud-arm64:arm64`, 'Depends') ?? '';
  const kbuild = headersDeps.match(/\blinux-kbuild-[^\s,]+/)?.[0];
  if (kbuild === undefined)
    throw new Error(`linux-headers-${abi}-cloud-arm64 names no linux-kbuild package`);
  // On 7.x the image package only depends on the kernel's parts (linux-binary-*, linux-modules-*).
  const parts =
    (apt.show(`${image}:arm64`, 'Depends') ?? '').match(
      new RegExp(
        `\\blinux-(?:binary|modules|base)-${abi.replaceAll('.', '\\.').replaceAll('+', '\\+')}-cloud-arm64\\b`,
        'g',
      ),
    ) ?? [];
  const pkgs = [
    `${image}:arm64`,
    ...parts.map((p) => `${p}:arm64`),
    `linux-headers-${abi}-cloud-arm64:arm64`,
    `linux-headers-${abi}-common:all`,
    `${kbuild}:amd64`,
    'busybox-static:arm64',
  ];
  const debs = join(cacheDir, 'debs', `${suite}-${abi}`);
  const root = join(cacheDir, `root-${suite}-${abi}`);
  const release = `${abi}-cloud-arm64`;
  const headers = join(root, 'usr/src', `linux-headers-${release}`);
  if (!existsSync(join(root, '.unpacked'))) {
    apt.download(pkgs, debs);
    mkdirSync(root, { recursive: true });
    for (const f of readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
      run('dpkg-deb', ['-x', join(debs, f), root], `unpacking ${f}`);
    }
    // The headers' Makefile includes the common tree by its installed path; point it at ours.
    const mk = join(headers, 'Makefile');
    writeFileSync(
      mk,
      readFileSync(mk, 'utf8').replaceAll('include /usr/src/', `include ${root}/usr/src/`),
    );
    writeFileSync(join(root, '.unpacked'), `${version}\n`);
  }
  // 6.1 installs into /boot and /lib/modules; 7.x (merged /usr) into /usr/lib/modules/<release>.
  const modules = [join(root, 'lib/modules', release), join(root, 'usr/lib/modules', release)].find(
    (d) => existsSync(join(d, 'kernel')),
  );
  const vmlinuz = [join(root, 'boot', `vmlinuz-${release}`), join(modules ?? root, 'vmlinuz')].find(
    existsSync,
  );
  const busybox = [join(root, 'bin/busybox'), join(root, 'usr/bin/busybox')].find(existsSync);
  if (modules === undefined || vmlinuz === undefined || busybox === undefined) {
    throw new Error(`${root}: the kernel packages hold no vmlinuz or modules for ${release}`);
  }
  return {
    abi,
    suite,
    release,
    version: readFileSync(join(root, '.unpacked'), 'utf8').trim(),
    root,
    debs,
    headers,
    vmlinuz,
    modules,
    busybox,
  };
}

/**
 * A Debian sid build root (debootstrap, minbase) with sid's arm64 cross
 * compiler, for kernels whose kbuild tools need a newer glibc than the
 * host's; the kernel's headers and kbuild are unpacked into it at their
 * installed paths. Needs root and debootstrap.
 */
export function sidBuildRoot(cacheDir, kernel) {
  const dir = join(cacheDir, 'sid-chroot');
  if (!existsSync(join(dir, '.ready'))) {
    if (process.getuid?.() !== 0)
      throw new Error(`a sid build root needs root (debootstrap into ${dir})`);
    const gcc = (kernelHeadersCc(kernel) ?? 'gcc-16').replace(/^gcc-/, '');
    run(
      'debootstrap',
      [
        '--variant=minbase',
        '--arch=amd64',
        `--include=make,gcc-${gcc}-aarch64-linux-gnu,libelf1t64,libssl3t64,zlib1g,pahole,bc`,
        'sid',
        dir,
        'http://deb.debian.org/debian',
      ],
      `debootstrap of a sid build root into ${dir}`,
    );
    writeFileSync(join(dir, '.ready'), '');
  }
  const mark = join(dir, `.headers-${kernel.abi}`);
  if (!existsSync(mark)) {
    for (const f of readdirSync(kernel.debs).filter((f) => /^linux-(headers|kbuild)-/.test(f))) {
      run('dpkg-deb', ['-x', join(kernel.debs, f), dir], `unpacking ${f} into ${dir}`);
    }
    writeFileSync(mark, '');
  }
  return dir;
}

/** The compiler the headers' Makefile asks for (gcc-12 on 6.1, gcc-16 on 7.2), if it names one. */
function kernelHeadersCc(kernel) {
  const file = join(kernel.headers, '.kernelvariables');
  if (!existsSync(file)) return null;
  return readFileSync(file, 'utf8').match(/\b(gcc-\d+)\b/)?.[1] ?? null;
}
