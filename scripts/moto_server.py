"""moto_server (the pinned moto[server]) with four costs cut, the
stream trimmed and kept across a rollback.

moto 5.2.5's DynamoDB is quadratic in the table's size in two places, and
the 5,000-contract fan-out test took 20 minutes to ingest because of them:

- TransactWriteItems backs up the table before it runs, to put it back if
  the transaction is cancelled, by deep-copying the whole table (with
  every stream record it ever produced) once per action. Here each table is
  backed up once per transaction: deep copies of the items the transaction
  touches, every other item and the (append-only) stream records shared
  with the live table. The rollback restores exactly what moto's would.
- Query lists and sorts every item of the table (`Table.all_items`) and
  then filters and sorts what matches. Here a query of the table itself
  lists only the queried partition, and a query of an index skips the first
  sort. The results are moto's own: same filter, same final sort.
- Query of a global secondary index lists every item of the table, to keep
  those of the queried index partition: a tick's 64 shard queries, or a
  lookup by schedule id, cost a pass over the whole table each. Here each
  table with a stream keeps, per index, its items by index partition key,
  updated on every write as the stream sees it (old image out, new in) and
  rebuilt after a cancelled transaction; a query of an index lists only its
  partition, which moto then filters and sorts as before.
- A cancelled transaction puts the table back from its backup, stream
  shard included: shard iterators handed out before then read a shard
  nothing is added to. Here the backup keeps the live shard object, with
  its records as they were before the transaction.
- DynamoDB Streams' GetRecords goes through moto's generic serializer,
  which walks every attribute of every image against the service model:
  about 1.6 ms a record, half a minute for the 15,000 records of 250
  contracts. Here the records (already in the wire's JSON form) are dumped
  as JSON, with the creation time as epoch seconds as the protocol has it.
- A stream keeps every record it ever produced, each with both images as
  JSON-ready dicts (about 30 KB of Python objects): the 2,000-contract
  boundary grew moto past 23 GB. Here a shard keeps its last 60,000
  records and trims the oldest, as DynamoDB trims records after 24 hours
  (the sequence numbers go on; the harness reads the stream after every
  batch, long before a record is trimmed).

- Per request, the server's dispatcher lists moto's package folder (to
  know the service names), werkzeug formats a log line, and SQS builds a
  queue's every attribute for each message received (to read its
  retention) or sent (to read ContentBasedDeduplication), counting the
  queue's messages each time: a profile of the boundary put a quarter of
  moto's time there. Here the folder is listed once, requests are not
  logged (the launcher's output goes nowhere), and the two attributes are
  read directly.

Everything else is moto's own server and wire protocol.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import copy
import sys
import threading
from collections import defaultdict

import moto.dynamodb.models as models
from moto.server import main


def _table_backup(table, touched):
    """A copy of `table` to restore on rollback. The partitions the
    transaction writes to are copied, with deep copies of the items it
    writes (it may change them in place) and the others shared (it cannot
    change them); every other partition, the table's settings and the
    stream records so far are shared with the live table."""
    backup = copy.copy(table)
    backup.items = table.items.copy()  # a shallow copy reuses the keys' hashes
    for hash_key, range_keys in touched.get(id(table), {}).items():
        if hash_key not in table.items:
            continue
        value = table.items[hash_key]
        if table.range_key_attr:
            partition = dict(value)
            for range_key in range_keys:
                if range_key in partition:
                    partition[range_key] = copy.deepcopy(partition[range_key])
            backup.items[hash_key] = partition
        else:
            backup.items[hash_key] = copy.deepcopy(value)
    if table.stream_shard is not None:
        backup.stream_shard = copy.copy(table.stream_shard)
        backup.stream_shard.items = list(table.stream_shard.items)
        backup.stream_shard.table = backup
    return backup


class _CheapTableBackup:
    """Stands in for the `copy` module inside moto.dynamodb.models. While a
    transaction runs (per thread: the server is threaded), a deepcopy of a
    table is `_table_backup`, made once."""

    def __init__(self):
        self.local = threading.local()

    def deepcopy(self, value, memo=None):
        state = getattr(self.local, "state", None)
        if state is None or not isinstance(value, models.Table):
            return copy.deepcopy(value, memo)
        copies, touched = state
        if id(value) not in copies:
            copies[id(value)] = _table_backup(value, touched)
        return copies[id(value)]

    def __getattr__(self, name):
        return getattr(copy, name)


def _touched_partitions(backend, transact_items):
    """The items the transaction writes to: by table id, hash key, the
    range keys in that partition."""
    touched = defaultdict(lambda: defaultdict(set))
    for action in transact_items:
        for op in action.values():
            try:
                table = backend.get_table(op["TableName"])
                key = op.get("Key") or op["Item"]
                hash_key = models.DynamoType(key[table.hash_key_attr])
                range_key = None
                if table.range_key_attr:
                    range_key = models.DynamoType(key[table.range_key_attr])
                touched[id(table)][hash_key].add(range_key)
            except Exception:  # moto itself reports what is wrong with the action
                continue
    return touched


_shim = _CheapTableBackup()
models.copy = _shim
_transact = models.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    copies = {}
    _shim.local.state = (copies, _touched_partitions(self, transact_items))
    live = {id(t): t for t in self.tables.values()}
    try:
        return _transact(self, transact_items)
    except Exception:
        # Rolled back: the live tables are the backups now. Each keeps the
        # stream shard object of the table it replaces, with the records it
        # had before the transaction, so that shard iterators handed out
        # before (which hold the shard itself) still see what follows.
        for table_id, backup in copies.items():
            shard = getattr(live.get(table_id), "stream_shard", None)
            if shard is not None and backup.stream_shard is not None:
                shard.items = backup.stream_shard.items
                shard.table = backup
                backup.stream_shard = shard
        _partitions.clear()
        raise
    finally:
        _shim.local.state = None


models.DynamoDBBackend.transact_write_items = transact_write_items

_query_local = threading.local()
_all_items = models.Table.all_items
_query = models.Table.query


# Index partitions: table name -> index name -> (type, value) of the index's
# hash key -> {(item hash key, item range key): item}.
_partitions = {}
_partitions_lock = threading.RLock()


def _index_hash_attrs(table):
    """Index name -> its hash attribute, for the indexes with one."""
    attrs = {}
    for index in table.global_indexes:
        hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        if len(hashes) == 1:
            attrs[index.name] = hashes[0]
    return attrs


def _primary(item):
    return (item.hash_key, item.range_key)


def _place(maps, attrs, item, add):
    for name, attr in attrs.items():
        value = item.attrs.get(attr)
        if value is None:
            continue
        partition = maps[name].setdefault((value.type, str(value.value)), {})
        if add:
            partition[_primary(item)] = item
        else:
            partition.pop(_primary(item), None)


def _maps_of(table):
    """The table's index partitions, built on first use."""
    with _partitions_lock:
        maps = _partitions.get(table.name)
        if maps is None:
            attrs = _index_hash_attrs(table)
            maps = {name: {} for name in attrs}
            for item in _all_items(table):
                _place(maps, attrs, item, True)
            _partitions[table.name] = maps
        return maps


import moto.dynamodb.models.table as _tables

_stream_add = _tables.StreamShard.add


def stream_add(self, old, new):
    """Every write of a table with a stream comes here: the index
    partitions follow it."""
    with _partitions_lock:
        maps = _partitions.get(self.table.name)
        if maps is not None:
            attrs = _index_hash_attrs(self.table)
            if old is not None:
                _place(maps, attrs, old, False)
            if new is not None:
                _place(maps, attrs, new, True)
    added = _stream_add(self, old, new)
    if len(self.items) > STREAM_RECORDS:
        # Keep the newest half; the first sequence number moves with them.
        drop = len(self.items) - STREAM_RECORDS // 2
        del self.items[:drop]
        self.starting_sequence_number += drop
    return added


STREAM_RECORDS = 60_000

_tables.StreamShard.add = stream_add


def all_items(self):
    """Inside a query: the queried partition (of the table or of an index),
    or every item unsorted."""
    scope = getattr(_query_local, "scope", None)
    if scope is None or scope[0] is not self:
        return _all_items(self)
    _, hash_key = scope
    if isinstance(hash_key, tuple):
        _, index_name, value = hash_key
        maps = _maps_of(self)
        return list(maps[index_name].get((value.type, str(value.value)), {}).values())
    if hash_key is None:
        return [i for v in self.items.values() for i in (v.values() if self.range_key_attr else [v])]
    partition = self.items.get(hash_key, {})
    return list(partition.values()) if self.range_key_attr else [partition]


def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
          scan_index_forward, projection_expressions, index_name=None, *args, **kwargs):
    indexed = (
        index_name
        and self.stream_shard is not None
        and hash_key is not None
        and index_name in _index_hash_attrs(self)
    )
    if indexed:
        _query_local.scope = (self, ("index", index_name, hash_key))
    else:
        _query_local.scope = (self, None if index_name else hash_key)
    try:
        return _query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                      scan_index_forward, projection_expressions, index_name, *args, **kwargs)
    finally:
        _query_local.scope = None


models.Table.all_items = all_items
models.Table.query = query

import base64
import datetime
import json

from moto.dynamodbstreams import responses as _stream_responses


def _wire_json(value):
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value)} is not JSON")


def get_records(self):
    arn = self._get_param("ShardIterator")
    limit = self._get_param("Limit")
    result = self.backend.get_records(arn, 1000 if limit is None else limit)
    return json.dumps(result, default=_wire_json)


_stream_responses.DynamoDBStreamsHandler.get_records = get_records

import logging

import selectors

import werkzeug.serving as werkzeug_serving
from werkzeug.serving import WSGIRequestHandler

import moto.backends as _backends
import moto.sqs.models as _sqs_models
from moto.core.utils import unix_time as _unix_time

# Keep-alive: werkzeug closes every connection after one response (it
# cannot tell whether the application read the whole request body; moto
# reads every body, the SDK sends them with a Content-Length), so each AWS
# call cost a TCP connection and a new thread, and each response went out
# in two writes: a profile of the boundary put a third of moto's time
# there. Here a connection stays open for the client's next request, and a
# response is one buffered write.
_send_header = WSGIRequestHandler.send_header


def _send_header_keeping_alive(self, key, value):
    if key.lower() == "connection" and value.lower() == "close":
        return
    _send_header(self, key, value)


def _expect_100(self):
    # The interim response must leave at once: the client sends the body after it.
    answered = _handle_expect_100(self)
    self.wfile.flush()
    return answered


class _NothingLeft:
    """werkzeug's run_wsgi reads whatever the socket holds after a response
    (safe only because it closes the connection), waiting 10 ms for more:
    on a kept connection that is the next request. Moto reads every body,
    so there is nothing to discard."""

    def register(self, *args):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


class _Selectors:
    DefaultSelector = _NothingLeft
    EVENT_READ = selectors.EVENT_READ


werkzeug_serving.selectors = _Selectors
_handle_expect_100 = WSGIRequestHandler.handle_expect_100
WSGIRequestHandler.send_header = _send_header_keeping_alive
WSGIRequestHandler.handle_expect_100 = _expect_100
WSGIRequestHandler.wbufsize = 64 * 1024

_moto_modules = tuple(_backends.list_of_moto_modules())
_backends.list_of_moto_modules = lambda: _moto_modules
logging.getLogger("werkzeug").setLevel(logging.ERROR)
WSGIRequestHandler.log_request = lambda self, code="-", size="-": None


def _retained(self, queue_name, message):
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > _unix_time()


_sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained

# SendMessage reads one attribute of the queue (ContentBasedDeduplication)
# through `Queue.attributes`, which counts the queue's visible and delayed
# messages first: a pass over the queue per message sent. Here a send
# gets that one attribute.
_queue_attributes = _sqs_models.Queue.attributes
_sending = threading.local()


def _attributes(self):
    if getattr(_sending, "active", False):
        if self.fifo_queue:
            return {"ContentBasedDeduplication": str(bool(self.content_based_deduplication)).lower()}
        return {}
    return _queue_attributes.fget(self)


_send_message = _sqs_models.SQSBackend.send_message


def _send_message_cheaply(self, *args, **kwargs):
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = False


_sqs_models.Queue.attributes = property(_attributes)
_sqs_models.SQSBackend.send_message = _send_message_cheaply

if __name__ == "__main__":
    sys.exit(main())
