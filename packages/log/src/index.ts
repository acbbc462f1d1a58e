/** Structured fields attached to a log record (`component`, `containerId`, `imageRef`, ...). */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * What packages log through. Packages never call `console`; they take a Logger in their
 * options (default `noopLogger`) and the apps choose the sink.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every record. */
  child(fields: LogFields): Logger;
}

export const LogLevel = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LogLevel;

/** A logger that drops everything. */
export const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return noopLogger;
  },
};

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * A time as Date#toISOString writes it (UTC, milliseconds, `Z`), for years 0 to 9999. Built from
 * the UTC fields because toISOString first makes V8 load the host's time zone, a quarter of a
 * millisecond at the first call of a short command.
 */
export function utcTimestamp(ms: number = Date.now()): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** Options of the sinks: where lines go, and the lowest level written (default `info`). */
export interface SinkOptions {
  readonly write: (line: string) => void;
  readonly level?: LogLevel;
  readonly now?: () => Date;
}

type Format = (level: LogLevel, message: string, fields: LogFields, time: Date) => string;

function makeLogger(options: SinkOptions, format: Format, bound: LogFields): Logger {
  const min = LogLevel[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (LogLevel[level] < min) return;
    options.write(format(level, message, { ...bound, ...fields }, now()));
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => makeLogger(options, format, { ...bound, ...fields }),
  };
}

function fieldText(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** Readable lines for a terminal: `level message key=value ...`, as the CLIs print under --debug. */
export function createTextLogger(options: SinkOptions): Logger {
  return makeLogger(
    options,
    (level, message, fields) => {
      const tail = Object.entries(fields).map(([k, v]) => `${k}=${fieldText(v)}`);
      return [level.toUpperCase().padEnd(5), message, ...tail].join(' ') + '\n';
    },
    {},
  );
}

/** One JSON object per line (`time`, `level`, `msg`, then the fields), as the server logs. */
export function createJsonLogger(options: SinkOptions): Logger {
  return makeLogger(
    options,
    (level, message, fields, time) => {
      const record: Record<string, unknown> = { time: utcTimestamp(time.getTime()), level, msg: message };
      for (const [k, v] of Object.entries(fields)) record[k] = v instanceof Error ? v.message : v;
      return JSON.stringify(record) + '\n';
    },
    {},
  );
}
