"""A file-backed Cinder volume driver for Staffeln's functional tests.

Each volume is a sparse file ``<file_volume_dir>/volume-<id>`` of the
volume's size; a snapshot is a sparse copy of it. Connections are of type
``local`` (os-brick's LocalConnector): whoever attaches the volume (the
backup service, for a backup or a restore) opens the file itself. Nova's
fake virt driver never opens it, so servers can boot from and attach these
volumes. Tests only: nothing is exported, nothing is isolated.
"""

import os
import shutil

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder import interface
from cinder.volume import driver

LOG = logging.getLogger(__name__)

file_opts = [
    cfg.StrOpt('file_volume_dir',
               default='$state_path/file-volumes',
               help='Directory holding one sparse file per volume.'),
    cfg.IntOpt('file_volume_capacity_gb', default=1000,
               help='Capacity the backend reports, in GiB.'),
]

cfg.CONF.register_opts(file_opts, group='backend_defaults')

GIB = 1024 ** 3


@interface.volumedriver
class FileDriver(driver.VolumeDriver):
    """Sparse files, attached as ``local`` devices."""

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'Staffeln_functional_tests'
    SUPPORTED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.configuration:
            self.configuration.append_config_values(file_opts)
        self._stats = {}

    # -- helpers -----------------------------------------------------------
    def _dir(self):
        return self.configuration.safe_get('file_volume_dir')

    def _path(self, name):
        return os.path.join(self._dir(), name)

    def local_path(self, volume):
        return self._path('volume-%s' % volume.id)

    def _snapshot_path(self, snapshot):
        return self._path('snapshot-%s' % snapshot.id)

    @staticmethod
    def _sparse_copy(src, dst, size_gb):
        # cp keeps holes; the size is then set to the destination's size.
        with open(src, 'rb') as fin, open(dst, 'wb') as fout:
            while True:
                chunk = fin.read(4 * 1024 * 1024)
                if not chunk:
                    break
                if chunk.count(0) == len(chunk):
                    fout.seek(len(chunk), os.SEEK_CUR)
                else:
                    fout.write(chunk)
            fout.truncate(size_gb * GIB)

    # -- lifecycle ---------------------------------------------------------
    def do_setup(self, context):
        os.makedirs(self._dir(), exist_ok=True)

    def check_for_setup_error(self):
        if not os.access(self._dir(), os.W_OK):
            raise exception.VolumeBackendAPIException(
                data='file_volume_dir %s is not writable' % self._dir())

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            cap = self.configuration.safe_get('file_volume_capacity_gb')
            used = 0
            for name in os.listdir(self._dir()):
                used += os.path.getsize(self._path(name))
            self._stats = {
                'volume_backend_name':
                    self.configuration.safe_get('volume_backend_name')
                    or 'file',
                'vendor_name': 'Staffeln tests',
                'driver_version': self.VERSION,
                'storage_protocol': 'local',
                'total_capacity_gb': cap,
                'free_capacity_gb': max(cap - used // GIB, 0),
                'reserved_percentage': 0,
                'thin_provisioning_support': True,
                'thick_provisioning_support': False,
                'max_over_subscription_ratio': 20.0,
                'multiattach': False,
                # Each volume is a file of its own: no target is shared
                # between volumes. Cinder's default (True) makes Nova lock
                # on the volume's service_uuid while attaching, and a volume
                # made before cinder-volume learned its service uuid has
                # none: Nova then failed the boot ('NoneType' object has no
                # attribute 'replace'), seen on a loaded machine.
                'shared_targets': False,
            }
        return self._stats

    # -- volumes -----------------------------------------------------------
    def create_volume(self, volume):
        with open(self.local_path(volume), 'wb') as f:
            f.truncate(volume.size * GIB)
        return {}

    def delete_volume(self, volume):
        try:
            os.unlink(self.local_path(volume))
        except FileNotFoundError:
            pass

    def extend_volume(self, volume, new_size):
        with open(self.local_path(volume), 'r+b') as f:
            f.truncate(new_size * GIB)

    def create_cloned_volume(self, volume, src_vref):
        self._sparse_copy(self.local_path(src_vref), self.local_path(volume),
                          volume.size)
        return {}

    # -- snapshots ---------------------------------------------------------
    def create_snapshot(self, snapshot):
        self._sparse_copy(self.local_path(snapshot.volume),
                          self._snapshot_path(snapshot), snapshot.volume_size)
        return {}

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._snapshot_path(snapshot))
        except FileNotFoundError:
            pass

    def create_volume_from_snapshot(self, volume, snapshot):
        self._sparse_copy(self._snapshot_path(snapshot),
                          self.local_path(volume), volume.size)
        return {}

    def revert_to_snapshot(self, context, volume, snapshot):
        shutil.copyfile(self._snapshot_path(snapshot),
                        self.local_path(volume))

    # -- exports and connections -------------------------------------------
    def ensure_export(self, context, volume):
        pass

    def create_export(self, context, volume, connector):
        pass

    def remove_export(self, context, volume):
        pass

    def create_export_snapshot(self, context, snapshot, connector):
        pass

    def remove_export_snapshot(self, context, snapshot):
        pass

    def initialize_connection(self, volume, connector, **kwargs):
        return {'driver_volume_type': 'local',
                'data': {'device_path': self.local_path(volume)}}

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._snapshot_path(snapshot)}}

    def terminate_connection(self, volume, connector, **kwargs):
        # A restore truncates the file after its last chunk (a block device
        # would ignore that): keep the file as long as the volume.
        path = self.local_path(volume)
        if os.path.exists(path) and os.path.getsize(path) < volume.size * GIB:
            with open(path, 'r+b') as f:
                f.truncate(volume.size * GIB)

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        pass

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        raise NotImplementedError('images are not supported')

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        raise NotImplementedError('images are not supported')
