"""Inclusive C14N 1.0 of one element, as XMLDSig computes it for a same-document reference.

lxml 6.1 with libxml2 2.14 canonicalises a *sub*-element wrongly when a default namespace is in
scope: grandchildren get a spurious ``xmlns=""`` (``<b xmlns="urn:x"><c><d xmlns="">``), so digests
computed that way never match what xmlsec or the SII compute. Re-parsing the element as a document
of its own (its serialisation carries the namespace declarations in scope) and canonicalising that
root gives the correct bytes.
"""
from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=True)


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(etree.fromstring(etree.tostring(element), _PARSER), method="c14n")
