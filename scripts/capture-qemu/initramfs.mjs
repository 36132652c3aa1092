// A gzipped cpio archive in the kernel's "newc" format
// (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
// ASCII header per entry, name and data each padded to 4 bytes, ended by
// "TRAILER!!!". Written here because the host has no cpio; the kernel's own
// unpacker (init/initramfs.c) is what reads it.
import { gzipSync } from 'node:zlib';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

function header(ino, mode, size, nameSize) {
  const f = (v) => v.toString(16).padStart(8, '0');
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return `070701${f(ino)}${f(mode)}${f(0)}${f(0)}${f(1)}${f(0)}${f(size)}${f(0)}${f(0)}${f(0)}${f(0)}${f(nameSize)}${f(0)}`;
}

/**
 * The archive of `entries` ({path, mode, data?}; a directory has no data),
 * gzipped. mtime is 0 and owners root, so the same inputs give the same bytes.
 */
export function newcArchive(entries) {
  const parts = [];
  let ino = 1;
  const add = (path, mode, data) => {
    const name = Buffer.from(`${path}\0`);
    const head = Buffer.from(header(ino++, mode, data.length, name.length), 'ascii');
    parts.push(head, name, Buffer.alloc(pad4(head.length + name.length)));
    parts.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    if (e.data === undefined) add(e.path, S_IFDIR | e.mode, Buffer.alloc(0));
    else add(e.path, S_IFREG | e.mode, e.data);
  }
  add('TRAILER!!!', 0, Buffer.alloc(0));
  return gzipSync(Buffer.concat(parts), { level: 6 });
}
