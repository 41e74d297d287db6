"""Inclusive C14N 1.0 of one element, as XMLDSig computes it for a same-document reference.

lxml 6.1 with libxml2 2.14 canonicalises a *sub*-element wrongly when a default namespace is in
scope: grandchildren get a spurious ``xmlns=""`` (``<b xmlns="urn:x"><c><d xmlns="">``), so digests
computed that way never match what xmlsec or the SII compute. Canonicalising a copy of the element
as the root of a document of its own (the copy carries the namespace declarations in scope; its tail
is not part of the element) gives the correct bytes. The DTEs we sign declare no namespace that is
in scope but unused, which inclusive C14N would otherwise also render.
"""
from copy import deepcopy

from lxml import etree


def canonical(element: etree._Element) -> bytes:
    root = deepcopy(element)
    root.tail = None
    return etree.tostring(etree.ElementTree(root), method="c14n")
