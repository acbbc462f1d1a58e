import type { JsonMessage } from '@berth/engine';
import { humanSize } from './units.js';

/** docker's progress text: a 50-wide bar when the terminal is wider than 110, then `current/total`. */
export function progressText(detail: JsonMessage['progressDetail'], width: number): string {
  const current = detail?.current ?? 0;
  const total = detail?.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const percentage = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = width > 110 ? `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] ` : '';
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}

/**
 * Renders a stream of JSON messages as docker's CLI does (jsonmessage.DisplayJSONMessagesStream):
 * on a terminal each layer id keeps a line that is rewritten in place; otherwise progress-bar
 * updates are dropped and each status change is one plain line.
 */
export class JsonMessageDisplay {
  readonly #out: NodeJS.WritableStream;
  readonly #terminal: boolean;
  readonly #width: number;
  #ids = new Map<string, number>();

  constructor(out: NodeJS.WritableStream, options: { readonly terminal: boolean; readonly width?: number }) {
    this.#out = out;
    this.#terminal = options.terminal;
    this.#width = options.width ?? 80;
  }

  show(m: JsonMessage): void {
    const out = this.#out;
    let diff = 0;
    const tracked = m.id !== undefined && m.id !== '' && m.progressDetail !== undefined;
    if (tracked) {
      let line = this.#ids.get(m.id!);
      if (line === undefined) {
        line = this.#ids.size;
        this.#ids.set(m.id!, line);
        if (this.#terminal) out.write('\n');
      }
      diff = this.#ids.size - line;
      if (this.#terminal) out.write(`\x1b[${diff}A`);
    } else {
      // Output that is not progress ends the group of lines being updated.
      this.#ids = new Map();
    }
    this.#display(m);
    if (tracked && this.#terminal) out.write(`\x1b[${diff}B`);
  }

  #display(m: JsonMessage): void {
    const out = this.#out;
    const bar = progressText(m.progressDetail, this.#width);
    let endl = '';
    if (this.#terminal && !m.stream && m.progressDetail !== undefined) {
      out.write('\x1b[2K\r');
      endl = '\r';
    } else if (bar !== '') {
      return;
    }
    if (m.id) out.write(`${m.id}: `);
    if (m.progressDetail !== undefined && this.#terminal) out.write(`${m.status ?? ''} ${bar}${endl}`);
    else if (m.stream !== undefined) out.write(`${m.stream}${endl}`);
    else out.write(`${m.status ?? ''}${endl}\n`);
  }
}
