"""Personal information rights under PIPL (issue #21): what others read about me."""
