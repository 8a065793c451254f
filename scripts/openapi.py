"""Write the OpenAPI document to a file, without a server or a database: `openapi.py PATH`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app

if __name__ == "__main__":
    app = create_app()
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    Path(sys.argv[1]).write_text(json.dumps(document, ensure_ascii=False, indent=1))
