// Run nix-instantiate from the module tests: argument arrays, never a shell string.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** nixpkgs' lib folder for the evaluations (NIXPKGS_LIB); without one they are skipped. */
const libDir = process.env.NIXPKGS_LIB ? path.resolve(process.env.NIXPKGS_LIB) : undefined;
export const haveLib = libDir !== undefined && existsSync(path.join(libDir, 'default.nix'));
/** What the tests that need nixpkgs' lib print when they are skipped. */
export const noLibMessage =
  'module evaluation tests skipped: set NIXPKGS_LIB to the lib/ folder of nixpkgs or nix-community/nixpkgs.lib';
/** The `--arg lib` value: nixpkgs' lib, imported. */
export const libArg = () => `import ${JSON.stringify(libDir)}`;

/**
 * Evaluate a Nix expression strictly and return it as JSON. `args` are --arg/--argstr pairs;
 * `readWrite` lets the evaluation copy paths to the store (to read a filtered source back).
 */
export async function nixEval<T = unknown>(
  expr: string,
  args: { arg?: Record<string, string>; argstr?: Record<string, string>; readWrite?: boolean } = {},
): Promise<T> {
  const argv = [
    '--eval',
    '--strict',
    '--json',
    ...(args.readWrite ? ['--read-write-mode'] : []),
    '--expr',
    expr,
  ];
  for (const [k, v] of Object.entries(args.arg ?? {})) argv.push('--arg', k, v);
  for (const [k, v] of Object.entries(args.argstr ?? {})) argv.push('--argstr', k, v);
  const { stdout } = await execa('nix-instantiate', argv, { cwd: repoRoot, timeout: 60_000 });
  return JSON.parse(stdout) as T;
}

/** Same as nixEval, but resolves to the error text when evaluation fails. */
export async function nixEvalError(
  expr: string,
  args: Parameters<typeof nixEval>[1] = {},
): Promise<string> {
  try {
    await nixEval(expr, args);
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e);
  }
  throw new Error(`expected evaluation to fail: ${expr}`);
}

/** A Nix string literal for a path (used to import repo files in expressions). */
export const nixPath = (rel: string): string => JSON.stringify(path.join(repoRoot, rel));
