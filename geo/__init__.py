"""Pure spatial helpers: no Flask, no models. Lon/lat in degrees, distances in metres."""
