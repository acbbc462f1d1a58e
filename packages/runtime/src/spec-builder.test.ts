import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { availableCapabilities, defaultCapabilities, resolveCapabilities } from './capabilities.js';
import { RuntimeErrorCode } from './errors.js';
import { defaultSeccompProfile } from './seccomp-profile.js';
import { buildSpec, mergeEnv } from './spec-builder.js';
import { resolveUser } from './user.js';

let dir: string;
let rootfs: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-spec-'));
  rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  await writeFile(
    join(rootfs, 'etc/group'),
    'root:x:0:\ntty:x:5:\nuser:x:1000:\nstaff:x:50:user,other\naudio:x:63:user\nnogroup:x:65534:\n',
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('buildSpec', () => {
  it('applies docker defaults: command, env, hostname, mounts, paths, devices, caps, seccomp', async () => {
    const spec = await buildSpec({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], Env: ['FOO=1', 'PATH=/bin'] }, { rootfs, id: '0123456789abcdef' });
    expect(spec.process?.args).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(spec.process?.env).toEqual(['PATH=/bin', 'FOO=1', 'HOSTNAME=0123456789ab', 'HOME=/root']);
    expect(spec.hostname).toBe('0123456789ab');
    expect(spec.process?.user).toEqual({ uid: 0, gid: 0 });
    expect(spec.process?.cwd).toBe('/');
    expect(spec.mounts?.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
    expect(spec.mounts?.find((m) => m.destination === '/dev/shm')?.options).toContain('size=67108864');
    expect(spec.linux?.namespaces?.map((n) => n.type)).toEqual(['mount', 'network', 'uts', 'pid', 'ipc']);
    expect(spec.linux?.maskedPaths).toContain('/proc/kcore');
    expect(spec.linux?.readonlyPaths).toContain('/proc/sys');
    expect(spec.linux?.resources?.devices?.[0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux?.cgroupsPath).toBe('/berth/0123456789abcdef');
    expect(spec.process?.capabilities?.bounding).toHaveLength(14);
    expect(spec.process?.capabilities?.inheritable).toBeUndefined();
    expect(spec.linux?.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(spec.process?.noNewPrivileges).toBe(false);
    expect(spec.root).toEqual({ path: rootfs, readonly: false });
  });

  it('follows docker for entrypoint and cmd overrides', async () => {
    const image = { Entrypoint: ['/entry'], Cmd: ['default'] };
    expect((await buildSpec(image, { rootfs, id: 'a', cmd: ['x'] })).process?.args).toEqual(['/entry', 'x']);
    // A new entrypoint drops the image's Cmd.
    expect((await buildSpec(image, { rootfs, id: 'a', entrypoint: ['/other'] })).process?.args).toEqual(['/other']);
    expect((await buildSpec(image, { rootfs, id: 'a', entrypoint: [], cmd: ['sh'] })).process?.args).toEqual(['sh']);
    await expect(buildSpec({}, { rootfs, id: 'a' })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec));
  });

  it('maps run options onto the spec: tty, limits, mounts, sysctls, user namespace, shared namespaces', async () => {
    const spec = await buildSpec(
      { Cmd: ['sh'], WorkingDir: '/srv' },
      {
        rootfs,
        id: 'c1',
        tty: true,
        env: ['FOO=2'],
        memory: 64 << 20,
        memoryReservation: 32 << 20,
        nanoCpus: 1.5e9,
        cpuShares: 512,
        cpusetCpus: '0',
        pidsLimit: 50,
        readOnlyRootfs: true,
        mounts: [
          { type: 'bind', source: '/data', target: '/data', readOnly: true },
          { type: 'tmpfs', target: '/dev/shm', tmpfsSize: 1024 },
        ],
        sysctls: { 'net.ipv4.ip_forward': '1' },
        ulimits: [{ name: 'nofile', soft: 100, hard: 200 }],
        userNamespace: { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] },
        network: { path: '/run/netns/x' },
        pid: 'host',
        noNewPrivileges: true,
        oomScoreAdj: 500,
      },
    );
    expect(spec.process?.terminal).toBe(true);
    expect(spec.process?.env).toContain('TERM=xterm');
    expect(spec.process?.env).toContain('FOO=2');
    expect(spec.process?.cwd).toBe('/srv');
    expect(spec.root.readonly).toBe(true);
    expect(spec.linux?.resources?.memory).toEqual({ limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 });
    expect(spec.linux?.resources?.cpu).toEqual({ period: 100000, quota: 150000, shares: 512, cpus: '0' });
    expect(spec.linux?.resources?.pids).toEqual({ limit: 50 });
    expect(spec.mounts?.find((m) => m.destination === '/data')).toEqual({ destination: '/data', type: 'bind', source: '/data', options: ['rbind', 'rprivate', 'ro'] });
    expect(spec.mounts?.filter((m) => m.destination === '/dev/shm')).toHaveLength(1);
    expect(spec.mounts?.find((m) => m.destination === '/dev/shm')?.options).toContain('size=1024');
    expect(spec.linux?.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(spec.process?.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
    expect(spec.linux?.namespaces).toEqual([{ type: 'mount' }, { type: 'network', path: '/run/netns/x' }, { type: 'uts' }, { type: 'ipc' }, { type: 'user' }]);
    expect(spec.linux?.uidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
    expect(spec.process?.noNewPrivileges).toBe(true);
    expect(spec.process?.oomScoreAdj).toBe(500);
  });

  it('privileged: every capability, no seccomp, no masked paths, all devices allowed', async () => {
    const spec = await buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'p', privileged: true });
    // Every capability this process has (a sandbox may have taken some away).
    expect(spec.process?.capabilities?.bounding).toEqual(await availableCapabilities());
    expect(spec.process?.capabilities?.bounding?.length).toBeGreaterThan(30);
    expect(spec.linux?.seccomp).toBeUndefined();
    expect(spec.linux?.maskedPaths).toBeUndefined();
    expect(spec.linux?.resources?.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(spec.mounts?.find((m) => m.destination === '/sys')?.options).toContain('rw');
  });

  it('refuses what does not make sense, with the field named', async () => {
    await expect(buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'x', memorySwap: 10 })).rejects.toThrow(/memorySwap/);
    await expect(buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'x', memory: 100, memorySwap: 50 })).rejects.toThrow(/memorySwap/);
    await expect(buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'x', workdir: 'rel' })).rejects.toThrow(/workdir/);
    await expect(buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'x', capAdd: ['FLY'] })).rejects.toThrow(/unknown capability/);
    await expect(buildSpec({ Cmd: ['sh'] }, { rootfs, id: 'x', nanoCpus: 1e9, cpuQuota: 1000 })).rejects.toThrow(/nanoCpus/);
  });
});

describe('capabilities', () => {
  it('adds and drops with docker rules, ALL included', () => {
    expect(resolveCapabilities({})).toEqual(defaultCapabilities);
    expect(resolveCapabilities({ capDrop: ['mknod', 'CAP_NET_RAW'] })).not.toContain('CAP_MKNOD');
    expect(resolveCapabilities({ capAdd: ['sys_admin'] })).toContain('CAP_SYS_ADMIN');
    expect(resolveCapabilities({ capDrop: ['ALL'], capAdd: ['chown'] })).toEqual(['CAP_CHOWN']);
    const all = resolveCapabilities({ capAdd: ['ALL'], capDrop: ['SYS_ADMIN'] });
    expect(all).toHaveLength(40);
    expect(all).not.toContain('CAP_SYS_ADMIN');
  });
});

describe('resolveUser', () => {
  it('resolves names, ids and groups with docker rules', async () => {
    expect(await resolveUser(rootfs, '')).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
    expect(await resolveUser(rootfs, 'user')).toEqual({ uid: 1000, gid: 1000, additionalGids: [50, 63], home: '/home/user' });
    expect(await resolveUser(rootfs, '1000:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [], home: '/home/user' });
    // A numeric uid without a passwd entry is allowed, with gid 0.
    expect(await resolveUser(rootfs, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
    expect(await resolveUser(rootfs, '4242:4343', ['audio', '7'])).toEqual({ uid: 4242, gid: 4343, additionalGids: [63, 7], home: '/' });
  });

  it('refuses unknown names', async () => {
    await expect(resolveUser(rootfs, 'nosuch')).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.UserNotFound) && hasKind(e, 'InvalidArgument'));
    await expect(resolveUser(rootfs, 'user:nogroup2')).rejects.toThrow(/unable to find group nogroup2/);
  });

  it('resolves /etc/passwd symlinks inside the rootfs, never on the host', async () => {
    const other = join(dir, 'linked');
    await mkdir(join(other, 'etc'), { recursive: true });
    await mkdir(join(other, 'data'), { recursive: true });
    await writeFile(join(other, 'data/passwd'), 'app:x:77:77:app:/app:/bin/sh\n');
    // Absolute: would be the host's /data/passwd if followed naively.
    await symlink('/data/passwd', join(other, 'etc/passwd'));
    expect(await resolveUser(other, 'app')).toMatchObject({ uid: 77, gid: 77, home: '/app' });
  });
});

describe('seccomp profile', () => {
  it('keeps capability- and arch-gated rules as moby does', () => {
    const plain = defaultSeccompProfile(defaultCapabilities, { arch: 'x64', kernel: '6.1.0' });
    expect(plain.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const names = (p: typeof plain) => p.syscalls!.flatMap((r) => (r.action === 'SCMP_ACT_ALLOW' && !r.args ? r.names : []));
    expect(names(plain)).toContain('arch_prctl');
    expect(names(plain)).toContain('chroot');
    expect(names(plain)).not.toContain('mount');
    expect(names(plain)).not.toContain('kcmp');
    expect(plain.syscalls!.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    const admin = defaultSeccompProfile([...defaultCapabilities, 'CAP_SYS_ADMIN'], { arch: 'x64', kernel: '6.1.0' });
    expect(names(admin)).toContain('mount');
    expect(admin.syscalls!.find((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO')).toBeUndefined();
    const oldKernel = defaultSeccompProfile(defaultCapabilities, { arch: 'x64', kernel: '4.4.0' });
    expect(names(oldKernel)).not.toContain('process_vm_readv');
    expect(names(defaultSeccompProfile(defaultCapabilities, { arch: 'arm64' }))).not.toContain('arch_prctl');
  });

  it('mergeEnv overrides by key and keeps order', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4', 'A'])).toEqual(['A', 'B=3', 'C=4']);
  });
});
