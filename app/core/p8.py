"""An Apple .p8 signing key (PKCS#8 PEM, EC P-256), as APNs' token authentication uses it.

Here, below both, so that the settings can check the key at start (app/config.py) and the APNs
sender can sign with it (notifications/apns.py) without the settings importing the sender.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key


class ApnsKeyError(ValueError):
    """The .p8 file is not an EC P-256 private key."""


def load_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """The signing key of an AuthKey_XXXXXXXXXX.p8 file (PKCS#8 PEM, EC P-256)."""
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ApnsKeyError(f"{path} is not a readable .p8 private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ApnsKeyError(f"{path} is not an EC P-256 key (APNs signs with ES256)")
    return key
