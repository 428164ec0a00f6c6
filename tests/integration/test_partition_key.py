"""The strategy key PostgreSQL stores with each event (migration 12) equals botranks_domain.partition's.

The projector reads the store by partition in SQL (``strategy_key % P``) and the relay routes the
same events to subjects in Python (``event_partition``): the two must agree on every byte string,
real events and odd ones alike, or a partition's consumer would miss its events.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.partition import event_partition, event_strategy_key, partition_of
from libs.infra.db import Database
from libs.infra.store import EVENTS_TABLE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(make_database):
    database = Database(make_database(), pool_size=1).create_tables()
    yield database
    database.close()


def _sql_keys(db: Database, states: list[bytes]) -> list[int]:
    """Store the states as events and read back the generated strategy_key of each (rolled back)."""
    with db.datastore.transaction(commit=False) as curs:
        keys = []
        for state in states:
            keys.append(
                curs.execute(
                    f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state)"
                    " VALUES (%s, 1, 't', %s) RETURNING strategy_key",
                    (uuid.uuid4(), state),
                ).fetchone()["strategy_key"]
            )
    return keys


_odd = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda a, b: b'{"strategy_id":"' + a + b, st.binary(max_size=10), st.binary(max_size=10)),
    st.builds(lambda h: b'{"x":1,"strategy_id":"' + h.encode(), st.text("0123456789abcdefABCDEF-", max_size=12)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.uuids(), min_size=1, max_size=20), odd=st.lists(_odd, max_size=20))
def test_sql_and_python_keys_agree(db, ids, odd):
    real = [
        f'{{"type":"OrderRecorded.v1","id":"{uuid.uuid4()}","strategy_id":"{sid}","details":'
        f'{{"strategy_id":"{uuid.uuid4()}"}}}}'.encode()
        for sid in ids
    ]
    states = real + odd
    assert _sql_keys(db, states) == [event_strategy_key(s) for s in states]
    for sid, state in zip(ids, real):
        for partitions in (1, 3, 16, 1024):
            assert event_partition(state, partitions) == partition_of(sid, partitions)
