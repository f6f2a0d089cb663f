// Host defaults as the configuration file gives them when it sets none, with a test's own
// settings on top: a test names only what it depends on.
import { ConfigFile } from '../../src/config/schema.js';

type Defaults = ConfigFile['defaults'];
export const hostDefaults = (settings: Partial<Defaults> = {}): Defaults => ({
  ...ConfigFile.shape.defaults.parse(undefined),
  ...settings,
});
