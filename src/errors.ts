// Exit codes mean one thing each, for every command (README "Exit codes").
export const ExitCode = {
  ok: 0,
  failed: 1, // failed or unhealthy; a rollback happened or was not needed
  usage: 2, // usage or configuration error: nothing was done
  needsPerson: 3, // failed and the rollback failed too: a person must act
  locked: 4, // another deploy holds the lock
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that knows its exit code; only the entry point turns it into process.exit. */
export class ExoDeployError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly details: { host?: string; hint?: string } = {},
  ) {
    super(message);
    this.name = 'ExoDeployError';
  }
}

export const usageError = (message: string, hint?: string) =>
  new ExoDeployError(message, ExitCode.usage, { hint });

/** Ctrl-C. Deliberately not an ExoDeployError: the places that turn a host's failure into a
 * finding (unreachable, unhealthy) must let an interruption through, not record it. */
export class InterruptedError extends Error {
  readonly exitCode = ExitCode.interrupted;
  constructor() {
    super('interrupted');
    this.name = 'InterruptedError';
  }
}
