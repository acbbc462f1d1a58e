import { describe, expect, it } from 'vitest';
import type { ContainerSummary } from '@berth/engine';
import { containerView, displayPorts, ellipsis } from './container-view.js';
import { GoTemplate, TemplateError } from './go-template.js';
import { JsonMessageDisplay, progressText } from './json-message-display.js';
import { formatList } from './list-format.js';
import { alignColumns } from './tab-writer.js';
import { bytesSize, humanDuration, humanSize, parseBytes, parseGoDuration, parseTimestamp } from './units.js';

const run = (t: string, data: unknown) => new GoTemplate(t).execute(data);

describe('Go templates', () => {
  const inspect = {
    Name: '/web',
    State: { Status: 'running', Running: true, ExitCode: 0 },
    Config: { Env: ['A=1', 'B=2'], Labels: { 'com.x': 'y', a: 'b' }, Cmd: ['sh', '-c', 'echo hi'] },
    Mounts: [],
    NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' } } },
  };

  it('reads fields, nested fields and maps, and prints Go’s %v', () => {
    expect(run('{{.Name}} {{.State.Status}} {{.State.Running}}', inspect)).toBe('/web running true');
    expect(run('{{.Config.Labels}}', inspect)).toBe('map[a:b com.x:y]');
    expect(run('{{.Config.Cmd}}', inspect)).toBe('[sh -c echo hi]');
    expect(run('{{.State}}', inspect)).toBe('{running true 0}');
    expect(run('{{.Missing}}', inspect)).toBe('<no value>');
  });

  it('has docker’s functions: json, join, index, upper, split, printf, len', () => {
    expect(run('{{json .Config.Cmd}}', inspect)).toBe('["sh","-c","echo hi"]');
    expect(run('{{join .Config.Env ","}}', inspect)).toBe('A=1,B=2');
    expect(run('{{index .Config.Labels "com.x"}}', inspect)).toBe('y');
    expect(run('{{.Name | upper}}', inspect)).toBe('/WEB');
    expect(run('{{index (split "a:b:c" ":") 1}}', inspect)).toBe('b');
    expect(run('{{printf "%-6s|%3d" .State.Status .State.ExitCode}}', inspect)).toBe('running|  0');
    expect(run('{{len .Config.Env}}', inspect)).toBe('2');
    expect(run('{{json .}}', { a: '<&>' })).toBe('{"a":"<&>"}');
  });

  it('runs range over lists and maps with variables, if/else if/else and with', () => {
    expect(run('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', inspect)).toBe('a=b;com.x=y;');
    expect(run('{{range .Config.Env}}[{{.}}]{{end}}', inspect)).toBe('[A=1][B=2]');
    expect(run('{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{$e.IPAddress}}{{end}}', inspect)).toBe('bridge 172.17.0.2');
    expect(run('{{range .Mounts}}x{{else}}none{{end}}', inspect)).toBe('none');
    expect(run('{{if eq .State.Status "exited"}}E{{else if .State.Running}}R{{else}}?{{end}}', inspect)).toBe('R');
    expect(run('{{with .State}}{{.Status}}{{end}}', inspect)).toBe('running');
    expect(run('{{$x := .Name}}{{$x}}', inspect)).toBe('/web');
    expect(run('{{if and .State.Running (not .State.ExitCode)}}ok{{end}}', inspect)).toBe('ok');
  });

  it('trims space around {{- and -}} and skips comments', () => {
    expect(run('a  {{- .Name -}}  b{{/* note */}}', inspect)).toBe('a/webb');
  });

  it('fails with Go-like messages on bad templates', () => {
    expect(() => new GoTemplate('{{.Name')).toThrow(TemplateError);
    expect(() => new GoTemplate('{{if .A}}x')).toThrow(/unexpected EOF/);
    expect(() => run('{{nope .A}}', {})).toThrow(/function "nope" not defined/);
    expect(() => new GoTemplate('{{end}}')).toThrow(/unexpected \{\{end\}\}/);
  });
});

describe('units', () => {
  it('words durations as go-units does', () => {
    expect(humanDuration(400)).toBe('Less than a second');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(59_000)).toBe('59 seconds');
    expect(humanDuration(90_000)).toBe('About a minute');
    expect(humanDuration(45 * 60_000)).toBe('45 minutes');
    expect(humanDuration(60 * 60_000)).toBe('About an hour');
    expect(humanDuration(5 * 3600_000)).toBe('5 hours');
    expect(humanDuration(3 * 86400_000)).toBe('3 days');
    expect(humanDuration(20 * 86400_000)).toBe('2 weeks');
    expect(humanDuration(90 * 86400_000)).toBe('3 months');
    expect(humanDuration(800 * 86400_000)).toBe('2 years');
  });

  it('prints sizes with 3 (decimal) and 4 (binary) significant digits', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(1_981_234)).toBe('1.98MB');
    expect(humanSize(4_260_000)).toBe('4.26MB');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(12_300)).toBe('12.3kB');
    expect(bytesSize(1536 * 1024)).toBe('1.5MiB');
    expect(bytesSize(8 * 1024 ** 3)).toBe('8GiB');
  });

  it('parses sizes, durations and times as docker’s flags do', () => {
    expect(parseBytes('512m')).toBe(512 * 1024 ** 2);
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(parseBytes('1.5GB')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('100')).toBe(100);
    expect(parseBytes('lots')).toBeUndefined();
    expect(parseGoDuration('1h30m')).toBe(5400e9);
    expect(parseGoDuration('500ms')).toBe(500e6);
    expect(parseGoDuration('5')).toBeUndefined();
    expect(parseTimestamp('10m', 1_000_000)).toBe(400);
    expect(parseTimestamp('2024-01-01T00:00:00Z')).toBe(1704067200);
    expect(parseTimestamp('1700000000.5')).toBe(1700000000.5);
  });
});

describe('tables', () => {
  it('aligns tab-separated cells as Go’s tabwriter with docker’s settings', () => {
    expect(alignColumns('A\tBB\tC\nxxxxxxxxxxxx\ty\tz')).toBe('A              BB        C\nxxxxxxxxxxxx   y         z');
  });

  it('renders ps rows like docker: truncated ID, quoted command with ellipsis, ports folded', () => {
    const c: ContainerSummary = {
      Id: 'f'.repeat(64),
      Names: ['/web'],
      Image: 'busybox',
      ImageID: 'sha256:' + 'a'.repeat(64),
      Command: 'sh -c while true; do sleep 1; done',
      Created: 1000,
      Ports: [
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '0.0.0.0', PrivatePort: 81, PublicPort: 8081, Type: 'tcp' },
        { PrivatePort: 53, Type: 'udp' },
      ],
      Labels: { a: 'b' },
      State: 'running',
      Status: 'Up 2 minutes',
      HostConfig: { NetworkMode: 'default' },
      NetworkSettings: { Networks: { bridge: {} } },
      Mounts: [],
    };
    const text = formatList([c], containerView({ truncate: true, now: 1000_000 + 1000 * 180 }), undefined, 'table {{.ID}}\t{{.Command}}\t{{.RunningFor}}\t{{.Ports}}\t{{.Names}}');
    expect(text.split('\n')[0]).toBe('CONTAINER ID   COMMAND                  CREATED         PORTS                                                NAMES');
    expect(text.split('\n')[1]).toBe('ffffffffffff   "sh -c while true; d…"   3 minutes ago   53/udp, 0.0.0.0:8080->80/tcp, 0.0.0.0:8081->81/tcp   web');
    expect(formatList([c], containerView({ truncate: false }), '{{.Label "a"}}', '')).toBe('b\n');
    expect(() => formatList([c], containerView({ truncate: true }), '{{.Nope}}', '')).toThrow(/can't evaluate field Nope/);
    expect(displayPorts([{ IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }])).toBe('[::]:8080->80/tcp');
    expect(
      displayPorts([
        { IP: '0.0.0.0', PrivatePort: 8080, PublicPort: 8080, Type: 'tcp' },
        { IP: '0.0.0.0', PrivatePort: 8081, PublicPort: 8081, Type: 'tcp' },
        { IP: '::', PrivatePort: 8080, PublicPort: 8080, Type: 'tcp' },
      ]),
    ).toBe('0.0.0.0:8080-8081->8080-8081/tcp, :::8080->8080/tcp');
    expect(ellipsis('abcdef', 4)).toBe('abc…');
  });
});

describe('progress display', () => {
  function capture(terminal: boolean, width = 120) {
    let text = '';
    const out = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
    return { display: new JsonMessageDisplay(out, { terminal, width }), text: () => text };
  }

  it('prints status lines and drops byte progress when not on a terminal', () => {
    const c = capture(false);
    c.display.show({ status: 'Pulling from library/busybox', id: 'latest' });
    c.display.show({ status: 'Pulling fs layer', id: 'abc', progressDetail: {} });
    c.display.show({ status: 'Downloading', id: 'abc', progressDetail: { current: 10, total: 100 } });
    c.display.show({ status: 'Pull complete', id: 'abc', progressDetail: {} });
    c.display.show({ status: 'Digest: sha256:x' });
    expect(c.text()).toBe('latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:x\n');
  });

  it('rewrites each layer’s line in place on a terminal, with docker’s bar', () => {
    expect(progressText({ current: 50, total: 100 }, 120)).toBe(`[${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B`);
    expect(progressText({ current: 50, total: 100 }, 80)).toBe('     50B/100B');
    const c = capture(true);
    c.display.show({ status: 'Downloading', id: 'abc', progressDetail: { current: 1, total: 2 } });
    expect(c.text()).toBe('\n\x1b[1A\x1b[2K\rabc: Downloading [' + '='.repeat(25) + '>' + ' '.repeat(25) + ']       1B/2B\r\x1b[1B');
  });
});
