// The rollout strategies, for the config and the command line alike (without the schema's
// weight: the command line is read before anything else loads).
export const STRATEGIES = ['lockstep', 'rolling', 'canary'] as const;
export type Strategy = (typeof STRATEGIES)[number];
