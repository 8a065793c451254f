"""What accounts announce to the packages built on them. Accounts sit low in the layers
(pyproject.toml) and know nothing of those packages; a package above connects its receiver at
app start (create_app). Receivers run at once, in the sender's transaction."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with `session` and `user` when the user withdraws the location-sharing consent: whatever
# was kept of where they are must go in the same transaction (ARCHITECTURE §6).
location_sharing_withdrawn = _signals.signal("location-sharing-withdrawn")

# Sent with `session` and `user` when the user signs in with their password; a receiver answers
# True when the sign-in cancelled something of theirs (a pending account deletion,
# app/privacy/deletion.py), which the answer to the sign-in then says.
signed_in = _signals.signal("signed-in")
