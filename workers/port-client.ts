/**
 * The main thread's end of a long-lived worker task served over its own
 * message port (a file sink, a file source): requests carry ids and are
 * answered in order; a `closed` reply is the task's last word, and once the
 * port closes nothing more will be answered, so every request still waiting
 * is rejected.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { FtsError } from '../protocol/errors.js';

type Waiter<Rep> = { resolve: (reply: Rep) => void; reject: (error: Error) => void };

export class PortClient<Req extends { op: string; id: number }, Rep extends { op: string; id: number }> {
  private readonly port: MessagePort;
  private readonly waiting = new Map<number, Waiter<Rep>>();
  /** Resolves once the task has ended (and closed its descriptors), however it ended. */
  readonly done: Promise<void>;
  private nextId = 1;
  private closed = false;

  /**
   * `start` runs the task with the worker's end of the port; `lastWord` reads
   * why it ended from its `closed` reply, if it said.
   */
  constructor(
    private readonly what: string,
    start: (port: MessagePort) => Promise<unknown>,
    lastWord: (closed: Rep) => Error | undefined = () => undefined,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    let ended!: () => void;
    this.done = new Promise<void>((resolve) => (ended = resolve));
    let failure: Error | undefined;
    port1.on('message', (reply: Rep) => {
      if (reply.op === 'closed') {
        failure = lastWord(reply) ?? failure;
        return;
      }
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    // The worker closes its end after its last reply, and messages sent before
    // a close arrive before it: so at 'close' nothing more will be answered.
    port1.once('close', () => {
      this.closed = true;
      // Made only when someone waits: an error's stack costs about 30 µs, and most ports close with nothing waiting.
      if (this.waiting.size > 0) {
        const error = failure ?? new FtsError(-750, `${what} closed`);
        for (const waiter of this.waiting.values()) waiter.reject(error);
      }
      this.waiting.clear();
      ended();
    });
    // The transfer's socket keeps the process alive while it matters; an idle task must not.
    port1.unref();
    start(port2).then(
      () => undefined,
      (error: unknown) => {
        // The task never ran or its worker died: its end of the port may never close.
        failure = error instanceof Error ? error : new Error(String(error));
        this.port.close();
      },
    );
  }

  /** Whether the port has closed: nothing more will be answered. */
  get ended(): boolean {
    return this.closed;
  }

  /** Sends `m` (its id is set here) and resolves with its answer. */
  request(m: Req, transfer: ArrayBuffer[]): Promise<Rep> {
    if (this.closed) return Promise.reject(new FtsError(-750, `${this.what} closed`));
    const id = this.nextId++;
    m.id = id;
    return new Promise<Rep>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.port.postMessage(m, transfer);
    });
  }

  /** Sends `m`, which has no answer (abort, close). */
  post(m: Req): void {
    if (!this.closed) this.port.postMessage(m);
  }
}
