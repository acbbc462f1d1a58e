import type { CommandSpec } from './command-spec.js';

type Loader = () => Promise<CommandSpec>;

const container = () => import('../commands/container/lifecycle.js');
const run = () => import('../commands/container/run.js');
const io = () => import('../commands/container/container-io.js');
const inspect = () => import('../commands/container/container-info.js');
const fsCommands = () => import('../commands/container/container-fs.js');
const images = () => import('../commands/image/image-commands.js');
const transfer = () => import('../commands/image/image-transfer.js');
const build = () => import('../commands/image/build.js');
const login = () => import('../commands/image/login.js');
const volume = () => import('../commands/volume-commands.js');
const network = () => import('../commands/network-commands.js');
const system = () => import('../commands/system/system-commands.js');
const events = () => import('../commands/system/events.js');
const serve = () => import('../commands/serve.js');

/**
 * Every command path and where its spec lives. Modules load only when their command runs, so a
 * command pays only for what it uses.
 */
export const commandTable: Readonly<Record<string, Loader>> = {
  run: () => run().then((m) => m.runCommand),
  create: () => run().then((m) => m.createCommand),
  start: () => container().then((m) => m.startCommand),
  stop: () => container().then((m) => m.stopCommand),
  restart: () => container().then((m) => m.restartCommand),
  kill: () => container().then((m) => m.killCommand),
  pause: () => container().then((m) => m.pauseCommand),
  unpause: () => container().then((m) => m.unpauseCommand),
  rm: () => container().then((m) => m.rmCommand),
  wait: () => container().then((m) => m.waitCommand),
  rename: () => container().then((m) => m.renameCommand),
  update: () => container().then((m) => m.updateCommand),
  ps: () => inspect().then((m) => m.psCommand),
  inspect: () => inspect().then((m) => m.inspectCommand),
  top: () => inspect().then((m) => m.topCommand),
  stats: () => inspect().then((m) => m.statsCommand),
  port: () => inspect().then((m) => m.portCommand),
  logs: () => io().then((m) => m.logsCommand),
  exec: () => io().then((m) => m.execCommand),
  attach: () => io().then((m) => m.attachCommand),
  cp: () => fsCommands().then((m) => m.cpCommand),
  commit: () => fsCommands().then((m) => m.commitCommand),
  diff: () => fsCommands().then((m) => m.diffCommand),
  export: () => fsCommands().then((m) => m.exportCommand),
  images: () => images().then((m) => m.imagesCommand),
  tag: () => images().then((m) => m.tagCommand),
  rmi: () => images().then((m) => m.rmiCommand),
  history: () => images().then((m) => m.historyCommand),
  pull: () => transfer().then((m) => m.pullCommand),
  push: () => transfer().then((m) => m.pushCommand),
  save: () => transfer().then((m) => m.saveCommand),
  load: () => transfer().then((m) => m.loadCommand),
  import: () => transfer().then((m) => m.importCommand),
  build: () => build().then((m) => m.buildCommand),
  login: () => login().then((m) => m.loginCommand),
  logout: () => login().then((m) => m.logoutCommand),
  info: () => system().then((m) => m.infoCommand),
  version: () => system().then((m) => m.versionCommand),
  events: () => events().then((m) => m.eventsCommand),
  serve: () => serve().then((m) => m.serveCommand),

  'container run': () => run().then((m) => m.runCommand),
  'container create': () => run().then((m) => m.createCommand),
  'container start': () => container().then((m) => m.startCommand),
  'container stop': () => container().then((m) => m.stopCommand),
  'container restart': () => container().then((m) => m.restartCommand),
  'container kill': () => container().then((m) => m.killCommand),
  'container pause': () => container().then((m) => m.pauseCommand),
  'container unpause': () => container().then((m) => m.unpauseCommand),
  'container rm': () => container().then((m) => m.rmCommand),
  'container remove': () => container().then((m) => m.rmCommand),
  'container wait': () => container().then((m) => m.waitCommand),
  'container rename': () => container().then((m) => m.renameCommand),
  'container update': () => container().then((m) => m.updateCommand),
  'container prune': () => container().then((m) => m.containerPruneCommand),
  'container ls': () => inspect().then((m) => m.psCommand),
  'container list': () => inspect().then((m) => m.psCommand),
  'container ps': () => inspect().then((m) => m.psCommand),
  'container inspect': () => inspect().then((m) => m.containerInspectCommand),
  'container top': () => inspect().then((m) => m.topCommand),
  'container stats': () => inspect().then((m) => m.statsCommand),
  'container port': () => inspect().then((m) => m.portCommand),
  'container logs': () => io().then((m) => m.logsCommand),
  'container exec': () => io().then((m) => m.execCommand),
  'container attach': () => io().then((m) => m.attachCommand),
  'container cp': () => fsCommands().then((m) => m.cpCommand),
  'container commit': () => fsCommands().then((m) => m.commitCommand),
  'container diff': () => fsCommands().then((m) => m.diffCommand),
  'container export': () => fsCommands().then((m) => m.exportCommand),

  'image ls': () => images().then((m) => m.imagesCommand),
  'image list': () => images().then((m) => m.imagesCommand),
  'image tag': () => images().then((m) => m.tagCommand),
  'image rm': () => images().then((m) => m.rmiCommand),
  'image remove': () => images().then((m) => m.rmiCommand),
  'image history': () => images().then((m) => m.historyCommand),
  'image inspect': () => images().then((m) => m.imageInspectCommand),
  'image prune': () => images().then((m) => m.imagePruneCommand),
  'image pull': () => transfer().then((m) => m.pullCommand),
  'image push': () => transfer().then((m) => m.pushCommand),
  'image save': () => transfer().then((m) => m.saveCommand),
  'image load': () => transfer().then((m) => m.loadCommand),
  'image import': () => transfer().then((m) => m.importCommand),
  'image build': () => build().then((m) => m.buildCommand),
  'builder build': () => build().then((m) => m.buildCommand),
  'builder prune': () => build().then((m) => m.builderPruneCommand),

  'volume create': () => volume().then((m) => m.volumeCreateCommand),
  'volume ls': () => volume().then((m) => m.volumeLsCommand),
  'volume list': () => volume().then((m) => m.volumeLsCommand),
  'volume inspect': () => volume().then((m) => m.volumeInspectCommand),
  'volume rm': () => volume().then((m) => m.volumeRmCommand),
  'volume remove': () => volume().then((m) => m.volumeRmCommand),
  'volume prune': () => volume().then((m) => m.volumePruneCommand),

  'network create': () => network().then((m) => m.networkCreateCommand),
  'network ls': () => network().then((m) => m.networkLsCommand),
  'network list': () => network().then((m) => m.networkLsCommand),
  'network inspect': () => network().then((m) => m.networkInspectCommand),
  'network rm': () => network().then((m) => m.networkRmCommand),
  'network remove': () => network().then((m) => m.networkRmCommand),
  'network connect': () => network().then((m) => m.networkConnectCommand),
  'network disconnect': () => network().then((m) => m.networkDisconnectCommand),
  'network prune': () => network().then((m) => m.networkPruneCommand),

  'system info': () => system().then((m) => m.infoCommand),
  'system version': () => system().then((m) => m.versionCommand),
  'system df': () => system().then((m) => m.dfCommand),
  'system prune': () => system().then((m) => m.systemPruneCommand),
  'system events': () => events().then((m) => m.eventsCommand),
};


/** The top-level commands listed by `engine --help`, with their descriptions. */
export const commonCommands: readonly (readonly [string, string])[] = [
  ['run', 'Create and run a new container from an image'],
  ['exec', 'Execute a command in a running container'],
  ['ps', 'List containers'],
  ['build', 'Build an image from a Dockerfile'],
  ['pull', 'Download an image from a registry'],
  ['push', 'Upload an image to a registry'],
  ['images', 'List images'],
  ['login', 'Log in to a registry'],
  ['logout', 'Log out from a registry'],
  ['version', 'Show the engine version information'],
  ['info', 'Display system-wide information'],
  ['serve', 'Serve the Docker Engine API on a unix socket or TCP (with mutual TLS)'],
];

export const otherCommands: readonly (readonly [string, string])[] = [
  ['attach', "Attach local standard input, output, and error streams to a running container"],
  ['commit', "Create a new image from a container's changes"],
  ['cp', 'Copy files/folders between a container and the local filesystem'],
  ['create', 'Create a new container'],
  ['diff', "Inspect changes to files or directories on a container's filesystem"],
  ['events', 'Get real time events from the engine'],
  ['export', "Export a container's filesystem as a tar archive"],
  ['history', 'Show the history of an image'],
  ['import', 'Import the contents from a tarball to create a filesystem image'],
  ['inspect', 'Return low-level information on engine objects'],
  ['kill', 'Kill one or more running containers'],
  ['load', 'Load an image from a tar archive or STDIN'],
  ['logs', 'Fetch the logs of a container'],
  ['pause', 'Pause all processes within one or more containers'],
  ['port', 'List port mappings or a specific mapping for the container'],
  ['rename', 'Rename a container'],
  ['restart', 'Restart one or more containers'],
  ['rm', 'Remove one or more containers'],
  ['rmi', 'Remove one or more images'],
  ['save', 'Save one or more images to a tar archive (streamed to STDOUT by default)'],
  ['start', 'Start one or more stopped containers'],
  ['stats', 'Display a live stream of container(s) resource usage statistics'],
  ['stop', 'Stop one or more running containers'],
  ['tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  ['top', 'Display the running processes of a container'],
  ['unpause', 'Unpause all processes within one or more containers'],
  ['update', 'Update configuration of one or more containers'],
  ['wait', 'Block until one or more containers stop, then print their exit codes'],
];
