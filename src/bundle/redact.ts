// Secrets never leave the hosts in a bundle: values that look like tokens, keys or passwords
// are replaced before anything is written. Environment files are never read at all.
//
// JSON (a whole file, or one object per line as journalctl writes it) is parsed and walked:
// a value under a secret-looking key is replaced, every other string is redacted as text, and
// the result is JSON again. Text is redacted by patterns that stop at quotes and delimiters,
// so that what surrounds a secret (exo's own figures, the JSON around it) stays as it was.
//
// Written here rather than taken from a secret scanner (secretlint, detect-secrets): those
// report findings in source trees; this must rewrite logs in place, keep their shape, and
// leave exo's diagnostics (max_tokens=…, node ids, tokens/s) readable.

const REDACTED = '<redacted>';

/** A key or variable name that holds a secret: it ends in one of these words (HF_TOKEN,
 * access_token, db-password, X-Api-Key), so that max_tokens or token_count do not. */
const SECRET_NAME =
  /(?:^|[^A-Za-z0-9])(?:token|secret|password|passwd|passphrase|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?|authorization|auth|cookie|webhook(?:[_-]?url)?)$|^(?:[A-Z0-9]+(?:TOKEN|SECRET|PASSWORD|PASSWD))$/i;

function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name.trim());
}

/** Token shapes that are secrets wherever they appear. */
const TOKEN_SHAPES: RegExp[] = [
  /\bhf_[A-Za-z0-9]{16,}/g, // Hugging Face user token
  /\bapi_org_[A-Za-z0-9]{16,}/g, // Hugging Face organisation token
  /\bgh[pousr]_[A-Za-z0-9]{30,}/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g, // GitHub fine-grained token
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b/g, // AWS access key id
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack tokens
  /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]+/g, // Slack webhooks
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, // JWTs
  /\bnpm_[A-Za-z0-9]{30,}/g, // npm tokens
  /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}/g, // OpenAI and Anthropic keys
  /\bAIza[0-9A-Za-z_-]{35}/g, // Google API keys
  /\b[rs]k_live_[A-Za-z0-9]{16,}/g, // Stripe keys
];

/** A value after "NAME=" or "NAME:": quoted (the quotes kept), or up to a delimiter. */
const VALUE = String.raw`("(?:[^"\\]|\\.)*"|'[^']*'|[^\s"',;}\])]+)`;
/** NAME = value, NAME: value, "NAME": "value" (as text, where JSON did not parse). */
const ASSIGNMENT = new RegExp(
  String.raw`(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1(\s*[=:]\s*)${VALUE}`,
  'g',
);

const HEADERS: [RegExp, string][] = [
  // the whole value of these headers, scheme and all
  [
    /\b((?:Proxy-)?Authorization|Cookie|Set-Cookie|X-Api-Key|X-Auth-Token)(\s*:\s*)(?!\s*")[^\r\n"]+/gi,
    `$1$2${REDACTED}`,
  ],
];

const PRIVATE_BLOCKS: [RegExp, string][] = [
  // PEM and PGP private keys, whole
  [
    /-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----/g,
    '<redacted private key>',
  ],
  // a block cut short (a time window ended in it): its header lines and base64 lines
  [
    /-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:[ \t]*\r?\n(?:[A-Za-z-]+: .*|[A-Za-z0-9+/=]*))*/g,
    '<redacted private key>',
  ],
];

/** scheme://user:password@host: the password (which may hold "/" and "@") up to the last "@"
 * before the host; a long user alone (a token as user name) too. */
const URL_CREDENTIALS: [RegExp, string][] = [
  [
    /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']+:)[^\s"']*@(?=[^@\s"'/]+(?:[/:?#\s"']|$))/gi,
    `$1${REDACTED}@`,
  ],
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[A-Za-z0-9_-]{20,}@/gi, `$1${REDACTED}@`],
];

function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of [...PRIVATE_BLOCKS, ...HEADERS, ...URL_CREDENTIALS])
    out = out.replace(pattern, replacement);
  out = out.replace(
    ASSIGNMENT,
    (whole, quote: string, name: string, sep: string, value: string) => {
      const q = value[0] === '"' || value[0] === "'" ? value[0] : '';
      if (isSecretName(name))
        return value.includes(REDACTED)
          ? whole
          : `${quote}${name}${quote}${sep}${q}${REDACTED}${q}`;
      // Environment="DB_PASSWORD=…", Environment=DB_PASSWORD=…: the value is text of its own
      if (q) return `${quote}${name}${quote}${sep}${q}${redactText(value.slice(1, -1))}${q}`;
      return /[=:]/.test(value) ? `${quote}${name}${quote}${sep}${redactText(value)}` : whole;
    },
  );
  for (const shape of TOKEN_SHAPES) out = out.replace(shape, REDACTED);
  return out;
}

/** A parsed JSON value with every secret replaced. */
function redactJson(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map(redactJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        isSecretName(k) && v !== null && typeof v !== 'object' ? REDACTED : redactJson(v),
      ]),
    );
  }
  return value;
}

function parsesAsJson(text: string): { value: unknown } | null {
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    return { value: JSON.parse(t) };
  } catch {
    return null;
  }
}

/** Redacts a file's content: JSON as JSON (whole, or line by line), anything else as text. */
export function redact(content: string): string {
  const whole = parsesAsJson(content);
  if (whole)
    return `${JSON.stringify(redactJson(whole.value), null, /\n\s+"/.test(content) ? 2 : undefined)}${content.endsWith('\n') ? '\n' : ''}`;
  // one JSON object per line (journalctl -o json) next to plain lines
  const lines = content.split('\n');
  if (lines.some((l) => parsesAsJson(l))) {
    return lines
      .map((l) => {
        const parsed = parsesAsJson(l);
        return parsed ? JSON.stringify(redactJson(parsed.value)) : redactText(l);
      })
      .join('\n');
  }
  return redactText(content);
}
