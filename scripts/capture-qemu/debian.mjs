// Debian's arm64 kernel packages, fetched with a private apt state: its own
// sources list, lists, cache and status file under the cache directory, so
// the machine's apt configuration and dpkg database are never touched.
// Unpacked with dpkg-deb -x into a root of their own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The archive a suite's packages come from; bookworm's kernel updates come through security. */
const SUITES = {
  bookworm: [
    'http://deb.debian.org/debian bookworm main',
    'http://deb.debian.org/debian-security bookworm-security main',
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
      const out = run('apt-cache', [...opts, 'show', pkg], `apt-cache show ${pkg}`);
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
  const upstream = abi.split('.').slice(0, 2).join('.');
  const pkgs = [
    `${image}:arm64`,
    `linux-headers-${abi}-cloud-arm64:arm64`,
    `linux-headers-${abi}-common:all`,
    `linux-kbuild-${upstream}:amd64`,
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
  return {
    abi,
    release,
    version: readFileSync(join(root, '.unpacked'), 'utf8').trim(),
    root,
    headers,
    vmlinuz: join(root, 'boot', `vmlinuz-${release}`),
    modules: join(root, 'lib/modules', release),
    busybox: join(root, 'bin/busybox'),
  };
}
