/** A sortable id, unique per millisecond: 20261128-031500-123. Names backups and runs. */
export function timestampId(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${iso.slice(20, 23)}`;
}
export const TIMESTAMP_ID = /^\d{8}-\d{6}-\d{3}$/;
