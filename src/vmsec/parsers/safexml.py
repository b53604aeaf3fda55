"""Loading XML that may come from a compromised machine.

Rules, all enforced before or while parsing, never after:

- documents over ``max_bytes`` are refused before the parser sees a byte;
- entity declarations (internal or external) are refused, so nothing is ever expanded: no
  billion-laughs, no quadratic blow-up, no ``SYSTEM "file:///etc/passwd"``;
- a DOCTYPE that names an external DTD is refused (nothing is ever fetched);
- nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_ELEMENTS` elements are refused.

Documents that carry a DOCTYPE, or whose encoding is not plainly UTF-8/ASCII, are parsed by
defusedxml after a guarded expat pre-pass. libvirt itself never writes a DOCTYPE; for such plain
documents the absence of the literal ``<!DOCTYPE`` proves there is no DTD and hence no entity
declaration, so the C ElementTree parser is used directly (defusedxml's parser is pure Python and
would double the cost of every domain).
"""

from __future__ import annotations

import re
from typing import NoReturn
from xml.etree.ElementTree import Element, XMLParser
from xml.etree.ElementTree import ParseError as EtParseError
from xml.parsers import expat

import defusedxml.ElementTree as defused_et
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from vmsec.errors import ErrorKind, ParseError

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 8 * MIB
MAX_DEPTH = 256
MAX_ELEMENTS = 200_000

# Encodings in which the bytes of "<!DOCTYPE" and "<" are their ASCII bytes.
_PLAIN_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"})
_ENCODING_DECL = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")

ENTITY_REASON = "entity declarations are refused (possible entity-expansion attack)"


class XmlError(ParseError):
    """An XML input was refused or is not well-formed; ``reason`` says which rule or what error."""

    def __init__(self, source: str, reason: str, kind: ErrorKind = ErrorKind.INVALID) -> None:
        super().__init__(source, reason)
        self.kind = kind


def _size_limit_text(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit}-byte"


def ascii_compatible(data: bytes) -> bool:
    """True when the document is UTF-8 (or an ASCII superset) without a BOM for another encoding."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data[:4]
    if head.startswith((b"\xfe\xff", b"\xff\xfe")) or b"\x00" in head:
        return False
    if data.startswith(b"<?xml"):
        end = data.find(b"?>", 0, 1024)
        if end < 0:
            return False
        match = _ENCODING_DECL.search(data, 0, end)
        if match is not None:
            return match.group(1).decode("ascii").lower() in _PLAIN_ENCODINGS
    return True


class _Guard:
    """Expat handlers for the pre-pass: refuse entities and external DTDs, bound depth and size."""

    __slots__ = ("depth", "elements", "origin")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.depth = 0
        self.elements = 0

    def start(self, _name: str, _attrs: object) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > MAX_DEPTH:
            raise XmlError(self.origin, f"elements are nested deeper than {MAX_DEPTH} levels",
                           ErrorKind.TOO_LARGE)
        if self.elements > MAX_ELEMENTS:
            raise XmlError(self.origin, f"document has more than {MAX_ELEMENTS} elements",
                           ErrorKind.TOO_LARGE)

    def end(self, _name: str) -> None:
        self.depth -= 1

    def doctype(self, name: str, system_id: str | None, public_id: str | None, _internal: int) -> None:
        if system_id or public_id:
            raise XmlError(self.origin, f"external DTD references are refused (<!DOCTYPE {name} names "
                                        f"{system_id or public_id!r}); nothing is fetched")

    def entity(self, name: str, is_param: int, _value: str | None, _base: str | None,
               system_id: str | None, public_id: str | None, _notation: str | None) -> None:
        if system_id or public_id:
            raise XmlError(self.origin, f"external entity declarations are refused (entity {name!r} "
                                        f"points at {system_id or public_id!r})")
        raise XmlError(self.origin, ENTITY_REASON)

    def unparsed(self, name: str, *_rest: object) -> None:
        raise XmlError(self.origin, f"external entity declarations are refused (entity {name!r})")

    def external_ref(self, *_rest: object) -> int:
        raise XmlError(self.origin, "external entity references are refused")


def _prepass(data: bytes | str, origin: str) -> None:
    guard = _Guard(origin)
    parser = expat.ParserCreate()
    parser.StartElementHandler = guard.start
    parser.EndElementHandler = guard.end
    parser.StartDoctypeDeclHandler = guard.doctype
    parser.EntityDeclHandler = guard.entity
    parser.UnparsedEntityDeclHandler = guard.unparsed
    parser.ExternalEntityRefHandler = guard.external_ref
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        _not_well_formed(origin, expat.ErrorString(exc.code), exc.lineno, exc.offset)
    except (ValueError, LookupError) as exc:  # encoding="UTF-7", "shift_jis", "bogus": expat cannot
        raise XmlError(origin, f"cannot decode the document: {exc}") from exc


def _not_well_formed(origin: str, message: str, line: int, column: int) -> NoReturn:
    # expat columns are 0-based; editors count from 1.
    raise XmlError(origin, f"not well-formed XML: line {line}, column {column + 1}: {message}")


def _from_parse_error(origin: str, exc: EtParseError) -> NoReturn:
    line, column = exc.position
    message = str(exc).rsplit(": line ", 1)[0]
    _not_well_formed(origin, message, line, column)


def parse_xml(data: bytes | str, origin: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Element:
    """Parse an untrusted XML document into an Element, or raise :class:`XmlError`.

    ``origin`` names the input in every error (a path or a URI).
    """
    if isinstance(data, str):
        size = len(data)
        if size * 4 > max_bytes:  # a character is at most 4 UTF-8 bytes: only encode when it matters
            size = len(data.encode("utf-8", "surrogatepass"))
        plain = "<!DOCTYPE" not in data
        many_tags = data.count("<") > MAX_DEPTH
        blank = not data.strip()
    else:
        size = len(data)
        plain = b"<!DOCTYPE" not in data and ascii_compatible(data)
        many_tags = data.count(b"<") > MAX_DEPTH
        blank = not data.strip()
    if size > max_bytes:
        raise XmlError(origin, f"document is {size} bytes, over the {_size_limit_text(max_bytes)} limit",
                       ErrorKind.TOO_LARGE)
    if blank:
        raise XmlError(origin, "empty document (no XML element)")
    # Depth can only exceed MAX_DEPTH if there are more '<' than that; in plain documents every '<'
    # is the byte b"<", so counting them is a sound, cheap bound that spares the pre-pass.
    if not plain or many_tags:
        _prepass(data, origin)
    try:
        if plain:
            parser = XMLParser()
            parser.feed(data)
            root: Element = parser.close()
        else:
            root = defused_et.fromstring(data, forbid_dtd=False, forbid_entities=True,
                                         forbid_external=True)
    except EtParseError as exc:
        _from_parse_error(origin, exc)
    except (EntitiesForbidden, ExternalReferenceForbidden, DTDForbidden) as exc:
        # The pre-pass refuses these first; this is the second line of defence.
        raise XmlError(origin, ENTITY_REASON) from exc
    except DefusedXmlException as exc:
        raise XmlError(origin, f"refused: {exc}") from exc
    except (ValueError, LookupError) as exc:  # e.g. an encoding Python does not know
        raise XmlError(origin, f"cannot decode the document: {exc}") from exc
    return root
