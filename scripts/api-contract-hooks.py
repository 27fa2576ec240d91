"""schemathesis hooks of scripts/api-contract.sh (loaded through SCHEMATHESIS_HOOKS).

POST /webhook: a body schemathesis generates in positive mode is signed with the app
secret of the run (WA_CONTRACT_APP_SECRET), as Meta signs it, so that the fuzzed
envelopes reach the webhook's parser and apply step instead of all stopping at the
signature check (401). Bodies of negative mode and the signature header's own
mutations stay as generated: those must be refused.
"""

import hashlib
import hmac
import json
import os

import schemathesis

SECRET = os.environ["WA_CONTRACT_APP_SECRET"].encode()


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.operation.method.upper() != "POST" or case.operation.path != "/webhook":
        return
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    # A case can be positive as a whole while one of its parts is a negation.
    if any(not info.mode.is_positive for info in meta.components.values()):
        return
    if not isinstance(case.body, (dict, list)):
        return
    # The bytes the transport sends (requests' `json=`: json.dumps with its defaults);
    # the body itself stays as generated, so the case stays what it was.
    raw = json.dumps(case.body).encode()
    signature = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    case.headers = dict(case.headers or {})
    case.headers["X-Hub-Signature-256"] = f"sha256={signature}"
