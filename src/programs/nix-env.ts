// nix-env on a system profile: list, switch and set generations. None of these activate.
export interface Generation {
  number: number;
  date: string;
  current: boolean;
}

export const listGenerationsArgv = (profile: string) => [
  'nix-env',
  '-p',
  profile,
  '--list-generations',
];
export const switchGenerationArgv = (profile: string, n: number) => [
  'nix-env',
  '-p',
  profile,
  '--switch-generation',
  String(n),
];
export const setProfileArgv = (profile: string, storePath: string) => [
  'nix-env',
  '-p',
  profile,
  '--set',
  storePath,
];

/** Lines like "   3   2026-11-28 02:00:00   (current)". */
export function parseGenerations(output: string): Generation[] {
  const generations: Generation[] = [];
  for (const line of output.split('\n')) {
    const match = /^\s*(\d+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*(\(current\))?\s*$/.exec(line);
    if (match)
      generations.push({
        number: Number(match[1]),
        date: match[2] as string,
        current: Boolean(match[3]),
      });
  }
  return generations;
}

/** The link nix-env keeps for generation N of a profile: PROFILE-N-link. */
export const generationLink = (profile: string, n: number) => `${profile}-${n}-link`;
