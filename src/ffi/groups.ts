/**
 * Group lookup through libc (koffi): getgrnam(3) goes through NSS, so groups from LDAP or
 * sssd resolve as they do for chgrp(1). Node has no API for it.
 */
import koffi, { type TypeObject } from 'koffi';

let getgrnam: ((name: string) => unknown) | undefined;
let GroupStruct: TypeObject | undefined;

/** The gid of `group` (a name or a numeric gid); throws a one-line error if it is unknown. */
export function resolveGroup(group: string): number {
  if (/^[0-9]+$/.test(group)) return Number(group);
  if (!getgrnam) {
    const libc = koffi.load('libc.so.6');
    GroupStruct = koffi.struct('mxfs_group', { gr_name: 'char *', gr_passwd: 'char *', gr_gid: 'uint32_t', gr_mem: 'void *' });
    getgrnam = libc.func('getgrnam', koffi.pointer(GroupStruct), ['const char *']);
  }
  const p = getgrnam(group);
  if (p === null || p === undefined) throw new Error(`unknown group '${group}'`);
  return (koffi.decode(p, GroupStruct!) as { gr_gid: number }).gr_gid;
}
