// The bundle's redactor against a corpus of realistic (made-up) secrets in the forms they take
// in logs, unit files, journal JSON and configuration; and exo's own lines, which must come out
// as they went in.
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/bundle/redact.js';

/** [what it is, the text it appears in, the secret that must not survive]. */
const CORPUS: [string, string, string][] = [
  ['HF token as a variable', 'HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUv', 'hf_AbCdEfGhIjKlMnOpQrStUv'],
  [
    'HF token in a unit file',
    'Environment="HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUv"',
    'AbCdEfGhIjKlMnOpQrStUv',
  ],
  [
    'HF token in prose',
    'downloading with token hf_ZyXwVuTsRqPoNmLkJiHg',
    'hf_ZyXwVuTsRqPoNmLkJiHg',
  ],
  [
    'HF organisation token',
    'using api_org_QwErTyUiOpAsDfGhJkLz for the org',
    'api_org_QwErTyUiOpAsDfGhJkLz',
  ],
  ['a password in a unit file', 'Environment="DB_PASSWORD=Tr0ub4dor&3"', 'Tr0ub4dor&3'],
  [
    'a password in a unit file, unquoted',
    'Environment=DB_PASSWORD=Tr0ub4dor&3 HOME=/var/lib/exo',
    'Tr0ub4dor&3',
  ],
  [
    'a secret in systemctl status',
    'ExecStartPre=/bin/echo loading with PGPASSWORD=c0rr3ct-h0rse',
    'c0rr3ct-h0rse',
  ],
  [
    'AWS secret key',
    'AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  ],
  ['AWS access key id', 'credentials from AKIAIOSFODNN7EXAMPLE loaded', 'AKIAIOSFODNN7EXAMPLE'],
  ['quoted password', 'password = "correct horse battery"', 'correct horse battery'],
  ['Bearer header', 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc', 'eyJhbGciOiJIUzI1NiJ9'],
  ['Basic header', 'Proxy-Authorization: Basic b3BzOnMzY3IzdA==', 'b3BzOnMzY3IzdA=='],
  [
    'header as JSON',
    '{"headers": {"Authorization": "Bearer sk-live-abcdef0123456789abcdef"}}',
    'sk-live-abcdef0123456789abcdef',
  ],
  [
    'header as a Python dict',
    "headers={'Authorization': 'Bearer tok_4f9c2b1e8d7a6f5e4d3c'}",
    'tok_4f9c2b1e8d7a6f5e4d3c',
  ],
  ['token in JSON', '{"token": "s3cr3t-t0k3n-v4lu3", "model": "llama"}', 's3cr3t-t0k3n-v4lu3'],
  [
    'token in a JSON line of text',
    'request body: {"api_key": "k-9d8c7b6a5f4e3d2c1b0a", "n": 1}',
    'k-9d8c7b6a5f4e3d2c1b0a',
  ],
  [
    'X-Api-Key header',
    'X-Api-Key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
  ],
  ['Cookie header', 'Cookie: session=8f7e6d5c4b3a2910; theme=dark', '8f7e6d5c4b3a2910'],
  [
    'GitHub classic token',
    'git push with ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R',
    'ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R',
  ],
  [
    'GitHub fine-grained token',
    'GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
    'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
  ],
  [
    'token as URL user',
    'fetching https://ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345@github.com/org/repo',
    'ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345',
  ],
  [
    'generic token as URL user',
    'remote https://Zq8Xv2Nw5Lp9Kt3Hr7Jm1Bc6Df4Gs0Ay@git.example.org/x.git',
    'Zq8Xv2Nw5Lp9Kt3Hr7Jm1Bc6Df4Gs0Ay',
  ],
  ['proxy password', 'HTTPS_PROXY=http://ops:s3cr3t@proxy.lan:3128', 's3cr3t'],
  ['password with / and @', 'url=https://ops:p@ss/w0rd@proxy.lan:3128/x', 'p@ss/w0rd'],
  [
    'bare JWT',
    'session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok',
    'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  ],
  [
    'Slack bot token',
    'notify via xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
    'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  ],
  [
    'Slack webhook',
    'POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
    'XXXXXXXXXXXXXXXXXXXXXXXX',
  ],
  [
    'npm token',
    '//registry/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
    'npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
  ],
  [
    'OpenSSH private key',
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----',
    'b3BlbnNzaC1rZXktdjE',
  ],
  [
    'PGP private key',
    '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0example0key0material\n-----END PGP PRIVATE KEY BLOCK-----',
    'lQOYBF0example0key0material',
  ],
  [
    'a PEM block cut by the time window',
    'last lines:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAexample0material\nAnotherLineOfKey0123',
    'MIIEowIBAAKCAQEAexample0material',
  ],
];

describe('bundle redaction', () => {
  it.each(CORPUS)('%s: the secret is gone', (_what, text, secret) => {
    const out = redact(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('redacted');
  });

  it.each(CORPUS)('%s: gone from journal JSON too', (_what, text, secret) => {
    const journal = `${JSON.stringify({ __REALTIME_TIMESTAMP: '1764500000000000', MESSAGE: text })}\n${JSON.stringify({ MESSAGE: 'INFO ok' })}\n`;
    const out = redact(journal);
    expect(out).not.toContain(secret);
    // still one JSON object per line
    for (const line of out.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('keeps JSON JSON: values under secret keys replaced, the rest as it was, the indentation too', () => {
    const status = JSON.stringify(
      {
        healthy: true,
        hosts: [
          {
            name: 'h1',
            env: { HF_TOKEN: 'hf_AbCdEfGhIjKlMnOpQrStUv', HF_HOME: '/var/lib/exo/hf' },
            password: 42,
            max_tokens: 512,
          },
        ],
      },
      null,
      2,
    );
    const out = redact(`${status}\n`);
    const parsed = JSON.parse(out);
    expect(parsed.hosts[0].env).toEqual({ HF_TOKEN: '<redacted>', HF_HOME: '/var/lib/exo/hf' });
    expect(parsed.hosts[0].password).toBe('<redacted>');
    expect(parsed.hosts[0].max_tokens).toBe(512);
    expect(out).toContain('\n  "healthy": true');
  });

  it("leaves exo's own lines alone: figures named after tokens, node ids, paths, tracebacks", () => {
    const lines = [
      '[ 03:00:46 | INFO ] Runner terminated with exitcode=1 on node 3f2a; tokens/s 41.2',
      '[ 02:43:09.0206PM | INFO    ] exo stand-in: exo 0.2.0 (zenoh era, package 0.3.70), namespace 0.3.70, api port 52415',
      'ChatCompletionTaskParams(model=mlx-community/Llama-3.2-1B-Instruct-4bit, max_tokens=512, temperature=0.7, num_tokens=128)',
      'Starting node 5a2cd4a2d63509fa6aaaafceac31f50e',
      'prompt_tokens=17 completion_tokens=64 total_tokens=81',
      'File "/nix/store/abc-exo/lib/python3.13/site-packages/exo/worker/runner.py", line 88, in run',
      'anyio.ClosedResourceError',
      'Downloading https://huggingface.co/mlx-community/Llama-3.2-1B-Instruct-4bit/resolve/main/model.safetensors',
    ];
    for (const line of lines) expect(redact(line)).toBe(line);
  });
});
