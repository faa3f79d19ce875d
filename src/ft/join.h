// The joining backup's side of a state transfer, as one pass of its main
// loop over the channel (docs/ft-protocol.md "Joining a running primary").
// node.cc's join and the simulator's joiner both run it, so the simulator
// proves the code that runs for real.
//
// Not thread-safe: the joiner's main loop calls it.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "ft/channel_endpoint.h"
#include "ft/node_core.h"
#include "ft/transfer.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::ft {

// Reports this node's progress to `endpoint` (its guest does not run while
// it joins), applies every transfer message received so far to `receiver`,
// and sends the acknowledgement due on `link`. Applying is bounded work,
// neither a stuck guest nor an overdue main loop: the endpoint is told so
// before each message (a host that takes seconds to write the pages must
// not look failed to the primary, which streams records, that this node
// cannot run yet, from the moment it sent the final state). Once the final
// state is restored, the first state hash (over all of RAM and the disk) is
// taken here, as bounded work too. Returns true then; false while more is
// to come; an error (the channel failed, a message did not apply, a reply
// could not be sent) means the join failed.
Result<bool> join_pass(TransferReceiver& receiver, vm::Machine& machine,
                       ChannelEndpoint& endpoint, Link& link, std::deque<std::string>& in,
                       const std::function<ChannelEndpoint::Time()>& now);

}  // namespace ftvm::ft
