"""Service stations: rider rest stations, volunteer posts, service centres; finding an open one."""
