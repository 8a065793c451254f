"""Volunteers on duty: who is, since when, and where (only with the location-sharing consent,
only the latest position, only for DUTY_POSITION_MINUTES). Tasks read it to dispatch; patrol
check-ins move it (through the statement fragment `service.follow_checkins_sql`)."""
