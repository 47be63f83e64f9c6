#!/bin/sh
# The compose stack's one-shot `init` (docker-compose.yml): what `herstelbus dev up` does before it
# starts the services (services/devstack.py, DevStack.up and _secrets), with the herstelbus CLI.
# Idempotent: topics are created when missing, a secret or key is made only when its file is
# missing, and registering a key again changes nothing. tests/unit/test_deploy_compose.py checks
# every `herstelbus ...` line below against the CLI.
set -eu
umask 077

S=/var/lib/herstelbus/secrets   # the exchange's own secrets (the router mounts them)
P=/var/lib/herstelbus/public    # public keys: the router, the acks relay, the gemeenten
H=/var/lib/herstelbus/holders   # what ops and the demo gemeenten hold: in reality never here

# Every topic: ingest, status, ops, audit, two per gemeente.
herstelbus topics provision

# The exchange's signing keys (Ed25519 + ML-DSA-65); the public half for the gemeenten.
if [ ! -f "$S/signing.pem" ]; then
  herstelbus keys signing-keygen --out "$S"
fi
cp "$S/signing.pub.pem" "$P/signing.pub.pem"

# The pseudonym secret and ops' key pair (dead letters and held events are sealed to ops.pub.pem):
# no CLI command makes these, so as DevStack._secrets does, with the package's own functions.
python - "$S" "$P" "$H" <<'PY'
import sys
from pathlib import Path

from herstelbus.core.privacy import PseudonymSecret, generate_gemeente_key, private_key_to_pem, public_key_to_pem
from herstelbus.core.privacy.keys import load_gemeente_private_key

secrets, public, holders = (Path(p) for p in sys.argv[1:4])
if not (secrets / "pseudonym.key").exists():
    (secrets / "pseudonym.key").write_text(PseudonymSecret.generate().export_base64())
if not (holders / "ops.pem").exists():
    (holders / "ops.pem").write_bytes(private_key_to_pem(generate_gemeente_key()))
ops = load_gemeente_private_key((holders / "ops.pem").read_bytes())
(public / "ops.pub.pem").write_bytes(public_key_to_pem(ops.public_key()))
PY

# A key pair per demo gemeente (hybrid ML-KEM-768 + X25519), registered with the key store. Events
# for any other gemeente are held as unroutable (GEEN_GEMEENTESLEUTEL) until it registers a key.
# The fixed --valid-from makes registering the same key again a no-op.
mkdir -p "$P/gemeenten" "$H/gemeenten"
for gm in ${DEMO_GEMEENTEN:-GM0363 GM0599}; do
  if ! ls "$H/gemeenten/$gm".*.private.pem >/dev/null 2>&1; then
    herstelbus gemeente keygen "$gm" --out "$H/gemeenten"
  fi
  for pub in "$H/gemeenten/$gm".*.public.pem; do
    cp "$pub" "$P/gemeenten/"
    herstelbus gemeente register "$gm" --public-key "$pub" --valid-from 2025-01-01
  done
done
chmod 0644 "$P"/*.pem "$P"/gemeenten/*.pem   # public: readable by whoever mounts them
echo "herstelbus init: done"
