"""moto_server (the pinned moto[server]) with its costs cut and the
stream trimmed.

moto 5.2.5's DynamoDB is quadratic in the table's size in two places, and
the 5,000-contract fan-out test took 20 minutes to ingest because of them:

- TransactWriteItems backs up the table before it runs, to put it back if
  the transaction is cancelled, by deep-copying the whole table (with
  every stream record it ever produced) once per action: a transaction
  cost a pass over the table, and a copy that lived on (the copy and its
  stream shard point at each other, a cycle the garbage collector reached
  rarely: 20,000 contracts' ingest grew moto by 3.5 GB a minute). Here a
  transaction saves only the items it writes and where the stream ended,
  and a cancelled one puts them back in the live table.
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
- DynamoDB Streams' GetRecords, and every DynamoDB answer holding items,
  goes through moto's generic serializer,
  which walks every attribute of every image against the service model:
  about 1.6 ms a record, half a minute for the 15,000 records of 250
  contracts. Here the records and items (already in the wire's JSON form)
  are dumped as JSON, binary as base64 and times as epoch seconds as the
  protocol has them (scripts/moto_server_check.py compares the two).
- A stream keeps every record it ever produced, each with both images as
  JSON-ready dicts (about 30 KB of Python objects): the 2,000-contract
  boundary grew moto past 23 GB. Here a shard keeps its last 60,000
  records (trimming the oldest 5,000 at a time), as DynamoDB trims records after 24 hours
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

- An item is built attribute by attribute into a dict that re-measures
  the whole item on every insertion (quadratic in its attributes), and
  every conditional write parses its condition again: a profile of the
  ingest put a quarter of moto's time there. Here an item is measured once
  (the same 405,000-byte limit), and a condition's parse is kept by its
  text, names and values (moto's operators hold no state).

- Transactions are isolated from each other and honour ClientRequestToken
  (scripts/moto_transactions.py).

Everything else is moto's own server and wire protocol.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import copy
import sys
import threading
from collections import defaultdict

import moto.dynamodb.models as models
from moto.server import main


_MISSING = object()


class _Saved:
    """What a transaction may change in one table, saved to be put back in
    place if it is cancelled: deep copies of the items it writes (moto
    changes an updated item in place), or that they were absent, and where
    the table's stream ended."""

    def __init__(self, table, touched):
        self.table = table
        self.items = {}
        for hash_key, range_keys in touched.get(id(table), {}).items():
            partition = table.items.get(hash_key)
            if table.range_key_attr:
                for range_key in range_keys:
                    item = _MISSING if partition is None else partition.get(range_key, _MISSING)
                    self.items[(hash_key, range_key)] = (
                        item if item is _MISSING else copy.deepcopy(item)
                    )
            else:
                self.items[(hash_key, None)] = (
                    _MISSING if partition is None else copy.deepcopy(partition)
                )
        shard = table.stream_shard
        # The sequence number the next record gets (`StreamShard.add`).
        self.next_record = None if shard is None else shard.starting_sequence_number + len(shard.items)

    def restore(self):
        table = self.table
        for (hash_key, range_key), item in self.items.items():
            if not table.range_key_attr:
                if item is _MISSING:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
                continue
            partition = table.items.get(hash_key)
            if item is not _MISSING:
                if partition is None:
                    partition = table.items[hash_key] = {}
                partition[range_key] = item
            elif partition is not None:
                partition.pop(range_key, None)
                if not partition:
                    del table.items[hash_key]
        shard = table.stream_shard
        if shard is not None and self.next_record is not None:
            del shard.items[max(self.next_record - shard.starting_sequence_number, 0) :]


class _InPlaceBackup:
    """Stands in for the `copy` module inside moto.dynamodb.models. While a
    transaction runs (per thread: the server is threaded), moto's deepcopy
    of a table (its backup, put back as the table if the transaction is
    cancelled) is the live table itself, and what the transaction may change
    in it is saved (`_Saved`) for `transact_write_items` to put back."""

    def __init__(self):
        self.local = threading.local()

    def deepcopy(self, value, memo=None):
        state = getattr(self.local, "state", None)
        if state is None or not isinstance(value, models.Table):
            return copy.deepcopy(value, memo)
        saved, touched = state
        if id(value) not in saved:
            saved[id(value)] = _Saved(value, touched)
        return value

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


_shim = _InPlaceBackup()
models.copy = _shim
_transact = models.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    saved = {}
    _shim.local.state = (saved, _touched_partitions(self, transact_items))
    try:
        return _transact(self, transact_items)
    except Exception:
        # Cancelled: what it wrote is put back in the live table, so the
        # table and its stream shard stay the objects everyone holds
        # (shard iterators handed out before keep reading what follows).
        for table in saved.values():
            table.restore()
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
    if len(self.items) > STREAM_RECORDS + STREAM_TRIM:
        # Keep the newest STREAM_RECORDS; the first sequence number moves on.
        drop = len(self.items) - STREAM_RECORDS
        del self.items[:drop]
        self.starting_sequence_number += drop
    return added


STREAM_RECORDS = 60_000
STREAM_TRIM = 5_000

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

from moto.dynamodb import responses as _dynamo_responses


def _present(value):
    """The value without its None members, which the serializer omits."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value


def _dynamo_result(self, context):
    """A DynamoDB answer holding items (already in the wire's shape, binary
    values as bytes) dumped as JSON, not walked attribute by attribute
    against the service model: a third of moto's time at a boundary."""
    body = json.dumps(_present(self.result), default=_wire_json)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


_dynamo_responses.DynamoResult.execute_result = _dynamo_result

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


from moto.dynamodb.models import dynamo_type as _dynamo_type


def _item_init(self, hash_key, range_key, attrs):
    """moto's Item, its size checked once rather than once per attribute."""
    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: _dynamo_type.DynamoType(value) for key, value in attrs.items()}
    size = sum(_dynamo_type.bytesize(key) + value.size() for key, value in values.items())
    # LimitedSizeDict's own limit (DynamoDB's 400 KB, as moto measured it).
    if size > 405000:
        raise _dynamo_type.ItemSizeTooLarge
    self.attrs = _dynamo_type.LimitedSizeDict()
    dict.update(self.attrs, values)


_dynamo_type.Item.__init__ = _item_init

import functools

from moto.dynamodb import comparisons as _comparisons

_parse_condition = _comparisons.get_filter_expression


@functools.lru_cache(maxsize=4096)
def _parsed_condition(expr, names, values):
    return _parse_condition(expr, json.loads(names), json.loads(values))


def _get_filter_expression(expr, names, values):
    """moto's parse of an expression, kept for the next request that sends
    the same one (its operators hold no state)."""
    return _parsed_condition(
        expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True)
    )


_tables.get_filter_expression = _get_filter_expression
models.get_filter_expression = _get_filter_expression


_sqs_models.Queue.attributes = property(_attributes)
_sqs_models.SQSBackend.send_message = _send_message_cheaply

import moto_transactions  # noqa: E402,F401  (isolation and ClientRequestToken)

if __name__ == "__main__":
    sys.exit(main())
