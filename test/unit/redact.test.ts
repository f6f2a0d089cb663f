import { describe, expect, it } from 'vitest';
import { redact } from '../../src/bundle/redact.js';

describe('bundle redaction', () => {
  it.each([
    ['HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUv', 'hf_AbCdEfGhIjKlMnOpQrStUv'],
    ['Environment="HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUv"', 'hf_AbCdEfGhIjKlMnOpQrStUv'],
    ['downloading with token hf_ZyXwVuTsRqPoNmLkJiHg', 'hf_ZyXwVuTsRqPoNmLkJiHg'],
    ['AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG', 'wJalrXUtnFEMI/K7MDENG'],
    ['password = "correct horse battery"', 'correct horse battery'],
    ['Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc', 'eyJhbGciOiJIUzI1NiJ9'],
    ['HTTPS_PROXY=http://ops:s3cr3t@proxy.lan:3128', 's3cr3t'],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjE'],
  ])('removes the secret from %j', (line, secret) => {
    const out = redact(line);
    expect(out).not.toContain(secret);
    expect(out).toContain('redacted');
  });

  it('leaves ordinary log lines alone', () => {
    const line = '[ 03:00:46 | INFO ] Runner terminated with exitcode=1 on node 3f2a; tokens/s 41.2';
    expect(redact(line)).toBe(line);
  });
});
