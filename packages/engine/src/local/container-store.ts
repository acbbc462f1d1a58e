import { lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, errnoCode } from '@berth/errors';
import { randomHex, removeTree, withFileLock, writeJsonAtomic } from '@berth/fsutil';
import { EngineErrorCode, engineError } from '../engine.js';
import type { ContainerConfigFile, ContainerRecord } from './container-record.js';
import { invalidParameter, nameInUse, noSuchContainer } from './docker-errors.js';
import type { StateLayout } from './state-layout.js';

const namePattern = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const fullId = /^[0-9a-f]{64}$/;
const idPrefix = /^[0-9a-f]{1,64}$/;
// A name whose container never appeared (its creator died between reserving and writing) is
// reclaimed after this long; a create takes milliseconds.
const orphanNameMs = 30_000;

/** A fresh container ID: 64 hex digits whose 12-digit short form is not all decimal digits (docker's rule). */
export function newContainerId(): string {
  for (;;) {
    const id = randomHex(32);
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

/** Checks a container name as docker does and returns it without the leading slash. */
export function validContainerName(name: string): string {
  if (!namePattern.test(name)) {
    throw invalidParameter(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name.startsWith('/') ? name.slice(1) : name;
}

/**
 * The container records of a state root: one directory each under `containers/`, a symlink
 * per name under `names/` (made with symlink(2), which is atomic and fails when the name is
 * taken, so two processes never get the same name), and one lock file per container.
 * Links, renames and small records use synchronous calls: each is one quick syscall on a local
 * disk, less than the thread-pool round trip an asynchronous call costs.
 */
export class ContainerStore {
  readonly #layout: StateLayout;
  #dirsMade = false;

  constructor(layout: StateLayout) {
    this.#layout = layout;
  }

  async #ensureDirs(): Promise<void> {
    if (this.#dirsMade) return;
    for (const dir of [this.#layout.containers, this.#layout.names, this.#layout.locks]) mkdirSync(dir, { recursive: true });
    this.#dirsMade = true;
  }

  /** Runs `fn` holding the container's lock (across processes). */
  async withLock<T>(id: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#ensureDirs();
    return withFileLock(this.#layout.containerLock(id), fn, signal ? { signal } : {});
  }

  /** The ID a name points at, if any. */
  async lookupName(name: string): Promise<string | undefined> {
    const bare = name.startsWith('/') ? name.slice(1) : name;
    if (!bare || bare.includes('/') || bare === '.' || bare === '..') return undefined;
    try {
      return readlinkSync(join(this.#layout.names, bare));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EINVAL') return undefined;
      throw err;
    }
  }

  /** Takes `name` for `id`; Conflict with docker's message when another container has it. */
  async reserveName(name: string, id: string): Promise<void> {
    await this.#ensureDirs();
    const link = join(this.#layout.names, name);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        symlinkSync(id, link);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const owner = await this.lookupName(name);
      if (owner === undefined || owner === id) {
        if (owner === id) return;
        continue;
      }
      if (await this.exists(owner)) throw nameInUse(name, owner);
      const info = await lstat(link).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs < orphanNameMs) throw nameInUse(name, owner);
      await this.releaseName(name, owner);
    }
    throw nameInUse(name, (await this.lookupName(name)) ?? '');
  }

  /** Frees `name` when it still points at `id`. */
  async releaseName(name: string, id: string): Promise<void> {
    if ((await this.lookupName(name)) !== id) return;
    try {
      unlinkSync(join(this.#layout.names, name));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }

  async exists(id: string): Promise<boolean> {
    return lstatSync(this.#layout.containerFile(id, 'config.v2.json'), { throwIfNoEntry: false }) !== undefined;
  }

  /**
   * Writes a new container's records into a temporary directory and renames it into place, so
   * that a container either exists whole or not at all.
   */
  async create(record: ContainerRecord): Promise<void> {
    await this.#ensureDirs();
    const temp = join(this.#layout.containers, `.new-${record.id}`);
    mkdirSync(temp, { recursive: true });
    try {
      await this.#writeFiles(temp, record, false);
      renameSync(temp, this.#layout.container(record.id));
    } catch (err) {
      await removeTree(temp);
      throw err;
    }
  }

  async #writeFiles(dir: string, record: ContainerRecord, durable: boolean): Promise<void> {
    const { hostConfig, ...rest } = record;
    const file: ContainerConfigFile = { version: 1, ...rest };
    await Promise.all([
      writeJsonAtomic(join(dir, 'config.v2.json'), file, { durable, mode: 0o600 }),
      writeJsonAtomic(join(dir, 'hostconfig.json'), hostConfig, { durable, mode: 0o600 }),
    ]);
  }

  /**
   * Replaces a record (call it holding the container's lock). State changes are not fsynced:
   * after a power loss every container is stopped anyway, and reconciling corrects the state.
   */
  async write(record: ContainerRecord, options: { readonly hostConfig?: boolean; readonly durable?: boolean } = {}): Promise<void> {
    const dir = this.#layout.container(record.id);
    const durable = options.durable ?? false;
    const { hostConfig, ...rest } = record;
    const file: ContainerConfigFile = { version: 1, ...rest };
    await Promise.all([
      writeJsonAtomic(join(dir, 'config.v2.json'), file, { durable, mode: 0o600 }),
      options.hostConfig ? writeJsonAtomic(join(dir, 'hostconfig.json'), hostConfig, { durable, mode: 0o600 }) : undefined,
    ]);
  }

  /**
   * The record of `id`, or undefined when there is no such container (or it is being removed).
   * Read synchronously: two files of a few kilobytes cost less than the eight thread-pool round
   * trips of reading them asynchronously, and every container operation reads them.
   */
  async tryRead(id: string): Promise<ContainerRecord | undefined> {
    let config: string;
    let host: string;
    try {
      config = readFileSync(this.#layout.containerFile(id, 'config.v2.json'), 'utf8');
      host = readFileSync(this.#layout.containerFile(id, 'hostconfig.json'), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    const { version: _version, ...rest } = JSON.parse(config) as ContainerConfigFile;
    return { ...rest, hostConfig: JSON.parse(host) as ContainerRecord['hostConfig'] };
  }

  async read(id: string, ref: string = id): Promise<ContainerRecord> {
    const record = await this.tryRead(id);
    if (!record) throw noSuchContainer(ref);
    return record;
  }

  /** Every container ID. */
  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.#layout.containers)).filter((e) => fullId.test(e));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
  }

  /** Every record (those removed meanwhile are skipped). */
  async list(): Promise<ContainerRecord[]> {
    const records = await Promise.all((await this.ids()).map((id) => this.tryRead(id)));
    return records.filter((r): r is ContainerRecord => r !== undefined);
  }

  /**
   * The ID `ref` names, as docker resolves it: a full ID, then a name (with or without the
   * leading slash), then a unique ID prefix. NotFound (`No such container: ref`) otherwise.
   */
  async resolve(ref: string): Promise<string> {
    if (fullId.test(ref) && (await this.exists(ref))) return ref;
    const byName = await this.lookupName(ref);
    if (byName !== undefined && (await this.exists(byName))) return byName;
    if (idPrefix.test(ref)) {
      const matches = (await this.ids()).filter((id) => id.startsWith(ref));
      if (matches.length > 1) {
        throw engineError(`multiple IDs found with provided prefix: ${ref}`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
      }
      if (matches.length === 1) return matches[0]!;
    }
    throw noSuchContainer(ref);
  }

  /**
   * Clears what a process killed mid-operation left: directories of removals that were renamed
   * away but not deleted, and of creations older than a minute that never got renamed into place.
   */
  async sweep(): Promise<string[]> {
    const removed: string[] = [];
    let entries: string[];
    try {
      entries = await readdir(this.#layout.containers);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return removed;
      throw err;
    }
    for (const entry of entries) {
      const path = join(this.#layout.containers, entry);
      const stale = entry.startsWith('.gone-') || (entry.startsWith('.new-') && Date.now() - ((await lstat(path).catch(() => undefined))?.mtimeMs ?? Date.now()) > 60_000);
      if (!stale) continue;
      await removeTree(path);
      removed.push(entry);
    }
    return removed;
  }

  /** Removes a container's directory; its mounts must be gone already. */
  async remove(id: string): Promise<void> {
    const dir = this.#layout.container(id);
    // Renamed first so that readers see the container vanish at once, not file by file.
    const doomed = join(this.#layout.containers, `.gone-${id}-${randomHex(4)}`);
    try {
      renameSync(dir, doomed);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await removeTree(doomed);
  }
}
