import type { RigHost } from '../host-rig.js';

/**
 * Does on a rig host what a cloud's first boot does with the SSH key a driver handed over
 * (cloud-init from EC2's key pair, GCE's `ssh-keys` metadata, Azure's osProfile, the NoCloud
 * seed): makes the user when missing and authorizes the key, so the driver's own key and user
 * log in.
 */
export async function authorizeGuestKey(host: RigHost, user: string, publicKey: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new Error(`not a user name: ${user}`);
  const key = publicKey.trim().replace(/'/g, '');
  await host.check(
    [
      'set -e',
      // A group of the name may exist already (docker's); then the user joins it.
      `if getent group ${user} >/dev/null; then group="-g ${user}"; else group="-U"; fi`,
      // A password of `*` (none valid) rather than useradd's `!`: sshd refuses keys of locked accounts.
      `id -u ${user} >/dev/null 2>&1 || useradd -m -s /bin/sh -p '*' $group ${user}`,
      `home=$(getent passwd ${user} | cut -d: -f6)`,
      'mkdir -p "$home/.ssh"',
      `printf '%s\\n' '${key}' >> "$home/.ssh/authorized_keys"`,
      `chown -R ${user} "$home/.ssh"`,
      'chmod 700 "$home/.ssh" && chmod 600 "$home/.ssh/authorized_keys"',
    ].join('\n'),
  );
}
