import type { Logger } from '@berth/log';
import type { NetworkManager } from '@berth/network';
import type { Runtime } from '@berth/runtime';
import type { Snapshotter } from '@berth/snapshot';
import type { ImageStore } from '@berth/store';
import type { ContainerStore } from './container-store.js';
import type { EventJournal } from './event-journal.js';
import type { RecordWatch } from './record-watch.js';
import type { StateLayout } from './state-layout.js';
import type { VolumeStore } from './volume-store.js';

/**
 * What the parts of the local engine share: the state layout, the stores, the runtime, the
 * event journal, and the snapshotter and network manager (made on first use, since not every
 * command needs them).
 */
export interface EngineContext {
  readonly layout: StateLayout;
  readonly logger: Logger;
  readonly containers: ContainerStore;
  readonly volumes: VolumeStore;
  readonly events: EventJournal;
  readonly images: ImageStore;
  readonly runtime: Runtime;
  readonly watch: RecordWatch;
  /** Fires when the engine is closed: waits, attachments and follows of this process end then. */
  readonly closing: AbortSignal;
  snapshotter(): Promise<Snapshotter>;
  network(): NetworkManager;
}
