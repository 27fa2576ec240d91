#!/bin/sh
# Sign an events/webhook/*.json file for `cargo lambda invoke`: the files never store
# signatures, so compute X-Hub-Signature-256 (HMAC-SHA256 of the exact raw body, keyed
# with the Meta app secret the function is configured with) and print the signed event.
#
#   WA_APP_SECRET=local-app-secret events/webhook/sign.sh events/webhook/post-status-read.json > /tmp/signed.json
#   cargo lambda invoke webhook --data-file /tmp/signed.json
#
# API Gateway events get the header; the inbox SQS event gets `signature` set inside
# each parked body. Needs jq, openssl and base64.
set -eu
file=${1:?usage: WA_APP_SECRET=... $0 <event.json>}
: "${WA_APP_SECRET:?set WA_APP_SECRET to the app secret the webhook function uses}"

hmac() {
    printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$WA_APP_SECRET" -r | cut -d' ' -f1)"
}

if jq -e 'has("Records")' "$file" >/dev/null; then
    out=$(cat "$file")
    n=$(printf '%s' "$out" | jq '.Records | length')
    i=0
    while [ "$i" -lt "$n" ]; do
        sig=$(printf '%s' "$out" | jq -j ".Records[$i].body | fromjson | .body" | base64 -d | hmac)
        out=$(printf '%s' "$out" | jq --arg s "$sig" --argjson i "$i" \
            '.Records[$i].body |= (fromjson | .signature = $s | tojson)')
        i=$((i + 1))
    done
    printf '%s\n' "$out"
else
    if [ "$(jq -r '.isBase64Encoded' "$file")" = true ]; then
        sig=$(jq -j '.body' "$file" | base64 -d | hmac)
    else
        sig=$(jq -j '.body' "$file" | hmac)
    fi
    jq --arg s "$sig" '.headers["x-hub-signature-256"] = $s' "$file"
fi
