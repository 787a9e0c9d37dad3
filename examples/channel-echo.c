/*
 * A C end of kernel-ipc channels: reads each record of one channel and writes it back on
 * another, until the first one's writer closes it. Everything it knows of a channel is the
 * layout in the README ("The channel's layout"); it needs no library.
 *
 *   cc -O2 -o channel-echo examples/channel-echo.c
 *   channel-echo <requests id> <answers id>
 *
 * The ids are those of two channels a Node process made: ChannelWriter.create() for the
 * requests (this program reads them), ChannelReader.create() for the answers (it writes them).
 * Exit status: 0 once the requests' writer closed and every record was answered; 1 if the other
 * end went away without closing, or wrote what no channel holds; 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { MAGIC = 0x4350494b, VERSION = 2, HEADER_BYTES = 512, PREFIX_OFFSET = 256, PREFIX_BYTES = 256 };
/* The header's 32-bit words. */
enum {
  W_MAGIC, W_VERSION, W_CAPACITY, W_HEADER_BYTES, W_WRITER_PID, W_READER_PID, W_WRITER_CLOSED, W_READER_CLOSED,
  W_WRITE = 16, W_READ = 32, W_WRITER_SLEEPS = 48, W_READER_SLEEPS = 49,
};
/* A sleeps word: AWAKE, or (n << 2) | how, with a new n for every sleep. */
enum { AWAKE, ON_FUTEX, ON_DOORBELL, SLEEP_HOW = 3 };
enum { KIND_DATA = 1, KIND_PADDING = 2, RECORD_HEADER = 8 };
/* How many times to look before sleeping: a few tens of microseconds. */
enum { SPINS = 20000 };

struct end {
  _Atomic int32_t *words;
  unsigned char *ring;
  uint32_t capacity;
  int writer;
  int own_bell;      /* read end of this end's doorbell */
  int peer_bell;     /* write end of the other end's */
  uint32_t position; /* this end's position: bytes written, or released */
  uint32_t sleeps;   /* how many times it slept */
};

static void die(const char *what) {
  fprintf(stderr, "channel-echo: %s\n", what);
  exit(1);
}

static uint32_t record_bytes(uint32_t length) { return RECORD_HEADER + ((length + 7) & ~7u); }

static int32_t load(struct end *e, int word) { return atomic_load(&e->words[word]); }

/* A record's header: its length, then its stamp, the record's position with its kind in the low
   3 bits, stored last. */
static _Atomic int32_t *stamp_at(struct end *e, uint32_t offset) { return (_Atomic int32_t *)(e->ring + offset + 4); }
static int32_t stamp(uint32_t position, uint32_t kind) { return (int32_t)((position & ~7u) | kind); }

/* The reader: whether the record at its position is there (its stamp is the position's). */
static int available(struct end *e, uint32_t unused) {
  (void)unused;
  int32_t seen = atomic_load(stamp_at(e, e->position & (e->capacity - 1)));
  return (((uint32_t)seen ^ e->position) & ~7u) == 0 && (seen & 7) != 0;
}

/* The writer: whether `need` bytes of the ring are free. */
static int has_room(struct end *e, uint32_t need) { return e->capacity - (e->position - (uint32_t)load(e, W_READ)) >= need; }

/* Opens the channel with segment `id` as its writer or reader; the Node process that made it is
   the other end. */
static void open_end(struct end *e, int id, int writer) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) die("no such segment");
  void *memory = shmat(id, NULL, 0);
  if (memory == (void *)-1) die("cannot attach the segment");
  e->words = memory;
  e->writer = writer;
  if (ds.shm_segsz < HEADER_BYTES || load(e, W_MAGIC) != MAGIC) die("the segment holds no channel");
  if (load(e, W_VERSION) != VERSION || load(e, W_HEADER_BYTES) != HEADER_BYTES) die("a channel of another version");
  e->capacity = (uint32_t)load(e, W_CAPACITY);
  if (e->capacity < 4096 || e->capacity > (1u << 30) || (e->capacity & (e->capacity - 1)) || HEADER_BYTES + e->capacity > ds.shm_segsz)
    die("the channel's capacity does not fit its segment");
  e->ring = (unsigned char *)memory + HEADER_BYTES;
  const char *prefix = (const char *)memory + PREFIX_OFFSET;
  const char *nul = memchr(prefix, 0, PREFIX_BYTES);
  if (nul == NULL || nul - prefix + sizeof ".writer" > PREFIX_BYTES || prefix[0] != '/') die("the doorbells' path is not valid");
  char mine[PREFIX_BYTES], theirs[PREFIX_BYTES];
  snprintf(mine, sizeof mine, "%s.%s", prefix, writer ? "writer" : "reader");
  snprintf(theirs, sizeof theirs, "%s.%s", prefix, writer ? "reader" : "writer");
  int32_t vacant = 0;
  if (!atomic_compare_exchange_strong(&e->words[writer ? W_WRITER_PID : W_READER_PID], &vacant, getpid()))
    die("the channel already has this end");
  /* The other end's doorbell first: opening this end's is what tells it that the channel is
     connected. Writes never block: one byte waiting is enough to wake it. */
  e->peer_bell = open(theirs, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  e->own_bell = open(mine, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (e->peer_bell < 0 || e->own_bell < 0) die("cannot open the doorbells");
  /* Both ends attached: the kernel frees the segment when both have gone. */
  shmctl(id, IPC_RMID, NULL);
  e->position = (uint32_t)load(e, writer ? W_WRITE : W_READ);
  e->sleeps = 0;
  uint32_t write = (uint32_t)load(e, W_WRITE), read = (uint32_t)load(e, W_READ);
  if ((write & 7) || (read & 7) || write - read > e->capacity) die("the channel's positions do not fit its ring");
}

static int peer_closed(struct end *e) { return load(e, e->writer ? W_READER_CLOSED : W_WRITER_CLOSED) == 1; }

/* After moving this end's position: wakes the other end if it said it sleeps, once per sleep.
   Only the sleep it saw: if the exchange fails, that sleep ended, and any later one marked
   itself after this end's position moved, and so sees it before sleeping. */
static void wake_peer(struct end *e) {
  _Atomic int32_t *sleeps = &e->words[e->writer ? W_READER_SLEEPS : W_WRITER_SLEEPS];
  int32_t asleep = atomic_load(sleeps);
  if (asleep == AWAKE || !atomic_compare_exchange_strong(sleeps, &asleep, AWAKE)) return;
  if ((asleep & SLEEP_HOW) == ON_FUTEX) {
    syscall(SYS_futex, sleeps, FUTEX_WAKE, 1, NULL, NULL, 0);
  } else if (write(e->peer_bell, "", 1) < 0 && errno != EAGAIN) {
    /* EAGAIN: the FIFO is full of bytes it has not read yet, which wake it as well. */
    die("cannot ring the other end's doorbell");
  }
}

/* Stores this end's position (the bytes released, which the writer may reuse; or the bytes
   written, which only an end that opens the channel later reads), and wakes the other end. */
static void publish(struct end *e) {
  atomic_store(&e->words[e->writer ? W_WRITE : W_READ], (int32_t)e->position);
  wake_peer(e);
}

/* Waits until ready(e, need), or the other end closed: spins, then sleeps on this end's
   doorbell, which the other end rings, and whose end-of-file says that it is gone. */
static void wait_for_peer(struct end *e, int (*ready)(struct end *, uint32_t), uint32_t need) {
  for (int i = 0; i < SPINS; i++)
    if (ready(e, need) || peer_closed(e)) return;
  _Atomic int32_t *mine = &e->words[e->writer ? W_WRITER_SLEEPS : W_READER_SLEEPS];
  for (;;) {
    e->sleeps = (e->sleeps + 1) & 0x3fffffff;
    atomic_store(mine, (int32_t)(e->sleeps << 2 | ON_DOORBELL));
    if (ready(e, need) || peer_closed(e)) break;
    struct pollfd bell = {e->own_bell, POLLIN, 0};
    if (poll(&bell, 1, -1) < 0 && errno != EINTR) die("cannot wait on the doorbell");
    char bytes[64];
    while (read(e->own_bell, bytes, sizeof bytes) > 0) {}
    if ((bell.revents & POLLHUP) && !ready(e, need) && !peer_closed(e)) die("the other end is gone");
  }
  atomic_store(mine, AWAKE);
}

/* The next record: its bytes and length, or NULL once the writer closed and all was read.
   Checked against the ring: the other end may be buggy or hostile. */
static const unsigned char *receive(struct end *e, uint32_t *length, uint32_t *bytes) {
  for (;;) {
    if (!available(e, 0)) {
      if (peer_closed(e)) {
        if (!available(e, 0)) return NULL;
        continue;
      }
      wait_for_peer(e, available, 0);
      continue;
    }
    uint32_t offset = e->position & (e->capacity - 1);
    uint32_t header[2];
    memcpy(header, e->ring + offset, sizeof header);
    if ((header[1] & 7) == KIND_PADDING) {
      if (header[0] != e->capacity - offset - RECORD_HEADER) die("corrupt: a padding record");
      e->position += e->capacity - offset;
      publish(e);
      continue;
    }
    if ((header[1] & 7) != KIND_DATA || header[0] > e->capacity / 2 - RECORD_HEADER || offset + record_bytes(header[0]) > e->capacity)
      die("corrupt: a record longer than the ring has room for");
    *length = header[0];
    *bytes = record_bytes(header[0]);
    return e->ring + offset + RECORD_HEADER;
  }
}

/* Room for a record of `length` bytes: where to write it (then commit). */
static unsigned char *reserve(struct end *e, uint32_t length, uint32_t *need) {
  if (length > e->capacity / 2 - RECORD_HEADER) die("a record longer than half the ring");
  uint32_t offset = e->position & (e->capacity - 1), to_end = e->capacity - offset;
  *need = to_end < record_bytes(length) ? record_bytes(length) + to_end : record_bytes(length);
  for (;;) {
    if (peer_closed(e)) die("the reader closed the channel");
    if (has_room(e, *need)) break;
    wait_for_peer(e, has_room, *need);
  }
  if (to_end < record_bytes(length)) {
    uint32_t padding = to_end - RECORD_HEADER;
    /* Where the reader goes after the padding: cleared before the padding is published. */
    atomic_store_explicit(stamp_at(e, 0), 0, memory_order_relaxed);
    memcpy(e->ring + offset, &padding, sizeof padding);
    atomic_store(stamp_at(e, offset), stamp(e->position, KIND_PADDING));
    offset = 0;
  }
  return e->ring + offset + RECORD_HEADER;
}

static void commit(struct end *e, unsigned char *data, uint32_t length, uint32_t need) {
  uint32_t offset = (uint32_t)(data - RECORD_HEADER - e->ring);
  memcpy(data - RECORD_HEADER, &length, sizeof length);
  /* The next record's stamp word, cleared first (unless the ring is then full): it may hold
     payload of an earlier lap. */
  uint32_t next = e->position + need;
  if (next - (uint32_t)load(e, W_READ) < e->capacity) atomic_store_explicit(stamp_at(e, next & (e->capacity - 1)), 0, memory_order_relaxed);
  atomic_store(stamp_at(e, offset), stamp(e->position + need - record_bytes(length), KIND_DATA));
  e->position += need;
  publish(e);
}

static void close_end(struct end *e) {
  atomic_store(&e->words[e->writer ? W_WRITER_CLOSED : W_READER_CLOSED], 1);
  wake_peer(e);
  close(e->peer_bell);
  close(e->own_bell);
  shmdt((void *)e->words);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: channel-echo <requests id> <answers id>\n");
    return 2;
  }
  struct end requests, answers;
  open_end(&requests, atoi(argv[1]), 0);
  open_end(&answers, atoi(argv[2]), 1);
  const unsigned char *record;
  uint32_t length, bytes, need;
  while ((record = receive(&requests, &length, &bytes)) != NULL) {
    unsigned char *answer = reserve(&answers, length, &need);
    memcpy(answer, record, length);
    commit(&answers, answer, length, need);
    requests.position += bytes;
    publish(&requests);
  }
  close_end(&answers);
  close_end(&requests);
  return 0;
}
