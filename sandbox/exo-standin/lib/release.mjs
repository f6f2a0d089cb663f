// Release settings (release.json) and the faults a release can inject.

import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_PACKAGE_VERSION, ERAS, defaultEra } from './era.mjs';
import { writeErr } from './log.mjs';

const DEFAULT_MODEL = 'mlx-community/Llama-3.2-1B-Instruct-4bit';

const FAULTS_WITH_S = [
  'exit-after',
  'runner-exit',
  'runner-crash',
  'queue-closed',
  'closed-resource',
  'slow-start',
];
// cut-ssh is the system's, not exo's (the hosts' configuration applies it): exo runs healthy.
const FAULTS_PLAIN = ['none', 'crash-on-start', 'hang', 'http-500', 'isolated', 'cut-ssh'];
const FAULT_NAMES = [...FAULTS_PLAIN, ...FAULTS_WITH_S.map((f) => `${f}:S`)];

function configError(msg) {
  writeErr(`exo-standin: ${msg}\n`);
  process.exit(1);
}

/** "runner-exit:2" → { kind: 'runner-exit', seconds: 2 }; null when not a known fault. */
function parseFault(spec) {
  const s = String(spec ?? 'none').trim();
  if (FAULTS_PLAIN.includes(s)) return { kind: s, seconds: 0 };
  const m = /^([a-z-]+):(\d+(?:\.\d+)?)$/.exec(s);
  if (m && FAULTS_WITH_S.includes(m[1])) return { kind: m[1], seconds: Number(m[2]) };
  return null;
}

export const faultText = (f) =>
  FAULTS_WITH_S.includes(f.kind) ? `${f.kind}:${f.seconds}` : f.kind;

/**
 * Reads the release settings: EXO_STANDIN_RELEASE, else release.json next to exo.mjs.
 * { version, era, packageVersion, fault, faultOn, model, loadSeconds }
 */
export function loadRelease(dir) {
  const file = process.env.EXO_STANDIN_RELEASE || path.join(dir, 'release.json');
  let raw;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    configError(`cannot read release settings ${file}: ${e.message}`);
  }
  if (!raw || typeof raw !== 'object' || typeof raw.version !== 'string' || !raw.version) {
    configError(`${file}: "version" must be a non-empty string`);
  }
  const era = raw.era ?? defaultEra(raw.version);
  if (!ERAS.includes(era))
    configError(`${file}: unknown era ${JSON.stringify(era)} (one of ${ERAS.join(', ')})`);
  const fault = parseFault(raw.fault ?? 'none');
  if (!fault)
    configError(
      `${file}: unknown fault ${JSON.stringify(raw.fault)} (one of ${FAULT_NAMES.join(', ')})`,
    );
  const faultOn = raw.fault_on ?? [];
  if (!Array.isArray(faultOn) || faultOn.some((h) => typeof h !== 'string'))
    configError(`${file}: "fault_on" must be a list of host names`);
  const packageVersion = raw.package_version ?? DEFAULT_PACKAGE_VERSION;
  if (typeof packageVersion !== 'string' || !packageVersion)
    configError(`${file}: "package_version" must be a non-empty string`);
  const loadSeconds = raw.runner_load_seconds ?? 1;
  if (typeof loadSeconds !== 'number' || !(loadSeconds >= 0))
    configError(`${file}: "runner_load_seconds" must be a number >= 0`);
  const model = raw.model === undefined ? DEFAULT_MODEL : raw.model;
  if (model !== null && typeof model !== 'string')
    configError(`${file}: "model" must be a model id or null`);
  return { file, version: raw.version, era, packageVersion, fault, faultOn, model, loadSeconds };
}

/**
 * The fault this process runs with: EXO_STANDIN_FAULT when set (whatever fault_on says, so
 * that one host's exo can be restarted with another fault through a systemd drop-in), else
 * the release's fault on the hosts in fault_on (every host when it is empty).
 */
export function effectiveFault(release, hostname, env = process.env) {
  if (env.EXO_STANDIN_FAULT !== undefined && env.EXO_STANDIN_FAULT !== '') {
    const f = parseFault(env.EXO_STANDIN_FAULT);
    if (!f)
      configError(
        `EXO_STANDIN_FAULT: unknown fault ${JSON.stringify(env.EXO_STANDIN_FAULT)} (one of ${FAULT_NAMES.join(', ')})`,
      );
    return f;
  }
  const applies = release.faultOn.length === 0 || release.faultOn.includes(hostname);
  return applies ? release.fault : { kind: 'none', seconds: 0 };
}
