import { randomBytes } from 'node:crypto';
import { ErrorKind } from '@berth/errors';
import { ProvisionError } from './errors.js';
import type { EngineOptions } from './host-store.js';
import { shellQuote } from './package-manager.js';

/** How the engine is kept running on a host. */
export const InitSystem = {
  Systemd: 'systemd',
  OpenRc: 'openrc',
  /** No service manager (a container, a minimal init): a supervisor loop started at boot from /etc/rc.local. */
  Supervised: 'supervised',
} as const;
export type InitSystem = (typeof InitSystem)[keyof typeof InitSystem];

/** Where provisioning puts things on a host. Everything it installs is one of these. */
export const EnginePaths = {
  prefix: '/opt/berth',
  binary: '/opt/berth/bin/engine',
  link: '/usr/local/bin/engine',
  configDir: '/etc/berth',
  envFile: '/etc/berth/engine.env',
  caCert: '/etc/berth/ca.pem',
  serverCert: '/etc/berth/server.pem',
  serverKey: '/etc/berth/server-key.pem',
  log: '/var/log/berth-engine.log',
  systemdUnit: '/etc/systemd/system/berth-engine.service',
  openrcScript: '/etc/init.d/berth-engine',
  // Outside the prefix, which a new bundle replaces whole.
  supervisor: '/usr/local/libexec/berth-engine-supervise',
  rcLocal: '/etc/rc.local',
  pidFile: '/run/berth-engine.pid',
  supervisorPidFile: '/run/berth-engine-supervise.pid',
  restartsFile: '/run/berth-engine.restarts',
} as const;

/** The default engine port, docker's TLS port. */
export const defaultEnginePort = 2376;

function invalid(message: string): ProvisionError {
  return new ProvisionError(message, { code: 'ERR_PROVISION_ENGINE_OPTION', kind: ErrorKind.InvalidArgument });
}

/** The `engine serve` arguments for a host: TLS on `port`, plus labels, registries and engine opts. */
export function engineServeArgs(engine: EngineOptions, options: { readonly port: number; readonly provider: string }): string[] {
  // The unix socket too, as docker-machine's dockerd gets both: `engine` on the host uses it.
  const args = [
    'serve',
    '--host',
    `tcp://0.0.0.0:${options.port}`,
    '--host',
    'unix:///run/berth/berth.sock',
    '--tlsverify',
    '--tlscacert',
    EnginePaths.caCert,
    '--tlscert',
    EnginePaths.serverCert,
    '--tlskey',
    EnginePaths.serverKey,
  ];
  for (const label of [`provider=${options.provider}`, ...engine.labels.filter((l) => !l.startsWith('provider='))]) {
    if (!/^[^=\s]+=/.test(label)) throw invalid(`engine label ${JSON.stringify(label)} is not key=value`);
    args.push('--label', label);
  }
  for (const registry of engine.insecureRegistries) args.push('--insecure-registry', registry);
  for (const mirror of engine.registryMirrors) args.push('--registry-mirror', mirror);
  for (const opt of engine.opts) {
    const name = opt.split('=')[0]!;
    if (!/^[a-z0-9][a-z0-9-]*$/i.test(name)) throw invalid(`engine opt ${JSON.stringify(opt)} is not name or name=value`);
    args.push(`--${opt}`);
  }
  return args;
}

/** The engine's environment file: `K="v"` lines that both systemd and a POSIX shell read. */
export function engineEnvFile(env: readonly string[]): string {
  const lines = ['# Written by berth machine provisioning (--engine-env).'];
  for (const entry of env) {
    const at = entry.indexOf('=');
    const key = at < 0 ? entry : entry.slice(0, at);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || at < 0) throw invalid(`engine env ${JSON.stringify(entry)} is not NAME=value`);
    const value = entry.slice(at + 1).replace(/[\\"`$]/g, (c) => `\\${c}`);
    lines.push(`${key}="${value}"`);
  }
  return lines.join('\n') + '\n';
}

// systemd's command-line quoting: double quotes with C escapes, `%` and `$` doubled.
function systemdQuote(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[\w@+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The systemd unit. Containers outlive the engine (KillMode=process), as with containerd. */
export function systemdUnit(args: readonly string[]): string {
  return `[Unit]
Description=Berth container engine
Documentation=https://github.com/berth/berth
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=-${EnginePaths.envFile}
ExecStart=${[EnginePaths.binary, ...args].map(systemdQuote).join(' ')}
Restart=on-failure
RestartSec=2
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TasksMax=infinity

[Install]
WantedBy=multi-user.target
`;
}

/** The OpenRC service script, supervised by supervise-daemon so that a crashed engine restarts. */
export function openrcScript(args: readonly string[]): string {
  return `#!/sbin/openrc-run
description="Berth container engine"
supervisor=supervise-daemon
command=${EnginePaths.binary}
command_args=${shellQuote(args.map(shellQuote).join(' '))}
pidfile=${EnginePaths.pidFile}
output_log=${EnginePaths.log}
error_log=${EnginePaths.log}
respawn_delay=2

depend() {
	need net
	after firewall
}

start_pre() {
	set -a
	[ -f ${EnginePaths.envFile} ] && . ${EnginePaths.envFile}
	set +a
	return 0
}
`;
}

/**
 * The supervisor loop for hosts without a service manager: runs the engine, restarts it when it
 * dies (with a growing pause), and on TERM stops only the engine, leaving containers running.
 */
export function supervisorScript(args: readonly string[]): string {
  return `#!/bin/sh
# Keeps the Berth engine running on a host without systemd or OpenRC (written by berth machine).
echo $$ > ${EnginePaths.supervisorPidFile}
echo 0 > ${EnginePaths.restartsFile}
child=
stop() {
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
	rm -f ${EnginePaths.pidFile} ${EnginePaths.supervisorPidFile} ${EnginePaths.restartsFile}
	exit 0
}
trap stop TERM INT
pause=1
while :; do
	set -a
	[ -f ${EnginePaths.envFile} ] && . ${EnginePaths.envFile}
	set +a
	started=$(date +%s)
	${shellQuote(EnginePaths.binary)} ${args.map(shellQuote).join(' ')} &
	child=$!
	echo "$child" > ${EnginePaths.pidFile}
	wait "$child"
	echo "berth-engine: engine exited with status $?, restarting in $pause s" >&2
	echo $(( $(cat ${EnginePaths.restartsFile} 2>/dev/null || echo 0) + 1 )) > ${EnginePaths.restartsFile}
	if [ $(( $(date +%s) - started )) -gt 30 ]; then pause=1; elif [ "$pause" -lt 30 ]; then pause=$(( pause * 2 )); fi
	sleep "$pause"
done
`;
}

const rcBegin = '# berth-engine begin';
const rcEnd = '# berth-engine end';
const supervisorStart = `setsid ${EnginePaths.supervisor} </dev/null >>${EnginePaths.log} 2>&1 &`;

/** /etc/rc.local with the line that starts the supervisor at boot (added once, before a final `exit 0`). */
export function rcLocalWithEngine(current: string | undefined): string {
  const base = rcLocalWithoutEngine(current ?? '') || '#!/bin/sh\n';
  const block = `${rcBegin}\n[ -x ${EnginePaths.supervisor} ] && ${supervisorStart}\n${rcEnd}\n`;
  const lines = base.endsWith('\n') ? base : `${base}\n`;
  const exitAt = lines.search(/^exit 0\s*$/m);
  return exitAt >= 0 ? `${lines.slice(0, exitAt)}${block}${lines.slice(exitAt)}` : `${lines}${block}`;
}

/** /etc/rc.local without Berth's block. */
export function rcLocalWithoutEngine(current: string): string {
  return current.replace(new RegExp(`${rcBegin}\\n[\\s\\S]*?${rcEnd}\\n?`, 'g'), '');
}

// Takes Berth's block out of rc.local, and the file itself when only the block made it exist.
function rcLocalUninstall(rcLocal: string | undefined): string {
  if (rcLocal === undefined) return ':';
  const rest = rcLocalWithoutEngine(rcLocal);
  if (rest.trim() === '' || rest.trim() === '#!/bin/sh') return `rm -f ${EnginePaths.rcLocal}`;
  return writeFileScript(EnginePaths.rcLocal, rest, '755');
}

/** Writes `content` to `path` with a heredoc whose delimiter cannot occur in it. */
export function writeFileScript(path: string, content: string, mode: string): string {
  let tag = `BERTH_${randomBytes(6).toString('hex')}`;
  while (content.includes(tag)) tag = `BERTH_${randomBytes(6).toString('hex')}`;
  const body = content.endsWith('\n') ? content : `${content}\n`;
  return `mkdir -p "$(dirname ${shellQuote(path)})" && cat > ${shellQuote(path)}.tmp <<'${tag}'\n${body}${tag}\nchmod ${mode} ${shellQuote(path)}.tmp && mv -f ${shellQuote(path)}.tmp ${shellQuote(path)}`;
}

/** The shell scripts that install, start, stop and remove the engine service under `init`. */
export interface ServiceScripts {
  /** Writes the service definition (not the env file) and enables it at boot. */
  readonly install: string;
  /** (Re)starts the engine so that it picks up new binaries, certificates and options. */
  readonly restart: string;
  readonly stop: string;
  /** Stops the engine, disables the service and deletes its definition. */
  readonly uninstall: string;
  /** Prints how many times the service restarted the engine since it was (re)started. */
  readonly restarts: string;
}

/** The service scripts for `init`, for an engine started with `args`. */
export function serviceScripts(init: InitSystem, args: readonly string[], rcLocal: string | undefined): ServiceScripts {
  switch (init) {
    case InitSystem.Systemd:
      return {
        install: `${writeFileScript(EnginePaths.systemdUnit, systemdUnit(args), '644')} && systemctl daemon-reload && systemctl enable -q berth-engine`,
        restart: 'systemctl restart berth-engine',
        stop: 'systemctl stop berth-engine',
        uninstall: `systemctl disable -q --now berth-engine 2>/dev/null; rm -f ${EnginePaths.systemdUnit} && systemctl daemon-reload`,
        restarts: 'systemctl show -p NRestarts --value berth-engine',
      };
    case InitSystem.OpenRc:
      return {
        install: `${writeFileScript(EnginePaths.openrcScript, openrcScript(args), '755')} && rc-update -q add berth-engine default`,
        restart: 'rc-service -q berth-engine restart',
        stop: 'rc-service -q berth-engine stop',
        uninstall: `rc-service -q berth-engine stop 2>/dev/null; rc-update -q del berth-engine default 2>/dev/null; rm -f ${EnginePaths.openrcScript}`,
        // supervise-daemon logs each respawn; a crashed service is as bad as many restarts.
        restarts: 'if rc-service -q berth-engine status >/dev/null 2>&1; then echo 0; else echo 99; fi',
      };
    case InitSystem.Supervised: {
      const stop = [
        `if [ -s ${EnginePaths.supervisorPidFile} ]; then`,
        `  pid=$(cat ${EnginePaths.supervisorPidFile}); kill -TERM "$pid" 2>/dev/null`,
        '  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
        'fi',
        `rm -f ${EnginePaths.supervisorPidFile}`,
      ].join('\n');
      return {
        install: `${writeFileScript(EnginePaths.supervisor, supervisorScript(args), '755')} && ${writeFileScript(EnginePaths.rcLocal, rcLocalWithEngine(rcLocal), '755')}`,
        restart: `${stop}\n${supervisorStart}`,
        stop,
        uninstall: `${stop}\n${rcLocalUninstall(rcLocal)}\nrm -f ${EnginePaths.supervisor}`,
        restarts: `cat ${EnginePaths.restartsFile} 2>/dev/null || echo 0`,
      };
    }
  }
}
