"""Two guarantees of DynamoDB's transactions that moto 5.2.5 lacks, added
to moto_server.py's DynamoDB (imported by it, after its own patches):

- Isolation. moto's server is threaded, and a transaction runs as
  separate writes that a cancelled transaction undoes by putting back the
  items it saved first: a write of another thread to one of those items in
  between (a transaction committed side by side) is undone with it.
  DynamoDB isolates transactions from each other and from single writes
  (serializable). Here every write (transactions, puts, updates, deletes;
  a batch write is puts and deletes) holds one lock.
- ClientRequestToken. DynamoDB answers a `TransactWriteItems` sent again
  with the token of one that succeeded, within 10 minutes of it, with
  success and without writing anything again; with the same token and
  other items, with `IdempotentParameterMismatchException`. moto ignores
  the token and runs the transaction again, so a retried ambiguous success
  (the SDK sends its retries with the token it generated for the call)
  failed its conditions here where DynamoDB would answer as the first time.

scripts/moto_server_check.py checks both.
"""

import json
import threading
import time

import moto.dynamodb.models as models
from moto.core.responses import ActionResult
from moto.dynamodb import responses
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

# Reentrant: a batch write or a transaction calls the single writes.
_writes = threading.RLock()


def _holding_the_lock(write):
    def locked(*args, **kwargs):
        with _writes:
            return write(*args, **kwargs)

    return locked


for _name in ("transact_write_items", "put_item", "update_item", "delete_item"):
    setattr(models.DynamoDBBackend, _name, _holding_the_lock(getattr(models.DynamoDBBackend, _name)))

# How long a succeeded transaction's token is remembered (DynamoDB: 10 minutes).
TOKEN_SECONDS = 600


class IdempotentParameterMismatch(DynamodbException):
    def __init__(self):
        super().__init__(
            ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
            message="The request uses the same client token as a previous, but non-identical request.",
        )


# Token -> (when it is forgotten, the transaction's items as JSON).
_tokens = {}
_handle = responses.DynamoHandler.transact_write_items


def transact_write_items(self):
    token = self.body.get("ClientRequestToken")
    if token is None:
        return _handle(self)
    items = json.dumps(self.body["TransactItems"], sort_keys=True, default=repr)
    with _writes:
        now = time.monotonic()
        for old in [t for t, (until, _) in _tokens.items() if until < now]:
            del _tokens[old]
        if token in _tokens:
            if _tokens[token][1] != items:
                raise IdempotentParameterMismatch()
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        answer = _handle(self)
        _tokens[token] = (time.monotonic() + TOKEN_SECONDS, items)
        return answer


responses.DynamoHandler.transact_write_items = transact_write_items
