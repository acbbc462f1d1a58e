import { resolve } from 'node:path';

/**
 * Where the local engine keeps things. Under `root` (`BERTH_ROOT`): the image store's OCI
 * layout at the top (`oci-layout`, `index.json`, `blobs/`), `snapshots/`, one directory per
 * container (`containers/<id>/`: `config.v2.json`, `hostconfig.json`, the json-file log
 * `<id>-json.log`, `hostname`, `hosts`, `resolv.conf`, the OCI bundle's `config.json` and the
 * `rootfs` mount point), `names/` (a symlink per container name to its ID), `volumes/<name>/`
 * (`_data` and `volume.json`), `network/`, `events/` (the event journal) and `locks/`. Under
 * `runRoot` (`BERTH_RUNROOT`): what dies with the host: the runtime's state, exec records and
 * the supervisor's pid file.
 *
 * The roots are made absolute and normal once; the paths under them are joined as strings (every
 * part is a fixed name or an ID): path.join normalises the whole path at each call, some
 * microseconds in a command's cold code, and a container's run asks for these a hundred times.
 */
export class StateLayout {
  readonly root: string;
  readonly runRoot: string;

  constructor(root: string, runRoot: string) {
    this.root = resolve(root);
    this.runRoot = resolve(runRoot);
  }

  get containers(): string {
    return `${this.root}/containers`;
  }

  container(id: string): string {
    return `${this.root}/containers/${id}`;
  }

  containerFile(id: string, file: string): string {
    return `${this.root}/containers/${id}/${file}`;
  }

  logPath(id: string): string {
    return `${this.root}/containers/${id}/${id}-json.log`;
  }

  get names(): string {
    return `${this.root}/names`;
  }

  get locks(): string {
    return `${this.root}/locks`;
  }

  containerLock(id: string): string {
    return `${this.root}/locks/container-${id}.lock`;
  }

  get volumes(): string {
    return `${this.root}/volumes`;
  }

  get snapshots(): string {
    return `${this.root}/snapshots`;
  }

  get network(): string {
    return `${this.root}/network`;
  }

  get events(): string {
    return `${this.root}/events`;
  }

  get buildCache(): string {
    return `${this.root}/build-cache`;
  }

  get runtimeRoot(): string {
    return `${this.runRoot}/runtime`;
  }

  get execs(): string {
    return `${this.runRoot}/execs`;
  }

  get supervisor(): string {
    return `${this.runRoot}/supervisor`;
  }

  /** The attach socket of a container's monitor; short, because unix socket paths are limited to 107 bytes. */
  attachSocket(id: string): string {
    return `${this.runRoot}/attach/${id.slice(0, 32)}.sock`;
  }

  /** Where the monitor records how a container's current run ended (it outlives the runtime's state). */
  exitFile(id: string): string {
    return `${this.runRoot}/attach/${id}.exit.json`;
  }
}
