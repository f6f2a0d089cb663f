// A system's own activation script. Exit 4 means units failed to start.
//
// check (switch-to-configuration-ng since 2026): run the system's pre-switch checks and exit;
// older ones take no such action and print their usage, and dry-activate runs the checks too.
export type SwitchAction = 'switch' | 'boot' | 'test' | 'dry-activate' | 'check';
export const switchToConfigurationArgv = (systemPath: string, action: SwitchAction) => [
  `${systemPath}/bin/switch-to-configuration`,
  action,
];
export const UNITS_FAILED_EXIT = 4;

/** What switch-to-configuration prints when the system's pre-switch checks refuse the action. */
export const PRE_SWITCH_CHECKS_FAILED = /Pre-switch checks failed/;
/** An action this switch-to-configuration does not know: it prints its usage. */
export const UNKNOWN_ACTION = /^Usage: |invalid action/m;
