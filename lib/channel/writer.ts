// The writing end of a channel: records go into the ring at the write position, copied in or
// written in place, and are published by one store, of their stamp; the reader is woken only if
// it sleeps.
import { outOfRange } from '../errors';
import type { IpcTarget } from '../ipc';
import { toBytes, validateInteger } from '../validate';
import {
  ChannelEnd, type ChannelCreateOptions, type ChannelWaitOptions, createParts, openParts, type Parts, validateWaiting, type Waiting,
} from './end';
import { corrupt, KIND_DATA, KIND_PADDING, maxPayload, RECORD_HEADER, recordBytes, stamp, W } from './layout';

export class ChannelWriter extends ChannelEnd {
  #write: number;
  #readSeen: number;
  /** The reserve()d record, -1 if none: where in the ring, its payload's length, and the write position after it. */
  #reservedAt = -1;
  #reservedLength = 0;
  #reservedNext = 0;
  private constructor(parts: Parts) {
    super('writer', parts);
    this.#write = Atomics.load(this.words, W.write) >>> 0;
    this.#readSeen = Atomics.load(this.words, W.read);
  }

  /**
   * Makes a channel (a segment of `capacity` bytes of ring, and its doorbells) under `key` (none
   * for a random unused key) and is its writer; the reader opens it by key or id.
   */
  static create(key?: number | null, options?: ChannelCreateOptions): ChannelWriter {
    return new ChannelWriter(createParts('writer', key, options));
  }

  /** Opens the channel under a key, or with an id (`{ id }`), as its writer. */
  static async open(target: IpcTarget): Promise<ChannelWriter> {
    return new ChannelWriter(await openParts('writer', target));
  }

  /** The largest record: half the ring. */
  get maxMessageSize(): number {
    return maxPayload(this.capacity);
  }

  /** Copies `data` (a string is UTF-8) into the channel as one record; waits for room off the event loop. */
  send(data: string | ArrayBufferView, options?: ChannelWaitOptions): Promise<void> {
    // At once when nothing is pending and there is room: no promise chain, which costs more
    // than the send itself.
    if (options === undefined && this.idle) {
      try {
        const bytes = toBytes(data);
        const need = this.#need(bytes.length);
        if (this.#hasRoom(need)) {
          this.#place(bytes.length, need);
          this.ring.set(bytes, this.#reservedAt + RECORD_HEADER);
          this.commit();
          return Promise.resolve();
        }
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.serially(options, async (waiting) => {
      const bytes = toBytes(data);
      await this.#reserve(bytes.length, waiting);
      // Closed since (which unmapped the ring): there is no room to fill.
      this.checkOpen();
      this.ring.set(bytes, this.#reservedAt + RECORD_HEADER);
      this.commit();
    });
  }

  /** send, blocking the thread while the ring is full. */
  sendSync(data: string | ArrayBufferView, options?: Omit<ChannelWaitOptions, 'signal'>): void {
    this.checkNoPending();
    const bytes = toBytes(data);
    this.#reserveSync(bytes.length, options);
    this.ring.set(bytes, this.#reservedAt + RECORD_HEADER);
    this.commit();
  }

  /** Room for a record of `length` bytes, in place: fill the Buffer, then commit(). */
  reserve(length: number, options?: ChannelWaitOptions): Promise<Buffer> {
    return this.serially(options, async (waiting) => {
      await this.#reserve(length, waiting);
      this.checkOpen();
      return this.#reservedView();
    });
  }

  /** reserve, blocking the thread while the ring is full. */
  reserveSync(length: number, options?: Omit<ChannelWaitOptions, 'signal'>): Buffer {
    this.#reserveSync(length, options);
    return this.#reservedView();
  }

  #reserveSync(length: number, options: ChannelWaitOptions | undefined): void {
    this.checkNoPending();
    const waiting = validateWaiting(options, false);
    const need = this.#need(length);
    while (!this.#hasRoom(need)) this.waitForSync(() => this.#hasRoom(need), waiting);
    this.#place(length, need);
  }

  async #reserve(length: number, waiting: Waiting): Promise<void> {
    const need = this.#need(length);
    while (!this.#hasRoom(need)) await this.waitFor(() => this.#hasRoom(need), waiting);
    this.#place(length, need);
  }

  #reservedView(): Buffer {
    const start = this.#reservedAt + RECORD_HEADER;
    return this.ring.subarray(start, start + this.#reservedLength);
  }

  /** Publishes the reserve()d record: the reader may take it from now on. */
  commit(): void {
    this.checkOpen();
    const offset = this.#reservedAt;
    if (offset < 0) throw Object.assign(new Error('Invalid state: nothing is reserved'), { code: 'ERR_INVALID_STATE' });
    this.#reservedAt = -1;
    const position = (this.#reservedNext - recordBytes(this.#reservedLength)) | 0;
    this.ringWords[offset >> 2] = this.#reservedLength;
    // The next record's stamp word, cleared before this record is published: the reader looks
    // at it as soon as it has this record, and until then it may hold anything (payload of an
    // earlier lap, or a stamp 2^32 bytes old). Not when the ring is full after this record:
    // it is then the unread record at the read position, whose stamp is of another lap.
    const next = this.#reservedNext;
    if (((next - this.#readSeen) >>> 0) < this.capacity) this.ringWords[((next & (this.capacity - 1)) >> 2) + 1] = 0;
    // The stamp last: the reader takes the record from then on. (Atomic, so that what the
    // reader reads of the record is written before it, and that this end then sees whether the
    // reader sleeps: it marks its sleep before it looks at the stamp.)
    Atomics.store(this.ringWords, (offset >> 2) + 1, stamp(position, KIND_DATA));
    this.#write = this.#reservedNext;
    // For an end that opens the channel later; nothing waits on it.
    this.words[W.write] = this.#write | 0;
    this.wakePeer();
  }

  #need(length: number): number {
    this.checkOpen();
    if (this.#reservedAt >= 0) throw Object.assign(new Error('Invalid state: a reserved record is not committed'), { code: 'ERR_INVALID_STATE' });
    validateInteger(length, 'length', 0, Number.MAX_SAFE_INTEGER);
    if (length > this.maxMessageSize) throw outOfRange('length', `at most ${this.maxMessageSize} bytes (half the channel's capacity)`, length);
    const need = recordBytes(length);
    if ((this.#write & 7) !== 0) throw corrupt(`the write position ${this.#write} is not a multiple of 8`);
    const offset = this.#write & (this.capacity - 1);
    const toEnd = this.capacity - offset;
    return toEnd < need ? need + toEnd : need;
  }

  #hasRoom(need: number): boolean {
    this.checkOpen();
    this.checkPeer();
    if (this.capacity - ((this.#write - this.#readSeen) >>> 0) >= need) return true;
    this.#readSeen = Atomics.load(this.words, W.read) >>> 0;
    return this.capacity - ((this.#write - this.#readSeen) >>> 0) >= need;
  }

  // Pads to the end of the ring if the record does not fit before it.
  #place(length: number, need: number): void {
    let offset = this.#write & (this.capacity - 1);
    if (need !== recordBytes(length)) {
      // Where the reader goes after the padding: cleared before the padding is published.
      this.ringWords[1] = 0;
      this.ringWords[offset >> 2] = this.capacity - offset - RECORD_HEADER;
      Atomics.store(this.ringWords, (offset >> 2) + 1, stamp(this.#write, KIND_PADDING));
      offset = 0;
    }
    this.#reservedAt = offset;
    this.#reservedLength = length;
    this.#reservedNext = (this.#write + need) >>> 0;
  }
}
