"""Operations endpoints: liveness and readiness probes."""
