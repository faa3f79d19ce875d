// The simulated LAN: Ethernet frames between the nodes' NICs and the
// clients, through one flooding switch, with per-seed faults.
//
// Every port has a MAC; several ports may share one (both nodes of a pair
// present the guest's MAC, as on a real bridge). A frame goes to every other
// port whose MAC is its destination (or to all, for broadcast), each copy
// independently subject to the faults: loss, duplication, a delay drawn in
// [min_delay, max_delay], and with `reorder` an extra delay that lets later
// frames overtake it. With faults off (calm()), every copy takes min_delay
// and frames between two ports arrive in the order sent.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/event_queue.h"
#include "sim/random.h"
#include "vm/virtio_net.h"

namespace ftvm::sim {

// A frame on the wire plus what the audits need to know about its origin
// (never seen by receivers' protocol code).
struct Frame {
  std::vector<uint8_t> bytes;
  int sender_node = -1;       // the node that emitted it, or -1 (a client)
  uint64_t epoch = 0;         // the sending node's epoch
  uint64_t output_index = 0;  // its number in the guest's output stream (from 1)
};

struct LanFaults {
  uint32_t loss_ppm = 0;     // per copy, parts per million
  uint32_t dup_ppm = 0;
  uint32_t reorder_ppm = 0;
  Time min_delay = 20 * kMicrosecond;
  Time max_delay = 20 * kMicrosecond;
  Time reorder_delay = 0;  // the extra delay of a reordered copy, at most
  std::string describe() const;
};

class Lan {
 public:
  using Receiver = std::function<void(const Frame&)>;
  // Called for every copy delivered, before the receiver (for the audits).
  using DeliveryObserver = std::function<void(int port, const Frame&)>;

  Lan(EventQueue& events, Rng rng, LanFaults faults);

  // A new port; returns its id. `receiver` gets the frames addressed to it.
  int attach(const vm::MacAddress& mac, Receiver receiver);
  // A port that is down (a crashed node) receives nothing; frames already in
  // flight to it are lost.
  void set_up(int port, bool up);
  void send(int from_port, Frame frame);
  // Faults stop: every later copy takes min_delay, none is lost or doubled.
  void calm() { calm_ = true; }
  void set_observer(DeliveryObserver observer) { observer_ = std::move(observer); }
  const vm::MacAddress& mac(int port) const { return ports_[port].mac; }

  uint64_t sent() const { return sent_; }
  uint64_t lost() const { return lost_; }
  uint64_t duplicated() const { return duplicated_; }

 private:
  struct Port {
    vm::MacAddress mac;
    Receiver receiver;
    bool up = true;
    uint64_t generation = 0;  // bumped when it goes down: drops frames in flight
  };
  void deliver_copy(int port, const Frame& frame, Time delay);

  EventQueue& events_;
  Rng rng_;
  LanFaults faults_;
  bool calm_ = false;
  std::vector<Port> ports_;
  DeliveryObserver observer_;
  uint64_t sent_ = 0, lost_ = 0, duplicated_ = 0;
};

}  // namespace ftvm::sim
