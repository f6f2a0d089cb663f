// Secrets never leave the hosts in a bundle: values that look like tokens, keys or passwords
// are replaced before anything is written. Environment files are never read at all.
const PATTERNS: [RegExp, string][] = [
  // NAME=value where the name says it is secret (HF_TOKEN=…, AWS_SECRET_ACCESS_KEY=…, password: …)
  [/\b([A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Za-z0-9_]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;]+)/gi, '$1$2<redacted>'],
  // Hugging Face tokens, wherever they appear
  [/\bhf_[A-Za-z0-9]{16,}\b/g, '<redacted hf token>'],
  // HTTP credentials
  [/\b(Authorization|Proxy-Authorization)(\s*:\s*)(?:(?:Bearer|Basic|Token)\s+)?[^\s"',]+/gi, '$1$2<redacted>'],
  [/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1<redacted>@'],
  // PEM blocks (private keys)
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '<redacted private key>'],
];

export function redact(text: string): string {
  return PATTERNS.reduce((acc, [pattern, replacement]) => acc.replace(pattern, replacement), text);
}
