import { join } from 'node:path';

/**
 * Where the local engine keeps things. Under `root` (`BERTH_ROOT`): the image store's OCI
 * layout at the top (`oci-layout`, `index.json`, `blobs/`), `snapshots/`, one directory per
 * container (`containers/<id>/`: `config.v2.json`, `hostconfig.json`, the json-file log
 * `<id>-json.log`, `hostname`, `hosts`, `resolv.conf`, the OCI bundle's `config.json` and the
 * `rootfs` mount point), `names/` (a symlink per container name to its ID), `volumes/<name>/`
 * (`_data` and `volume.json`), `network/`, `events/` (the event journal) and `locks/`. Under
 * `runRoot` (`BERTH_RUNROOT`): what dies with the host: the runtime's state, exec records and
 * the supervisor's pid file.
 */
export class StateLayout {
  readonly root: string;
  readonly runRoot: string;

  constructor(root: string, runRoot: string) {
    this.root = root;
    this.runRoot = runRoot;
  }

  get containers(): string {
    return join(this.root, 'containers');
  }

  container(id: string): string {
    return join(this.root, 'containers', id);
  }

  containerFile(id: string, file: string): string {
    return join(this.root, 'containers', id, file);
  }

  logPath(id: string): string {
    return join(this.root, 'containers', id, `${id}-json.log`);
  }

  get names(): string {
    return join(this.root, 'names');
  }

  get locks(): string {
    return join(this.root, 'locks');
  }

  containerLock(id: string): string {
    return join(this.root, 'locks', `container-${id}.lock`);
  }

  get volumes(): string {
    return join(this.root, 'volumes');
  }

  get snapshots(): string {
    return join(this.root, 'snapshots');
  }

  get network(): string {
    return join(this.root, 'network');
  }

  get events(): string {
    return join(this.root, 'events');
  }

  get buildCache(): string {
    return join(this.root, 'build-cache');
  }

  get runtimeRoot(): string {
    return join(this.runRoot, 'runtime');
  }

  get execs(): string {
    return join(this.runRoot, 'execs');
  }

  get supervisor(): string {
    return join(this.runRoot, 'supervisor');
  }

  /** The attach socket of a container's monitor; short, because unix socket paths are limited to 107 bytes. */
  attachSocket(id: string): string {
    return join(this.runRoot, 'attach', `${id.slice(0, 32)}.sock`);
  }

  /** Where the monitor records how a container's current run ended (it outlives the runtime's state). */
  exitFile(id: string): string {
    return join(this.runRoot, 'attach', `${id}.exit.json`);
  }
}
