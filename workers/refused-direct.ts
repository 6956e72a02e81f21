/**
 * Direct (O_DIRECT) descriptors the file system refused a read on (EINVAL),
 * so their reads go through the page cache from then on. Each is kept with
 * its file's identity: descriptor numbers are reused once closed, and another
 * file opened later under the same number must not inherit the refusal.
 */
import { fstatSync } from 'node:fs';

function identity(fd: number): string | undefined {
  try {
    const st = fstatSync(fd);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export class RefusedDirect {
  private readonly files = new Map<number, string>();

  add(fd: number): void {
    const id = identity(fd);
    if (id !== undefined) this.files.set(fd, id);
  }

  /** Whether reads on `fd` were refused; a descriptor seen before that now names another file was not. */
  has(fd: number): boolean {
    const id = this.files.get(fd);
    if (id === undefined) return false;
    // Only descriptors that were refused pay for this fstat: their reads are buffered anyway.
    if (identity(fd) === id) return true;
    this.files.delete(fd);
    return false;
  }
}
