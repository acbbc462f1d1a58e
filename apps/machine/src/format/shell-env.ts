import { ErrorKind } from '@berth/errors';
import { MachineError } from '@berth/machine';

/** The shells `machine env` writes for (docker-machine's set, plus sh). */
export const Shells = ['bash', 'zsh', 'sh', 'fish', 'powershell', 'cmd', 'tcsh', 'emacs'] as const;
export type Shell = (typeof Shells)[number];

/** One variable to set (a value) or unset (undefined). */
export interface EnvVar {
  readonly name: string;
  readonly value: string | undefined;
}

/**
 * The shell of the user: `--shell`, else the basename of $SHELL on Unix; on Windows PowerShell
 * when PSModulePath is set (it is inside PowerShell), otherwise cmd.
 */
export function detectShell(env: Readonly<Record<string, string | undefined>>, platform: NodeJS.Platform): Shell {
  if (platform === 'win32') return env.PSModulePath ? 'powershell' : 'cmd';
  const shell = env.SHELL?.split('/').pop();
  if (!shell) {
    throw new MachineError('cannot tell your shell: $SHELL is not set; pass --shell bash|zsh|fish|powershell|cmd|tcsh|emacs', {
      code: 'ERR_SHELL_UNKNOWN',
      kind: ErrorKind.InvalidArgument,
    });
  }
  return (Shells as readonly string[]).includes(shell) ? (shell as Shell) : 'sh';
}

/** Validates a `--shell` value. */
export function parseShell(value: string): Shell {
  if ((Shells as readonly string[]).includes(value)) return value as Shell;
  throw new MachineError(`unknown shell ${JSON.stringify(value)} (want ${Shells.join(', ')})`, { code: 'ERR_SHELL_UNKNOWN', kind: ErrorKind.InvalidArgument });
}

function dq(value: string): string {
  return `"${value.replace(/["\\$`]/g, (c) => `\\${c}`)}"`;
}

function line(shell: Shell, v: EnvVar): string {
  const { name, value } = v;
  switch (shell) {
    case 'fish':
      return value === undefined ? `set -e ${name};` : `set -gx ${name} ${dq(value)};`;
    case 'powershell':
      return value === undefined ? `Remove-Item Env:\\\\${name}` : `$Env:${name} = "${value.replace(/[`"$]/g, (c) => `\`${c}`)}"`;
    case 'cmd':
      return value === undefined ? `SET ${name}=` : `SET ${name}=${value}`;
    case 'tcsh':
      return value === undefined ? `unsetenv ${name};` : `setenv ${name} ${dq(value)};`;
    case 'emacs':
      return value === undefined ? `(setenv "${name}" nil)` : `(setenv "${name}" ${JSON.stringify(value)})`;
    default:
      return value === undefined ? `unset ${name}` : `export ${name}=${dq(value)}`;
  }
}

function quoteArg(arg: string): string {
  return /[\s\\"']/.test(arg) ? `"${arg.replace(/"/g, '\\"')}"` : arg;
}

/** The hint line: how to apply the output in `shell`, repeating the command that made it. */
function hint(shell: Shell, argv: readonly string[]): string {
  const command = argv.map(quoteArg).join(' ');
  switch (shell) {
    case 'fish':
      return `# eval (${command})`;
    case 'powershell':
      return `# & ${command} | Invoke-Expression`;
    case 'cmd':
      return `REM @FOR /f "tokens=*" %i IN ('${command}') DO @%i`;
    case 'tcsh':
      return `: eval \`${command}\``;
    case 'emacs':
      return `;; (with-temp-buffer (shell-command "${command}" (current-buffer)) (eval-buffer))`;
    default:
      return `# eval $(${command})`;
  }
}

/** The `env` output: one line per variable, then how to apply it (as comments the shell ignores). */
export function renderEnv(shell: Shell, vars: readonly EnvVar[], argv: readonly string[]): string {
  const comment = shell === 'cmd' ? 'REM' : shell === 'tcsh' ? ':' : shell === 'emacs' ? ';;' : '#';
  return [...vars.map((v) => line(shell, v)), `${comment} Run this command to configure your shell: `, hint(shell, argv), ''].join('\n');
}
