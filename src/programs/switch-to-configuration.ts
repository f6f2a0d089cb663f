// A system's own activation script. Exit 4 means units failed to start.
export type SwitchAction = 'switch' | 'boot' | 'test' | 'dry-activate';
export const switchToConfigurationArgv = (systemPath: string, action: SwitchAction) => [
  `${systemPath}/bin/switch-to-configuration`,
  action,
];
export const UNITS_FAILED_EXIT = 4;
