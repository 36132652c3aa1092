import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';

/**
 * A thread that reads a capture's text dump into shared memory and hashes
 * it, while the thread that loads the capture parses and imports the rest.
 * Reading 12 MiB into fresh memory and hashing it is a fifth of `klpsim
 * walk`'s start; on a second core it costs the loader only the wait for
 * what is left of it. The thread starts when the load does, so its own
 * start-up overlaps the JSON's. Its code is a string (an eval worker): it
 * has no file to be found, in the bundle or out of it.
 */

/** The thread's code: one job, the bytes read as `fileDump` reads them, then their sha256. */
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { closeSync, openSync, readSync } = require('node:fs');
const { createHash } = require('node:crypto');
parentPort.once('message', ({ file, into, flag, port }) => {
  let out;
  try {
    const fd = openSync(file, 'r');
    try {
      let done = 0;
      while (done < into.length) {
        const n = readSync(fd, into, done, into.length - done, done);
        if (n === 0) throw new Error(file + ' changed while it was read');
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    out = { digest: createHash('sha256').update(into).digest('hex') };
  } catch (e) {
    out = { error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(out);
  const f = new Int32Array(flag);
  Atomics.store(f, 0, 1);
  Atomics.notify(f, 0);
});
`;

/**
 * How long the loader waits for the thread before reading the dump itself
 * (a thread that could not start, or a machine so loaded that it did not
 * get to run): the same bytes either way.
 */
const PATIENCE_MS = 5000;

export class TextThread {
  private readonly worker: Worker;

  private constructor() {
    this.worker = new Worker(SOURCE, { eval: true });
    // A load that fails before it hands the thread a job must not keep the process alive.
    this.worker.unref();
    this.worker.on('error', () => {});
  }

  /** A thread starting up, or null where none can be had. */
  static start(): TextThread | null {
    try {
      return new TextThread();
    } catch {
      return null;
    }
  }

  /**
   * Starts reading `file` into `into` (a view of shared memory). Returns
   * the wait: the bytes' sha256, or an Error with the read's message (the
   * message reading on this thread would give).
   */
  read(file: string, into: Uint8Array, fallback: (into: Uint8Array) => string): () => string {
    const flag = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    this.worker.postMessage({ file, into, flag, port: port2 }, [port2]);
    return () => waitFor(flag, port1, () => fallback(into));
  }

  /** Ends the thread (its job done, or never given). */
  close(): void {
    void this.worker.terminate();
  }
}

function waitFor(flag: SharedArrayBuffer, port: MessagePort, fallback: () => string): string {
  const done = Atomics.wait(new Int32Array(flag), 0, 0, PATIENCE_MS) !== 'timed-out';
  const reply = done ? receiveMessageOnPort(port)?.message : undefined;
  port.close();
  if (reply === undefined) return fallback();
  const r = reply as { digest?: string; error?: string };
  if (r.error !== undefined) throw new Error(r.error);
  return r.digest!;
}
