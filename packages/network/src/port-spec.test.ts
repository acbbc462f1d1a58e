import { describe, expect, it } from 'vitest';
import { exposedPortSpecs, formatPortMapping, parsePublish } from './port-spec.js';

describe('parsePublish', () => {
  it('reads the docker forms', () => {
    expect(parsePublish('80')).toEqual([{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0' }]);
    expect(parsePublish('8080:80')).toEqual([{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPortStart: 8080, hostPortEnd: 8080 }]);
    expect(parsePublish('127.0.0.1:8080:80/udp')).toEqual([
      { protocol: 'udp', containerPort: 80, hostIp: '127.0.0.1', hostPortStart: 8080, hostPortEnd: 8080 },
    ]);
    expect(parsePublish('127.0.0.1::53/UDP')).toEqual([{ protocol: 'udp', containerPort: 53, hostIp: '127.0.0.1' }]);
    expect(parsePublish('0:80')).toEqual([{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0' }]);
  });

  it('pairs equal ranges and picks from a host range for one container port', () => {
    expect(parsePublish('127.0.0.1:8080-8081:80-81/udp')).toEqual([
      { protocol: 'udp', containerPort: 80, hostIp: '127.0.0.1', hostPortStart: 8080, hostPortEnd: 8080 },
      { protocol: 'udp', containerPort: 81, hostIp: '127.0.0.1', hostPortStart: 8081, hostPortEnd: 8081 },
    ]);
    expect(parsePublish('8000-8010:80')).toEqual([{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPortStart: 8000, hostPortEnd: 8010 }]);
    expect(parsePublish('9000-9001')).toHaveLength(2);
  });

  it('rejects what docker rejects, naming the problem', () => {
    expect(() => parsePublish('8080-8082:80-81')).toThrow(/differ in length/);
    expect(() => parsePublish('70000:80')).toThrow(/outside 1-65535/);
    expect(() => parsePublish('8080:0')).toThrow(/outside 1-65535/);
    expect(() => parsePublish('8081-8080:80')).toThrow(/ends before it starts/);
    expect(() => parsePublish('1.2.3:8080:80')).toThrow(/not an IPv4 address/);
    expect(() => parsePublish('8080:80/icmp')).toThrow(/unknown protocol/);
    expect(() => parsePublish('a:b:c:d')).toThrow(/too many colons/);
    expect(() => parsePublish('8080:')).toThrow(/no container port/);
    expect(() => parsePublish('8080:80/sctp')).toThrow(expect.objectContaining({ kind: 'NotImplemented' }));
    expect(() => parsePublish('[::1]:8080:80')).toThrow(expect.objectContaining({ code: 'ERR_NETWORK_UNSUPPORTED' }));
    expect(() => parsePublish('x')).toThrow(expect.objectContaining({ kind: 'InvalidArgument', code: 'ERR_INVALID_PORT_SPEC' }));
  });
});

describe('exposedPortSpecs and formatPortMapping', () => {
  it('turn EXPOSEd ports into free-port specs and print docker port lines', () => {
    expect(exposedPortSpecs(['80/tcp', '53/udp', '7000-7001'])).toEqual([
      { protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0' },
      { protocol: 'udp', containerPort: 53, hostIp: '0.0.0.0' },
      { protocol: 'tcp', containerPort: 7000, hostIp: '0.0.0.0' },
      { protocol: 'tcp', containerPort: 7001, hostIp: '0.0.0.0' },
    ]);
    expect(formatPortMapping({ protocol: 'udp', containerPort: 53, hostIp: '0.0.0.0', hostPort: 32768 })).toBe('53/udp -> 0.0.0.0:32768');
  });
});
