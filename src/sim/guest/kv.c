/* The simulator's guest service: a key-value server over raw Ethernet
 * frames, bare metal on the ftvm machine (docs/sim.md "The guest").
 *
 * Built with the ISA test runtime (isa/common): main() runs in M-mode on
 * hart 0. It drives the virtio-net NIC in virtio-mmio slot 6 by polling,
 * with interrupts enabled in mie but not in mstatus, so WFI wakes on a
 * received frame (PLIC source 7, M context) or the CLINT timer without any
 * trap being taken. A periodic timer tick (every KV_TICK mtime units)
 * increments a counter that every reply carries, so guest time shows in the
 * outputs.
 *
 * Requests (ethertype KV_ETHERTYPE, 48-byte little-endian payload, see
 * kv_protocol.h on the host side): SET k v, GET k, INCR k d, each with a
 * client id and a request id. A per-client table makes requests
 * at-most-once: a request id equal to the client's last one gets the cached
 * reply again byte for byte, a smaller one is ignored, a larger one is
 * executed. Everything the server does depends only on the frames it is
 * given and the instret at which they arrive: no other input exists.
 */
#include "runtime.h"

#define KV_ETHERTYPE 0x88b5
#define KV_VERSION 1
#define KV_KIND_REQUEST 1
#define KV_KIND_REPLY 2
#define KV_OP_SET 1
#define KV_OP_GET 2
#define KV_OP_INCR 3
#define KV_STATUS_OK 0
#define KV_STATUS_BAD_KEY 1
#define KV_STATUS_BAD_OP 2
#define KV_KEYS 16
#define KV_CLIENTS 32
#define KV_PAYLOAD 48
#define KV_TICK 100000ul /* mtime units (10 MHz): 10 ms */

#define NET_BASE 0x10007000ul /* virtio-mmio slot 6 */
#define NET_IRQ 7
#define PLIC_PRIORITY(n) (PLIC_BASE + 4 * (n))
#define PLIC_ENABLE_M (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_M (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M (PLIC_BASE + 0x200004)

#define VIO(off) MMIO32(NET_BASE + (off))
#define VIO_DEVICE_ID 0x008
#define VIO_DEVICE_FEATURES 0x010
#define VIO_DEVICE_FEATURES_SEL 0x014
#define VIO_DRIVER_FEATURES 0x020
#define VIO_DRIVER_FEATURES_SEL 0x024
#define VIO_QUEUE_SEL 0x030
#define VIO_QUEUE_NUM_MAX 0x034
#define VIO_QUEUE_NUM 0x038
#define VIO_QUEUE_READY 0x044
#define VIO_QUEUE_NOTIFY 0x050
#define VIO_INTERRUPT_STATUS 0x060
#define VIO_INTERRUPT_ACK 0x064
#define VIO_STATUS 0x070
#define VIO_QUEUE_DESC 0x080
#define VIO_QUEUE_DRIVER 0x090
#define VIO_QUEUE_DEVICE 0x0a0
#define VIO_CONFIG 0x100

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define F_MAC 5

#define QSIZE 8
#define NET_HDR 12
#define BUF_SIZE 1536
#define DESC_F_WRITE 2
#define MIE_MTIE (1ul << 7)
#define MIE_MEIE (1ul << 11)

struct vq_desc {
  u64 addr;
  u32 len;
  u16 flags;
  u16 next;
};
struct vq_avail {
  u16 flags;
  u16 idx;
  u16 ring[QSIZE];
  u16 used_event;
};
struct vq_used_elem {
  u32 id;
  u32 len;
};
struct vq_used {
  u16 flags;
  u16 idx;
  struct vq_used_elem ring[QSIZE];
  u16 avail_event;
};
struct vq {
  struct vq_desc desc[QSIZE] __attribute__((aligned(16)));
  struct vq_avail avail __attribute__((aligned(16)));
  struct vq_used used __attribute__((aligned(16)));
  u16 last_used;
};

struct client {
  u32 id;
  u32 used;
  u64 last_request;
  u8 reply[KV_PAYLOAD];
};

static struct vq rxq, txq;
static u8 rx_buf[QSIZE][BUF_SIZE] __attribute__((aligned(16)));
static u8 tx_buf[QSIZE][BUF_SIZE] __attribute__((aligned(16)));
static u8 mac[6];
static i64 values[KV_KEYS];
static struct client clients[KV_CLIENTS];
static u32 next_evict;
static u64 ticks;
static u64 served;
static u64 deadline;

static inline void fence(void) { asm volatile("fence" ::: "memory"); }

static u64 get_le(const u8 *p, int n) {
  u64 v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void put_le(u8 *p, u64 v, int n) {
  for (int i = 0; i < n; i++) {
    p[i] = (u8)v;
    v >>= 8;
  }
}

static void setup_queue(unsigned index, struct vq *q) {
  VIO(VIO_QUEUE_SEL) = index;
  if (VIO(VIO_QUEUE_NUM_MAX) < QSIZE) isa_exit(3);
  VIO(VIO_QUEUE_NUM) = QSIZE;
  VIO(VIO_QUEUE_DESC) = (u32)(u64)q->desc;
  VIO(VIO_QUEUE_DESC + 4) = (u32)((u64)q->desc >> 32);
  VIO(VIO_QUEUE_DRIVER) = (u32)(u64)&q->avail;
  VIO(VIO_QUEUE_DRIVER + 4) = (u32)((u64)&q->avail >> 32);
  VIO(VIO_QUEUE_DEVICE) = (u32)(u64)&q->used;
  VIO(VIO_QUEUE_DEVICE + 4) = (u32)((u64)&q->used >> 32);
  VIO(VIO_QUEUE_READY) = 1;
}

static void net_init(void) {
  if (VIO(VIO_DEVICE_ID) != 1) isa_exit(2);
  VIO(VIO_STATUS) = 0;
  VIO(VIO_STATUS) = ST_ACK;
  VIO(VIO_STATUS) = ST_ACK | ST_DRIVER;
  VIO(VIO_DRIVER_FEATURES_SEL) = 0;
  VIO(VIO_DRIVER_FEATURES) = 1u << F_MAC;
  VIO(VIO_DRIVER_FEATURES_SEL) = 1;
  VIO(VIO_DRIVER_FEATURES) = 1; /* VIRTIO_F_VERSION_1 */
  VIO(VIO_STATUS) = ST_ACK | ST_DRIVER | ST_FEATURES_OK;
  if (!(VIO(VIO_STATUS) & ST_FEATURES_OK)) isa_exit(4);
  for (int i = 0; i < 6; i++) mac[i] = MMIO8(NET_BASE + VIO_CONFIG + i);
  for (unsigned i = 0; i < QSIZE; i++) {
    rxq.desc[i].addr = (u64)rx_buf[i];
    rxq.desc[i].len = BUF_SIZE;
    rxq.desc[i].flags = DESC_F_WRITE;
    rxq.avail.ring[i] = (u16)i;
    txq.desc[i].addr = (u64)tx_buf[i];
  }
  rxq.avail.idx = QSIZE;
  setup_queue(0, &rxq);
  setup_queue(1, &txq);
  fence();
  VIO(VIO_STATUS) = ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK;
  /* Receive interrupts reach the M context; the hart polls them. */
  MMIO32(PLIC_PRIORITY(NET_IRQ)) = 1;
  MMIO32(PLIC_ENABLE_M) = 1u << NET_IRQ;
  MMIO32(PLIC_THRESHOLD_M) = 0;
}

static void transmit(const u8 *dst, const u8 *payload) {
  unsigned slot = txq.avail.idx % QSIZE;
  u8 *b = tx_buf[slot];
  memset(b, 0, NET_HDR);
  u8 *f = b + NET_HDR;
  memcpy(f, dst, 6);
  memcpy(f + 6, mac, 6);
  f[12] = KV_ETHERTYPE >> 8;
  f[13] = KV_ETHERTYPE & 0xff;
  memcpy(f + 14, payload, KV_PAYLOAD);
  txq.desc[slot].len = NET_HDR + 14 + KV_PAYLOAD;
  txq.desc[slot].flags = 0;
  txq.avail.ring[slot] = (u16)slot;
  fence();
  txq.avail.idx++;
  fence();
  VIO(VIO_QUEUE_NOTIFY) = 1;
}

static struct client *find_client(u32 id) {
  for (int i = 0; i < KV_CLIENTS; i++)
    if (clients[i].used && clients[i].id == id) return &clients[i];
  struct client *c = &clients[next_evict];
  next_evict = (next_evict + 1) % KV_CLIENTS;
  memset(c, 0, sizeof *c);
  c->used = 1;
  c->id = id;
  return c;
}

static void handle_frame(const u8 *f, u32 len) {
  if (len < 14 + KV_PAYLOAD) return;
  if (((u32)f[12] << 8 | f[13]) != KV_ETHERTYPE) return;
  const u8 *p = f + 14;
  if (p[0] != KV_VERSION || p[1] != KV_KIND_REQUEST) return;
  u32 op = p[2];
  u32 client_id = (u32)get_le(p + 4, 4);
  u64 request = get_le(p + 8, 8);
  u32 key = (u32)get_le(p + 16, 4);
  i64 arg = (i64)get_le(p + 24, 8);
  struct client *c = find_client(client_id);
  if (request != 0 && request == c->last_request) {
    transmit(f + 6, c->reply); /* a retransmission: the same reply again */
    return;
  }
  if (request < c->last_request) return; /* stale */
  u8 *r = c->reply;
  memset(r, 0, KV_PAYLOAD);
  u32 status = KV_STATUS_OK;
  i64 result = 0;
  if (key >= KV_KEYS) {
    status = KV_STATUS_BAD_KEY;
  } else if (op == KV_OP_SET) {
    values[key] = arg;
    result = arg;
  } else if (op == KV_OP_GET) {
    result = values[key];
  } else if (op == KV_OP_INCR) {
    values[key] += arg;
    result = values[key];
  } else {
    status = KV_STATUS_BAD_OP;
  }
  served++;
  c->last_request = request;
  r[0] = KV_VERSION;
  r[1] = KV_KIND_REPLY;
  r[2] = (u8)op;
  r[3] = (u8)status;
  put_le(r + 4, client_id, 4);
  put_le(r + 8, request, 8);
  put_le(r + 16, key, 4);
  put_le(r + 24, (u64)result, 8);
  put_le(r + 32, ticks, 8);
  put_le(r + 40, served, 8);
  transmit(f + 6, r);
}

static int poll_rx(void) {
  int got = 0;
  for (;;) {
    fence();
    u16 used = *(volatile u16 *)&rxq.used.idx;
    if (rxq.last_used == used) break;
    struct vq_used_elem e = rxq.used.ring[rxq.last_used % QSIZE];
    if (e.id < QSIZE && e.len >= NET_HDR) handle_frame(rx_buf[e.id] + NET_HDR, e.len - NET_HDR);
    rxq.avail.ring[rxq.avail.idx % QSIZE] = (u16)e.id;
    fence();
    rxq.avail.idx++;
    rxq.last_used++;
    got = 1;
  }
  if (got) VIO(VIO_QUEUE_NOTIFY) = 0;
  return got;
}

static void poll_timer(void) {
  u64 now = MMIO64(CLINT_MTIME);
  if (now < deadline) return;
  u64 missed = (now - deadline) / KV_TICK;
  ticks += missed + 1;
  deadline += (missed + 1) * KV_TICK;
  MMIO64(CLINT_MTIMECMP) = deadline;
}

int main(void) {
  net_init();
  deadline = MMIO64(CLINT_MTIME) + KV_TICK;
  MMIO64(CLINT_MTIMECMP) = deadline;
  CSR_SET(mie, MIE_MTIE | MIE_MEIE);
  isa_puts("kv: ready\n");
  for (;;) {
    poll_timer();
    u32 irq = MMIO32(PLIC_CLAIM_M);
    u32 isr = VIO(VIO_INTERRUPT_STATUS);
    if (isr) VIO(VIO_INTERRUPT_ACK) = isr;
    poll_rx();
    if (irq) MMIO32(PLIC_CLAIM_M) = irq;
    fence();
    if (*(volatile u16 *)&rxq.used.idx == rxq.last_used && MMIO64(CLINT_MTIME) < deadline)
      asm volatile("wfi");
  }
}
