"""``Idempotency-Key`` on mutating routes, scoped to the caller, the concrete path and the
body: a repeat gets the first answer (200, ``Idempotent-Replayed: true``); the same key with
another body is a 422; a repeat that arrives while the first is still being answered waits
for it. The path, not the route template: ``/approvals/teardown`` is another request than
``/approvals/worker_launch``, whatever key and body they share."""
from __future__ import annotations

import functools
import hashlib

from flask import Response, request

from api_server.resources.common import actor, services
from core.errors import Conflict, Invalid

WAIT_FOR_FIRST = 30.0
# the header in the spec, for the routes that honour it: @blp.doc(parameters=[IDEMPOTENCY_KEY])
IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                   "description": "send a request again safely: a repeat (same caller, path "
                                  "and body) answers 200 with the first answer; another body "
                                  "with the key: 422"}


def idempotent(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        if len(key) > 200:
            raise Invalid("Idempotency-Key is longer than 200 characters", field="Idempotency-Key")
        store = services().store
        scope = (actor().principal, f"{request.method} {request.path}", key)
        body_hash = hashlib.sha256(request.get_data()).hexdigest()
        earlier = store.idempotency.claim(*scope, body_hash)
        clock = store.clock
        deadline = clock.monotonic() + WAIT_FOR_FIRST
        while earlier is not None and earlier.status is None and clock.monotonic() < deadline:
            clock.sleep(0.05)  # the first request with this key is still being answered
            earlier = store.idempotency.claim(*scope, body_hash)
        if earlier is not None:
            if earlier.body_hash != body_hash:
                raise Invalid("this Idempotency-Key was used with another request body: use a "
                              "new key for a new request", field="Idempotency-Key")
            if earlier.status is None:
                raise Conflict("the first request with this Idempotency-Key is still running")
            return Response(earlier.response, status=200, mimetype="application/json",
                            headers={"Idempotent-Replayed": "true"})
        try:
            response = view(*args, **kwargs)
        except BaseException:
            store.idempotency.release(*scope)
            raise
        if response.status_code < 400:
            store.idempotency.answer(*scope, response.status_code, response.get_data(as_text=True))
        else:
            store.idempotency.release(*scope)
        return response
    return wrapper
