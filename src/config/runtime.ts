import { Keys } from './keys';
import { Settings } from './settings';

/** Everything resolved before the Nest application is built: settings, keys and the database to use. */
export interface Runtime {
  settings: Settings;
  keys: Keys;
  databaseUrl: string;
}

export const SETTINGS = Symbol('SETTINGS');
export const KEYS = Symbol('KEYS');
