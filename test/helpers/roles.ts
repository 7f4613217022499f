// LOGIN roles for tests that connect as the watcher or as a consumer. Each has a password of its
// own, put into its URL: reusing the admin URL with another user name works only under trust
// authentication, and the embedded server (and most real ones) require a password (SCRAM).
import crypto from 'node:crypto';
import type { TestDatabase } from './db.js';

export interface LoginRole {
  role: string;
  password: string;
  /** The test database's URL, logged in as this role. */
  url: string;
}

const created = new Map<TestDatabase, string[]>();

/** A LOGIN role that is a member of `group` (vm_sync_writer, vm_sync_reader), unique to this run. */
export async function createLoginRole(db: TestDatabase, group: string, label = group.replace(/^vm_sync_/, '')): Promise<LoginRole> {
  const role = `vmsync_t_${label.replace(/[^a-z0-9_]/g, '_')}_${crypto.randomBytes(4).toString('hex')}`;
  const password = crypto.randomBytes(12).toString('base64url');
  await db.query(`create role ${role} login password '${password}' in role ${group}`);
  created.set(db, [...(created.get(db) ?? []), role]);
  const url = new URL(db.url);
  url.username = role;
  url.password = password;
  return { role, password, url: url.toString() };
}

/** Drops the roles createLoginRole made for `db` (call before db.drop(): roles are cluster-wide). */
export async function dropLoginRoles(db: TestDatabase): Promise<void> {
  for (const role of created.get(db) ?? []) {
    await db.query(`drop owned by ${role}`).catch(() => undefined);
    await db.query(`drop role if exists ${role}`);
  }
  created.delete(db);
}
