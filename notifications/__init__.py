"""Device tokens, the push outbox and delivery through each device's provider: FCM
(firebase-admin), APNs (HTTP/2) or JPush (its SDK); built by the tasks issue and issue #16."""
