import { describe, expect, it } from 'vitest';
import { distroFor, parseOsRelease } from './os-release.js';

const all = new Set(['apt-get', 'dnf', 'yum', 'apk', 'zypper']);

describe('OS detection', () => {
  it('parses os-release with quotes and escapes', () => {
    const os = parseOsRelease('NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS \\"Linux\\" 7"\n# comment\n');
    expect(os).toEqual({ id: 'centos', idLike: ['rhel', 'fedora'], versionId: '7', prettyName: 'CentOS "Linux" 7' });
  });

  it.each([
    ['ID=debian\nVERSION_ID="12"', all, 'debian', 'apt'],
    ['ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"', all, 'debian', 'apt'],
    ['ID=linuxmint\nID_LIKE="ubuntu debian"', all, 'debian', 'apt'],
    ['ID=fedora\nVERSION_ID=40', all, 'redhat', 'dnf'],
    ['ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"', new Set(['yum']), 'redhat', 'yum'],
    ['ID="rocky"\nID_LIKE="rhel centos fedora"', all, 'redhat', 'dnf'],
    ['ID="amzn"\nID_LIKE="centos rhel fedora"', new Set(['dnf']), 'redhat', 'dnf'],
    ['ID=alpine\nVERSION_ID=3.20.0', all, 'alpine', 'apk'],
    ['ID="opensuse-leap"\nID_LIKE="suse opensuse"', all, 'suse', 'zypper'],
  ])('%s is %s with %s', (text, commands, family, manager) => {
    const distro = distroFor(parseOsRelease(text), commands);
    expect(distro.family).toBe(family);
    expect(distro.packageManager).toBe(manager);
    expect(distro.engineDependencies).toEqual(expect.arrayContaining(['iptables', 'tar', 'ca-certificates']));
  });

  it('refuses an unknown OS, or a known one without its package manager', () => {
    expect(() => distroFor(parseOsRelease('ID=plan9\nPRETTY_NAME="Plan 9"'), all)).toThrow(/Plan 9 \(ID=plan9\) is not supported/);
    expect(() => distroFor(parseOsRelease('ID=fedora'), new Set(['apt-get']))).toThrow(/has none of dnf, yum/);
  });
});
