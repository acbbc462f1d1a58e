/** The management commands (`engine container ...`) and their one-line descriptions. */
export const managementCommands: Readonly<Record<string, string>> = {
  builder: 'Manage builds',
  container: 'Manage containers',
  image: 'Manage images',
  network: 'Manage networks',
  system: 'Manage the engine',
  volume: 'Manage volumes',
};
