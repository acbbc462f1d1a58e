import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import { readJsonFile, withFileLock, writeJsonAtomic } from '@berth/fsutil';
import { StoreError, StoreErrorCode } from './errors.js';

/** Options of a RecordStore: its directory and how to check what it reads back. */
export interface RecordStoreOptions<T> {
  readonly dir: string;
  /** What the records are (`container`, `volume`), for error messages. */
  readonly kind?: string;
  /** Checks a record read from disk, throwing when it is not a T (default: taken as is). */
  readonly validate?: (value: unknown, id: string) => T;
}

// Container and volume IDs and names: docker's name rule, also fine as a file name.
const idRe = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/**
 * JSON records, one file per record (`<dir>/<id>.json`), for the engine's containers,
 * volumes and networks. Reads take no lock (files are replaced by rename); every change runs
 * under the record's own lock file, so processes changing different records never wait for
 * each other and two changing one record take turns. Lock order: a record lock may be taken
 * inside `index.lock` or `gc.lock`, never the other way round.
 */
export class RecordStore<T> {
  readonly dir: string;
  readonly #kind: string;
  readonly #validate: (value: unknown, id: string) => T;
  #ready: Promise<void> | undefined;

  constructor(options: RecordStoreOptions<T>) {
    if (typeof options?.dir !== 'string' || options.dir === '') {
      throw new StoreError('RecordStore needs a directory', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    this.dir = options.dir;
    this.#kind = options.kind ?? 'record';
    this.#validate = options.validate ?? ((value) => value as T);
  }

  #path(id: string): string {
    if (!idRe.test(id)) {
      throw new StoreError(`invalid ${this.#kind} id ${JSON.stringify(id)}: want letters, digits, _ . - (up to 255)`, {
        code: StoreErrorCode.InvalidRecordId,
        kind: ErrorKind.InvalidArgument,
      });
    }
    return join(this.dir, `${id}.json`);
  }

  #init(): Promise<void> {
    this.#ready ??= mkdir(this.dir, { recursive: true }).then(() => undefined);
    return this.#ready;
  }

  async #read(id: string): Promise<T | undefined> {
    let value: unknown;
    try {
      value = await readJsonFile<unknown>(this.#path(id));
    } catch (err) {
      if (err instanceof SyntaxError) {
        throw new StoreError(`${this.#kind} ${id}: ${this.#path(id)} is not valid JSON`, { code: StoreErrorCode.InvalidRecord, kind: ErrorKind.Internal, cause: err });
      }
      throw err;
    }
    return value === undefined ? undefined : this.#validate(value, id);
  }

  /** The record, or undefined. */
  async get(id: string): Promise<T | undefined> {
    return this.#read(id);
  }

  /** The record, or a NotFound error naming it. */
  async require(id: string): Promise<T> {
    const value = await this.#read(id);
    if (value === undefined) throw this.#notFound(id);
    return value;
  }

  #notFound(id: string): StoreError {
    return new StoreError(`no such ${this.#kind}: ${id}`, { code: StoreErrorCode.RecordNotFound, kind: ErrorKind.NotFound });
  }

  /** Every record with its id, in id order. */
  async list(): Promise<Array<{ readonly id: string; readonly value: T }>> {
    await this.#init();
    const out: Array<{ id: string; value: T }> = [];
    for (const name of (await readdir(this.dir)).sort()) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!idRe.test(id)) continue;
      const value = await this.#read(id);
      if (value !== undefined) out.push({ id, value });
    }
    return out;
  }

  /** Runs `fn` holding the record's lock (for work that must not interleave with its changes). */
  async withLock<R>(id: string, fn: () => Promise<R>, options: { readonly signal?: AbortSignal } = {}): Promise<R> {
    await this.#init();
    const path = this.#path(id);
    return withFileLock(`${path.slice(0, -'.json'.length)}.lock`, fn, options.signal ? { signal: options.signal } : {});
  }

  /** Creates a record; AlreadyExists when the id is taken. */
  async create(id: string, value: T, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.withLock(
      id,
      async () => {
        if ((await this.#read(id)) !== undefined) {
          throw new StoreError(`${this.#kind} ${id} already exists`, { code: StoreErrorCode.RecordExists, kind: ErrorKind.AlreadyExists });
        }
        await writeJsonAtomic(this.#path(id), value);
      },
      options,
    );
  }

  /** Replaces (or creates) a record. */
  async put(id: string, value: T, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.withLock(id, () => writeJsonAtomic(this.#path(id), value), options);
  }

  /** Read-modify-write of one record under its lock; NotFound when it does not exist. */
  async update(id: string, fn: (current: T) => T | Promise<T>, options: { readonly signal?: AbortSignal } = {}): Promise<T> {
    return this.withLock(
      id,
      async () => {
        throwIfAborted(options.signal);
        const current = await this.#read(id);
        if (current === undefined) throw this.#notFound(id);
        const next = await fn(current);
        await writeJsonAtomic(this.#path(id), next);
        return next;
      },
      options,
    );
  }

  /** Removes a record; false when there was none. */
  async delete(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
    return this.withLock(
      id,
      async () => {
        const existed = (await this.#read(id)) !== undefined;
        await rm(this.#path(id), { force: true });
        return existed;
      },
      options,
    );
  }
}
