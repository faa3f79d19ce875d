"""A linearizability checker for Redis keys used as registers (SET, GET, INCR).

The campaign (bench/campaign.py) records every call and return of its clients
and judges each key's history here: is there one order of the operations,
consistent with real time (an operation that returned before another was
called comes first), in which each operation's result is what a single
register would have given?

The model of one key: the state is None (no value) or an integer.
  ("set", v)  -> state v; returns "OK"
  ("get",)    -> returns the state (None or an integer)
  ("incr",)   -> state (state or 0) + 1; returns the new state
An operation is a dict: {"op": "set"|"get"|"incr", "arg": v (set only),
"call": t, "ret": t or None, "out": result}. Times are integers (monotonic
nanoseconds); ret None marks an "info" operation, one whose reply never came:
it may have taken effect at any moment after its call, or never. Info GETs
cannot change anything and are dropped. An INCR whose reply was an error
(the value was not an integer) is recorded with out "ERR": it changes
nothing and may only be linearized where the state is a non-integer, which
this model never has, so such a reply is a violation.

The search is Wing & Gong's with Lowe's memoisation (as in Porcupine and
Knossos): walk the history's call and return events in time order; at a call,
try to linearize that operation now (its result must match the model), and
remember every (set of linearized operations, state) pair already explored so
no configuration is searched twice; at a return whose operation is not yet
linearized, undo the last choice. Info operations have no return event, so
they never force a choice; the history is linearizable once every operation
with a reply is linearized. The search is bounded by `budget` steps: past it
the answer is "unknown", which the campaign counts as a failure.
"""

# Verdicts of check_key / check_history.
OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"


def step(state, op):
    """The model: (legal, new_state) for `op` applied to `state`."""
    kind = op["op"]
    if kind == "set":
        return (op["ret"] is None or op["out"] == "OK"), op["arg"]
    if kind == "get":
        return op["out"] == state, state
    if kind == "incr":
        new = (state or 0) + 1
        return (op["ret"] is None or op["out"] == new), new
    raise ValueError(f"unknown operation {kind!r}")


class _Node:
    """One event of the doubly linked event list."""
    __slots__ = ("op", "index", "is_call", "match", "prev", "next")

    def __init__(self, op, index, is_call):
        self.op, self.index, self.is_call = op, index, is_call
        self.match = None  # a call's return event (None for an info op)
        self.prev = self.next = None


def check_key(ops, budget=2_000_000, initial=None, origin=0):
    """Whether the operations on one key are linearizable.

    Returns (verdict, detail): verdict OK, VIOLATION or UNKNOWN (the search
    took more than `budget` steps); detail says where the search got
    furthest when it is not OK (times in it are seconds after `origin`).
    `ops` is not modified.
    """
    ops = [o for o in ops if not (o["op"] == "get" and o["ret"] is None)]
    for o in ops:
        if o["ret"] is not None and o["ret"] < o["call"]:
            raise ValueError(f"operation returns before its call: {o}")
    n = len(ops)
    if n == 0:
        return OK, ""
    # Events in time order; at equal times calls come first, so operations
    # that touch at an instant count as concurrent (the lenient reading).
    events = []
    for i, o in enumerate(ops):
        events.append((o["call"], 0, i))
        if o["ret"] is not None:
            events.append((o["ret"], 1, i))
    events.sort()
    head = _Node(None, -1, False)
    calls = [None] * n
    prev = head
    for _, kind, i in events:
        node = _Node(ops[i], i, kind == 0)
        if kind == 0:
            calls[i] = node
        else:
            calls[i].match = node
        prev.next, node.prev = node, prev
        prev = node

    def lift(call):
        call.prev.next = call.next
        if call.next is not None:
            call.next.prev = call.prev
        ret = call.match
        if ret is not None:
            ret.prev.next = ret.next
            if ret.next is not None:
                ret.next.prev = ret.prev

    def unlift(call):
        ret = call.match
        if ret is not None:
            ret.prev.next = ret
            if ret.next is not None:
                ret.next.prev = ret
        call.prev.next = call
        if call.next is not None:
            call.next.prev = call

    replies = sum(1 for o in ops if o["ret"] is not None)
    remaining = replies  # replies not yet explained
    state = initial
    linearized = 0  # bit i: operation i is linearized
    cache = set()
    stack = []  # (call node, state before it)
    entry = head.next
    steps = 0
    best = 0  # most operations with replies ever linearized at once
    blocked = None  # the reply that stopped the search when it was furthest
    while remaining > 0:
        steps += 1
        if steps > budget:
            return UNKNOWN, f"gave up after {budget} steps; at best {best} of the replies explained"
        if entry is None:
            # Only info calls are left and none fits: undo the last choice.
            if not stack:
                return VIOLATION, _stuck(best, blocked, origin)
            call, state = stack.pop()
            linearized &= ~(1 << call.index)
            if call.match is not None:
                remaining += 1
            unlift(call)
            entry = call.next
            continue
        if entry.is_call:
            legal, new_state = step(state, entry.op)
            if legal:
                key = (linearized | (1 << entry.index), new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state = new_state
                    linearized |= 1 << entry.index
                    if entry.match is not None:
                        remaining -= 1
                        best = max(best, replies - remaining)
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A reply whose operation could not be placed before it.
            if replies - remaining == best:
                blocked = entry.op
            if not stack:
                return VIOLATION, _stuck(best, blocked, origin)
            call, state = stack.pop()
            linearized &= ~(1 << call.index)
            if call.match is not None:
                remaining += 1
            unlift(call)
            entry = call.next
    return OK, ""


def _stuck(best, op, origin):
    where = ""
    if op is not None:
        where = f"; the search got furthest up to the reply of {_fmt(op, origin)}"
    return f"not linearizable: at best {best} of the replies explained{where}"


def _fmt(op, origin=0):
    arg = f" {op['arg']}" if op["op"] == "set" else ""
    ret = "no reply" if op["ret"] is None else f"-> {op['out']!r}"
    who = f" by client {op['client']}" if "client" in op else ""
    span = f"{(op['call'] - origin) / 1e9:.6f}..." + (
        "" if op["ret"] is None else f"{(op['ret'] - origin) / 1e9:.6f}")
    return f"{op['op'].upper()}{arg} {ret}{who} (s {span})"


def check_history(ops, budget=2_000_000, origin=0):
    """Checks each key of a history separately (linearizability is local).

    `ops` carry a "key" field. Returns {key: (verdict, detail)}.
    """
    by_key = {}
    for o in ops:
        by_key.setdefault(o["key"], []).append(o)
    return {k: check_key(v, budget=budget, origin=origin) for k, v in sorted(by_key.items())}


# Values written by SET are multiples of SET_UNIT, so a final value tells
# which SET it descends from (final // SET_UNIT * SET_UNIT, or none when it
# is below SET_UNIT) and how many INCRs followed (final % SET_UNIT).
SET_UNIT = 1 << 20


def audit_acked_writes(ops, final, origin=0):
    """The acknowledged-write audit of one key: is every acknowledged SET
    and INCR reflected in `final`, the key's value read after all
    operations ended?

    Every SET value must be a positive multiple of SET_UNIT. Returns a list
    of problems (empty when every acknowledged write is accounted for):
      - final names a SET nobody issued;
      - an acknowledged SET called after the final value's SET returned
        (so it must come after it) is lost;
      - fewer increments than acknowledged INCRs called after that SET
        returned;
      - more increments than INCRs that could have followed it.
    """
    problems = []
    sets = [o for o in ops if o["op"] == "set"]
    incrs = [o for o in ops if o["op"] == "incr"]
    for o in sets:
        if o["arg"] <= 0 or o["arg"] % SET_UNIT:
            raise ValueError(f"SET value {o['arg']} is not a positive multiple of {SET_UNIT}")
    if final is None:
        acked = [o for o in sets + incrs if o["ret"] is not None]
        if acked:
            problems.append(f"the key has no value, but {len(acked)} writes were acknowledged, "
                            f"the first {_fmt(min(acked, key=lambda o: o['call']), origin)}")
        return problems
    base_value = final // SET_UNIT * SET_UNIT
    increments = final - base_value
    if base_value:
        base = [o for o in sets if o["arg"] == base_value]
        if not base:
            return [f"final value {final} descends from SET {base_value}, which no client issued"]
        b = base[0]
        after = None if b["ret"] is None else b["ret"]
        lost = [o for o in sets if o is not b and o["ret"] is not None and after is not None
                and o["call"] > after]
        if lost:
            problems.append(f"{len(lost)} acknowledged SETs lost (called after {_fmt(b, origin)}, whose "
                            f"value is the final one), the first {_fmt(lost[0], origin)}")
        must = [o for o in incrs if o["ret"] is not None and after is not None and o["call"] > after]
        may = [o for o in incrs if o["ret"] is None or o["ret"] > b["call"]]
    else:
        acked_sets = [o for o in sets if o["ret"] is not None]
        if acked_sets:
            problems.append(f"final value {final} descends from no SET, but {len(acked_sets)} SETs "
                            f"were acknowledged, the first {_fmt(acked_sets[0], origin)}")
        must = [o for o in incrs if o["ret"] is not None]
        may = incrs
    if increments < len(must):
        problems.append(f"final value {final} holds {increments} increments after its SET, but "
                        f"{len(must)} acknowledged INCRs were called after it")
    if increments > len(may):
        problems.append(f"final value {final} holds {increments} increments after its SET, more "
                        f"than the {len(may)} INCRs that could follow it")
    return problems
