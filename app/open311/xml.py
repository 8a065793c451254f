"""Open311's XML documents, built with xml.etree from the same values as the JSON answers.

Element names are GeoReport v2's: a list is a plural element holding one singular element per
item (`<services><service>…</service></services>`, `<formats><format>…`), a mapping holds one
element per key, `null` is an empty element and booleans are `true` / `false`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

# The element of one item of a list, by the list's element.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
# Characters XML 1.0 cannot carry at all (not even escaped); tip texts may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            _fill(ET.SubElement(element, ITEM_TAGS[element.tag]), item)
    else:
        element.text = _text(value)


def document(root: str, content: Any) -> bytes:
    """The XML document whose root element is `root` and whose content is `content` (what the
    JSON answer holds: a list of mappings, or one mapping)."""
    element = ET.Element(root)
    _fill(element, content)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
