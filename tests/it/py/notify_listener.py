"""Stock oslo.messaging notification listener: prints one JSON line per
notification received (info, warn and error priorities), READY once consuming,
and stops when stdin closes.

usage: notify_listener.py URL EXCHANGE TOPIC
"""
import json
import sys

from oslo_config import cfg
import oslo_messaging as om

url, exchange, topic = sys.argv[1:4]


class Endpoint:
    def _show(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        print(json.dumps({
            "priority": priority, "publisher_id": publisher_id, "event_type": event_type,
            "payload": payload, "metadata": metadata, "ctxt": ctxt,
        }), flush=True)

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._show("info", ctxt, publisher_id, event_type, payload, metadata)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._show("warn", ctxt, publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._show("error", ctxt, publisher_id, event_type, payload, metadata)


conf = cfg.CONF  # oslo.messaging registers its tracing options there
conf([])
transport = om.get_notification_transport(conf, url=url)
listener = om.get_notification_listener(
    transport, [om.Target(topic=topic, exchange=exchange)], [Endpoint()], executor="threading")
listener.start()
print("READY", flush=True)
sys.stdin.read()
listener.stop()
listener.wait()
transport.cleanup()
