"""The cdc pipelines' capture side: one Debezium Postgres connector per run.

  cdc         streams the business table ``orders`` itself (``Capture.table = "orders"``)
  cdc_outbox  streams the ``outbox`` table through Debezium's outbox event router
              (``Capture.table = "outbox"``): the relay's job, done by Debezium

No outbox and no publishing code: the order service only commits rows, and Debezium
reads each committed change from the WAL through a logical replication slot. The run
owns its publication (created here, so ``publication.autocreate.mode=disabled`` needs no
superuser), its slot (named after the run, dropped at teardown: a forgotten slot keeps
WAL forever) and its connector (deleted at teardown).

Records of ``orders``: key = the order id as a plain string (``ExtractField$Key`` +
StringConverter), so every change of one order lands on one partition, the one Java's
murmur2 picks; value = the row after the change (``ExtractNewRecordState``, JSON without
schemas), which consumers decode with ``targets.domain.event_from_row``; header ``chaos-lsn``
= the change's WAL position (Debezium's ``source.lsn``).
Records of ``outbox``: the EventRouter keys by ``order_id``, puts the event id in the ``id``
header and the row's own id in ``chaos-outbox-id``, expands the JSON ``payload`` column into the
value (the domain event itself) and routes every row to the pipeline's one topic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import TargetError
from harness.infra import postgres
from harness.infra.connect import ConnectClient, ConnectorState
from harness.infra.topology import HOST, Topology
from harness.sdk.provenance import LSN_HEADER, OUTBOX_ID_HEADER
from harness.wait import wait_for

__all__ = ["Capture"]

READY_TIMEOUT_S = 120.0
RELEASE_GRACE_S = 10.0
PUBLICATION = "chaos_orders"


@dataclass(frozen=True, slots=True)
class Capture:
    """The Debezium connector of one run."""

    run_id: str
    database: str
    topo: Topology
    table: str = "orders"  # or "outbox" for the outbox event router

    # Names carry the table as well as the run: one run captures ``orders`` (cdc) and then
    # ``outbox`` (cdc_outbox), and Connect remembers a deleted connector's last task status,
    # so reusing a name would show the new connector the old one's FAILED task.
    @property
    def name(self) -> str:
        return f"cdc-{self.table}-{self.run_id}"

    @property
    def slot(self) -> str:
        return f"chaos_{self.table}_" + self.run_id.replace("-", "_")

    @property
    def topic_prefix(self) -> str:
        return f"cdc.{self.table}.{self.run_id}"

    @property
    def topic(self) -> str:
        if self.table == "outbox":
            return f"orders.cdc_outbox.{self.run_id}"
        return f"{self.topic_prefix}.public.orders"

    def _transforms(self) -> dict[str, str]:
        if self.table == "outbox":
            return {
                "transforms": "outbox",
                "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
                "transforms.outbox.table.field.event.id": "event_id",
                "transforms.outbox.table.field.event.key": "order_id",
                "transforms.outbox.table.field.event.payload": "payload",
                "transforms.outbox.table.expand.json.payload": "true",
                "transforms.outbox.route.by.field": "type",
                # One topic for every event type: consumers rely on one partition per order.
                "transforms.outbox.route.topic.replacement": self.topic,
                # The row's id as the provenance header `chaos trace` shows (harness.sdk.provenance).
                # The router sees only the row's columns, not Debezium's source block, so no LSN here.
                "transforms.outbox.table.fields.additional.placement": f"id:header:{OUTBOX_ID_HEADER}",
            }
        return {
            "transforms": "unwrap,key",
            "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
            "transforms.unwrap.delete.tombstone.handling.mode": "drop",
            # The change's WAL position (source.lsn) as the provenance header `chaos trace` shows:
            # `lsn` becomes the header <prefix>lsn, i.e. chaos-lsn (harness.sdk.provenance).
            "transforms.unwrap.add.headers": "lsn",
            "transforms.unwrap.add.headers.prefix": LSN_HEADER.removesuffix("lsn"),
            "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
            "transforms.key.field": "order_id",
        }

    def config(self) -> Mapping[str, str]:
        return {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1",
            "plugin.name": "pgoutput",
            # The database link runs through its own proxy, so a fault can cut connect->postgres alone.
            "database.hostname": HOST,
            "database.port": str(self.topo.link("connect->postgres").proxy_port),
            "database.user": "postgres",
            "database.password": "postgres",
            "database.dbname": self.database,
            "topic.prefix": self.topic_prefix,
            "table.include.list": f"public.{self.table}",
            "publication.name": PUBLICATION,
            "publication.autocreate.mode": "disabled",
            "slot.name": self.slot,
            # The table is empty when the connector starts: stream from the slot's creation on.
            "snapshot.mode": "no_data",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            **self._transforms(),
            # A lost database connection is retried by the task itself (the default -1 means forever).
            "errors.max.retries": "-1",
            "status.update.interval.ms": "1000",
            # Debezium's default 500 ms between polls of its change queue dominated the measured
            # capture lag (p50 ~510 ms at 40 orders/s); 50 ms keeps it at what the WAL stream allows.
            "poll.interval.ms": "50",
        }

    def create_publication(self) -> None:
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {self.table}")

    def register(self, client: ConnectClient) -> None:
        self._clear_stale(client)
        client.put(self.name, self.config())
        self.await_running(client)

    def _clear_stale(self, client: ConnectClient) -> None:
        """Remove connectors and slots a killed harness left behind on this infra.

        One base port runs one pipeline at a time (the order service's port is fixed), so any
        other cdc connector here is a leftover: it would keep streaming a dead run's slot and
        its slot would keep WAL forever.
        """
        for name in client.connectors():
            if name.startswith("cdc-") and name != self.name:
                client.delete(name)
        with postgres.connect_direct(self.topo.postgres_port) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name LIKE 'chaos\\_%%' AND NOT active AND slot_name <> %s", (self.slot,))

    def await_running(self, client: ConnectClient, timeout_s: float = READY_TIMEOUT_S) -> ConnectorState:
        """Readiness: the task is RUNNING and the slot is active (Debezium is streaming from it)."""

        def observe() -> tuple[bool, ConnectorState | str]:
            state = client.status(self.name)
            if state.failed:
                return True, state  # done waiting: it will not recover by itself (raised below)
            active = self.slot_active()
            return state.running and active, f"connector {state.connector} tasks {state.tasks} slot active={active}"

        outcome = wait_for(observe, timeout_s=timeout_s, what=f"Debezium connector {self.name} to stream", interval_s=0.5)
        if isinstance(outcome, ConnectorState):
            raise TargetError(f"Debezium connector {self.name} failed ({outcome.connector}, tasks {outcome.tasks}); "
                              f"see connect.log in the infra logs. Trace:\n{outcome.trace}")
        return client.status(self.name)

    def slot_active(self) -> bool:
        with postgres.connect_direct(self.topo.postgres_port) as conn:
            row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)).fetchone()
        return bool(row and row[0])

    def teardown(self, client: ConnectClient | None) -> None:
        """Delete the connector, then drop its slot once nothing streams from it."""
        if client is not None:
            client.delete(self.name)
        started = time.monotonic()

        def drop() -> tuple[bool, str]:
            with postgres.connect_direct(self.topo.postgres_port) as conn:
                row = conn.execute("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s",
                                   (self.slot,)).fetchone()
                if row is None:
                    return True, "no slot"
                if row[0]:
                    # A deleted connector's task lets go of its slot within seconds; one that does not
                    # (Connect down, a half-open proxied connection) gets its walsender ended.
                    if time.monotonic() - started > RELEASE_GRACE_S:
                        conn.execute("SELECT pg_terminate_backend(%s)", (row[1],))
                    return False, f"slot {self.slot} still active (pid {row[1]})"
                conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
                return True, "dropped"

        wait_for(drop, timeout_s=30, what=f"replication slot {self.slot} to be dropped", interval_s=0.5)
