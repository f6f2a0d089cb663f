// Which signatures let a host move in pull mode: git's "G" for an SSH key of the allowed
// signers only. git answers as it does (its %G? letter, key and signer, through formatSignature).
import { describe, expect, it } from 'vitest';
import { formatSignature, type Signature } from '../../src/programs/git.js';
import { checkSignature, type Mirror } from '../../src/pull/mirror.js';
import type { Executor } from '../../src/run/executor.js';

const rev = 'c'.repeat(40);

/** A mirror whose git judges every commit's signature as `s`. */
function mirrorSaying(s: Signature): Mirror {
  const exec: Executor = {
    host: { name: 'h1' } as Executor['host'],
    async run(argv) {
      return {
        argv,
        exitCode: 0,
        stdout: formatSignature(s),
        stderr: '',
        durationMs: 1,
        timedOut: false,
      };
    },
    async must(argv) {
      return this.run(argv);
    },
    async close() {},
  };
  return { exec, git: 'git', dir: '/var/lib/exo-deploy/pull/repo' };
}

describe('pull mode: a signed commit', () => {
  it('is trusted when an SSH key of the allowed signers made it', async () => {
    const m = mirrorSaying({ status: 'G', key: 'SHA256:abc', signer: 'ops@example.org' });
    expect(await checkSignature(m, rev, '/etc/exo-deploy/allowed_signers')).toEqual({
      trusted: true,
      signer: 'ops@example.org',
    });
  });

  it("is not when git's good signature is a GPG key's: root's keyring is not the allowed signers", async () => {
    const m = mirrorSaying({
      status: 'G',
      key: '4AEE18F83AFDEB23',
      signer: 'Ops <ops@example.org>',
    });
    const r = await checkSignature(m, rev, '/etc/exo-deploy/allowed_signers');
    expect(r.trusted).toBe(false);
    expect(r.trusted ? '' : r.why).toMatch(
      /signed with a GPG key \(4AEE18F83AFDEB23\): only SSH keys/,
    );
  });

  it('is not when unsigned, or signed by a key that is not an allowed signer', async () => {
    for (const [status, why] of [
      ['N', /is not signed/],
      ['U', /not an allowed signer/],
      ['B', /does not verify/],
    ] as const) {
      const r = await checkSignature(
        mirrorSaying({ status, key: 'SHA256:x', signer: '' }),
        rev,
        '/s',
      );
      expect(r.trusted, status).toBe(false);
      expect(r.trusted ? '' : r.why).toMatch(why);
    }
  });
});
