"""Every PostgreSQL advisory lock BotRanks takes, declared once.

The numbers are a protocol between processes (and versions) on one database: never change one.
The 0x42075A__ family are (class) or (class, partition/slot) keys; ``SETUP`` predates it.
"""

#: session lock around eventsourcing's CREATE TABLEs and the migrations (``Database.create_tables``)
SETUP = 4207
#: transaction lock of the migrations themselves (``schema.migrate``)
MIGRATION = 0x42_07_5A_01
#: session lock of the relay's leader (``services/relay``)
RELAY = 0x42_07_5A_02
#: (class, partition) transaction lock every projection transaction of a partition holds
PROJECTOR = 0x42_07_5A_03
#: (class, slot) session lock of a projector's membership (``services/projector/consumer.py``)
PROJECTOR_MEMBER = 0x42_07_5A_04
#: (class, partition) session lock of a projector's lease on a partition
PROJECTOR_LEASE = 0x42_07_5A_05
#: session lock of the demo's writers: ``botranks demo`` holds it while it runs, the live loop for each round
DEMO = 0x42_07_5A_06
