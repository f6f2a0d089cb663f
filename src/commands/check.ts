// exo-deploy check: the health of each host, concurrently. Exit 0 when all are healthy.
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { ALL_PARTS, type HostCheck } from '../health/check.js';
import { shortNodeId } from '../health/membership.js';
import { checkHosts, HEALTH_PARTS } from '../steps/check-hosts.js';
import { prometheusText } from '../health/prometheus.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { age, bytes, shortPath } from '../output/format.js';
import type { Outcome } from '../output/outcome.js';

export const DEFAULT_SINCE_MS = 10 * 60_000;

export async function run(ctx: Context): Promise<Outcome> {
  const sinceMs = ctx.now() - (ctx.options.since ?? DEFAULT_SINCE_MS);
  const checks = await checkHosts(ctx, sinceMs, { parts: ctx.local ? HEALTH_PARTS : ALL_PARTS });
  const healthy = checks.every((c) => c.healthy);
  if (ctx.options['status-file'])
    await writeFileAtomic(
      ctx.options['status-file'],
      `${JSON.stringify({ healthy, checks }, null, 2)}\n`,
    );
  if (ctx.options.textfile)
    await writeFileAtomic(ctx.options.textfile, prometheusText(checks, ctx.now()));
  return {
    exitCode: healthy ? ExitCode.ok : ExitCode.failed,
    data: { healthy, checks },
    text: checks.map((c) => renderCheck(c, ctx.now())).join('\n\n'),
  };
}

export function renderCheck(c: HostCheck, nowMs: number): string {
  const u = c.unit;
  const unitLine = u
    ? `${u.activeState} (${u.subState}), pid ${u.mainPid || '-'}${u.startedAt ? `, up ${age(u.startedAt, nowMs)}` : ''}, ${u.restarts} restart(s), ${bytes(u.memoryBytes)}`
    : 'unknown';
  const lines = [
    `${c.host}: ${c.healthy ? 'healthy' : 'UNHEALTHY'}`,
    `  unit      ${unitLine}`,
    `  api       ${c.probes.map((p) => `${p.path} ${p.status ?? p.error} ${p.latencyMs}ms`).join(' · ') || '-'}`,
    `  cluster   ${c.cluster.seen === null ? '?' : c.cluster.seen} node(s) seen${c.cluster.expected !== null ? ` of ${c.cluster.expected} expected` : ''}${c.cluster.nodeId ? `, this node ${shortNodeId(c.cluster.nodeId)}` : ''}${c.cluster.instances?.length ? `, ${c.cluster.instances.length} instance(s)` : ''}${c.cluster.failedRunners.length ? `, ${c.cluster.failedRunners.length} failed runner(s)` : ''}`,
    `  journal   ${c.journal.matches.length} failure line(s) in ${c.journal.scanned} since ${c.journal.since}`,
    `  system    ${shortPath(c.system.running)}${c.system.profile && c.system.profile !== c.system.running ? ` (profile: ${shortPath(c.system.profile)}: a test activation)` : ''}`,
    `  resources ${c.resources.memory ? `memory ${bytes(c.resources.memory.availableBytes)} free of ${bytes(c.resources.memory.totalBytes)}` : 'memory ?'}; ${c.resources.disks.map((d) => `${d.path} ${bytes(d.availableBytes)} free`).join(', ')}`,
  ];
  // nixos is true or false once read; --local does not read compatibility.
  if (c.compatibility.nixos !== null) {
    lines.push(
      `  compat    ${c.compatibility.nix ?? 'no nix'}, flakes ${c.compatibility.flakes === null ? '?' : c.compatibility.flakes ? 'on' : 'off'}, ${c.compatibility.nixos ? 'NixOS' : 'not NixOS'}, ${c.compatibility.systemd ?? 'no systemd'}`,
    );
  }
  for (const p of c.problems) lines.push(`  ✗ ${p}`);
  for (const w of c.warnings) lines.push(`  ! ${w}`);
  return lines.join('\n');
}
