export { GenericDriver, driver, genericFlags } from './generic-driver.js';
export type { GenericConfig } from './generic-driver.js';
