import type { ExitCode } from '../errors.js';

/** What a command hands back to the entry point: an exit code, a JSON document, a text. */
export interface Outcome {
  exitCode: ExitCode;
  data: unknown;
  text: string;
}
