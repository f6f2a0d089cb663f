// The deploy report: Markdown for a person, the same facts as JSON for a program.
import path from 'node:path';
import { formatDuration } from '../config/duration.js';
import {
  whyReboot,
  type HostRecord,
  type RevertTimerState,
  type DeployRecord,
} from '../deploy/record.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { shortPath } from '../output/format.js';

const OUTCOME_TEXT: Record<NonNullable<DeployRecord['outcome']>, string> = {
  success: 'SUCCESS: every host runs the new system, healthy, made permanent',
  'no-change': 'NO CHANGE: every host already runs this system',
  failed: 'FAILED before any host was activated: nothing changed on the hosts',
  'rolled-back':
    'ROLLED BACK: the new system failed; every touched host runs the system it ran before',
  'partly-rolled-back':
    'PARTLY ROLLED BACK: the failing batch runs its old system again; earlier batches keep the new one (rollback_scope = "failed")',
  'rollback-failed': 'ROLLBACK FAILED: a person must act (see "What to do next")',
  'window-closed':
    'STOPPED AT THE REBOOT WINDOW: the batches before it run the new system, healthy, made permanent; the rest were not touched',
  interrupted: "INTERRUPTED: see each host's phase below",
};

/** Beside a host's phase: whether its revert timer (or reboot guard) put it back, or is still
 * armed. */
const REVERT_TIMER_TEXT: Record<RevertTimerState, (timer: string) => string> = {
  stopped: () => '',
  fired: (timer) => ` (it put itself back: its ${timer} fired)`,
  armed: (timer) => ` (its ${timer} is still armed: it puts itself back when it fires)`,
};
const timerText = (t: HostRecord['revertTimer']) =>
  t ? REVERT_TIMER_TEXT[t.state](t.rebootGuard ? 'reboot guard' : 'revert timer') : '';

export async function writeDeployReport(
  record: DeployRecord,
  reportsDir: string,
): Promise<{ markdown: string; json: string }> {
  const base = path.join(reportsDir, `${record.id}-deploy`);
  const files = { markdown: `${base}.md`, json: `${base}.json` };
  // The JSON report names its files too, as the record will once they are written.
  const withFiles = { ...record, reportFiles: files };
  await writeFileAtomic(files.json, `${JSON.stringify(withFiles, null, 2)}\n`);
  await writeFileAtomic(files.markdown, renderMarkdown(withFiles));
  return files;
}

function renderMarkdown(r: DeployRecord): string {
  const out: string[] = [];
  out.push(
    `# exo-deploy deploy ${r.id}`,
    '',
    `**${r.outcome ? OUTCOME_TEXT[r.outcome] : 'UNFINISHED'}** (exit ${r.exitCode ?? '?'})`,
    '',
  );
  out.push(`- config: \`${r.configFile ?? '-'}\`, flake \`${r.flake}\``);
  out.push(
    `- started ${r.startedAt}, took ${r.durationMs === null ? '?' : formatDuration(r.durationMs)}`,
  );
  if (r.error) out.push(`- cause: ${r.error.split('\n')[0]}`);
  out.push(
    '',
    '## Hosts',
    '',
    '| host | before | built | phase | backup |',
    '| --- | --- | --- | --- | --- |',
  );
  for (const h of r.hosts) out.push(tableRow(hostCells(h)));
  out.push('', '## What changed', '');
  for (const h of r.hosts)
    out.push(
      `### ${h.host}`,
      '',
      '```',
      `${shortPath(h.before.running)} → ${shortPath(h.built.systemPath)}`,
      ...h.diff,
      '```',
      '',
      ...(h.reboots
        ? [
            `Takes the boot path (the new system its boot default, then a reboot): ${whyReboot(h)}.`,
            '',
          ]
        : []),
    );
  out.push('## Health evidence', '');
  if (r.gate) {
    out.push(
      `Gate ${r.gate.passed ? 'passed' : 'FAILED'} after ${formatDuration(r.gate.durationMs)} (${r.gate.samples} samples).`,
      '',
    );
    for (const g of r.gate.hosts) {
      out.push(
        `- **${g.host}**: ${g.passed ? `healthy (exo answered after ${g.readyAfterMs} ms)` : 'failed'}`,
      );
      for (const p of g.problems) out.push(`  - ${p}`);
      const s = g.lastSample;
      if (s) {
        out.push(`  - last sample: ${describeSample(s)}`);
        for (const m of s.journal.matches.slice(0, 5))
          out.push(`  - journal ${m.at}: \`${m.message.split('\n')[0]}\``);
      }
    }
  } else out.push('The gate did not run.');
  const finals = r.hosts.filter((h) => h.finalCheck);
  if (finals.length) {
    out.push('', 'Final state:', '');
    for (const h of finals) out.push(`- ${h.host}: ${describeFinalState(h)}`);
  }
  out.push('', '## Steps', '', '| step | host | took | result |', '| --- | --- | --- | --- |');
  for (const s of r.steps) {
    const result = s.ok ? 'ok' : `FAILED: ${(s.error ?? '').split('\n')[0]}`;
    out.push(tableRow([s.step, s.host ?? 'all', formatDuration(s.durationMs), result]));
  }
  const tails = r.steps.filter((s) => s.outputTail.trim() || s.error);
  if (tails.length) {
    out.push('', '### Output (last lines)', '');
    for (const s of tails)
      out.push(
        `<details><summary>${s.step} ${s.host ?? ''}</summary>`,
        '',
        '```',
        (s.error ?? s.outputTail).trim(),
        '```',
        '</details>',
        '',
      );
  }
  out.push('', '## What to do next', '', ...nextSteps(r));
  return `${out.join('\n')}\n`;
}

const tableRow = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;

/** A host's row of the hosts table: before, built, phase, backup. */
function hostCells(h: HostRecord): string[] {
  const { before, built } = h;
  return [
    h.host,
    `gen ${before.profileGeneration ?? '?'}, exo ${before.exo}${before.healthy === false ? ' (unhealthy)' : ''}`,
    `exo ${built.exo ?? '-'} \`${shortPath(built.systemPath)}\``,
    `${h.phase}${timerText(h.revertTimer)}`,
    h.backupId ?? '-',
  ];
}

type GateSample = NonNullable<NonNullable<DeployRecord['gate']>['hosts'][number]['lastSample']>;

/** What the gate saw last on a host: its unit, the API's answers, the cluster it saw. */
function describeSample(s: GateSample): string {
  const unit = s.unit
    ? `${s.unit.activeState}/${s.unit.subState} pid ${s.unit.mainPid}, restarts ${s.unit.restarts}`
    : '?/? pid ?, restarts ?';
  const probes = s.probes.map((p) => `${p.path} ${p.status ?? p.error}`).join(', ');
  const expected = s.cluster.expected !== null ? `/${s.cluster.expected}` : '';
  return `unit ${unit}; ${probes}; cluster ${s.cluster.seen ?? '?'}${expected}`;
}

function describeFinalState(h: HostRecord): string {
  const check = h.finalCheck;
  const health = check?.healthy ? 'healthy' : `not healthy: ${check?.problems.join('; ')}`;
  const warning = h.switchRestartedExo ? ' (warning: switch restarted exo)' : '';
  return `${health}, running \`${shortPath(check?.system.running)}\`${warning}`;
}

function nextSteps(r: DeployRecord): string[] {
  switch (r.outcome) {
    case 'success':
    case 'no-change':
      return ['Nothing: the hosts are healthy.'];
    case 'failed':
      return ['Fix the cause above and deploy again; no host was changed.'];
    case 'rolled-back':
    case 'partly-rolled-back':
      return [
        'The hosts run what they ran before. Read the health evidence, fix the release, deploy again.',
      ];
    case 'window-closed':
      return [
        `Deploy again within the reboot window to bring ${
          r.hosts
            .filter((h) => h.phase === 'pending')
            .map((h) => h.host)
            .join(', ') || 'the rest'
        } onto the new system: the hosts already on it are left as they are.`,
      ];
    case 'rollback-failed':
      return r.hosts
        .filter((h) => h.phase === 'rollback-failed')
        .map(
          (h: HostRecord) =>
            `- **${h.host}** could not be brought back to \`${h.before.running ?? '?'}\`: ${h.problems.slice(-1)[0] ?? ''}. Check it with \`exo-deploy check --hosts ${h.host}\`, then \`exo-deploy rollback --hosts ${h.host} --to ${h.before.profileGeneration ?? 'N'}\`.`,
        );
    case 'interrupted':
      return [
        'Hosts in phase "activated" run the new system without having passed the gate: not permanent (a reboot returns to the old one), except for a host that took the boot path, whose boot default is the new system already (its reboot guard, if it armed one, boots it back unless confirmed). Run `exo-deploy rollback --last` or deploy again.',
      ];
    default:
      return [];
  }
}
