"""neutron-api for the functional tier: Neutron's WSGI application with no
service plugins. Its port listing still reads the `port_forwardings` relation,
which only the port-forwarding model module defines (a service plugin would
have imported it): import it, and configure the mappers so that the relation
exists before the first request."""

from sqlalchemy import orm

import neutron.db.models.port_forwarding  # noqa: F401
from neutron.wsgi.api import application  # noqa: F401

orm.configure_mappers()
