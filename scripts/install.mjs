// `npm install` / `npm ci` hook: makes sure libtorch (and the system packages the project
// uses) are present, then builds the native addon. On a fresh Debian machine, run as root with
// apt available, it installs what is missing; SPN_NO_APT=1 turns that off. Elsewhere it fails
// with one message that lists where it looked and the commands that fix it.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch, FIX_HINT } from '../native/libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`spn: ${m}\n`);

const SYSTEM_PACKAGES = [
  // [package, a path that exists once it is installed]
  ['libtorch-dev', null], // checked through findLibtorch()
  ['libopenblas0-pthread', '/usr/lib/x86_64-linux-gnu/openblas-pthread'],
  ['dataset-fashion-mnist', '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'],
  ['libgloo-dev', '/usr/include/gloo/config.h'], // the 'gloo' backend of distributed training (native/dist.cc)
];

function canApt() {
  if (process.env.SPN_NO_APT === '1') return false;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  return spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
}

function aptInstall(pkgs) {
  log(`installing system packages: ${pkgs.join(' ')} (set SPN_NO_APT=1 to skip)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
}

function upToDate(target) {
  if (!fs.existsSync(target)) return false;
  const built = fs.statSync(target).mtimeMs;
  const sources = fs.readdirSync(path.join(root, 'native')).filter((f) => /\.(cc|h|mjs)$/.test(f));
  return sources.every((f) => fs.statSync(path.join(root, 'native', f)).mtimeMs < built);
}

async function main() {
  let { found } = findLibtorch();
  const missing = SYSTEM_PACKAGES.filter(([pkg, probe]) => (pkg === 'libtorch-dev' ? !found : !fs.existsSync(probe))).map(([pkg]) => pkg);
  // A PyTorch install (LIBTORCH / python3) needs none of Debian's packages but the dataset and
  // Gloo's headers (the wheel has Gloo's library, not its headers).
  const wanted = found && found.source !== 'debian' ? missing.filter((p) => p === 'dataset-fashion-mnist' || p === 'libgloo-dev') : missing;
  if (wanted.length && canApt()) {
    aptInstall(wanted);
    found = findLibtorch().found;
  } else if (wanted.length) {
    log(`missing system packages: ${wanted.join(' ')} (not installing: ${process.env.SPN_NO_APT === '1' ? 'SPN_NO_APT=1' : 'not root or no apt-get'})`);
  }
  if (!found) {
    const { tried } = findLibtorch();
    log(`no libtorch found. Looked at:\n  ${tried.join('\n  ')}\n${FIX_HINT}`);
    process.exit(1);
  }
  const target = path.join(root, 'native', 'build', 'spn_torch.node');
  const stamp = path.join(root, 'native', 'build', 'libtorch.json');
  const sameTorch = fs.existsSync(stamp) && JSON.parse(fs.readFileSync(stamp, 'utf8')).root === found.root;
  if (sameTorch && upToDate(target)) {
    log('native addon is up to date');
    return;
  }
  const { build } = await import('../native/build.mjs');
  await build();
}

main().catch((err) => {
  log(err.message);
  process.exit(1);
});
