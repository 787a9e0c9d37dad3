// The reading end of a channel: records are read in place, each a view of the ring valid until
// the next receive or release(), which gives its room back to the writer.
import type { IpcTarget } from '../ipc';
import {
  ChannelEnd, type ChannelCreateOptions, type ChannelWaitOptions, createParts, openParts, type Parts, validateWaiting, type Waiting,
} from './end';
import { corrupt, KIND_DATA, KIND_PADDING, maxPayload, RECORD_HEADER, recordBytes, W } from './layout';

export class ChannelReader extends ChannelEnd {
  #read: number;
  /** The bytes of the record last received, given back at the next receive or release(). */
  #held = 0;

  private constructor(parts: Parts) {
    super('reader', parts);
    this.#read = Atomics.load(this.words, W.read) >>> 0;
  }

  /** Makes a channel under `key` (none for a random unused key) and is its reader. */
  static create(key?: number | null, options?: ChannelCreateOptions): ChannelReader {
    return new ChannelReader(createParts('reader', key, options));
  }

  /** Opens the channel under a key, or with an id (`{ id }`), as its reader. */
  static async open(target: IpcTarget): Promise<ChannelReader> {
    return new ChannelReader(await openParts('reader', target));
  }

  /**
   * The next record, in place: a view of the ring, valid until the next receive or release().
   * Resolves with null once the writer closed the channel and every record was read.
   */
  receive(options?: ChannelWaitOptions): Promise<Buffer | null> {
    return this.#take(options, (record) => record);
  }

  /** receive, blocking the thread while the channel is empty. */
  receiveSync(options?: Omit<ChannelWaitOptions, 'signal'>): Buffer | null {
    this.checkNoPending();
    const waiting = validateWaiting(options, false);
    this.release();
    for (;;) {
      const record = this.#next();
      if (record !== undefined) return record;
      this.waitForSync(() => this.#available(), waiting);
    }
  }

  /** A copy of the next record, which stays valid: receive() then release(), as one call. */
  receiveCopy(options?: ChannelWaitOptions): Promise<Buffer | null> {
    return this.#take(options, (record) => {
      const copy = record === null ? null : Buffer.from(record);
      this.release();
      return copy;
    });
  }

  /**
   * The next record, given to `use` within the call (so that no other call of this end can
   * release it meanwhile). At once when nothing is pending and a record is there (or the end),
   * or comes within the spin: no promise chain, which costs more than the receive itself.
   */
  #take<T>(options: ChannelWaitOptions | undefined, use: (record: Buffer | null) => T): Promise<T> {
    let spun = false;
    if (options === undefined && this.idle) {
      try {
        this.release();
        let record = this.#next();
        if (record === undefined && this.spinFirst(() => this.#available())) record = this.#next();
        if (record !== undefined) return Promise.resolve(use(record));
        spun = true;
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.serially(options, async (waiting) => {
      const record = await this.#receive(waiting, spun);
      // Closed since (which unmapped the ring): the record is not there to give.
      this.checkOpen();
      return use(record);
    });
  }

  /** Gives the last record's room back to the writer; its view must not be used after. */
  release(): void {
    if (this.#held === 0 || this.closed) return;
    this.#read = (this.#read + this.#held) >>> 0;
    this.#held = 0;
    Atomics.store(this.words, W.read, this.#read | 0);
    this.wakePeer();
  }

  /** Every record as it comes, each valid until the next; ends when the writer closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      const record = await this.receive();
      if (record === null) return;
      yield record;
    }
  }

  /** The next record, waiting for it; `spun`: spinFirst() spun for it already, without luck. */
  async #receive(waiting: Waiting, spun: boolean): Promise<Buffer | null> {
    this.release();
    for (let spin = !spun; ; spin = true) {
      const record = this.#next();
      if (record !== undefined) return record;
      await this.waitFor(() => this.#available(), waiting, spin);
    }
  }

  /** Whether the record at the read position is there: its stamp is this position's, of some kind. */
  #available(): boolean {
    const stamp = Atomics.load(this.ringWords, ((this.#read & (this.capacity - 1)) >> 2) + 1);
    return ((stamp ^ this.#read) & ~7) === 0 && (stamp & 7) !== 0;
  }

  /**
   * The record at the read position, checked against the ring's bounds: the writer may be
   * another program, buggy or hostile. undefined if there is none yet; null if there will be
   * none (the writer closed); throws if the writer is gone or wrote garbage.
   */
  #next(): Buffer | null | undefined {
    this.checkOpen();
    if (!this.#available()) {
      try {
        this.checkPeer();
        return undefined;
      } catch (error) {
        // Closed, or gone: what it wrote before is all there is, and it may have written more
        // since this end last looked.
        if (!this.#available()) {
          if (this.peerEnded()) return null;
          throw error;
        }
      }
    }
    const capacity = this.capacity;
    let offset = this.#read & (capacity - 1);
    const words = this.ringWords;
    let kind = words[(offset >> 2) + 1] & 7;
    if (kind === KIND_PADDING) {
      if (words[offset >> 2] !== capacity - offset - RECORD_HEADER) throw corrupt(`a padding record at ${offset} does not reach the end of the ring`);
      this.#read = (this.#read + capacity - offset) >>> 0;
      // Given back at once: nothing of it is handed out.
      Atomics.store(this.words, W.read, this.#read | 0);
      this.wakePeer();
      if (!this.#available()) return undefined;
      offset = 0;
      kind = words[1] & 7;
    }
    const length = words[offset >> 2] >>> 0;
    if (kind !== KIND_DATA) throw corrupt(`a record at ${offset} is of kind ${kind}`);
    if (length > maxPayload(capacity) || offset + recordBytes(length) > capacity) {
      throw corrupt(`a record at ${offset} says it holds ${length} bytes, more than the ring has room for`);
    }
    this.#held = recordBytes(length);
    return this.ring.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
  }
}
