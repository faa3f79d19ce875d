// A joining backup's pass over its channel (see join.h).
#include "ft/join.h"

#include "ft/channel.h"

namespace ftvm::ft {

Result<bool> join_pass(TransferReceiver& receiver, vm::Machine& machine,
                       ChannelEndpoint& endpoint, Link& link, std::deque<std::string>& in,
                       const std::function<ChannelEndpoint::Time()>& now) {
  auto report = [&](bool bounded_work) {
    endpoint.set_local(now(), {machine.instret(), machine.mtime(), /*should_run=*/false, 0, 0,
                               bounded_work});
  };
  report(false);
  if (std::optional<std::string> why = endpoint.failed()) return make_error(*why);
  endpoint.take_transfer(in);
  bool done = false;
  while (!in.empty() && !done) {
    report(true);
    Result<bool> r = receiver.apply(as_span(in.front()));
    in.pop_front();
    if (!r) return make_error(r.error());
    done = *r;
  }
  if (std::optional<std::string> reply = receiver.take_reply(/*drained=*/in.empty())) {
    if (Status s = link.send(MsgType::kTransferReply, *reply); !s) return make_error(s.error());
  }
  if (done) {
    // Still bounded work until the core takes over the reports.
    report(true);
    (void)machine.state_digest();
  } else {
    report(false);
  }
  return done;
}

}  // namespace ftvm::ft
