"""The stock Project > Volumes > Backups panel with the plugin's override:
Delete hidden for Staffeln's backups, kept for the tenant's own."""

from django.test.utils import override_settings
from django.urls import reverse

from openstack_dashboard import api as dashboard_api
from openstack_dashboard.test import helpers as test

from staffeln_dashboard import api

INDEX_URL = reverse("horizon:project:backups:index")


@override_settings(API_RESULT_PAGE_SIZE=10)
class StockBackupsPanelTests(test.TestCase):

    def _index(self):
        backups = self.cinder_volume_backups.list()
        self.mock_volume_backup_list_paged_with_page_menu.return_value = [
            backups, 10, len(backups), 1]
        self.mock_volume_list.return_value = self.cinder_volumes.list()
        self.mock_volume_snapshot_list.return_value = \
            self.cinder_volume_snapshots.list()
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        return res, backups

    @test.create_mocks({dashboard_api.cinder: (
        "volume_list", "volume_snapshot_list",
        "volume_backup_list_paged_with_page_menu"),
        api: ("recorded_ids",)})
    def test_delete_hidden_for_recorded_backups(self):
        backups = self.cinder_volume_backups.list()
        staffelns = backups[0].id
        own = [b.id for b in backups[1:] if b.status == "available"]
        self.assertTrue(own)
        self.mock_recorded_ids.return_value = {staffelns}
        res, _ = self._index()
        content = res.content.decode()
        self.assertNotIn("volume_backups__row_%s__action_delete" % staffelns,
                         content)
        for backup_id in own:
            self.assertIn("volume_backups__row_%s__action_delete" % backup_id,
                          content)
        # One question to staffeln-api per page, not one per row.
        self.mock_recorded_ids.assert_called_once_with(test.IsHttpRequest())

    @test.create_mocks({dashboard_api.cinder: (
        "volume_list", "volume_snapshot_list",
        "volume_backup_list_paged_with_page_menu"),
        api: ("recorded_ids",)})
    def test_no_delete_while_staffeln_cannot_say(self):
        self.mock_recorded_ids.side_effect = api.StaffelnApiError("down")
        res, backups = self._index()
        content = res.content.decode()
        for b in backups:
            self.assertNotIn("volume_backups__row_%s__action_delete" % b.id,
                             content)
