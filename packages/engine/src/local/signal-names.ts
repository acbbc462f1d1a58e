import { invalidParameter } from './docker-errors.js';

/** docker's signal names and numbers (x86_64). */
const signalNumbers: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13,
  ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25,
  VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** A signal as docker accepts it (`SIGTERM`, `term`, `15`, `RTMIN+3`) as its number. */
export function parseSignal(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const n = Number(trimmed);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = trimmed.toUpperCase().replace(/^SIG/, '');
    if (name in signalNumbers) return signalNumbers[name]!;
    const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(name);
    if (rt) {
      const n = (rt[1] === 'IN' ? 34 : 64) + Number(rt[2] ?? 0);
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw invalidParameter(`Invalid signal: ${text}`);
}
