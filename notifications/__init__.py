"""Device tokens, the push outbox and FCM delivery (firebase-admin); built by the tasks issue."""
