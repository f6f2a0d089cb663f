// A pull's state as a Prometheus textfile: the commit the host runs, the last attempt and how it
// ended, and how often a release was rolled back here. Its own file beside the health check's:
// each file has one writer.
import { textfile, type Metric } from '../output/textfile.js';
import type { PullResult } from './pull-run.js';
import type { PullState } from './state.js';

const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : null);

export function pullMetrics(
  host: string,
  state: PullState | null,
  last: Pick<PullResult, 'outcome' | 'exitCode' | 'tip'>,
  nowMs: number,
): string {
  const one = (value: number | null): Metric['samples'] =>
    value === null ? [] : [[{ host }, value]];
  const deployed = state?.deployed ?? null;
  return textfile([
    {
      name: 'exo_deploy_pull_deployed_info',
      help: 'the config commit the last successful pull deployed here',
      type: 'gauge',
      samples: deployed ? [[{ host, revision: deployed.revision }, 1]] : [],
    },
    {
      name: 'exo_deploy_pull_deployed_timestamp_seconds',
      help: 'when the last successful pull deployed it',
      type: 'gauge',
      samples: one(seconds(deployed?.at)),
    },
    {
      name: 'exo_deploy_pull_last_attempt_timestamp_seconds',
      help: 'when the last pull ran',
      type: 'gauge',
      samples: one(nowMs / 1000),
    },
    {
      name: 'exo_deploy_pull_last_attempt_info',
      help: "the last pull's outcome and the branch tip it saw",
      type: 'gauge',
      samples: [[{ host, outcome: last.outcome, revision: last.tip ?? '' }, 1]],
    },
    {
      name: 'exo_deploy_pull_last_attempt_exit_code',
      help: "the last pull's exit code (0 ok; 1 failed; 2 refused, nothing done; 3 a person must act)",
      type: 'gauge',
      samples: one(last.exitCode),
    },
    {
      name: 'exo_deploy_pull_last_success_timestamp_seconds',
      help: 'when a pull last ended well (deployed, or nothing to do)',
      type: 'gauge',
      samples: one(seconds(state?.lastSuccessAt)),
    },
    {
      name: 'exo_deploy_pull_rollbacks_total',
      help: 'releases a pull rolled back here after they failed their gate',
      type: 'counter',
      samples: one(state?.rollbacks ?? null),
    },
    {
      name: 'exo_deploy_pull_bad_revisions',
      help: 'commits marked bad here: not tried again until the branch moves on',
      type: 'gauge',
      samples: one(state ? state.bad.length : null),
    },
  ]);
}
