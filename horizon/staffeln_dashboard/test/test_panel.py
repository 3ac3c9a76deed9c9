"""The panel through Horizon's own test helpers: the table, its filters,
pagination, and Delete hidden for Staffeln's backups.

Horizon's TestCase refuses any real connection; the services are replaced
at the plugin's API module, Cinder by a model of its backup listing
(marker/limit over ``created_at``, the non-admin filters name, status,
volume_id). The end-to-end test (tests/horizon/e2e.py) runs the same panel
against the real services.
"""

import copy
import datetime
import json
from unittest import mock

from django.test.utils import override_settings
from django.urls import reverse

from openstack_dashboard.test import helpers as test

from staffeln_dashboard import api
from staffeln_dashboard import rules

INDEX_URL = reverse("horizon:project:staffeln_backups:index")
FILTER = "staffeln_backups__filter__q"


def backup(i, automated=False, recorded_only=False, status="available"):
    metadata = {}
    if automated and not recorded_only:
        metadata = {rules.AUTOMATED_KEY: "True",
                    rules.INSTANCE_KEY: "srv-1"}
    return api.Backup(
        id="bk-%03d" % i, name="backup-%03d" % i, status=status, size=1 + i,
        incremental=(i % 2 == 1),
        created_at=datetime.datetime(2026, 11, 1) + datetime.timedelta(
            hours=i),
        volume_id="vol-%d" % (i % 2), metadata=metadata)


class CinderModel(object):
    """Cinder's backup listing as a tenant sees it."""

    def __init__(self, rows):
        self.rows = rows
        self.calls = []

    def fetcher(self, request, search_opts):
        def fetch(marker, limit, sort_dir):
            self.calls.append((dict(search_opts), marker, limit, sort_dir))
            rows = [r for r in self.rows
                    if all(getattr(r, k) == v for k, v in search_opts.items())]
            rows.sort(key=lambda r: (r.created_at, r.id),
                      reverse=(sort_dir == "desc"))
            start = 0
            if marker is not None:
                ids = [r.id for r in rows]
                if marker not in ids:
                    raise Exception("Backup %s could not be found." % marker)
                start = ids.index(marker) + 1
            page = rows[start:start + limit]
            # Fresh objects, as each Cinder answer is.
            page = [copy.copy(r) for r in page]
            return page, start + limit < len(rows)
        return fetch


@override_settings(API_RESULT_PAGE_SIZE=5)
class BackupsPanelTests(test.TestCase):

    def setUp(self):
        super().setUp()
        # 12 backups, newest is bk-011; even ones by Staffeln (bk-004 only
        # recorded by Staffeln, without the mark), odd ones the tenant's.
        rows = [backup(i, automated=(i % 2 == 0), recorded_only=(i == 4))
                for i in range(12)]
        self.cinder = CinderModel(rows)
        self.recorded = {r.id for r in rows if int(r.id[3:]) % 2 == 0}

    def _mock(self):
        self.mock_backup_fetcher.side_effect = self.cinder.fetcher
        self.mock_volumes.return_value = {
            "vol-0": ("data", "srv-1"), "vol-1": ("scratch", "srv-2")}
        self.mock_server_names.return_value = {"srv-1": "web",
                                               "srv-2": "db"}
        self.mock_recorded_ids.return_value = self.recorded

    def _ids(self, res):
        return [r.id for r in res.context["table"].data]

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_index_lists_the_newest_page(self):
        self._mock()
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "project/staffeln_backups/index.html")
        table = res.context["table"]
        self.assertEqual(self._ids(res),
                         ["bk-011", "bk-010", "bk-009", "bk-008", "bk-007"])
        row = {r.id: r for r in table.data}
        self.assertTrue(row["bk-010"].automated)
        self.assertFalse(row["bk-011"].automated)
        self.assertEqual(row["bk-010"].server_name, "web")
        self.assertEqual(row["bk-011"].server_name, "db")
        self.assertEqual(row["bk-011"].volume_name, "scratch")
        content = res.content.decode()
        for text in ("Made By", "Full/Incremental", "Staffeln", "Manual",
                     "Incremental", "Full", "12 GiB", "web", "scratch",
                     "2026-11-01 11:00:00 UTC"):
            self.assertIn(text, content)
        self.assertTrue(table._meta.has_more_data)
        self.assertFalse(table._meta.has_prev_data)
        self.assertIn("?backup_marker=bk-007", content)
        self.assertMessageCount(res, error=0, warning=0)
        self.mock_recorded_ids.assert_called_once_with(test.IsHttpRequest())

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_delete_hidden_for_staffeln_backups(self):
        self._mock()
        res = self.client.get(INDEX_URL)
        content = res.content.decode()
        table = res.context["table"]
        for r in table.data:
            actions = [a.name for a in table.get_row_actions(r)]
            self.assertEqual("delete" in actions, not r.automated, r.id)
            action_id = "staffeln_backups__row_%s__action_delete" % r.id
            self.assertEqual(action_id in content, not r.automated, r.id)
        # bk-008 carries the mark; bk-004 (next page) is only recorded.
        self.assertNotIn("row_bk-008__action_delete", content)
        res = self.client.get(INDEX_URL + "?backup_marker=bk-005")
        self.assertIn("bk-004", self._ids(res))
        self.assertNotIn("row_bk-004__action_delete", res.content.decode())

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_staffeln_api_down_offers_no_delete(self):
        self._mock()
        self.mock_recorded_ids.side_effect = api.StaffelnApiError(
            "staffeln-api at http://x:8808: connection refused")
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertNotIn("__row_", res.content.decode().replace(
            "staffeln_backups__row__", ""))
        self.assertNotIn("__action_delete\"", res.content.decode().replace(
            "staffeln_backups__action_delete\"", ""))
        self.assertMessageCount(res, warning=1)
        self.assertNotIn("Traceback", res.content.decode())

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids", "delete_backup"]})
    def test_delete_own_backup_and_refuse_staffeln_one(self):
        self._mock()
        res = self.client.post(INDEX_URL, {
            "action": "staffeln_backups__delete__bk-011"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_delete_backup.assert_called_once_with(
            test.IsHttpRequest(), "bk-011")
        self.mock_delete_backup.reset_mock()
        # A forged POST for Staffeln's backup: Horizon does not run it.
        res = self.client.post(INDEX_URL, {
            "action": "staffeln_backups__delete__bk-010"})
        self.mock_delete_backup.assert_not_called()
        self.assertMessageCount(error=1)

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids", "delete_backup"]})
    def test_delete_error_is_horizons_message(self):
        self._mock()
        self.mock_delete_backup.side_effect = self.exceptions.cinder
        res = self.client.post(INDEX_URL, {
            "action": "staffeln_backups__delete__bk-011"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.assertMessageCount(error=1)

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_pages_forward_and_back(self):
        self._mock()
        res = self.client.get(INDEX_URL + "?backup_marker=bk-007")
        self.assertEqual(self._ids(res),
                         ["bk-006", "bk-005", "bk-004", "bk-003", "bk-002"])
        table = res.context["table"]
        self.assertTrue(table._meta.has_more_data)
        self.assertTrue(table._meta.has_prev_data)
        self.assertIn("?prev_backup_marker=bk-006", res.content.decode())
        res = self.client.get(INDEX_URL + "?backup_marker=bk-002")
        self.assertEqual(self._ids(res), ["bk-001", "bk-000"])
        self.assertFalse(res.context["table"]._meta.has_more_data)
        res = self.client.get(INDEX_URL + "?prev_backup_marker=bk-006")
        self.assertEqual(self._ids(res),
                         ["bk-011", "bk-010", "bk-009", "bk-008", "bk-007"])
        self.assertFalse(res.context["table"]._meta.has_prev_data)
        # Cinder was asked with marker and limit, newest first, and backwards
        # (oldest first) for the previous page.
        self.assertIn(({}, "bk-007", 6, "desc"), self.cinder.calls)
        self.assertIn(({}, "bk-006", 6, "asc"), self.cinder.calls)

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_oldest_first(self):
        self._mock()
        res = self.client.get(INDEX_URL + "?order=asc")
        self.assertEqual(self._ids(res),
                         ["bk-000", "bk-001", "bk-002", "bk-003", "bk-004"])
        self.assertIn("Newest first", res.content.decode())
        # Kept in the session, like the filter.
        res = self.client.get(INDEX_URL + "?backup_marker=bk-004")
        self.assertEqual(self._ids(res)[0], "bk-005")

    def _filter(self, field, value):
        """Horizon's server filter: posted, kept in the session, and the
        first page shown again."""
        res = self.client.post(INDEX_URL, {
            FILTER: value, FILTER + "_field": field,
            "action": "staffeln_backups__filter"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        return self.client.get(INDEX_URL)

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_filter_manual_walks_cinder_pages(self):
        self._mock()
        res = self._filter("made_by", "manual")
        self.assertEqual(res.status_code, 200)
        self.assertEqual(self._ids(res),
                         ["bk-011", "bk-009", "bk-007", "bk-005", "bk-003"])
        self.assertTrue(res.context["table"]._meta.has_more_data)
        # The filter stays for the next page (Horizon keeps it in the session).
        res = self.client.get(INDEX_URL + "?backup_marker=bk-003")
        self.assertEqual(self._ids(res), ["bk-001"])

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_filter_staffeln_server_volume_name_status(self):
        self._mock()
        res = self._filter("made_by", "staffeln")
        self.assertEqual(self._ids(res),
                         ["bk-010", "bk-008", "bk-006", "bk-004", "bk-002"])
        res = self._filter("server", "db")
        self.assertEqual(self._ids(res),
                         ["bk-011", "bk-009", "bk-007", "bk-005", "bk-003"])
        res = self._filter("volume", "data")
        self.assertEqual(self._ids(res)[0], "bk-010")
        self.assertEqual(self.cinder.calls[-1][0], {"volume_id": "vol-0"})
        res = self._filter("name", "backup-003")
        self.assertEqual(self._ids(res), ["bk-003"])
        self.assertEqual(self.cinder.calls[-1][0], {"name": "backup-003"})
        res = self._filter("status", "error")
        self.assertEqual(self._ids(res), [])
        self.assertEqual(self.cinder.calls[-1][0], {"status": "error"})

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_filter_date_range(self):
        self._mock()
        res = self._filter("created", "2026-11-01..2026-11-01")
        self.assertEqual(len(self._ids(res)), 5)
        res = self._filter("created", "2026-11-02..")
        self.assertEqual(self._ids(res), [])

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_bad_filter_is_a_message(self):
        self._mock()
        res = self._filter("created", "last tuesday")
        self.assertEqual(res.status_code, 200)
        self.assertMessageCount(res, error=1)
        self.assertEqual(self._ids(res), [])
        self.assertIn("is not a date", res.content.decode())

    @test.create_mocks({api: ["backup_fetcher", "volumes", "server_names",
                              "recorded_ids"]})
    def test_cinder_error_is_horizons_message(self):
        self._mock()
        self.mock_backup_fetcher.side_effect = self.exceptions.cinder
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertMessageCount(res, error=1)
        self.assertNotIn("Traceback", res.content.decode())


class ApiTests(test.TestCase):
    """The plugin's API module over Horizon's own API and HTTP answers."""

    @test.create_mocks({api.nova: ["server_list"]})
    def test_server_names_through_horizons_nova(self):
        servers = self.servers.list()
        self.mock_server_list.return_value = (servers, False)
        names = api.server_names(self.request)
        self.assertEqual(names, {s.id: s.name for s in servers})
        self.mock_server_list.assert_called_once_with(
            test.IsHttpRequest(), detailed=False)

    def _answer(self, status, body):
        resp = mock.Mock(status_code=status, text=json.dumps(body))
        resp.json.return_value = body
        return resp

    def test_recorded_ids_follow_the_next_links(self):
        pages = [
            self._answer(200, {"backups": [{"id": "a"}, {"id": "b"}],
                               "backups_links": [{"rel": "next",
                                                  "href": "x"}]}),
            self._answer(200, {"backups": [{"id": "c"}]}),
        ]
        with mock.patch.object(api.requests, "get",
                               side_effect=pages) as get:
            self.assertEqual(api.recorded_ids(self.request), {"a", "b", "c"})
        self.assertEqual(get.call_count, 2)
        self.assertEqual(get.call_args_list[1][1]["params"], {"marker": "b"})
        self.assertEqual(get.call_args_list[0][1]["headers"]["X-Auth-Token"],
                         self.request.user.token.id)

    def test_recorded_ids_name_what_went_wrong(self):
        cases = [
            (self._answer(401, {"error": "no"}), "answered 401"),
            (self._answer(200, {"nothing": []}), "staffeln-api's listing"),
            (api.requests.ConnectionError("refused"), "refused"),
        ]
        for answer, message in cases:
            with mock.patch.object(api.requests, "get",
                                   side_effect=[answer]):
                with self.assertRaises(api.StaffelnApiError) as e:
                    api.recorded_ids(self.request)
                self.assertIn(message, str(e.exception))

    @override_settings(STAFFELN_API_URL=None)
    def test_recorded_ids_without_the_setting(self):
        with self.assertRaises(api.StaffelnApiError) as e:
            api.recorded_ids(self.request)
        self.assertIn("STAFFELN_API_URL", str(e.exception))
