// virtio-net transmit on notify and receive as an event; see virtio_net.h.
#include "vm/virtio_net.h"

#include <fmt/format.h>

#include <cstring>

#include "util/result.h"

namespace ftvm::vm {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<MacAddress> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddress mac{};
  for (size_t i = 0; i < mac.size(); ++i) {
    const size_t at = 3 * i;
    if (i != 0 && text[at - 1] != ':') return std::nullopt;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string format_mac(const MacAddress& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

VirtioNet::VirtioNet(const MacAddress& mac, FrameSink sink) : sink_(std::move(sink)) {
  s_.mac = mac;
}

void VirtioNet::attach(VirtioMmio* transport) {
  FTVM_CHECK(transport != nullptr && transport_ == nullptr);
  transport_ = transport;
}

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> out) const {
  std::array<uint8_t, kConfigSize> c{};
  std::memcpy(c.data(), s_.mac.data(), s_.mac.size());
  const uint16_t status = s_.link_up ? kStatusLinkUp : 0;
  c[6] = static_cast<uint8_t>(status);
  c[7] = static_cast<uint8_t>(status >> 8);
  FTVM_CHECK(offset <= kConfigSize && out.size() <= kConfigSize - offset);
  std::memcpy(out.data(), c.data() + offset, out.size());
}

void VirtioNet::set_link_up(bool up) {
  FTVM_CHECK(transport_ != nullptr);
  if (s_.link_up == up) return;
  s_.link_up = up;
  transport_->config_changed();
}

bool VirtioNet::can_receive() const {
  FTVM_CHECK(transport_ != nullptr);
  const VirtioMmio::QueueState q = transport_->state().queues[kRxQueue];
  bool available = false;
  // process_queue runs the function only while the queue is live; it pushes
  // nothing, so no interrupt follows.
  transport_->process_queue(kRxQueue, [&](Virtqueue& vq) {
    const std::optional<uint16_t> idx = vq.memory().read_u16(q.avail + 2);
    available = idx.has_value() && *idx != q.last_avail;
  });
  return available;
}

bool VirtioNet::deliver(std::span<const uint8_t> frame) {
  FTVM_CHECK(transport_ != nullptr);
  // Taken before the pop, to put a chain back that the frame does not fit.
  const VirtioMmio::State before = transport_->state();
  bool taken = false;
  transport_->process_queue(kRxQueue, [&](Virtqueue& q) {
    const std::optional<DescriptorChain> chain = q.pop();
    if (!chain) return;  // nothing posted, or a malformed ring (device failed)
    taken = true;
    if (chain->writable_len < kHeaderBytes + uint64_t{frame.size()}) {
      ++s_.rx_dropped;
      transport_->restore(before);  // the chain stays at the head of the ring
      return;
    }
    // virtio_net_hdr_v1: no flags, GSO_NONE, num_buffers = 1.
    std::array<uint8_t, kHeaderBytes> hdr{};
    hdr[10] = 1;
    FTVM_CHECK(q.write(*chain, 0, hdr));
    FTVM_CHECK(q.write(*chain, kHeaderBytes, frame));
    q.push(*chain, static_cast<uint32_t>(kHeaderBytes + frame.size()));
    ++s_.rx_frames;
    s_.rx_bytes += frame.size();
  });
  return taken;
}

void VirtioNet::on_notify(Virtqueue& queue) {
  // Receive buffers wait in the ring until deliver() fills them.
  if (queue.index() != kTxQueue) return;
  while (std::optional<DescriptorChain> chain = queue.pop()) {
    if (chain->readable_len < kHeaderBytes) {
      queue.fail(fmt::format("transmit chain from head {} has {} readable bytes, less than "
                             "the {}-byte virtio-net header",
                             chain->head, chain->readable_len, kHeaderBytes));
      return;
    }
    transmit(queue, *chain);
  }
}

void VirtioNet::transmit(Virtqueue& queue, const DescriptorChain& chain) {
  const uint64_t len = chain.readable_len - kHeaderBytes;
  if (len < kEthHeaderBytes || len > kMaxFrameBytes) {
    ++s_.tx_dropped;
  } else {
    tx_buf_.resize(len);
    FTVM_CHECK(queue.read(chain, kHeaderBytes, tx_buf_));
    ++s_.tx_frames;
    s_.tx_bytes += len;
    if (sink_) sink_(tx_buf_);
  }
  queue.push(chain, 0);
}

}  // namespace ftvm::vm
