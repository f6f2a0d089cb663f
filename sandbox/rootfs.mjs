// The sandbox hosts' base root file system: Debian bookworm with systemd, sshd, Nix and
// Node, built once per machine with debootstrap and cached, then used read-only as the
// lower dir of every host's overlay (systemd-nspawn --volatile=overlay).
//
// Cache: /var/cache/exo-deploy/sandbox/rootfs-<key>, key = hash(package lists + recipe
// version). Built under a temporary name and renamed when complete, so an interrupted build
// never looks complete; one builder at a time per machine (a lock folder holding its PID).
import { $, fs, path } from 'zx';
import { createHash } from 'node:crypto';

const RECIPE_VERSION = 5;
const SUITE = 'bookworm';
// debootstrap --include (nix-bin here fails: libdbd-sqlite3-perl stays unconfigured)
const DEBOOTSTRAP_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'iproute2',
  'curl',
  'ca-certificates',
];
// installed afterwards with apt-get inside a chroot. libnss-systemd: NixOS resolves the users
// of DynamicUser= units through nss-systemd (its postinst adds it to nsswitch.conf, as NixOS's
// systemd module does); without it D-Bus drops the connections of such a unit's processes.
const CHROOT_PACKAGES = ['nix-bin', 'openssh-server', 'nodejs', 'git', 'sudo', 'libnss-systemd'];
const CACHE_DIR = process.env.EXO_SANDBOX_CACHE ?? '/var/cache/exo-deploy/sandbox';

export const NIX_CONF = [
  'experimental-features = nix-command flakes',
  'substituters =',
  'flake-registry =',
  'build-users-group =',
  'sandbox = false',
  // the deploy user (below) may add unsigned paths, as a NixOS deploy user in
  // nix.settings.trusted-users may
  'trusted-users = root deploy',
  '',
].join('\n');

// A non-root deploy user with passwordless sudo, as a NixOS fleet reached with `sudo = true`
// has; its authorized_keys, like root's, is bind-mounted per sandbox.
const DEPLOY_USER = 'deploy';
const SUDOERS = `${DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL\n`;

// Nix's daemon, socket-activated (as upstream's units): the deploy user cannot write to the
// store, so its Nix commands (nix-store --serve of `nix copy`, nix-env) go through it, as on
// NixOS; root keeps using the store directly.
const NIX_DAEMON_SOCKET = [
  '[Unit]',
  'Description=Nix Daemon Socket',
  'Before=multi-user.target',
  '',
  '[Socket]',
  'ListenStream=/nix/var/nix/daemon-socket/socket',
  '',
  '[Install]',
  'WantedBy=sockets.target',
  '',
].join('\n');
const NIX_DAEMON_SERVICE = [
  '[Unit]',
  'Description=Nix Daemon',
  'Requires=nix-daemon.socket',
  '',
  '[Service]',
  'ExecStart=/usr/bin/nix-daemon --daemon',
  'KillMode=process',
  '',
].join('\n');

// NixOS's stage 2, as far as the sandbox hosts need it: at every boot, the system the boot
// loader starts (its default entry, which switch-to-configuration switch|boot writes) becomes
// /run/booted-system and is activated, its units started. Before a host's first NixOS
// system there is none, and the host runs Debian alone.
const BOOT_DEFAULT = '/boot/default-system';
const STAGE_2_SCRIPT = [
  '#!/bin/sh',
  'set -eu',
  "# as NixOS's stage 2, its own PATH: a unit's is only systemd's programs",
  'export PATH=/usr/bin:/bin:/usr/sbin:/sbin',
  `[ -e ${BOOT_DEFAULT} ] || exit 0`,
  `system=$(readlink -e ${BOOT_DEFAULT})`,
  'ln -sfn "$system" /run/booted-system',
  '# stage 2 runs no pre-switch checks: nothing runs yet to compare with',
  'NIXOS_NO_CHECK=1 exec "$system/bin/switch-to-configuration" test',
  '',
].join('\n');
const STAGE_2_UNIT = [
  '[Unit]',
  'Description=Activate the NixOS system this host booted',
  'After=local-fs.target nix-daemon.socket',
  'Before=multi-user.target',
  '',
  '[Service]',
  'Type=oneshot',
  'RemainAfterExit=yes',
  'ExecStart=/usr/local/sbin/nixos-stage-2',
  '',
  '[Install]',
  'WantedBy=multi-user.target',
  '',
].join('\n');

const SSHD_CONF = [
  '# exo-deploy sandbox: root logs in by key only (the key is bind-mounted per sandbox)',
  'PermitRootLogin prohibit-password',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'UseDNS no',
  '',
].join('\n');

function rootfsKey() {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      RECIPE_VERSION,
      SUITE,
      DEBOOTSTRAP_PACKAGES,
      CHROOT_PACKAGES,
      NIX_CONF,
      SSHD_CONF,
      SUDOERS,
      NIX_DAEMON_SOCKET,
      NIX_DAEMON_SERVICE,
      STAGE_2_SCRIPT,
      STAGE_2_UNIT,
    }),
  );
  return h.digest('hex').slice(0, 16);
}

function rootfsPath(cacheDir = CACHE_DIR) {
  return path.join(cacheDir, `rootfs-${rootfsKey()}`);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Unmount anything left mounted below `dir` (debootstrap mounts /proc and /sys in its target).
async function unmountBelow(dir) {
  const mounts = (await fs.readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m) => m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await $`umount -l ${m}`.nothrow();
}

async function removeTree(dir) {
  await unmountBelow(dir);
  await fs.rm(dir, { recursive: true, force: true });
}

async function acquireLock(lock, log) {
  for (let waited = 0; ; waited++) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'pid'), String(process.pid));
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    const pid = Number(await fs.readFile(path.join(lock, 'pid'), 'utf8').catch(() => '0'));
    if (pid && !alive(pid)) {
      log(`rootfs: removing stale build lock of PID ${pid}`);
      await fs.rm(lock, { recursive: true, force: true });
      continue;
    }
    if (waited % 30 === 0) log(`rootfs: waiting for PID ${pid || '?'} to finish building the base`);
    await sleep(1000);
  }
}

// What runs inside the chroot gets an environment of its own: this machine's TMPDIR (the
// tests set one) does not exist in there, and package scripts fail on it.
const CHROOT_ENV = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LC_ALL: 'C',
  DEBIAN_FRONTEND: 'noninteractive',
};

async function build(tmp, log) {
  log(`rootfs: debootstrap ${SUITE} minbase into ${tmp} (about 90 s, once per machine)`);
  await $({
    env: CHROOT_ENV,
  })`debootstrap --variant=minbase --include=${DEBOOTSTRAP_PACKAGES.join(',')} ${SUITE} ${tmp}`;
  // Keep package scripts from starting daemons inside the chroot (there is no systemd as
  // PID 1 here, so invoke-rc.d would fall back to the init scripts and start sshd).
  const policy = path.join(tmp, 'usr/sbin/policy-rc.d');
  await fs.writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    log(`rootfs: apt-get install ${CHROOT_PACKAGES.join(' ')}`);
    await $({
      env: CHROOT_ENV,
    })`chroot ${tmp} apt-get install -y --no-install-recommends ${CHROOT_PACKAGES}`;
    await $({ env: CHROOT_ENV })`chroot ${tmp} apt-get clean`;
  } finally {
    await fs.rm(policy, { force: true });
    await unmountBelow(tmp);
  }
  await fs.mkdir(path.join(tmp, 'etc/nix'), { recursive: true });
  await fs.writeFile(path.join(tmp, 'etc/nix/nix.conf'), NIX_CONF);
  await fs.writeFile(path.join(tmp, 'etc/ssh/sshd_config.d/exo-sandbox.conf'), SSHD_CONF);
  // root's authorized_keys: an empty placeholder; each sandbox bind-mounts its own key over it
  await fs.mkdir(path.join(tmp, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await fs.chmod(path.join(tmp, 'root/.ssh'), 0o700);
  await fs.writeFile(path.join(tmp, 'root/.ssh/authorized_keys'), '', { mode: 0o600 });
  // the deploy user: no password ('*', not '!': sshd refuses locked accounts), sudo without
  // one; its ~/.ssh and authorized_keys placeholder its own (sshd's StrictModes), as root's
  await $({
    env: CHROOT_ENV,
  })`chroot ${tmp} useradd --create-home --home-dir /home/${DEPLOY_USER} --shell /bin/bash ${DEPLOY_USER}`;
  await $({ env: CHROOT_ENV })`chroot ${tmp} usermod -p ${'*'} ${DEPLOY_USER}`;
  await $({
    env: CHROOT_ENV,
  })`chroot ${tmp} install -d -m 700 -o ${DEPLOY_USER} -g ${DEPLOY_USER} /home/${DEPLOY_USER}/.ssh`;
  await $({
    env: CHROOT_ENV,
  })`chroot ${tmp} install -m 600 -o ${DEPLOY_USER} -g ${DEPLOY_USER} /dev/null /home/${DEPLOY_USER}/.ssh/authorized_keys`;
  await fs.writeFile(path.join(tmp, 'etc/sudoers.d', DEPLOY_USER), SUDOERS, { mode: 0o440 });
  await fs.chmod(path.join(tmp, 'etc/sudoers.d', DEPLOY_USER), 0o440);
  await fs.writeFile(path.join(tmp, 'etc/systemd/system/nix-daemon.socket'), NIX_DAEMON_SOCKET);
  await fs.writeFile(path.join(tmp, 'etc/systemd/system/nix-daemon.service'), NIX_DAEMON_SERVICE);
  await fs.mkdirp(path.join(tmp, 'etc/systemd/system/sockets.target.wants'));
  await fs.symlink(
    '../nix-daemon.socket',
    path.join(tmp, 'etc/systemd/system/sockets.target.wants/nix-daemon.socket'),
  );
  await fs.writeFile(path.join(tmp, 'usr/local/sbin/nixos-stage-2'), STAGE_2_SCRIPT, {
    mode: 0o755,
  });
  await fs.writeFile(path.join(tmp, 'etc/systemd/system/nixos-stage-2.service'), STAGE_2_UNIT);
  await fs.mkdirp(path.join(tmp, 'etc/systemd/system/multi-user.target.wants'));
  await fs.symlink(
    '../nixos-stage-2.service',
    path.join(tmp, 'etc/systemd/system/multi-user.target.wants/nixos-stage-2.service'),
  );
  // A host's machine id comes from nspawn's --uuid (its own, the same at each of its boots);
  // its host name from nspawn's -M.
  await fs.writeFile(path.join(tmp, 'etc/machine-id'), '');
  await fs.rm(path.join(tmp, 'var/lib/dbus/machine-id'), { force: true });
  await fs.rm(path.join(tmp, 'etc/hostname'), { force: true });
  await fs.writeFile(path.join(tmp, 'etc/resolv.conf'), '');
  // Nix's folders for the system profile (nixos-rebuild sets /nix/var/nix/profiles/system)
  await fs.mkdir(path.join(tmp, 'nix/var/nix/profiles'), { recursive: true });
  // Quieter, faster boots in a container: nothing here needs these.
  for (const unit of [
    'systemd-timesyncd.service',
    'apt-daily.timer',
    'apt-daily-upgrade.timer',
    'e2scrub_all.timer',
    'fstrim.timer',
  ]) {
    await fs.symlink('/dev/null', path.join(tmp, 'etc/systemd/system', unit)).catch(() => {});
  }
  await fs.writeFile(
    path.join(tmp, '.exo-sandbox-rootfs'),
    `${JSON.stringify(
      {
        key: rootfsKey(),
        recipe: RECIPE_VERSION,
        suite: SUITE,
        packages: [...DEBOOTSTRAP_PACKAGES, ...CHROOT_PACKAGES],
        built: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
}

/**
 * Returns the path of the cached base root file system, building it first if needed.
 * @param {{cacheDir?: string, log?: (msg: string) => void}} [opts]
 * @returns {Promise<{path: string, cached: boolean, seconds: number}>}
 */
export async function ensureRootfs({ cacheDir = CACHE_DIR, log = (m) => console.error(m) } = {}) {
  const t0 = Date.now();
  const final = rootfsPath(cacheDir);
  const done = () => fs.pathExists(path.join(final, '.exo-sandbox-rootfs'));
  if (await done()) return { path: final, cached: true, seconds: (Date.now() - t0) / 1000 };
  await fs.mkdir(cacheDir, { recursive: true });
  const lock = `${final}.lock`;
  await acquireLock(lock, log);
  try {
    if (await done()) return { path: final, cached: true, seconds: (Date.now() - t0) / 1000 };
    // leftovers of interrupted builds (their builders are gone: we hold the lock)
    for (const name of await fs.readdir(cacheDir)) {
      if (name.startsWith(`${path.basename(final)}.building-`))
        await removeTree(path.join(cacheDir, name));
    }
    if (await fs.pathExists(final)) await removeTree(final); // incomplete (no marker)
    const tmp = `${final}.building-${process.pid}`;
    try {
      await build(tmp, log);
      await fs.rename(tmp, final);
    } catch (e) {
      await removeTree(tmp);
      throw e;
    }
    log(`rootfs: ready at ${final} in ${Math.round((Date.now() - t0) / 1000)} s`);
    return { path: final, cached: false, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}
