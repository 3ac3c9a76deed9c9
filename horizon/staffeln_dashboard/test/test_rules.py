"""The panel's pure decisions, without Django or services."""

import datetime
import unittest

from staffeln_dashboard import rules


class Row(object):
    def __init__(self, id, created_at, automated=False, server_id=None,
                 status="available"):
        self.id = id
        self.created_at = created_at
        self.automated = automated
        self.server_id = server_id
        self.server_name = None
        self.status = status


def day(n):
    return datetime.datetime(2026, 11, 1) + datetime.timedelta(days=n)


class MarkTest(unittest.TestCase):
    def test_true_the_way_openstack_reads_it(self):
        for value in ("True", "true", " 1 ", "yes", "Y", "t", "on"):
            self.assertTrue(rules.is_marked_automated(
                {rules.AUTOMATED_KEY: value}), value)
        for value in ("False", "0", "no", "", "maybe", None):
            self.assertFalse(rules.is_marked_automated(
                {rules.AUTOMATED_KEY: value}), value)
        self.assertFalse(rules.is_marked_automated({}))
        self.assertFalse(rules.is_marked_automated(None))

    def test_recorded_by_staffeln_counts_as_automated(self):
        self.assertTrue(rules.made_by_staffeln("a", {}, {"a"}))
        self.assertFalse(rules.made_by_staffeln("b", {}, {"a"}))

    def test_unknown_records_fail_closed(self):
        self.assertTrue(rules.made_by_staffeln("b", {}, None))

    def test_deletable_only_own_backups_in_a_final_state(self):
        self.assertTrue(rules.deletable(Row("a", day(0))))
        self.assertFalse(rules.deletable(Row("a", day(0), automated=True)))
        self.assertFalse(rules.deletable(Row("a", day(0), status="creating")))
        self.assertTrue(rules.deletable(Row("a", day(0), status="error")))


class FilterTest(unittest.TestCase):
    def test_cinder_filters(self):
        self.assertEqual(rules.parse_filter("name", " x ").cinder,
                         {"name": "x"})
        self.assertEqual(rules.parse_filter("status", "Error").cinder,
                         {"status": "error"})
        self.assertEqual(
            rules.parse_filter("volume", "data", {"data": "v-1"}).cinder,
            {"volume_id": "v-1"})
        self.assertEqual(rules.parse_filter("volume", "v-2").cinder,
                         {"volume_id": "v-2"})
        self.assertEqual(rules.parse_filter("name", "  "), rules.Query({}))

    def test_walked_filters(self):
        self.assertTrue(rules.parse_filter("made_by", "Staffeln").automated)
        self.assertFalse(rules.parse_filter("made_by", "manual").automated)
        q = rules.parse_filter("created", "2026-11-02..2026-11-03")
        self.assertEqual((q.since, q.until), (day(1), day(3)))
        q = rules.parse_filter("created", "2026-11-02")
        self.assertEqual((q.since, q.until), (day(1), day(2)))
        q = rules.parse_filter("created", "..2026-11-02")
        self.assertEqual((q.since, q.until), (None, day(2)))
        self.assertEqual(rules.parse_filter("server", "web").server, "web")

    def test_bad_values_name_what_is_wrong(self):
        cases = [("status", "gone", "'gone' is not one of"),
                 ("made_by", "robots", "write staffeln or manual"),
                 ("created", "yesterday", "'yesterday' is not a date"),
                 ("created", "2026-11-05..2026-11-01", "ends before"),
                 ("colour", "red", "unknown filter 'colour'")]
        for field, value, message in cases:
            with self.assertRaises(rules.FilterError) as e:
                rules.parse_filter(field, value)
            self.assertIn(message, str(e.exception))


class WalkTest(unittest.TestCase):
    def setUp(self):
        # 30 backups, one a day, every third made by Staffeln.
        self.rows = [Row("b%02d" % i, day(i), automated=(i % 3 == 0))
                     for i in range(30)]
        self.calls = []

    def fetch(self, marker, limit, sort_dir):
        """Cinder's marker/limit over created_at."""
        self.calls.append((marker, limit, sort_dir))
        ordered = sorted(self.rows, key=lambda r: r.created_at,
                         reverse=(sort_dir == "desc"))
        start = 0
        if marker is not None:
            start = [r.id for r in ordered].index(marker) + 1
        page = ordered[start:start + limit]
        return page, start + limit < len(ordered)

    def ids(self, rows):
        return [r.id for r in rows]

    def test_pages_newest_first(self):
        rows, more = rules.walk(self.fetch, rules.Query({}), None, "desc",
                                5, 6)
        self.assertEqual(self.ids(rows), ["b29", "b28", "b27", "b26", "b25"])
        self.assertTrue(more)
        rows, more = rules.walk(self.fetch, rules.Query({}), "b05", "desc",
                                5, 6)
        self.assertEqual(self.ids(rows), ["b04", "b03", "b02", "b01", "b00"])
        self.assertFalse(more)

    def test_a_thinning_filter_reads_on(self):
        manual = rules.Query({}, automated=False)
        rows, more = rules.walk(self.fetch, manual, None, "desc", 4, 3)
        self.assertEqual(self.ids(rows), ["b29", "b28", "b26", "b25"])
        self.assertTrue(more)
        self.assertGreater(len(self.calls), 1)
        self.assertEqual(self.calls[1][0], "b27")

    def test_date_range_stops_reading_past_it(self):
        q = rules.parse_filter("created", "2026-11-21..2026-11-23")
        rows, more = rules.walk(self.fetch, q, None, "desc", 10, 4)
        self.assertEqual(self.ids(rows), ["b22", "b21", "b20"])
        self.assertFalse(more)
        # Stopped at b19, not read to the end.
        self.assertEqual(len(self.calls), 3)

    def test_backward_from_a_marker(self):
        rows, more = rules.walk(self.fetch, rules.Query({}), "b10", "asc",
                                3, 4)
        self.assertEqual(self.ids(rows), ["b11", "b12", "b13"])
        self.assertTrue(more)
