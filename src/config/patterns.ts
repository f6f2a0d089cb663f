// Names that reach ssh, nix or a remote shell are held to strict patterns: nothing that a
// shell or ssh would read as an option or a metacharacter.
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const USER = '[a-z_][a-z0-9_-]{0,31}';
const DNS_NAME = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*';
const IPV4 = '\\d{1,3}(?:\\.\\d{1,3}){3}';
const IPV6 = '[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*';
/** `local`, or `[user@]host` where host is a DNS name or an IPv4/IPv6 address. */
export const SSH_TARGET = new RegExp(`^(?:${USER}@)?(?:${IPV4}|${DNS_NAME}|${IPV6})$`);
export const TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** A flake input name as `nix flake lock --update-input` takes it. */
export const FLAKE_INPUT = /^[A-Za-z_][A-Za-z0-9_'-]*(?:\/[A-Za-z_][A-Za-z0-9_'-]*)*$/;
/** An absolute path without characters that could surprise a remote shell or systemd. */
export const SAFE_ABS_PATH = /^\/[A-Za-z0-9._+@%/-]*$/;
export const UNIT_NAME = /^[A-Za-z0-9:_.@-]+\.service$/;
