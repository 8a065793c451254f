"""Open311 GeoReport v2 over our tips and categories."""
