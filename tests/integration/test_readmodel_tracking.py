"""The read model's tracking hook: a partition's position moves in the transaction of the projector's
writes, only forward, through eventsourcing's public tracking statements (ReadModelTracking.track_in)."""

import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from libs.infra.db import Database


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    yield d
    d.close()


def test_a_position_moves_forward_with_its_transaction_only(db):
    with db.projection.writing(0) as writer:
        assert writer.position() == 0
        writer.track(5)
        assert writer.position() == 5  # seen inside the transaction before it commits
        assert db.projection.partition_positions()[0] == 0  # and by no one else
    assert db.projection.partition_positions()[0] == 5
    for stale in (5, 3):  # eventsourcing's exactly-once idiom: a position that does not move forward fails
        with pytest.raises(IntegrityError, match=f"projector.p0 {stale}"):
            with db.projection.writing(0) as writer:
                writer.track(stale)
    assert db.projection.partition_positions()[0] == 5


def test_a_failed_projection_takes_its_position_back(db):
    with pytest.raises(RuntimeError, match="fold failed"):
        with db.projection.writing(1) as writer:
            writer.track(7)
            writer.quarantine(uuid.UUID(int=1), 1, 7, 1, "boom")
            raise RuntimeError("fold failed")
    assert db.projection.partition_positions()[1] == 0
    assert db.ledger.quarantined() == set()
    with db.projection.writing(partitions=[1, 2]) as writer:  # a writer of several partitions names each one
        writer.track(9, partition=1)
        assert (writer.position(1), writer.position(2)) == (9, 0)
    assert db.projection.position() == 0 and db.projection.partition_positions()[1] == 9
