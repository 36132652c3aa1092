// The Debian packages the test command needs beyond Node: Chromium (the HTML
// report tests drive it) and python3 (the independent vector runner). A fresh
// machine may lack them: as root, install what is missing with apt-get;
// otherwise say which and how, and let the run fail rather than skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NEEDED = [
  { what: 'Chromium, for the HTML report tests', path: '/usr/bin/chromium', pkg: 'chromium' },
  { what: 'python3, for the independent vector runner', path: '/usr/bin/python3', pkg: 'python3' },
];

/** Installs the missing packages; returns false (after saying why) when it cannot. */
export function ensureSystemPackages() {
  const missing = NEEDED.filter((n) => !existsSync(n.path));
  if (missing.length === 0) return true;
  const pkgs = missing.map((n) => n.pkg);
  if (process.getuid?.() !== 0) {
    for (const n of missing) console.error(`missing ${n.path} (${n.what})`);
    console.error(`as root: apt-get update && apt-get install -y ${pkgs.join(' ')}`);
    return false;
  }
  console.log(
    `installing ${pkgs.join(', ')} with apt-get (${missing.map((n) => n.what).join('; ')})`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
  if (!run(['update', '-qq']) || !run(['install', '-y', '-qq', ...pkgs])) {
    console.error(`apt-get could not install ${pkgs.join(' ')}`);
    return false;
  }
  return missing.every((n) => existsSync(n.path));
}
