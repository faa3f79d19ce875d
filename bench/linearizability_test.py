#!/usr/bin/env python3
"""Unit tests of bench/linearizability.py: hand-written histories that are
and are not linearizable (concurrent INCRs, operations without replies,
stale reads, lost writes), the search budget, and the acknowledged-write
audit. Run: python3 bench/linearizability_test.py"""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import linearizability as lin  # noqa: E402

U = lin.SET_UNIT


def op(kind, call, ret, out=None, arg=None, key="k"):
    o = {"key": key, "op": kind, "call": call, "ret": ret, "out": out}
    if kind == "set":
        o["arg"] = arg
        if out is None and ret is not None:
            o["out"] = "OK"
    return o


def SET(v, call, ret, **kw):
    return op("set", call, ret, arg=v, **kw)


def GET(out, call, ret, **kw):
    return op("get", call, ret, out=out, **kw)


def INCR(out, call, ret, **kw):
    return op("incr", call, ret, out=out, **kw)


class CheckKey(unittest.TestCase):
    def verdict(self, ops, **kw):
        return lin.check_key(ops, **kw)[0]

    def test_empty_history_is_linearizable(self):
        self.assertEqual(self.verdict([]), lin.OK)

    def test_read_of_a_missing_key_is_none(self):
        self.assertEqual(self.verdict([GET(None, 0, 1)]), lin.OK)
        self.assertEqual(self.verdict([GET(5, 0, 1)]), lin.VIOLATION)

    def test_sequential_write_then_read(self):
        self.assertEqual(self.verdict([SET(U, 0, 10), GET(U, 20, 30)]), lin.OK)
        self.assertEqual(self.verdict([SET(U, 0, 10), GET(2 * U, 20, 30)]), lin.VIOLATION)

    def test_stale_read_after_a_newer_write_returned(self):
        h = [SET(U, 0, 10), SET(2 * U, 20, 30), GET(U, 40, 50)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_read_concurrent_with_a_write_may_see_either_value(self):
        for seen in (U, 2 * U):
            h = [SET(U, 0, 10), SET(2 * U, 20, 40), GET(seen, 25, 30)]
            self.assertEqual(self.verdict(h), lin.OK, seen)

    def test_two_reads_cannot_see_a_write_then_undo_it(self):
        # SET 2U overlaps both reads; the first read sees it, the second
        # (called after the first returned) sees the old value again.
        h = [SET(U, 0, 10), SET(2 * U, 20, 100), GET(2 * U, 30, 40), GET(U, 50, 60)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_lost_acknowledged_write(self):
        self.assertEqual(self.verdict([SET(U, 0, 10), GET(None, 20, 30)]), lin.VIOLATION)

    def test_concurrent_incrs_take_any_order(self):
        h = [INCR(2, 0, 100), INCR(3, 5, 90), INCR(1, 10, 80)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_concurrent_incrs_cannot_both_return_the_same_value(self):
        h = [INCR(1, 0, 100), INCR(1, 5, 90), INCR(2, 10, 80)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_incr_respects_real_time(self):
        # The second INCR was called after the first returned 2.
        h = [INCR(2, 0, 10), INCR(1, 20, 30)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)
        h = [INCR(1, 0, 10), INCR(2, 20, 30), GET(2, 40, 50)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_incr_after_set(self):
        h = [SET(U, 0, 10), INCR(U + 1, 20, 30), INCR(U + 2, 25, 35), GET(U + 2, 40, 50)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_an_incr_error_is_a_violation(self):
        self.assertEqual(self.verdict([SET(U, 0, 10), INCR("ERR", 20, 30)]), lin.VIOLATION)

    def test_info_incr_may_have_taken_effect(self):
        # INCR with no reply, then INCRs that saw it.
        h = [INCR(None, 0, None), INCR(2, 10, 20), GET(2, 30, 40)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_info_incr_may_never_have_taken_effect(self):
        h = [INCR(None, 0, None), INCR(1, 10, 20), GET(1, 30, 40)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_info_incr_takes_effect_at_most_once(self):
        h = [INCR(None, 0, None), INCR(3, 10, 20)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_info_write_cannot_take_effect_before_its_call(self):
        h = [GET(7 * U, 0, 10), SET(7 * U, 20, None)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_info_write_seen_then_unseen_is_a_violation(self):
        h = [SET(5 * U, 0, None), GET(5 * U, 10, 20), GET(None, 30, 40)]
        self.assertEqual(self.verdict(h), lin.VIOLATION)
        h = [SET(5 * U, 0, None), GET(None, 10, 20), GET(5 * U, 30, 40)]
        self.assertEqual(self.verdict(h), lin.OK)

    def test_info_read_is_ignored(self):
        self.assertEqual(self.verdict([GET(None, 0, None), SET(U, 5, 6), GET(U, 7, 8)]), lin.OK)

    def test_many_info_ops_with_concurrent_incrs(self):
        # Eight INCRs lost their replies around a failover; later reads see
        # five of them.
        h = [INCR(None, i, None) for i in range(8)]
        h += [INCR(1, 0, 5), GET(6, 100, 110), INCR(7, 120, 130)]
        self.assertEqual(self.verdict(h), lin.OK)
        h += [GET(16, 140, 150)]  # more increments than were ever issued
        self.assertEqual(self.verdict(h), lin.VIOLATION)

    def test_budget_exhausted_is_unknown(self):
        # Many concurrent INCRs whose replies no order explains: the search
        # must try a great many orders, so a tiny budget gives up.
        h = [INCR(None, i, None) for i in range(20)]
        h += [INCR(i + 1, 100 + i, 1000) for i in range(12)]
        h += [GET(100, 2000, 2001)]
        self.assertEqual(self.verdict(h, budget=200), lin.UNKNOWN)

    def test_returns_before_call_is_rejected(self):
        with self.assertRaises(ValueError):
            lin.check_key([GET(None, 10, 5)])

    def test_random_linearizable_histories_pass(self):
        # Histories made by a real register: each operation takes effect at
        # a random point inside its own interval; some lose their replies.
        rnd = random.Random(7)
        for trial in range(40):
            points = []
            for c in range(6):
                t = 0
                for _ in range(15):
                    call = t + rnd.randrange(1, 5)
                    ret = call + rnd.randrange(1, 30)
                    points.append((rnd.uniform(call, ret), c, call, ret))
                    t = ret
            points.sort()
            state, h = None, []
            for n, (_, c, call, ret) in enumerate(points):
                kind = rnd.choice(("set", "get", "incr"))
                if kind == "set":
                    state = (n + 1) * U
                    o = SET(state, call, ret)
                elif kind == "get":
                    o = GET(state, call, ret)
                else:
                    state = (state or 0) + 1
                    o = INCR(state, call, ret)
                if rnd.random() < 0.05:
                    o["ret"], o["out"] = None, None
                h.append(o)
            self.assertEqual(lin.check_key(h), (lin.OK, ""), trial)


class CheckHistory(unittest.TestCase):
    def test_each_key_is_judged_alone(self):
        h = [SET(U, 0, 10, key="a"), GET(U, 20, 30, key="a"), GET(U, 20, 30, key="b")]
        res = lin.check_history(h)
        self.assertEqual(res["a"][0], lin.OK)
        self.assertEqual(res["b"][0], lin.VIOLATION)


class AckedWriteAudit(unittest.TestCase):
    def test_every_acknowledged_write_reflected(self):
        h = [SET(U, 0, 10), INCR(U + 1, 20, 30), INCR(None, 25, None)]
        self.assertEqual(lin.audit_acked_writes(h, U + 1), [])
        self.assertEqual(lin.audit_acked_writes(h, U + 2), [])

    def test_lost_set(self):
        h = [SET(U, 0, 10), SET(2 * U, 20, 30)]
        self.assertEqual(len(lin.audit_acked_writes(h, U)), 1)

    def test_lost_incr(self):
        h = [SET(U, 0, 10), INCR(U + 1, 20, 30), INCR(U + 2, 40, 50)]
        self.assertEqual(len(lin.audit_acked_writes(h, U + 1)), 1)

    def test_too_many_increments(self):
        h = [INCR(1, 0, 10)]
        self.assertEqual(len(lin.audit_acked_writes(h, 2)), 1)

    def test_value_nobody_wrote(self):
        self.assertEqual(len(lin.audit_acked_writes([SET(U, 0, 10)], 3 * U)), 1)

    def test_missing_key_after_acknowledged_writes(self):
        self.assertEqual(len(lin.audit_acked_writes([INCR(1, 0, 10)], None)), 1)
        self.assertEqual(lin.audit_acked_writes([INCR(None, 0, None)], None), [])

    def test_unacknowledged_set_may_win(self):
        # The SET whose reply was lost took effect after the acknowledged one.
        h = [SET(U, 0, 10), SET(2 * U, 5, None)]
        self.assertEqual(lin.audit_acked_writes(h, 2 * U), [])


if __name__ == "__main__":
    unittest.main()
