import type { Options } from 'yargs';
import type { Cli } from './cli.js';

/** Parsed arguments of one command: its options by name, and its positional arguments in order. */
export interface ParsedArgs {
  readonly [option: string]: unknown;
  readonly _args: readonly string[];
}

/**
 * One `engine` command. Its options are yargs options; `usage` is docker's synopsis. With
 * `interspersed: false` option parsing stops at the first positional argument, so that in
 * `engine run IMAGE ls -la` the `-la` belongs to the container's command, as in docker.
 */
export interface CommandSpec {
  readonly usage: string;
  readonly describe: string;
  readonly options?: Readonly<Record<string, Options>>;
  readonly interspersed?: false;
  /** Least and most positional arguments (most: Infinity for lists). */
  readonly args?: readonly [number, number];
  /** Exit status for usage errors and engine failures: 125 for run/create/exec (docker), else 1. */
  readonly failureStatus?: number;
  run(args: ParsedArgs, cli: Cli): Promise<number | void>;
}
