"""Privacy core (issues 4 and 12): pseudonyms, sealed personal data only the addressed gemeente can
read, signed key epochs, crypto-shreddable per-event data keys; cipher suites (hybrid ML-KEM-768 +
X25519 with Ed25519 + ML-DSA-65 signed epochs by default, X25519 / Ed25519 for older keys). Pure:
no Kafka, HTTP or database.

All personal-data fields of an event are sealed as ONE unit (the bundle of
``herstelbus.core.contracts.pii.bundle_schema``, encoded with fastavro) into the routed record's
``verzegeld`` field; ``open_event`` gives back the whole original record.

Exchange (router), once per source schema version and once per gemeente per window::

    layout = PiiLayout(source_schema)                       # bundle schema parsed once
    key = choose_wrapping_key(directory, "GM0363", now)
    if needs_new_epoch(epoch, key, now):
        epoch = new_key_epoch(key, signing_key, now)        # publish epoch.announcement.to_bytes()
    sealed = seal_event(record, layout=layout, epoch=epoch, event_id=eid, subject=pseudonymise(bsn, secret))
    # sealed.record (clear fields + verzegeld) → routed record → Kafka; sealed.wrapped_key → key store

Gemeente (SDK)::

    ring = OpeningKeyring("GM0363", [private_key], [exchange_verify_key])
    ring.add(announcement_bytes)                            # SignatureInvalid / SignatureMissing
    layout = layouts[rec["bron_schema"]]                    # PiiLayout of the source schema
    ref = key_ref(rec, layout=layout, gemeentecode="GM0363", event_id=eid, subject=subject)
    plain = open_event(rec, layout=layout, keyring=ring, event_id=eid, subject=subject, key=store.get(ref))

Byte formats: FORMAT.md beside this file. Modules prefixed ``_`` are the hazmat layer.
"""

from .epochs import (
    DEFAULT_EPOCH_LIFETIME,
    KeyEpoch,
    OpeningKeyring,
    SealingEpoch,
    needs_new_epoch,
    new_key_epoch,
    verify_announcement,
)
from .errors import (
    ContextMismatch,
    EpochExhausted,
    InvalidBsn,
    InvalidIdentifier,
    InvalidKeyMaterial,
    KeyUnavailable,
    MalformedAnnouncement,
    MalformedSealedField,
    PrivacyError,
    RecordInvalid,
    SignatureInvalid,
    SignatureMissing,
    SubjectErased,
    Tampered,
    UnknownKeyEpoch,
)
from .keys import (
    DEFAULT_OVERLAP,
    ExchangeSigningKey,
    ExchangeVerifyKey,
    GemeenteKey,
    HybridPrivateKey,
    HybridPublicKey,
    choose_wrapping_key,
    generate_gemeente_key,
    generate_signing_key,
    key_id_for,
    load_gemeente_private_key,
    load_gemeente_public_key,
    load_signing_key,
    load_verify_key,
    private_key_to_pem,
    public_key_to_pem,
)
from .suites import DEFAULT_SUITE, HYBRID_SUITE, SUITES, X25519_SUITE, CipherSuite, suite_named
from .pseudonym import PseudonymSecret, is_pseudonym, pseudonymise, pseudonymise_dossier
from .seal import (
    KeyLookup,
    KeyRef,
    KeyRowState,
    PiiLayout,
    SealedEvent,
    WrappedKey,
    key_ref,
    open_event,
    schema_fingerprint,
    seal_event,
)

__all__ = [
    "DEFAULT_EPOCH_LIFETIME",
    "DEFAULT_OVERLAP",
    "DEFAULT_SUITE",
    "HYBRID_SUITE",
    "SUITES",
    "X25519_SUITE",
    "CipherSuite",
    "ContextMismatch",
    "EpochExhausted",
    "ExchangeSigningKey",
    "ExchangeVerifyKey",
    "GemeenteKey",
    "HybridPrivateKey",
    "HybridPublicKey",
    "InvalidBsn",
    "InvalidIdentifier",
    "InvalidKeyMaterial",
    "KeyEpoch",
    "KeyLookup",
    "KeyRef",
    "KeyRowState",
    "KeyUnavailable",
    "MalformedAnnouncement",
    "MalformedSealedField",
    "OpeningKeyring",
    "PiiLayout",
    "PrivacyError",
    "PseudonymSecret",
    "RecordInvalid",
    "SealedEvent",
    "SealingEpoch",
    "SignatureInvalid",
    "SignatureMissing",
    "SubjectErased",
    "Tampered",
    "UnknownKeyEpoch",
    "WrappedKey",
    "choose_wrapping_key",
    "generate_gemeente_key",
    "generate_signing_key",
    "is_pseudonym",
    "key_id_for",
    "key_ref",
    "load_gemeente_private_key",
    "load_gemeente_public_key",
    "load_signing_key",
    "load_verify_key",
    "needs_new_epoch",
    "new_key_epoch",
    "open_event",
    "private_key_to_pem",
    "pseudonymise",
    "pseudonymise_dossier",
    "public_key_to_pem",
    "schema_fingerprint",
    "seal_event",
    "suite_named",
    "verify_announcement",
]
